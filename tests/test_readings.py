"""Readings of undeclared names (SPEC 2, "A reading never guesses silently").

The naming convention only breaks ties that usage leaves open, and never
makes an operation degenerate: a transposed name, or one added to or
subtracted from a vector or matrix, is not a scalar; a capital is never a
scalar because of usage. Each row of the SPEC's table is one test here,
asserted on the shapes and, where the table gives one, on the derivative
(symbolically and against finite differences at distinct sizes).
"""

from __future__ import annotations

import numpy as np
import pytest

import mathcalc as mc
from mathcalc.api import diff  # mc.diff is shadowed by the mathcalc.diff module
from mathcalc.checking import check, equivalent


def test_transposed_name_is_a_vector_like_x():
    f = mc.parse("x'*A*x + c'*x")
    assert f.variables == {"x": ("n",), "A": ("n", "n"), "c": ("n",)}
    assert f.shape == ()
    g = diff(f, "x")
    assert equivalent(g, "(A + A')*x + c")
    assert str(g) == "c + (A + A')*x" or str(g) == "(A + A')*x + c"
    assert check(f, "x").ok
    # the degenerate reading the convention alone gave: a matrix c*eye(n) + …
    assert g.shape == ("n",)


def test_name_subtracted_from_a_vector_is_a_vector_of_its_length():
    f = mc.parse("norm2(A*x - b)^2")
    assert f.variables == {"A": ("m", "n"), "x": ("n",), "b": ("m",)}
    g = diff(f, "x")
    assert equivalent(g, "2*A'*(A*x - b)")
    assert check(f, "x").ok and check(f, "b").ok


def test_name_added_to_a_vector_is_a_vector():
    f = mc.parse("W*x + b")
    assert f.variables == {"W": ("m", "n"), "x": ("n",), "b": ("m",)}
    assert f.shape == ("m",)
    assert mc.parse("b + W*x").variables["b"] == mc.parse("b + W*x").variables["W"][:1]
    assert mc.parse("-b + W*x").shape == mc.parse("b + W*x").shape


def test_name_added_to_a_scalar_stays_a_scalar():
    f = mc.parse("max(0, w·x + b)")
    assert f.variables == {"w": ("n",), "x": ("n",), "b": ()}
    assert f.shape == ()


def test_power_makes_a_lowercase_name_a_scalar():
    f = mc.parse("x^2")
    assert f.variables == {"x": ()}
    assert str(diff(f, "x")) == "2*x"


@pytest.mark.parametrize("text, hint", [
    ("X^-1", "inv(X)"),
    ("X^-1", "X .^ -1"),
    ("X^-1", "X=()"),
    ("X^2", "X .^ 2"),
    ("2^X", "X=()"),
    ("x'*y/B", "B=()"),
    ("vector(Q)", "Q=()"),
])
def test_a_capital_is_never_a_scalar_by_usage(text, hint):
    with pytest.raises(mc.ShapeError) as info:
        mc.parse(text)
    assert hint in str(info.value)


def test_declarations_still_decide():
    assert mc.parse("X^-1", X=()).variables == {"X": ()}
    assert mc.parse("x'*A*x + c'*x", c=()).shape == ("n",)  # c' of a scalar is a scalar
    assert mc.parse("W*x + b", b=()).variables["b"] == ()


def test_usage_that_forces_a_scalar_keeps_it():
    # c'^2: '^' needs a scalar, so usage, not the convention, decides.
    assert mc.parse("c'^2").variables == {"c": ()}


def test_readings_say_why():
    from mathcalc.parse import readings

    why = readings("x'*A*x + c'*x", {})
    assert "transposed" in why["c"] and "a column vector, not a scalar" in why["c"]
    why = readings("norm2(A*x - b)^2", {})
    assert "subtracted from a column vector (the '-' at column 11)" in why["b"]
    assert "convention" in readings("max(0, w·x + b)", {})["b"]
    assert readings("W*x + b", {"b": ("m",)})["b"].startswith("declared")


def test_numbers_at_the_readings():
    # The derivative of the quadratic form with a linear term, at a point.
    f = mc.parse("x'*A*x + c'*x")
    fn = mc.lambdify(diff(f, "x"))
    rng = np.random.default_rng(0)
    A, x, c = rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal(3)
    np.testing.assert_allclose(fn(A=A, x=x, c=c), (A + A.T) @ x + c)


def test_cli_shapes_shows_the_readings():
    from click.testing import CliRunner

    from mathcalc.cli import main

    out = CliRunner().invoke(main, ["shapes", "x'*A*x + c'*x"]).output.splitlines()
    assert out[out.index("c: (n,)") + 1].strip().startswith("not declared: it is transposed in c'")
    out = CliRunner().invoke(main, ["shapes", "W*x + b", "--shape", "W=3,4"]).output.splitlines()
    assert out[out.index("W: (3, 4)") + 1].strip() == "declared as (3, 4)"
    assert "b: (3,)" in out and "(expression): (3,)" == out[-1]
