"""Where-forms (SPEC 7): ``mc.where(g)`` names the repeated and long subexpressions.

- ``str(w)`` reads back with ``mc.parse`` to an expression equivalent to g, on
  every identity of tests/identities.py (f and its derivative) and on random
  expressions of the property generator (tests/test_property.py);
- what is named: a subexpression used more than once and bigger than a
  variable or its transpose, or a part of a line that is too long; a
  temporary used once only where it shortens a line; dependency order;
  names that never clash with variables (in text or in LaTeX);
- the deep chain ``sum(tanh(W_k*…tanh(W_1*x)))``: the printed length grows
  linearly in k (log-log slope <= 1.15), where the plain text grows as k²;
- every LaTeX display renders in KaTeX.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc.diff import diff_node
from mathcalc.printing.where import LINE_WIDTH

from evaluate import evaluate, rel_error
from identities import IDENTITIES
from test_property import (SETTINGS, VARS, expressions, point_for,  # noqa: F401
                           registered_function, with_wrt)

MLP = dict(W1=(4, 3), x=(3,), b1=(4,), W2=(2, 4), b2=(2,), W3=(1, 2), b3=(1,))
MLP_F = "sum(tanh(W3*tanh(W2*tanh(W1*x + b1) + b2) + b3))"


def deep_chain(k: int) -> mc.Expr:
    text = "x"
    for j in range(1, k + 1):
        text = f"tanh(W_{j}*{text})"
    shapes = {f"W_{j}": ("n", "n") for j in range(1, k + 1)}
    return mc.parse(f"sum({text})", x=("n",), **shapes)


def names_in(text: str) -> list:
    return re.findall(r"(?<![\w.])[^\W\d]\w*", text)


def check_form(w, g, shapes) -> None:
    """What every where-form must satisfy (beyond reading back)."""
    names = [name for name, _ in w.definitions]
    assert len(set(names)) == len(names)
    assert not set(names) & set(g.variables)
    lines = [str(d) for _, d in w.definitions] + [str(w.result)]
    for k, (name, d) in enumerate(w.definitions):
        # dependency order: a definition uses only earlier temporaries
        used = set(names_in(str(d))) & set(names)
        assert used <= set(names[:k]), (name, str(d))
        # a temporary used once exists only to shorten a line that was too long
        users = [line for line in lines[k + 1:] if name in names_in(line)]
        count = sum(names_in(line).count(name) for line in users)
        assert count >= 1, (name, str(w))
        if count == 1:  # its line with it written out, bracketed (at most that long)
            assert len(users[0]) - len(name) + len(str(d)) + 2 > LINE_WIDTH, (name, str(w))
        # nothing named is as small as a variable or its transpose
        assert len(names_in(str(d))) + len(re.findall(r"\d+", str(d))) > 1, (name, str(d))


def reads_back(w, g, shapes) -> None:
    back = mc.parse(str(w), **shapes)
    assert back.shape == g.shape
    assert mc.equivalent(back, g), (str(w), str(g))
    assert mc.equivalent(mc.parse(w.text(multiline=True), **shapes), g)
    # the same definitions before the expression (the first form of SPEC 7)
    prefix = "".join(f"{name} = {d}; " for name, d in w.definitions) + str(w.result)
    assert mc.equivalent(mc.parse(prefix, **shapes), g)


# ---------------------------------------------------------------------------
# Whiteboard examples


def test_the_mlp_gradient_names_each_layer_once():
    g = mc.diff(MLP_F, "W1", **MLP)
    w = mc.where(g)
    text = str(w)
    assert str(g).count("tanh(W1*x + b1)") == 3  # the issue's complaint
    assert text.count("tanh(W1*x + b1)") == 1 and text.count("W2*") == 1
    assert w.definitions[0][0] == "t1"
    assert w.definitions[0][1] == mc.parse("tanh(W1*x + b1)", **MLP)
    assert w.definitions[1][1] == mc.parse("tanh(W2*t1 + b2)", t1=(4,), **MLP)
    assert text.startswith(str(w.result) + " where t1 = tanh(W1*x + b1); t2 = ")
    check_form(w, g, MLP)
    reads_back(w, g, MLP)


def test_result_and_definitions_are_expressions():
    g = mc.diff(MLP_F, "W1", **MLP)
    w = mc.where(g)
    assert isinstance(w.result, mc.Expr) and w.result.shape == g.shape
    assert all(isinstance(d, mc.Expr) for _, d in w.definitions)
    assert {"t1", "t2"} <= set(w.result.variables) | set(
        name for _, d in w.definitions for name in d.variables)
    # substituting the definitions back, in reverse order, gives g's value
    rng = np.random.default_rng(1)
    vals = {k: rng.standard_normal(s) for k, s in MLP.items()}
    for name, d in w.definitions:
        vals[name] = evaluate(d.node, vals)
    assert rel_error(evaluate(w.result.node, vals), evaluate(g.node, vals)) < 1e-12


def test_nothing_to_name_is_the_plain_result():
    g = mc.diff("x'*A*x", "x", x=(3,), A=(3, 3))
    w = mc.where(g)
    assert w.definitions == [] and str(w) == str(g)
    assert mc.latex(w) == mc.latex(g)


def test_temporaries_never_clash_with_variables():
    shapes = dict(t1=(3, 3), t_2=(3, 3), x=(3,))  # t_2 prints t_{2} in LaTeX, as t2 would
    g = mc.diff("sum(tanh(t_2*tanh(t1*x)))", "t1", **shapes)
    w = mc.where(g)
    names = [name for name, _ in w.definitions]
    assert names and "t1" not in names and "t2" not in names
    assert names[0] == "t3"
    reads_back(w, g, shapes)


def test_text_and_keyword_arguments():
    w = mc.where("sum(exp(x .* y)) + sum(exp(x .* y) .* x)", x=(3,), y=(3,))
    assert [str(d) for _, d in w.definitions] == ["exp(x .* y)"]
    with pytest.raises(mc.MathcalcError):
        mc.where("x'*x", bogus=3)
    with pytest.raises(mc.ParseError):
        mc.where("x +")


def test_higher_order_results_print_with_temporaries_in_index_notation():
    g = mc.diff("tanh(W*tanh(V*x))", "V", W=(2, 3), V=(3, 4), x=(4,))
    w = mc.where(g)
    assert g.shape == (2, 3, 4)
    assert all(d.shape != () or True for _, d in w.definitions)
    for _, d in w.definitions:
        assert len(d.shape) <= 2
        mc.parse(str(d), **{**g.variables, **{n: e.shape for n, e in w.definitions}})


# ---------------------------------------------------------------------------
# The deep chain: linear growth


def test_deep_chain_grows_linearly():
    ks = [8, 16, 32]
    plain, named = [], []
    for k in ks:
        g = mc.diff(deep_chain(k), "W_1")
        w = mc.where(g)
        plain.append(len(str(g)))
        named.append(len(str(w)))
    slope = math.log(named[-1] / named[0]) / math.log(ks[-1] / ks[0])
    plain_slope = math.log(plain[-1] / plain[0]) / math.log(ks[-1] / ks[0])
    assert slope <= 1.15, (ks, named)
    assert plain_slope > 1.6, (ks, plain)  # the plain text is quadratic: the test can fail


@pytest.mark.parametrize("k", [6, 32])
def test_deep_chain_reads_back(k):
    g = mc.diff(deep_chain(k), "W_1")
    w = mc.where(g)
    assert len(w.definitions) >= k - 1
    reads_back(w, g, g.variables)
    check_form(w, g, g.variables)


# ---------------------------------------------------------------------------
# Every identity, and random expressions


def _identity_cases():
    cases = []
    for ident in IDENTITIES:
        cases.append(pytest.param(ident, id=f"{ident['f']} d{ident['wrt']}^{ident['order']}"))
    return cases


@pytest.mark.parametrize("ident", _identity_cases())
def test_every_identity_reads_back(ident):
    shapes = ident["shapes"]
    f = mc.parse(ident["f"], **shapes)
    g = mc.diff(f, ident["wrt"], order=ident["order"])
    for expr in (f, g):
        if len(expr.shape) > 2:
            continue  # index notation does not read back (SPEC 3: order <= 2)
        w = mc.where(expr)
        check_form(w, expr, shapes)
        reads_back(w, expr, shapes)


@SETTINGS
@given(fw=with_wrt(expressions(depth=3)), seed=st.integers(0, 2**16), derivative=st.booleans())
def test_random_expressions_read_back(fw, seed, derivative):
    f, wrt = fw
    if derivative:
        if f.rank + len(VARS[wrt]) > 2:
            f = E.sum_all(f) if f.rank else f
        f = diff_node(f, wrt, VARS[wrt])
    expr = mc.Expr(f, dict(VARS))
    w = mc.where(expr)
    check_form(w, expr, VARS)
    back = mc.parse(str(w), **VARS)
    assert back.shape == f.shape
    vals = point_for([f, back.node], seed)
    a, b = evaluate(f, vals), evaluate(back.node, vals)
    assume(np.all(np.isfinite(a)))
    assert rel_error(a, b) < 1e-9, f"{f!r} has the where-form {str(w)!r}, which reads back differently"


# ---------------------------------------------------------------------------
# LaTeX


def test_latex_is_the_result_then_where_and_the_aligned_definitions():
    g = mc.diff(MLP_F, "W1", **MLP)
    tex = mc.latex(mc.where(g))
    assert tex.startswith(r"\begin{aligned}") and tex.endswith(r"\end{aligned}")
    assert r"\text{where}" in tex and r"t_{1} &= \tanh\left( W_{1} x + b_{1} \right)" in tex
    assert tex.index(r"\text{where}") < tex.index("t_{1} &=")
    bold = mc.latex(mc.where(g), bold=True)
    assert r"\mathbf{t}_{1} &=" in bold and r"\mathbf{W}_{1}" in bold


def test_every_where_display_renders_in_katex(render_all):
    strings = []
    for ident in IDENTITIES:
        g = mc.diff(ident["f"], ident["wrt"], order=ident["order"], **ident["shapes"])
        w = mc.where(g)
        strings += [mc.latex(w), mc.latex(w, bold=True)]
    for k in (3, 12):
        strings.append(mc.latex(mc.where(mc.diff(deep_chain(k), "W_1"))))
    strings.append(mc.latex(mc.where(mc.diff(MLP_F, "W1", **MLP))))
    assert render_all(strings) == []
    assert render_all(strings, strict=True) == []


# ---------------------------------------------------------------------------
# The command line


def test_cli_where():
    shapes = [f"--shape={name}={','.join(map(str, shape))}" for name, shape in MLP.items()]
    done = subprocess.run([sys.executable, "-m", "mathcalc", "diff", MLP_F, "--wrt", "W1",
                           "--where", *shapes], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\nwhere\n  t1 = tanh(W1*x + b1)\n" in out and out.endswith("shape: (4, 3)\n")
    body = out.split("\nshape:")[0]
    assert mc.equivalent(mc.parse(body, **MLP), mc.diff(MLP_F, "W1", **MLP))
    latex = subprocess.run([sys.executable, "-m", "mathcalc", "diff", MLP_F, "--wrt", "W1",
                            "--where", "--latex"], capture_output=True, text=True, timeout=120)
    assert latex.returncode == 0, latex.stderr
    assert r"\text{where}" in latex.stdout


# ---------------------------------------------------------------------------
# The generated code computes the same shared subexpressions once


def _expanded(w) -> dict:
    """Each temporary's definition with the earlier temporaries written out (nodes)."""
    done: dict = {}
    for name, d in w.definitions:
        memo: dict = {}
        for n in E.walk(d.node):
            if isinstance(n, E.Var) and n.name in done:
                memo[n] = done[n.name]
            elif n.children():
                kids = [memo[k] for k in n.children()]
                memo[n] = n if all(a is b for a, b in zip(kids, n.children())) else n.with_children(kids)
            else:
                memo[n] = n
        done[name] = memo[d.node]
    return done


@pytest.mark.parametrize("case", ["mlp", "chain"])
def test_repeated_temporaries_are_the_shared_nodes_of_the_generated_code(case):
    lower = pytest.importorskip("mathcalc.backend.lower")
    if not hasattr(lower, "shared_nodes"):
        pytest.skip("mathcalc.backend.lower has no shared_nodes yet")
    g = mc.diff(MLP_F, "W1", **MLP) if case == "mlp" else mc.diff(deep_chain(8), "W_1")
    w = mc.where(g)
    shared = set(lower.shared_nodes(g.node))
    expanded = _expanded(w)
    lines = [str(w.result)] + [str(d) for _, d in w.definitions]
    repeated = [name for name, _ in w.definitions
                if sum(names_in(line).count(name) for line in lines) >= 2]
    assert repeated
    for name in repeated:
        assert expanded[name] in shared, name
