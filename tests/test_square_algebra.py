"""Square-matrix algebra in the whiteboard forms (issue 10, item 2).

Each identity holds only where the dimensions prove that the factors are
square (an ``(n, n)`` factor); each is asserted symbolically (the printed
form), numerically (the simplified node against the unsimplified one at
random points, and derivatives against central finite differences at
distinct sizes), and shown not to fire on rectangular factors, where it
would be false.
"""

from __future__ import annotations

import numpy as np
import pytest

import mathcalc as mc
from mathcalc.api import diff
from mathcalc.checking import check
from mathcalc.lambdify import lambdify
from mathcalc.simplify import simplify

SQ = dict(A=("n", "n"), B=("n", "n"), X=("n", "n"))


def _invertible(rng, n):
    return rng.standard_normal((n, n)) + n * np.eye(n)


def same_values(a: mc.Expr, b: mc.Expr, sizes=(3, 4)):
    """a and b agree at random invertible points for each size of n (m, k other sizes)."""
    rng = np.random.default_rng(7)
    fa, fb = lambdify(a), lambdify(b)
    for n in sizes:
        dims = {"n": n, "m": n + 2, "k": n + 3}
        point = {name: (_invertible(rng, dims[s[0]]) if len(s) == 2 and s[0] == s[1]
                        else rng.standard_normal(tuple(dims[d] for d in s)))
                 for name, s in a.variables.items()}
        np.testing.assert_allclose(fa(**point), fb(**point), rtol=1e-9, atol=1e-12)


def simplified(text, **shapes) -> str:
    f = mc.parse(text, **shapes)
    s = mc.Expr(simplify(f.node), f.variables)
    same_values(s, f)
    return str(s)


@pytest.mark.parametrize("text, printed", [
    ("det(X')", "det(X)"),
    ("det(inv(X))", "1/det(X)"),
    ("logdet(X')", "logdet(X)"),
    ("det(X*X*X)", "det(X)^3"),
    ("det(X'*X)", "det(X)^2"),
    ("tr(A)*tr(A)", "tr(A)^2"),
    ("X*inv(X'*X)", "inv(X)'"),
    ("inv(A*B)*A", "inv(B)"),
    ("B*inv(A*B)", "inv(A)"),
])
def test_square_identities(text, printed):
    assert simplified(text, **SQ) == printed


def test_det_of_a_product_is_the_product_of_dets_where_that_is_shorter():
    # det(A*B) = det(A)*det(B) is known (it shortens det(X*X*X)) but not forced on
    # a product of different factors, where the split form is longer.
    assert simplified("det(A*B)", **SQ) == "det(A*B)"
    assert mc.equivalent("det(A*B)", "det(A)*det(B)", **SQ)


@pytest.mark.parametrize("text, shapes", [
    ("X*inv(X'*X)", dict(X=("m", "n"))),  # m != n: X'*X is not inv(X)*inv(X')
    ("inv(A*B)*A", dict(A=("n", "m"), B=("m", "n"))),
    ("det(X'*X)", dict(X=("m", "n"))),  # det(X'*X) != det(X)^2: det(X) does not exist
])
def test_rectangular_factors_are_never_split(text, shapes):
    out = simplified(text, **shapes)
    assert "inv(X)" not in out and "det(X)^" not in out and "inv(B)" not in out
    assert out == str(mc.parse(text, **shapes))


def test_derivative_of_det_of_a_product_of_squares():
    # Cookbook (49): d det(A X B)/dX = det(A X B) inv(X)' for square A, X, B.
    f = mc.parse("det(A*X*B)", **SQ)
    g = diff(f, "X")
    assert str(g) == "det(A*X*B)*inv(X)'"
    assert check(f, "X").ok
    assert mc.equivalent(g, "det(A*X*B)*(B*inv(A*X*B)*A)'")


def test_derivative_of_det_of_a_rectangular_product_keeps_the_general_form():
    shapes = dict(A=("m", "k"), X=("k", "p"), B=("p", "m"))
    f = mc.parse("det(A*X*B)", **shapes)
    g = diff(f, "X")
    assert "inv(X)" not in str(g) and "inv(A*X*B)" in str(g)
    assert check(f, "X").ok


def test_gradient_of_logdet_of_a_gram_matrix():
    # d logdet(X'X)/dX = 2 X inv(X'X), which for square X is 2 inv(X)'.
    f = mc.parse("logdet(X'*X)", X=("n", "n"))
    g = diff(f, "X")
    assert str(g) == "2*inv(X)'"
    assert check(f, "X").ok
    rect = diff(mc.parse("logdet(X'*X)", X=("m", "n")), "X")
    assert str(rect) == "2*X*inv(X'*X)"
    assert check(mc.parse("logdet(X'*X)", X=("m", "n")), "X").ok


def test_derivative_of_a_power_of_det():
    f = mc.parse("det(X*X*X)", X=("n", "n"))
    g = diff(f, "X")
    assert str(g) == "3*det(X)^3*inv(X)'"
    assert check(f, "X").ok


def test_square_of_a_trace():
    f = mc.parse("tr(A)*tr(A)", A=("n", "n"))
    assert str(diff(f, "A")) == "2*tr(A)*eye(n)"
    assert check(f, "A").ok
