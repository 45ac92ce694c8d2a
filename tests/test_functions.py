"""The element-wise function table: erf, registered functions (GELU, swish),
the entries a derivative adds, and names that cannot be taken twice.

Each derivative is asserted twice (STYLE.md, habit 8): against its closed form
and numerically (mc.check, central finite differences). A printed derivative
must parse back to an equivalent expression, so no internal name may leak into
it. Every test registers under names of its own and removes, afterwards, every
entry it added to the (global) table.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import sympy

import mathcalc as mc
from mathcalc.functions import FUNCTIONS, U, register_function

u = sympy.Symbol("u")
GELU = u * (1 + sympy.erf(u / sympy.sqrt(2))) / 2  # u·Φ(u), Φ the standard normal CDF
SWISH = u / (1 + sympy.exp(-u))  # u·σ(u)
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
X = {"x": ("n",)}


@pytest.fixture(autouse=True)
def clean_table():
    """Removes every table entry a test added (registered or added by a derivative)."""
    before = set(FUNCTIONS)
    yield
    for name in set(FUNCTIONS) - before:
        del FUNCTIONS[name]


def _printed_roundtrip(g, **shapes):
    """str(g) parses back (with g's shapes) to an expression equivalent to g."""
    back = mc.parse(str(g), **shapes)
    assert mc.equivalent(back, g), f"{g} does not read back as itself"
    return back


def _load(source: str, name: str = "f"):
    spec = importlib.util.spec_from_loader("generated_functions_test", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, "<codegen>", "exec"), module.__dict__)  # our own generated source
    return getattr(module, name)


# --- erf, a function of the language ---------------------------------------


def test_erf_parses_and_applies_elementwise():
    e = mc.parse("erf(x)", **X)
    assert e.shape == ("n",) and str(e) == "erf(x)"


def test_erf_derivative_is_2_over_sqrt_pi_exp_minus_u_squared():
    """d erf(u)/du = 2/√π · exp(-u²)."""
    assert sympy.simplify(FUNCTIONS["erf"].scalar_derivative()
                          - 2 / sympy.sqrt(sympy.pi) * sympy.exp(-U ** 2)) == 0
    g = mc.grad("sum(erf(x))", "x", **X)
    assert mc.equivalent(g, f"{2 / math.sqrt(math.pi)!r}*exp(-x .^ 2)", **X)
    _printed_roundtrip(g, **X)
    assert mc.check("sum(erf(x))", "x", **X).ok
    assert mc.check("sum(erf(A*x))", "A", A=(2, 3), x=(3,)).ok


def test_erf_lambdifies_and_codegens_to_math_erf():
    v = np.array([-3.0, -0.5, 0.0, 0.25, 1.0, 4.0])
    expected = [math.erf(t) for t in v]
    e = mc.parse("erf(x)", **X)
    np.testing.assert_allclose(mc.lambdify(e)(x=v), expected, rtol=1e-15)
    np.testing.assert_allclose(FUNCTIONS["erf"].numpy(v), expected, rtol=1e-15)
    source = mc.codegen(e)
    assert "import math" in source and "scipy" not in source
    np.testing.assert_allclose(_load(source)(x=v), expected, rtol=1e-15)
    assert mc.lambdify(mc.parse("erf(a)"))(a=0.5) == pytest.approx(math.erf(0.5), rel=1e-15)


def test_erf_prints_as_an_operator_in_latex():
    tex = mc.latex(mc.parse("erf(x)", **X))
    assert tex.startswith(r"\operatorname{erf}\left("), tex


def test_erf_reads_back_from_sympy():
    a = sympy.Symbol("a")
    assert mc.equivalent(mc.from_sympy(sympy.erf(a)), "erf(a)")


# --- GELU and swish, registered by a user -----------------------------------


def test_gelu_derivative_reads_in_erf_and_exp():
    """d/du u·Φ(u) = Φ(u) + u·φ(u) = (1 + erf(u/√2))/2 + u·exp(-u²/2)/√(2π)."""
    register_function("gelu_test", GELU)
    g = mc.grad("sum(gelu_test(x))", "x", **X)
    text = str(g)
    assert "erf(" in text and "exp(" in text
    assert "_fn" not in text and "_aux" not in text, text
    # √2 stays exact; 1/√(2π) is a float (the language has no π).
    assert "erf(sqrt(2)*x/2)" in text and repr(INV_SQRT_2PI) in text
    closed = f"(1 + erf(x ./ sqrt(2)))/2 + {INV_SQRT_2PI!r}*(x .* exp(-x .^ 2/2))"
    assert mc.equivalent(g, closed, **X)
    _printed_roundtrip(g, **X)
    assert mc.check("sum(gelu_test(x))", "x", **X).ok
    assert mc.check("sum(gelu_test(W*x + b))", "W", W=(2, 3), x=(3,), b=(2,)).ok
    assert mc.check("sum(gelu_test(x))", "x", order=2, **X).ok
    tex = mc.latex(g)
    assert r"\operatorname{erf}" in tex and "fn" not in tex and "aux" not in tex


def test_gelu_derivative_lambdifies_and_codegens():
    register_function("gelu_numbers_test", GELU)
    g = mc.grad("sum(gelu_numbers_test(x))", "x", **X)
    v = np.array([-2.0, -0.3, 0.0, 0.7, 3.0])
    expected = [0.5 * (1 + math.erf(t / math.sqrt(2))) + t * math.exp(-t * t / 2) * INV_SQRT_2PI
                for t in v]
    np.testing.assert_allclose(mc.lambdify(g)(x=v), expected, rtol=1e-13)
    np.testing.assert_allclose(_load(mc.codegen(g))(x=v), expected, rtol=1e-13)


def test_swish_derivative_prints_parses_and_checks():
    """d/du u·σ(u) = σ(u) + u·σ(u)(1 - σ(u)), here in exp as SymPy gives it."""
    register_function("swish_test", SWISH, latex=r"\operatorname{swish}")
    g = mc.grad("sum(swish_test(x))", "x", **X)
    sigma = "1 ./ (1 + exp(-x))"
    assert mc.equivalent(g, f"{sigma} + x .* {sigma} .* (1 - {sigma})", **X)
    _printed_roundtrip(g, **X)
    assert "_aux" not in str(g)
    assert mc.check("sum(swish_test(x))", "x", **X).ok
    assert mc.check("sum(swish_test(W*x))", "W", W=(2, 3), x=(3,)).ok
    assert r"\operatorname{swish}" in mc.latex(mc.parse("swish_test(x)", **X))
    v = np.array([-1.5, 0.0, 2.0])
    s = 1 / (1 + np.exp(-v))
    np.testing.assert_allclose(mc.lambdify(g)(x=v), s + v * s * (1 - s), rtol=1e-13)
    np.testing.assert_allclose(_load(mc.codegen(g))(x=v), s + v * s * (1 - s), rtol=1e-13)


# --- entries a derivative adds ----------------------------------------------


def test_a_sympy_function_the_table_lacks_gets_its_own_readable_entry():
    """d/du u·atan(u) = u/(1 + u²) + atan(u): atan gets an entry named atan."""
    register_function("uatan_test", u * sympy.atan(u))
    g = mc.grad("sum(uatan_test(x))", "x", **X)
    assert "atan(x)" in str(g)
    assert FUNCTIONS["atan"].kind == "derived" and FUNCTIONS["atan"].origin == "uatan_test"
    _printed_roundtrip(g, **X)
    assert mc.check("sum(uatan_test(x))", "x", **X).ok
    assert mc.check("sum(uatan_test(x))", "x", order=2, **X).ok
    # Its meaning is fixed: another atan is refused, the same one is accepted.
    with pytest.raises(mc.MathcalcError, match="atan.*another name"):
        register_function("atan", u ** 2)
    assert register_function("atan", sympy.atan(u)) is FUNCTIONS["atan"]


def test_an_unnamed_piece_is_named_after_the_function_it_came_from():
    """d/du eᵘ·uᵘ = eᵘ·uᵘ (log u + 2): uᵘ has no table form, so it becomes <f>_aux<k>."""
    register_function("powself_test", sympy.exp(u) * u ** u)
    g = mc.grad("sum(powself_test(x))", "x", **X)
    assert "powself_test_aux1(x)" in str(g)
    values = {"x": np.array([0.5, 1.0, 2.0])}
    assert mc.check("sum(powself_test(x))", "x", values=values, **X).ok
    back = mc.parse(str(g), **X)
    assert mc.equivalent(back, g, values=values)
    with pytest.raises(mc.MathcalcError, match="powself_test_aux1"):
        register_function("powself_test_aux1", u + 1)
    assert mc.equivalent(back, g, values=values)  # still u^u


def test_a_derived_entry_never_takes_a_name_already_registered():
    register_function("powself2_test_aux1", u ** 2)
    register_function("powself2_test", sympy.exp(u) * u ** u)
    g = mc.grad("sum(powself2_test(x))", "x", **X)
    assert "powself2_test_aux2(x)" in str(g) and "powself2_test_aux1" not in str(g)
    assert FUNCTIONS["powself2_test_aux1"].scalar == U ** 2


def test_a_user_name_that_looks_internal_is_an_ordinary_function():
    """``d1_fn`` was once an internal name; a user's d1_fn now means what the user says."""
    register_function("gelu_old_test", GELU)
    g = mc.grad("sum(gelu_old_test(x))", "x", **X)
    before = str(g)
    register_function("d1_fn", u ** 3)
    assert str(g) == before and "d1_fn" not in before
    assert mc.check("sum(gelu_old_test(x))", "x", **X).ok


# --- names -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["erf", "exp", "tanh", "sigmoid", "relu"])
def test_a_builtin_function_cannot_be_redefined(name):
    with pytest.raises(mc.MathcalcError, match="built-in"):
        register_function(name, u ** 2)
    with pytest.raises(mc.MathcalcError, match="built-in"):
        register_function(name, FUNCTIONS[name].scalar.subs(U, u))


@pytest.mark.parametrize("name", ["sum", "max", "min", "tr", "det", "inv", "diag", "I", "eye",
                                  "ones", "vector", "matrix", "softmax", "T"])
def test_a_name_of_the_language_cannot_be_registered(name):
    with pytest.raises(mc.MathcalcError, match="built-in"):
        register_function(name, u ** 2)


@pytest.mark.parametrize("name", ["", "2f", "f-g", "lambda", "for", "f(x)", None])
def test_a_name_must_be_an_identifier(name):
    with pytest.raises(mc.MathcalcError, match="not a valid function name"):
        register_function(name, u ** 2)


def test_registering_the_same_function_again_returns_it():
    first = register_function("again_test", SWISH)
    t = sympy.Symbol("t")
    second = register_function("again_test", t / (1 + sympy.exp(-t)), latex=r"\operatorname{sw}")
    assert second is first and FUNCTIONS["again_test"] is first
    assert r"\operatorname{sw}" in mc.latex(mc.parse("again_test(x)", **X))


def test_registering_a_different_function_under_a_taken_name_is_refused():
    """Expressions, derivatives and compiled functions made before keep their meaning."""
    register_function("cube_test", u ** 3)
    e = mc.parse("cube_test(x)", **X)
    v = np.array([2.0])
    assert mc.lambdify(e)(x=v) == pytest.approx([8.0])
    with pytest.raises(mc.MathcalcError, match="already registered.*another name"):
        register_function("cube_test", u ** 2)
    assert mc.lambdify(mc.parse("cube_test(x)", **X))(x=v) == pytest.approx([8.0])
    assert mc.equivalent(mc.diff(e, "x"), "diag(3*x .^ 2)", **X)


def test_register_function_rejects_what_is_not_a_function_of_one_symbol():
    with pytest.raises(mc.MathcalcError, match="exactly one free symbol"):
        register_function("two_test", u + sympy.Symbol("v"))
    with pytest.raises(mc.MathcalcError, match="SymPy expression"):
        register_function("text_test", "u**2")
    assert "two_test" not in FUNCTIONS and "text_test" not in FUNCTIONS


def test_erf_and_the_gelu_derivative_render_in_katex(render_all):
    register_function("gelu_katex_test", GELU)
    strings = [mc.latex(mc.parse("erf(x)", **X)),
               mc.latex(mc.grad("sum(gelu_katex_test(x))", "x", **X))]
    assert render_all(strings) == []
