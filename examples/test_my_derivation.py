"""Checking your own hand derivations in pytest.

``mathcalc.testing.assert_derivative(f, wrt, expected, **shapes)`` passes when
``expected`` is the derivative of ``f`` with respect to ``wrt`` (symbolically,
or numerically at random in-domain points) and otherwise raises an
AssertionError that shows both sides, the largest difference and the point.
Installing mathcalc also registers a pytest plugin with the fixture
``derivative_checker``, the same function.

Run with `.venv/bin/python -m pytest examples/test_my_derivation.py -v`.
"""

import pytest

from mathcalc.testing import assert_derivative


def test_least_squares_gradient():
    # d/dw |X*w - y|^2 = 2*X'*(X*w - y)
    assert_derivative("norm2(X*w - y)^2", "w", "2*X'*(X*w - y)")


def test_logdet_gradient_with_declared_shapes():
    # d/dS logdet(S) = inv(S)' (= inv(S) for a symmetric S, but S is any matrix here)
    assert_derivative("logdet(S)", "S", "inv(S)'", S=("n", "n"))


@pytest.mark.xfail(strict=True, reason="deliberately wrong: d/dx x'*A*x is (A + A')*x, "
                                       "2*A*x only when A is symmetric")
def test_quadratic_form_wrong():
    assert_derivative("x'*A*x", "x", "2*A*x")


def test_with_the_fixture(derivative_checker):
    # The plugin's fixture is assert_derivative itself: no import needed.
    derivative_checker("sum(max(0, W*x + b))", "W", "step(W*x + b)*x'", b=("m",))


def test_the_message_shows_both_sides():
    with pytest.raises(AssertionError) as info:
        assert_derivative("x'*A*x", "x", "2*A*x")
    message = str(info.value)
    assert "derived: (A + A')*x" in message
    assert "claimed: 2*A*x" in message
