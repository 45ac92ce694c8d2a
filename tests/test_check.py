"""check (finite differences) and equivalent, including the checker catching planted bugs."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import mathcalc as mc
from mathcalc import expr as E
from mathcalc import rules
from mathcalc.api import diff  # mc.diff is shadowed by the mathcalc.diff module (reported)
from mathcalc.checking import CheckResult, analyse, check, equivalent
from mathcalc.errors import ShapeError
from mathcalc.functions import FUNCTIONS, U
from mathcalc.numeric import lambdify


@pytest.mark.parametrize("text, wrt, shapes", [
    ("x'*A*x", "x", {}),
    ("x'*A*x", "A", {}),
    ("sum(max(0, W*x + b))", "W", {"W": ("m", "n"), "x": ("n",), "b": ("m",)}),
    ("norm2(X - U*V')^2", "U", {"X": ("m", "n"), "U": ("m", "k"), "V": ("n", "k")}),
    ("logdet(X)", "X", {}),
    ("tr(inv(A)*B)", "A", {"A": ("n", "n"), "B": ("n", "n")}),
    ("sum(log(x))", "x", {}),
    ("logsumexp(W*x)", "x", {"W": ("m", "n"), "x": ("n",)}),
    ("softmax(x)", "x", {}),
    ("sigmoid(W*x)", "W", {"W": ("m", "n"), "x": ("n",)}),
])
def test_correct_derivatives_pass(text, wrt, shapes):
    result = check(mc.parse(text, **shapes), wrt)
    assert isinstance(result, CheckResult)
    assert result.ok, result.message
    assert bool(result) and result.max_rel_error < 1e-5
    assert result.max_abs_error >= 0


def test_point_binds_distinct_sizes():
    f = mc.parse("u'*W*x", u=("m",), W=("m", "n"), x=("n",))
    result = check(f, "W")
    assert result.ok
    m, n = result.point["W"].shape
    assert m != n and result.point["u"].shape == (m,) and result.point["x"].shape == (n,)


def test_values_fix_the_point():
    f = mc.parse("x'*A*x", x=("n",), A=("n", "n"))
    x0 = np.array([1.0, 2.0, 3.0, 4.0])
    result = check(f, "x", values={"x": x0})
    assert result.ok
    np.testing.assert_array_equal(result.point["x"], x0)
    assert result.point["A"].shape == (4, 4)


def test_values_for_unknown_variable_is_an_error():
    with pytest.raises(ShapeError, match="'z'"):
        check(mc.parse("x'*x"), "x", values={"z": np.ones(2)})


def test_second_order_checks_the_hessian():
    result = check(mc.parse("sum(exp(A*x))", A=("m", "n"), x=("n",)), "x", order=2)
    assert result.ok, result.message


def test_large_variables_are_checked_in_random_directions():
    f = mc.parse("sum(tanh(W*x))", W=(20, 30), x=(30,))
    result = check(f, "W")
    assert result.mode == "directions" and result.ok, result.message


# ---------------------------------------------------------------------------
# The checker catches planted bugs (a checker that always says OK proves nothing).


def test_planted_wrong_function_derivative_is_caught(monkeypatch):
    # sin' = cos; plant sin' = -cos.
    monkeypatch.setattr(FUNCTIONS["sin"], "_derivative", -sympy.cos(U))
    result = check(mc.parse("sum(sin(W*x))", W=("m", "n"), x=("n",)), "x")
    assert not result.ok and result.max_rel_error > 0.1
    assert "MISMATCH" in result.message


def test_planted_missing_transpose_is_caught_even_for_symmetric_domains(monkeypatch):
    # d logdet(X) = inv(X)'; plant inv(X). Symmetric points would hide it.
    right = rules.RULES[E.LogDet]

    def wrong(node, d, wrt):
        return E.transpose(right(node, d, wrt)) if wrt.shape == node.arg.shape else right(node, d, wrt)

    monkeypatch.setitem(rules.RULES, E.LogDet, wrong)
    result = check(mc.parse("logdet(X)", X=("n", "n")), "X")
    assert not result.ok, result.message


def test_wrong_hand_formula_is_caught_by_finite_differences():
    # The derivative of x'*A*x is (A + A')*x, not 2*A*x (A is not symmetric).
    f = mc.parse("x'*A*x")
    res_right = check(f, "x")
    fn_wrong = lambdify(mc.parse("2*A*x", **f.variables))
    p = res_right.point
    assert not np.allclose(fn_wrong(**p), lambdify(diff(f, "x"))(**p))


# ---------------------------------------------------------------------------
# Domain selection


def _in_domain(text, wrt, **shapes):
    result = check(mc.parse(text, **shapes), wrt)
    assert result.ok, result.message
    return result.point


def test_domain_logdet_is_symmetric_positive_definite():
    X = _in_domain("logdet(X)", "X")["X"]
    assert np.allclose(X, X.T) and np.all(np.linalg.eigvalsh(X) > 0)


def test_domain_inv_is_positive_definite():
    A = _in_domain("sum(inv(A)*x)", "x", A=("n", "n"), x=("n",))["A"]
    assert np.allclose(A, A.T) and np.all(np.linalg.eigvalsh(A) > 0)


def test_domain_log_is_positive():
    assert np.all(_in_domain("sum(log(x))", "x")["x"] > 0)


def test_domain_sqrt_is_positive():
    assert np.all(_in_domain("sum(sqrt(W*x))", "x", W=("m", "n"), x=("n",))["x"] > 0)


def test_domain_fractional_power_is_positive():
    assert np.all(_in_domain("sum(x .^ 1.5)", "x")["x"] > 0)


def test_domain_keeps_away_from_kinks():
    shapes = {"W": ("m", "n"), "x": ("n",), "b": ("m",)}
    p = _in_domain("sum(max(0, W*x + b))", "W", **shapes)
    z = p["W"] @ p["x"] + p["b"]
    assert np.min(np.abs(z)) > 1e-3
    # and the point is informative: some unit is active
    assert np.any(z > 0)


def test_analyse_reads_the_tree():
    f = mc.parse("logdet(X) + sum(log(y)) + abs(a)", X=("n", "n"), y=("n",), a=())
    dom = analyse(f.node)
    assert "X" in dom.spd and "y" in dom.positive and len(dom.kinks) == 1


# ---------------------------------------------------------------------------
# equivalent


def test_equivalent_pairs():
    assert equivalent("x'*A*x", "x'*A'*x", x=("n",), A=("n", "n"))
    assert equivalent("(A + B)*x", "A*x + B*x")
    assert equivalent("tr(A*B)", "tr(B*A)", A=("m", "n"), B=("n", "m"))
    assert equivalent("sum(max(0, x))", "sum(relu(x))")
    f = mc.parse("x'*A*x")
    assert equivalent(diff(f, "x"), "(A + A')*x")  # text parsed with the Expr's shapes
    assert equivalent("(A + A')*x", diff(f, "x"))


def test_inequivalent_pairs():
    assert not equivalent("A*x", "A'*x", A=("n", "n"), x=("n",))
    assert not equivalent("A*B", "B*A", A=("n", "n"), B=("n", "n"))
    assert not equivalent("x'*A*x", "2*x'*A*x")


def test_missing_transpose_is_not_equivalent_under_inv():
    # inv(X) and inv(X)' agree at symmetric points only.
    assert not equivalent("inv(X)", "inv(X)'", X=("n", "n"))


def test_different_shapes_are_not_equivalent_and_do_not_raise():
    assert equivalent("x", "x'*x", x=("n",)) is False
    assert equivalent("A", "A'", A=("m", "n")) is False
    assert equivalent(mc.parse("x*x'"), mc.parse("x'*x")) is False


def test_same_node_is_equivalent_without_evaluation():
    f = mc.parse("sum(inv(X))", X=("n", "n"))
    assert equivalent(f, f)


def test_equivalent_with_values():
    assert equivalent("x'*x", "norm2(x)^2", values={"x": np.array([1.0, -2.0, 3.0])})
