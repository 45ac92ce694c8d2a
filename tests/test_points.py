"""Points that cannot mislead (issue 10, item 5).

check, equivalent and assert_derivative bind the dimensions so that the
expression is defined (X'*X under logdet needs X's rows >= its columns),
draw points where every inv/det/logdet argument is well conditioned, and
never answer True or ok from points where values are not finite or
round-off swamps the comparison: where no point is usable, check is not ok
and says why, and equivalent raises a MathcalcError.
"""

from __future__ import annotations

import numpy as np
import pytest

import mathcalc as mc
from mathcalc.api import diff
from mathcalc.checking import COND_LIMIT, check, compare, equivalent, pair
from mathcalc.testing import assert_derivative


# ---------------------------------------------------------------------------
# the two cases of the issue


def test_gram_gradient_is_not_equivalent_to_itself_plus_one():
    g = diff(mc.parse("logdet(X'*X)", X=("m", "n")), "X")
    assert str(g) == "2*X*inv(X'*X)"
    assert equivalent(g, str(g)) is True
    assert equivalent(g, str(g) + " + 1") is False
    assert equivalent(g, "2*X*inv(X'*X)'") is True  # X'*X is symmetric
    with pytest.raises(AssertionError, match="largest difference"):
        assert_derivative("logdet(X'*X)", "X", str(g) + " + 1", X=("m", "n"))
    assert_derivative("logdet(X'*X)", "X", "2*X*inv(X'*X)", X=("m", "n"))


def test_gram_gradient_checks_with_finite_errors_at_a_tall_binding():
    result = check("logdet(X'*X)", "X", X=("m", "n"))
    assert result.ok and np.isfinite(result.max_rel_error), result.message
    m, n = result.point["X"].shape
    assert m > n
    assert np.linalg.cond(result.point["X"].T @ result.point["X"]) < COND_LIMIT


def test_sign_off_the_diagonal_gives_no_wrong_verdict():
    h = diff(mc.parse("norm1(diag(z .^ 3))"), "z")
    assert "diag" not in str(h)  # no sign of the zeros off the diagonal is left
    assert equivalent(h, "3*sign(z) .* z .^ 2") is True
    assert equivalent(h, str(h) + " + 1") is False
    # The unsimplified form, sign applied to the whole diagonal matrix, is told apart too.
    raw = "3*(z .^ 2 .* diag(sign(diag(z .^ 3))))"
    assert equivalent(raw, "3*sign(z) .* z .^ 2") is True
    assert equivalent(raw, raw + " + 1") is False
    assert check("norm1(diag(z .^ 3))", "z").ok


# ---------------------------------------------------------------------------
# singular and near-singular arguments


def test_everywhere_singular_arguments_give_no_verdict():
    # x*x' has rank one: inv of it is huge or NaN at every point, never well conditioned.
    with pytest.raises(mc.MathcalcError, match="cannot decide.*well conditioned"):
        equivalent("inv(x*x')", "inv(x*x') + ones(n, n)")
    with pytest.raises(mc.MathcalcError, match="cannot decide"):
        equivalent("logdet(x*x')", "logdet(x*x') + 1")
    result = check("sum(inv(x*x' + 1e-12*eye(n)))", "x")
    assert not result.ok and "no point was found" in result.message
    with pytest.raises(AssertionError, match="no point was found"):
        assert_derivative("logdet(x*x')", "x", "2*x/(x'*x)")


def test_wide_gram_matrices_are_skipped_for_tall_ones():
    # The first binding of (m, n) is (2, 3): X'*X is 3x3 of rank 2. Another is tried.
    a, b = pair("inv(X'*X)", "inv(X'*X) + 1e-3*ones(n, n)", {"X": ("m", "n")})
    result = compare(a, b)
    assert result.usable and not result.equal
    m, n = result.point["X"].shape
    assert m >= n


def test_given_values_are_used_even_when_ill_conditioned():
    # The caller's point is the caller's choice: it is not redrawn.
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))
    X = q @ np.diag([1.0, 1.0, 1.0, 1e-9]) @ q.T
    assert equivalent("inv(X)*X*y", "y", values={"X": X}, X=("n", "n"), y=("n",))


def test_check_order_two_never_leaks_linalg_errors():
    for text in ("logdet(X'*X)/a", "sum(inv(X'*X))", "det(X'*X)"):
        result = check(text, "X", order=2, X=("m", "n"), a=())
        assert result.ok, (text, result.message)


# ---------------------------------------------------------------------------
# round-off that swamps the comparison


def test_check_does_not_pass_where_round_off_swamps_the_derivative():
    # Values near 1e20: every difference quotient is round-off (0 or ~1e9), so a
    # wrong derivative would pass as well as a right one.
    result = check("1e20 + x'*x", "x")
    assert not result.ok and "round-off" in result.message
    assert not result.usable


def test_small_values_are_compared_relatively_by_check():
    # 1e-9*x'*x: the round-off of its values is about 1e-25, far below the derivative.
    assert check("1e-9*x'*x", "x").ok
    assert check("1e-12*sum(exp(x))", "x").ok


def test_a_wrong_small_derivative_is_caught_by_check(monkeypatch):
    # A planted bug (the chain rule of element-wise functions doubled) at the scale of
    # 1e-9: the old absolute round-off floor let it pass; the relative one does not.
    from mathcalc import nodes as E
    from mathcalc import rules

    assert check("1e-9*sum(exp(x))", "x").ok
    right = rules.RULES[E.Apply]
    monkeypatch.setitem(rules.RULES, E.Apply, lambda n, d, w: E.scale(2, right(n, d, w)))
    result = check("1e-9*sum(exp(x))", "x")
    assert not result.ok and result.usable and "MISMATCH" in result.message


def test_bindings_are_searched_for_a_chain_of_gram_factors():
    # Y'*X'*X*Y is k x k of rank min(m, n, k): only bindings with k smallest are usable.
    shapes = dict(X=("m", "n"), Y=("n", "k"))
    result = check("logdet(Y'*X'*X*Y)", "Y", **shapes)
    assert result.ok, result.message
    (m, n), (_, k) = result.point["X"].shape, result.point["Y"].shape
    assert k <= min(m, n)
    g = diff(mc.parse("logdet(Y'*X'*X*Y)", **shapes), "X")
    assert equivalent(g, str(g)) and not equivalent(g, str(g) + " + 1e-3")
