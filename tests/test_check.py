"""check (finite differences) and equivalent, including the checker catching planted bugs."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc import rules
from mathcalc.api import diff  # mc.diff is shadowed by the mathcalc.diff module (reported)
from mathcalc.checking import CheckResult, analyse, check, compare, equivalent, pair
from mathcalc.errors import ShapeError
from mathcalc.functions import FUNCTIONS, U
from mathcalc.lambdify import lambdify
from mathcalc.testing import assert_derivative


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
    # d logdet(X) = tr(inv(X)·dX), so ∂/∂X = inv(X)'; plant tr(inv(X)'·dX), i.e.
    # inv(X). Symmetric points would hide it. (The rule itself is planted: diff
    # calls it with its own placeholders, whatever the variable's shape.)
    def wrong(node, d, wrt):
        x = wrt.labels
        return E.product([(E.inv(node.arg), ("a", "b")), (d(node.arg), ("a", "b") + x)], x)

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


# ---------------------------------------------------------------------------
# More domain selection: det, and the kinks of min/abs/relu/step/sign


def test_domain_det_is_symmetric_positive_definite():
    assert analyse(mc.parse("det(X)", X=("n", "n")).node).spd == {"X"}
    X = _in_domain("det(X)", "X")["X"]
    assert np.allclose(X, X.T) and np.all(np.linalg.eigvalsh(X) > 0)


# 3000 standard normal entries: a draw has one within 1e-3 of the kink with
# probability about 0.9, so a point kept away from every kink was drawn again.
_MANY = 3000


@pytest.mark.parametrize("text, kink", [
    ("sum(min(x, y))", lambda p: p["x"] - p["y"]),
    ("sum(abs(x))", lambda p: p["x"]),
    ("sum(relu(x))", lambda p: p["x"]),
    ("sum(step(x) .* x)", lambda p: p["x"]),
    ("sum(sign(x) .* x)", lambda p: p["x"]),
])
def test_domain_keeps_away_from_each_kink(text, kink):
    f = mc.parse(text, x=(_MANY,), y=(_MANY,)) if "y" in text else mc.parse(text, x=(_MANY,))
    assert len(analyse(f.node).kinks) == 1
    result = check(f, "x")
    assert result.ok, result.message
    assert np.min(np.abs(kink(result.point))) >= 1e-3
    assert "kink" not in result.message  # no note: a clean point was found
    # A plain standard normal draw of that size is not clean (what the redraws avoid).
    plain = np.random.default_rng(0).standard_normal((2, _MANY))
    assert np.min(np.abs(plain[0] - plain[1] if "y" in text else plain[0])) < 1e-3


# ---------------------------------------------------------------------------
# No point where the values are finite: a failed check, not an exception


@pytest.mark.parametrize("text, wrt", [("sum(log(x - 3))", "x"), ("c ./ 0", "c"),
                                       ("sqrt(0 - 2)*x", "x")])
def test_check_without_a_finite_point_fails_cleanly(text, wrt):
    result = check(mc.parse(text), wrt)
    assert isinstance(result, CheckResult) and not result.ok and not bool(result)
    assert result.max_rel_error == float("inf") and result.max_abs_error == float("inf")
    assert "no point was found where f and its derivative are finite" in result.message
    assert "60 random draws" in result.message


def test_check_without_a_finite_point_at_given_values():
    result = check(mc.parse("sum(log(x))"), "x", values={"x": -np.ones(3)})
    assert not result.ok and result.max_rel_error == float("inf")
    assert "only the given values were tried" in result.message


def test_check_without_a_finite_point_of_higher_order():
    # The Hessian of sum(sqrt(x - 9)) is NaN wherever x < 9 (x is drawn in [0.5, 2]).
    result = check(mc.parse("sum(sqrt(x - 9))"), "x", order=2)
    assert not result.ok and "derivatives of order 1 and 2" in result.message


def test_equivalent_without_a_finite_point_is_an_error_with_a_reason():
    # Neither True nor False would be a finding (issue 10): equivalent says it cannot decide.
    with pytest.raises(mc.MathcalcError, match="cannot decide .* no point was found where "
                                               "both expressions are finite"):
        equivalent("sum(log(x - 100))", "sum(log(x - 100)) + 1")
    a, b = pair("sum(log(x - 100))", "sum(log(x - 100)) + 1", {})
    result = compare(a, b)
    assert not result.equal and not result.usable and result.point is None
    assert "no point was found where both expressions are finite" in result.reason
    # Structurally equal needs no point.
    assert equivalent("sum(log(x - 100))", "sum(log(x - 100))")


def test_assert_derivative_without_a_finite_point_says_why():
    with pytest.raises(AssertionError, match="no point was found where both expressions"):
        assert_derivative("sum(sqrt(x - 100))", "x", "1 ./ sqrt(x - 100)")


# ---------------------------------------------------------------------------
# equivalent's tolerance is relative at every scale


def test_equivalent_is_relative_at_small_scales():
    assert not equivalent("1e-9*x", "2e-9*x")
    assert not equivalent("1e-8*x", "zeros(n)", x=("n",))
    assert not equivalent("1e-9*inv(X)", "1e-9*inv(X)'", X=("n", "n"))
    assert equivalent("1e-9*x'*A*x", "1e-9*x'*A'*x")
    assert equivalent("1e-9*(x + x)", "2e-9*x")


def test_equivalent_forgives_round_off_of_cancelling_terms():
    # About 1e-16 numerically (times the coefficient), exactly 0 in exact arithmetic.
    assert equivalent("x'*(A - A')*x", "0")
    assert equivalent("1e6*x'*(A - A')*x", "0")
    assert equivalent("1e-9*x'*(A - A')*x", "0")
    assert equivalent("inv(X)*X - eye(n)", "zeros(n, n)", X=("n", "n"))
    assert equivalent("1e6*(inv(X)*X - eye(n))", "zeros(n, n)", X=("n", "n"))
    assert equivalent("sin(x) .^ 2 + cos(x) .^ 2 - 1", "zeros(n)", x=("n",))
    assert equivalent("logdet(X*X) - 2*logdet(X)", "0", X=("n", "n"))


def test_equivalent_forgives_round_off_amplified_by_ill_conditioning():
    # inv(X)*X - I is about cond(X) ε, not ε: cond(X) = 1e8 here.
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))
    X = q @ np.diag([1.0, 1.0, 1.0, 1e-8]) @ q.T
    assert equivalent("inv(X)*X - eye(n)", "zeros(n, n)", values={"X": X}, X=("n", "n"))
    assert equivalent("inv(X)*X*y", "y", values={"X": X}, X=("n", "n"), y=("n",))


def test_round_off_of_large_intermediates_does_not_excuse_small_differences():
    # A + I and A + A' are of size 1, the values of size 1e-9 (or 1e-12): the
    # difference is far above what round-off can leave after scaling by 1e-9.
    for c in ("1e-9", "1e-12"):
        assert not equivalent(f"{c}*(A + eye(n))*x", f"{c}*(A + A')*x", A=("n", "n"), x=("n",))
    assert not equivalent("1e-10*x'*(A - A')*x + 1e-12", "0")


def test_small_values_of_a_deep_expression_are_compared_relatively():
    # The gradient of a 12-layer tanh network: products of many factors, small
    # but not cancelled, so a relative error of 1e-6 is an error.
    text, shapes = "x", {"x": ("n",)}
    for i in range(12):
        text = f"tanh(W{i}*{text} + b{i})"
        shapes |= {f"W{i}": ("n", "n"), f"b{i}": ("n",)}
    g = diff(mc.parse(f"sum({text})", **shapes), "W0")
    assert equivalent(g, mc.Expr(E.scale(1 + 1e-12, g.node), g.variables))
    assert not equivalent(g, mc.Expr(E.scale(1 + 1e-6, g.node), g.variables))


def test_assert_derivative_is_relative_at_small_scales():
    with pytest.raises(AssertionError, match="largest difference"):
        assert_derivative("1e-9*x'*x", "x", "zeros(n)")
    with pytest.raises(AssertionError, match="largest difference"):
        assert_derivative("1e-9*x'*A*x", "x", "1e-9*(A + eye(n))*x")
    assert_derivative("1e-9*x'*A*x", "x", "1e-9*(A + A')*x")
    assert_derivative("1e-9*x'*x", "x", "2e-9*x")


# ---------------------------------------------------------------------------
# "directions" mode: a step scaled to each entry


def test_directions_steps_are_scaled_to_each_entry():
    # One entry of 1e6 among entries near 1: a single step of ε^(1/3)·1e6 ≈ 6
    # would push the small entries out of log's domain (or far past its curvature).
    rng = np.random.default_rng(1)
    f = mc.parse("sum(log(x))", x=(200,))
    for big in (1e4, 1e6):
        x0 = rng.uniform(0.5, 2.0, 200)
        x0[0] = big
        result = check(f, "x", values={"x": x0})
        assert result.mode == "directions" and result.ok, result.message


def test_directions_mode_catches_a_planted_bug(monkeypatch):
    # log' = 1/x; plant 1/x²: wrong everywhere except at 1.
    monkeypatch.setattr(FUNCTIONS["log"], "_derivative", U ** -2)
    result = check(mc.parse("sum(log(x))", x=(200,)), "x")
    assert result.mode == "directions" and not result.ok and result.max_rel_error > 0.1
