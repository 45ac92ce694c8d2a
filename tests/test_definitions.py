"""Definitions in the language (SPEC 7): ``u = W*x + b; sum(max(0, u))`` and
``sum(max(0, u)) where u = W*x + b``.

A defined name stands for its definition: both forms parse to the very node of
the text with the definition written out, and differentiate, check and print
like it. A defined name is not a variable (differentiating by it is a
DiffError that says so); definitions are shape-checked where they are used;
misuse (self-reference, use before definition, a name defined twice, ``where``
as a name, a stray ``=`` or ``;``) is a ParseError with a caret; no input makes
the parser raise anything else or take long.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mathcalc as mc

P = importlib.import_module("mathcalc.parse")
D = importlib.import_module("mathcalc.definitions")

NEURON = dict(W=(2, 3), x=(3,), b=(2,))


def parse_error(text, **shapes) -> mc.ParseError:
    with pytest.raises(mc.ParseError) as info:
        mc.parse(text, **shapes)
    return info.value


def caret(err: mc.ParseError) -> tuple:
    return err.line, err.column


# ---------------------------------------------------------------------------
# A defined name stands for its definition


@pytest.mark.parametrize("text", [
    "u = W*x + b; sum(max(0, u))",
    "sum(max(0, u)) where u = W*x + b",
    "u = W*x + b\nsum(max(0, u))",
    "sum(max(0, u))\nwhere\n  u = W*x + b",
    "sum(max(0, u)) where\n  u = W*x + b\n",
    "u = W*x\n  + b\nsum(max(0, u))",  # a line starting with an operator continues
    "u = W*x; v = u + b; sum(max(0, v))",
    "sum(r) where r = max(0, v); v = u + b; u = W*x",  # a where block in any order
    "u = W*x; sum(max(0, v)) where v = u + b",  # both forms at once
    "  u = W*x + b ;\n\n sum(max(0, u))  ",
])
def test_both_forms_read_as_the_definition_written_out(text):
    written_out = mc.parse("sum(max(0, W*x + b))", **NEURON)
    f = mc.parse(text, **NEURON)
    assert f == written_out
    assert f.variables == written_out.variables


def test_undeclared_shapes_are_inferred_through_definitions():
    f = mc.parse("u = W*x + b; sum(max(0, u))")
    assert f.variables == {"W": ("m", "n"), "x": ("n",), "b": ("m",)}
    # dimensions are tied across definitions as in one text
    g = mc.parse("u = W*x; v = V*y; u + v")
    assert g.variables["W"][0] == g.variables["V"][0]
    assert g == mc.parse("W*x + V*y")


def test_a_definition_used_twice_is_one_node_of_the_dag():
    from mathcalc import nodes as E

    f = mc.parse("u = tanh(W*x + b); u'*u + sum(u)", **NEURON)
    assert f == mc.parse("tanh(W*x + b)'*tanh(W*x + b) + sum(tanh(W*x + b))", **NEURON)
    tanhs = [n for n in E.walk(f.node) if isinstance(n, E.Apply) and n.fn == "tanh"]
    assert len(tanhs) == 1


def test_a_use_is_bracketed_like_a_parenthesised_expression():
    shapes = dict(x=(3,), y=(3,))
    assert mc.parse("u = x + y; 2*u", **shapes) == mc.parse("2*(x + y)", **shapes)
    assert mc.parse("u = -x; u'*y", **shapes) == mc.parse("(-x)'*y", **shapes)
    assert mc.parse("s = x'*y; s^2", **shapes) == mc.parse("(x'*y)^2", **shapes)


def test_newlines_in_a_plain_expression_are_whitespace():
    shapes = dict(x=(3,), y=(3,))
    assert mc.parse("x\n- y", **shapes) == mc.parse("x - y", **shapes)
    assert mc.parse("(x\n+ y)'*\nx", **shapes) == mc.parse("(x + y)'*x", **shapes)
    assert mc.parse("x +\n y", **shapes) == mc.parse("x + y", **shapes)


def test_derivatives_and_checks_see_the_definition():
    text = "u = W*x + b; sum(max(0, u))"
    g = mc.diff(text, "W", **NEURON)
    assert mc.equivalent(g, mc.diff("sum(max(0, W*x + b))", "W", **NEURON))
    assert mc.equivalent(g, mc.parse("step(W*x + b)*x'", **NEURON))
    assert mc.check(text, "W", **NEURON).ok
    assert mc.check("sum(r) where r = tanh(W*x + b)", "x", **NEURON).ok
    # numerically, against the definition evaluated by hand
    rng = np.random.default_rng(0)
    vals = {k: rng.standard_normal(s) for k, s in NEURON.items()}
    fn = mc.lambdify(mc.parse("q = W*x + b; q'*q", **NEURON))
    q = vals["W"] @ vals["x"] + vals["b"]
    assert np.isclose(fn(**vals), q @ q)


# ---------------------------------------------------------------------------
# A defined name is not a variable


def test_a_defined_name_is_not_a_variable():
    f = mc.parse("u = W*x + b; sum(max(0, u))")
    assert "u" not in f.variables


@pytest.mark.parametrize("call", [mc.diff, mc.grad, mc.jacobian])
def test_differentiating_by_a_defined_name_says_it_is_defined(call):
    for f in ["u = W*x + b; sum(max(0, u))", mc.parse("sum(max(0, u)) where u = W*x + b")]:
        with pytest.raises(mc.DiffError) as info:
            call(f, "u")
        message = str(info.value)
        assert "defined" in message and "not a variable" in message
        assert "u = W*x + b" in message  # the definition, as written
        assert "W" in message  # the variables one can differentiate by


def test_a_name_neither_defined_nor_a_variable_is_the_usual_diff_error():
    with pytest.raises(mc.DiffError) as info:
        mc.diff("u = W*x + b; sum(u)", "z")
    assert "neither in the expression nor declared" in str(info.value)


# ---------------------------------------------------------------------------
# Definitions are checked for shapes like everything else


def test_a_shape_error_through_a_definition_names_the_use():
    with pytest.raises(mc.ShapeError) as info:
        mc.parse("u = W*x; u + y", W=("m", "n"), x=("n",), y=("k",))
    message = str(info.value)
    assert "u (a column vector of length m)" in message
    assert "line 1, column 12" in message  # the operator after the use


def test_a_shape_error_inside_a_definition_points_into_it():
    with pytest.raises(mc.ShapeError) as info:
        mc.parse("sum(u)\nwhere u = A*x", A=(2, 3), x=(2,))
    assert "line 2, column 12" in str(info.value)


def test_an_unused_definition_is_checked_too():
    with pytest.raises(mc.ShapeError):
        mc.parse("u = A*x; sum(y)", A=(2, 3), x=(2,), y=(3,))
    f = mc.parse("u = A*x; sum(y)", A=(2, 3), x=(3,), y=(3,))
    assert f == mc.parse("sum(y)", y=(3,))


def test_a_shape_given_for_a_defined_name_must_be_its_shape():
    assert mc.parse("u = W*x + b; sum(u)", u=(2,), **NEURON) == mc.parse("sum(W*x + b)", **NEURON)
    with pytest.raises(mc.ShapeError) as info:
        mc.parse("u = W*x + b; sum(u)", u=(3,), **NEURON)
    assert "u is declared with shape" in str(info.value)


# ---------------------------------------------------------------------------
# Misuse is a ParseError with a caret (line and column of the offending definition)


def test_self_reference_has_a_caret_at_the_definition():
    err = parse_error("u = u + 1; u")
    assert "u is defined in terms of itself" in err.message and caret(err) == (1, 1)
    err = parse_error("sum(v) where\n  u = W*x\n  v = tanh(v) + u")
    assert caret(err) == (3, 3) and "v is defined in terms of itself" in err.message


def test_self_reference_through_others_names_the_cycle():
    err = parse_error("sum(u)\nwhere\n  u = v + 1\n  v = 2*w\n  w = u'*u")
    assert caret(err) == (3, 3)
    assert "u → v → w → u" in err.message
    err = parse_error("v = u; u = v; u")  # a cycle, though u is also used before it is defined
    assert caret(err) == (1, 1) and "v is defined in terms of itself (v → u → v)" in err.message


def test_use_before_definition_and_defined_twice():
    err = parse_error("u = v + 1\nv = x\nsum(u)")
    assert caret(err) == (1, 5) and "used before its definition at line 2, column 1" in err.message
    err = parse_error("u = x; u = 2*x; sum(u)")
    assert caret(err) == (1, 8) and "defined twice (first at column 1)" in err.message
    err = parse_error("sum(u) where u = x; v = x\n  u = 2*x")
    assert caret(err) == (2, 3)


def test_a_line_starting_with_minus_continues_and_the_error_says_so():
    assert mc.parse("u = W*x + b\n-sum(v)\nsum(u)") == mc.parse("sum(W*x + b - sum(v))")
    err = parse_error("u = W*x + b\n-sum(u)\nsum(u)")
    assert "defined in terms of itself" in err.message and "starts with '-'" in err.message
    err = parse_error("u = W*x + b\n-x")
    assert "need an expression after them" in err.message and "starts with '-'" in err.message
    assert mc.parse("u = W*x + b;\n-sum(u)") == mc.parse("-sum(W*x + b)")


def test_reserved_names_and_where_cannot_be_defined():
    for text, column in [("I = x; I", 1), ("sum(x) where eye = x", 14),
                         ("x where where = 1", 9)]:
        err = parse_error(text)
        assert caret(err) == (1, column), (text, err)
    assert "'where' is a keyword" in parse_error("where + 1").message


def test_syntax_errors_of_definitions_have_carets():
    cases = [
        ("x + y = 3", (1, 7), "'=' defines a name"),
        ("x; y", (1, 2), "only definitions"),
        ("u = W*x + b", (1, 12), "need an expression after them"),
        ("u = x;\n", (1, 7), "expected a definition or the expression after ';'"),
        ("sum(u) where", (1, 13), "expected a definition"),
        ("sum(u) where u", (1, 15), "expected '=' after 'u'"),
        ("sum(u)\nwhere\n  u = x\n  2 = y", (4, 3), "expected a definition"),
        ("x\ny", (2, 1), "missing operator between 'x' and 'y'"),
    ]
    for text, where, words in cases:
        err = parse_error(text)
        assert caret(err) == where and words in err.message, (text, caret(err), err.message)
        assert "^" in str(err)


# ---------------------------------------------------------------------------
# Bounded: no input makes the parser take long or raise anything else


def test_an_exponential_chain_of_definitions_is_refused_at_once():
    text = "t1 = x + x\n" + "".join(f"t{k} = t{k - 1} + t{k - 1}\n" for k in range(2, 60)) + "t59"
    start = time.process_time()
    err = parse_error(text)
    assert time.process_time() - start < 2
    assert "too large once its definitions are substituted" in err.message


def test_nesting_through_definitions_counts_toward_the_depth_limit():
    text = "".join(f"u{k} = exp(u{k - 1}); " for k in range(1, P.MAX_DEPTH + 5)).replace(
        "exp(u0)", "exp(x)") + f"u{P.MAX_DEPTH + 4}"
    assert "nested too deeply" in parse_error(text).message
    shallow = "".join(f"u{k} = exp(u{k - 1}); " for k in range(1, 20)).replace("exp(u0)", "exp(x)")
    assert mc.parse(shallow + "u19") == mc.parse("exp(" * 19 + "x" + ")" * 19)


STATEMENT_TOKENS = ["u", "v", "x", "A", "W", "=", "; ", "\n", " where ", "+", "-", "*", "'",
                    "(", ")", "2", "tanh(", "sum(", ",", " ", "u = ", "v = ", "; u = ",
                    " where u = ", "\n  v = "]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(STATEMENT_TOKENS), max_size=24))
def test_random_statements_raise_only_mathcalc_errors(tokens):
    text = "".join(tokens)
    try:
        mc.parse(text)
    except mc.ParseError as err:
        lines = text.split("\n")
        assert 1 <= err.line <= len(lines) and 1 <= err.column <= len(lines[err.line - 1]) + 1
        str(err)
    except mc.MathcalcError as err:
        str(err)


# ---------------------------------------------------------------------------
# The command line


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mathcalc", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_reads_definitions():
    done = run_cli("diff", "u = W*x + b; sum(max(0, u))", "--wrt", "W")
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()[0]  # the result, then its shape
    assert mc.equivalent(mc.parse(printed), mc.diff("sum(max(0, W*x + b))", "W"))
    bad = run_cli("diff", "u = W*x + b; sum(max(0, u))", "--wrt", "u")
    assert bad.returncode == 2
    assert "defined" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("diff", "u = u + 1; u", "--wrt", "x")
    assert bad.returncode == 2 and "^" in bad.stderr and "Traceback" not in bad.stderr
