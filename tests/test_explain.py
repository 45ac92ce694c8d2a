"""mc.explain (SPEC section 8): derivations step by step, as Parr & Howard write them.

Every explanation is checked for what it claims, not only printed:

- the result, composed from the steps' local derivatives by the chain rule,
  equals ``mc.diff`` at random points (every identity of identities.py, the
  property generator's random expressions);
- the definitions, substituted into each other, give f back;
- each local derivative is the Jacobian of its step with respect to what it
  is built from (compared with ``mc.diff`` of the definition, both written in
  f's variables through the language's own definitions, SPEC 7);
- every LaTeX display renders in KaTeX.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc.diff import diff_node
from mathcalc.explain import explain_expr
from mathcalc.expression import Expr

from evaluate import evaluate, rel_error
from identities import IDENTITIES
import test_property as P

NEURON = dict(w=("n",), x=("n",), b=())
MLP = dict(W1=("h", "d"), x=("d",), b1=("h",), W2=("o", "h"), b2=("o",), y=("o",))
MLP_LOSS = "norm2(W2*tanh(W1*x + b1) + b2 - y)^2"
FIRST_ORDER = [case for case in IDENTITIES if case["order"] == 1]


def program(ex, body: str) -> str:
    """``u1 = …; u2 = …; body``: text that reads body in f's variables (SPEC 7)."""
    return "; ".join(f"{s.name} = {s.definition}" for s in ex.steps) + "; " + body


def declared(ex) -> dict:
    return {k: v for k, v in ex.f.variables.items()}


# ---------------------------------------------------------------------------
# The neuron and the network of the README, step by step


def test_neuron_steps_as_parr_and_howard_write_them():
    ex = mc.explain("max(0, w'*x + b)", "w", **NEURON)
    assert [(s.name, str(s.definition)) for s in ex.steps] == [("u1", "w'*x + b"),
                                                              ("u2", "max(0, u1)")]
    u1, u2 = ex.steps
    assert {k: str(v) for k, v in u2.local.items()} == {"u1": "step(u1)"}
    assert {k: str(v) for k, v in u1.local.items()} == {"w": "x"}
    text = str(ex)
    assert "∂u2/∂u1 = step(u1)" in text and "∂u1/∂w = x" in text
    assert "∂u2/∂w = (∂u2/∂u1)*(∂u1/∂w)" in text
    assert str(ex.result) == str(mc.diff("max(0, w'*x + b)", "w", **NEURON)) == "step(w'*x + b)*x"


def test_mlp_chain_rule_has_the_transposes_of_the_layout():
    ex = mc.explain(MLP_LOSS, "W1", **MLP)
    defs = [str(s.definition) for s in ex.steps]
    assert defs == ["W1*x + b1", "tanh(u1)", "W2*u2 + b2 - y", "norm2(u3)^2"]
    text = str(ex)
    # a scalar f: the adjoints are columns, each Jacobian enters transposed
    assert "∂u4/∂u2 = (∂u3/∂u2)'*(∂u4/∂u3)" in text
    assert "∂u4/∂u1 = (∂u2/∂u1)'*(∂u4/∂u2)" in text
    assert "∂u4/∂W1 = (∂u4/∂u1)*x'" in text
    assert "∂u2/∂u1 = diag(1 - u2 .^ 2)" in text
    assert mc.equivalent(ex.result, mc.diff(MLP_LOSS, "W1", **MLP))


def test_a_jacobian_chain_composes_left_to_right():
    """For a vector f, ∂f/∂x = ∂u2/∂u1 · ∂u1/∂x as matrices: f.shape + x.shape, no transposes."""
    ex = mc.explain("tanh(W*x)", "x", W=("m", "n"), x=("n",))
    assert "∂u2/∂x = (∂u2/∂u1)*(∂u1/∂x)" in str(ex)
    assert ex.result.shape == ("m", "n")
    assert mc.equivalent(ex.result, mc.diff("tanh(W*x)", "x", W=("m", "n"), x=("n",)))


def test_shared_intermediates_sum_over_their_consumers():
    ex = mc.explain("x'*A*x + sum(exp(x))", "x", x=("n",), A=("n", "n"))
    (line,) = [c for c in ex.chain if c.target == "x"]
    assert len(line.terms) == 2  # through exp(x) and through x'*A*x
    assert mc.equivalent(ex.result, mc.diff("x'*A*x + sum(exp(x))", "x", x=("n",),
                                            A=("n", "n")))


def test_one_intermediate_per_affine_map_and_per_activation():
    for k in (2, 5):
        text, shapes = "x", {"x": ("n",)}
        for i in range(1, k + 1):
            text = f"tanh(W{i}*{text} + b{i})"
            shapes.update({f"W{i}": ("n", "n"), f"b{i}": ("n",)})
        ex = mc.explain(f"sum({text})", "W1", **shapes)
        assert len(ex.steps) == 2 * k + 1  # k affine maps, k activations, the sum
        assert [str(s.definition) for s in ex.steps[:2]] == ["W1*x + b1", "tanh(u1)"]


def test_deep_chain_text_grows_linearly_without_the_result():
    """The chain rule lines name the adjoints: each line has a bounded length."""
    sizes = {}
    for k in (8, 32):
        text, shapes = "x", {"x": ("n",)}
        for i in range(1, k + 1):
            text = f"tanh(W_{i}*{text})"
            shapes[f"W_{i}"] = ("n", "n")
        ex = mc.explain(f"sum({text})", "W_1", **shapes)
        shown = str(ex)
        sizes[k] = len(shown) - len(str(ex.result))
        assert len(ex.steps) == 2 * k + 1
    assert sizes[32] / sizes[8] < 4.6, sizes  # 4x the layers, at most ~4x the text


def test_steps_never_restate_a_variable_or_a_constant():
    for case in FIRST_ORDER:
        ex = mc.explain(case["f"], case["wrt"], **case["shapes"])
        for step in ex.steps:
            node = step.definition.node
            assert not isinstance(node, (E.Var, E.Num, E.Zero, E.Ones, E.Delta)), (case["f"], step)
    assert mc.explain("x", "x", x=("n",)).steps == []
    assert mc.explain("a'*y", "x", a=("m",), y=("m",), x=("n",)).steps == []


def test_scalar_functions_of_a_scalar_reduction_are_one_step():
    ex = mc.explain("norm2(A*x - b)^2", "x", A=("m", "n"), x=("n",), b=("m",))
    assert [str(s.definition) for s in ex.steps] == ["A*x - b", "norm2(u1)^2"]
    assert [str(s.definition) for s in mc.explain("log(det(X))", "X", X=("n", "n")).steps] == \
        ["log(det(X))"]


def test_names_never_clash_with_variables():
    ex = mc.explain("sum(exp(u1 .* x))", "x", u1=("n",), x=("n",))
    names = [s.name for s in ex.steps]
    assert not set(names) & set(ex.f.variables)
    assert names == ["v1", "v2", "v3"]


def test_the_users_definitions_name_their_steps():
    """Names defined in the text (SPEC 7) are the intermediates' names; the others avoid them."""
    text = "h = tanh(W1*x + b1)\ns = W2*h + b2\nsum(s .* s)"
    ex = mc.explain(text, "W1")
    assert [(s.name, str(s.definition)) for s in ex.steps] == [
        ("u1", "W1*x + b1"), ("h", "tanh(u1)"), ("s", "W2*h + b2"), ("u2", "s .^ 2"),
        ("u3", "sum(u2)")]
    assert str(ex).splitlines()[0].startswith(
        "f = sum(s .* s) where h = tanh(W1*x + b1); s = W2*h + b2, differentiated")
    assert mc.equivalent(ex.result, mc.diff(text, "W1"))
    ex = mc.explain("sum(max(0, u1)) where u1 = W*x + b", "W")
    assert [s.name for s in ex.steps] == ["u1", "v1", "v2"]


def test_no_step_depends_on_a_later_one():
    ex = mc.explain(MLP_LOSS, "W1", **MLP)
    seen = set(ex.f.variables)
    for step in ex.steps:
        assert step.definition.node.free_vars <= seen
        assert set(step.local) <= seen
        seen.add(step.name)


# ---------------------------------------------------------------------------
# What every explanation claims, on the identities


def _check_claims(ex):
    f, wrt = ex.f, ex.wrt
    assert mc.equivalent(ex.result, mc.diff(f, wrt)), (f, wrt, str(ex.result))
    if not ex.steps:
        return
    # the definitions give f back
    rebuilt = mc.parse(program(ex, ex.steps[-1].name), **declared(ex))
    assert mc.equivalent(rebuilt, f), (str(f), program(ex, ex.steps[-1].name))
    # each local derivative is the Jacobian of its step with respect to an input held
    # free; every other name stands for its definition, on both sides
    names = {s.name: s.definition.shape for s in ex.steps}
    for k, step in enumerate(ex.steps):
        for inp, local in step.local.items():
            if local.node.rank > 2:
                continue  # index notation does not read back (SPEC 3)
            env = {**declared(ex), **names}
            expected = mc.diff(Expr(step.definition.node, env), inp)
            prefix = "".join(f"{s.name} = {s.definition}; " for s in ex.steps[:k + 1]
                             if s.name != inp)
            shapes = {**declared(ex), **({inp: names[inp]} if inp in names else {})}
            left = mc.parse(prefix + str(local), **shapes)
            right = mc.parse(prefix + str(expected), **shapes)
            assert mc.equivalent(left, right), (str(f), step.name, inp, str(local), str(expected))


@pytest.mark.parametrize("case", FIRST_ORDER, ids=lambda c: f"{c['f']} d/d{c['wrt']}")
def test_explanation_claims_hold_on_every_identity(case):
    _check_claims(mc.explain(case["f"], case["wrt"], **case["shapes"]))


SECOND_ORDER = [case for case in IDENTITIES if case["order"] == 2]


@pytest.mark.parametrize("case", SECOND_ORDER, ids=lambda c: f"{c['f']} d2/d{c['wrt']}2")
def test_explaining_a_gradient_gives_the_hessian(case):
    """A Hessian explained: the derivation of the gradient's derivative."""
    g = mc.diff(case["f"], case["wrt"], **case["shapes"])
    ex = mc.explain(g, case["wrt"])
    assert mc.equivalent(ex.result, mc.hessian(case["f"], case["wrt"], **case["shapes"]))
    _check_claims(ex)


def test_every_latex_display_renders_in_katex(render_all):
    displays = [mc.explain(c["f"], c["wrt"], **c["shapes"]).latex for c in FIRST_ORDER]
    displays.append(mc.explain(MLP_LOSS, "W1", **MLP).latex)
    displays.append(mc.explain("(max(0, w'*x + b) - y)^2", "w", **NEURON, y=()).latex)
    errors = render_all(displays, strict=True)
    assert not errors, "\n".join(map(str, errors[:5]))


def test_latex_is_one_aligned_display_with_the_steps():
    tex = mc.explain("max(0, w'*x + b)", "w", **NEURON).latex
    assert tex.startswith(r"\begin{aligned}") and tex.endswith(r"\end{aligned}")
    assert r"u_{2} &= \max\left( 0, u_{1} \right)" in tex
    assert (r"\frac{\partial u_{2}}{\partial u_{1}} &= "
            r"\operatorname{step}\left( u_{1} \right)") in tex
    assert r"\frac{\partial u_{2}}{\partial u_{1}} \frac{\partial u_{1}}{\partial w}" in tex


# ---------------------------------------------------------------------------
# Random expressions of the property tests


@settings(P.SETTINGS, max_examples=40)
@given(fw=P.with_wrt(P.expressions()), seed=st.integers(0, 2**16))
def test_explained_result_equals_diff_on_random_expressions(fw, seed):
    f, wrt = fw
    ex = explain_expr(Expr(f, P.VARS), wrt, P.VARS[wrt])
    g = diff_node(f, wrt, P.VARS[wrt])
    assert ex.result.shape == g.shape
    vals = P.point_for([f, g, ex.result.node], seed)
    want, got = evaluate(g, vals), evaluate(ex.result.node, vals)
    P.assume(np.all(np.isfinite(want)))
    assert rel_error(got, want) < 1e-9, (repr(f), wrt, str(ex.result))
    str(ex)  # and it prints
    assert ex.latex.startswith(r"\begin{aligned}")


def test_random_explanations_render_in_katex(render_all):
    shown = []

    @settings(P.SETTINGS, max_examples=30)
    @given(fw=P.with_wrt(P.expressions()))
    def collect(fw):
        f, wrt = fw
        shown.append(explain_expr(Expr(f, P.VARS), wrt, P.VARS[wrt]).latex)

    collect()
    errors = render_all(shown, strict=True)
    assert not errors, "\n".join(map(str, errors[:5]))


# ---------------------------------------------------------------------------
# The API and the command line


def test_bad_input_is_a_mathcalc_error():
    with pytest.raises(mc.DiffError):
        mc.explain("x'*x", "y")
    with pytest.raises(mc.MathcalcError, match="ordr=2 is not a shape"):
        mc.explain("x'*x", "x", ordr=2)
    with pytest.raises(mc.ParseError):
        mc.explain("x'*", "x")


def test_repr_and_notebook_display():
    ex = mc.explain("max(0, w'*x + b)", "w", **NEURON)
    assert repr(ex) == "Explanation(d/dw, steps=[u1, u2], result=\"step(w'*x + b)*x\")"
    assert ex._repr_latex_() == "$$" + ex.latex + "$$"


def test_cli_steps_prints_the_derivation():
    proc = subprocess.run([sys.executable, "-m", "mathcalc", "diff", "max(0, w'*x + b)",
                           "--wrt", "w", "--steps"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n") == str(mc.explain("max(0, w'*x + b)", "w"))
    bad = subprocess.run([sys.executable, "-m", "mathcalc", "diff", "x'*x", "--wrt", "x",
                          "--steps", "--order", "2"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "first derivative" in bad.stderr and not bad.stdout
