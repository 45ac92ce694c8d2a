"""Keywords are shapes, and nothing else (SPEC 2; issue 10.4).

A keyword of a function that takes shapes as keywords is one of its options
or a variable's shape (a tuple or list of dimensions, or a structure). Any
other value is a MathcalcError that names the keyword and, where the keyword
is close to one of the function's options, suggests it: a typo never
silently declares a variable and drops the option.
"""

from __future__ import annotations

import pytest

import mathcalc as mc
from mathcalc.testing import assert_derivative

Q = "x'*A*x"  # x: (n,), A: (n, n)
G = "2*x"


def g():
    return mc.diff("x'*x", "x")


# function name -> a call with extra keywords; each function's options, by its signature
CALLS = {
    "parse": lambda **kw: mc.parse(Q, **kw),
    "diff": lambda **kw: mc.diff(Q, "x", **kw),
    "grad": lambda **kw: mc.grad(Q, "x", **kw),
    "jacobian": lambda **kw: mc.jacobian(Q, "x", **kw),
    "hessian": lambda **kw: mc.hessian(Q, "x", **kw),
    "latex": lambda **kw: mc.latex(Q, **kw),
    "latex_derivation": lambda **kw: mc.latex_derivation(Q, "x", **kw),
    "check": lambda **kw: mc.check(Q, "x", **kw),
    "equivalent": lambda **kw: mc.equivalent("x'*x", "x'*x", **kw),
    "lambdify": lambda **kw: mc.lambdify(g(), **kw),
    "codegen": lambda **kw: mc.codegen(g(), **kw),
    "assert_derivative": lambda **kw: assert_derivative("x'*x", "x", G, **kw),
    "where": lambda **kw: mc.where(g(), **kw),
    "explain": lambda **kw: mc.explain("x'*x", "x", **kw),
}

# (function, typo, value, the option it should suggest or None)
TYPOS = [
    ("parse", "ordr", 2, None),
    ("diff", "ordr", 2, "order"),
    ("diff", "Order", 2, "order"),
    ("jacobian", "oder", 2, "order"),
    ("grad", "ordr", 2, None),
    ("hessian", "ordr", 2, None),
    ("latex", "blod", True, "bold"),
    ("latex_derivation", "bod", True, "bold"),
    ("check", "sed", 3, "seed"),
    ("check", "ordr", 2, "order"),
    ("check", "tl", 1e-3, "tol"),
    ("check", "vals", {"x": [1.0, 2.0]}, "values"),
    ("equivalent", "sede", 1, "seed"),
    ("equivalent", "value", {}, "values"),
    ("lambdify", "backnd", "numpy", "backend"),
    ("codegen", "nmae", "f", "name"),
    ("codegen", "chekcs", False, "checks"),
    ("codegen", "backed", "numpy", "backend"),
    ("assert_derivative", "seeds", 1, "seed"),
    ("assert_derivative", "valuse", {}, "values"),
    ("where", "widht", 80, None),
    ("explain", "ordr", 2, None),
]


def _call(function, **kw):
    if not hasattr(mc, function) and function in ("where", "explain"):
        pytest.skip(f"mc.{function} is not in this build")
    return CALLS[function](**kw)


@pytest.mark.parametrize("function, key, value, suggestion", TYPOS,
                         ids=[f"{t[0]}-{t[1]}" for t in TYPOS])
def test_a_typo_is_an_error_naming_the_keyword(function, key, value, suggestion):
    with pytest.raises(mc.MathcalcError) as info:
        _call(function, **{key: value})
    msg = str(info.value)
    assert f"{key}={value!r}" in msg and function in msg
    if suggestion is None:
        assert "did you mean" not in msg
    else:
        assert f"did you mean {suggestion}={value!r}?" in msg


def test_the_spec_example():
    with pytest.raises(mc.MathcalcError, match=r"did you mean order=2\?"):
        mc.diff("x'*A*x", "x", ordr=2)
    with pytest.raises(mc.MathcalcError, match=r"did you mean name='f'\?"):
        mc.codegen(g(), nmae="f")


@pytest.mark.parametrize("value", [3, 2.5, "n", None, True, {"n": 1}, b"n", object()],
                         ids=["int", "float", "str", "None", "bool", "dict", "bytes", "object"])
@pytest.mark.parametrize("function", sorted(CALLS))
def test_no_other_value_is_a_shape(function, value):
    with pytest.raises(mc.MathcalcError, match="'?z'?=") as info:
        _call(function, z=value)
    assert "not a shape" in str(info.value)


def test_numpy_values_are_not_shapes():
    np = pytest.importorskip("numpy")
    for value in (np.int64(3), np.array([3])):
        with pytest.raises(mc.MathcalcError, match="not a shape"):
            mc.parse("x'*x", x=value)


@pytest.mark.parametrize("function", sorted(CALLS))
def test_shapes_and_structures_are_accepted(function):
    _call(function, z=(), W=("m", "n"), S=mc.symmetric("n"), P=["n", "n"], C=mc.spd("k"))


def test_a_list_is_a_shape():
    f = mc.parse("x'*x", x=["n"], A=[])
    assert f.variables == {"x": ("n",), "A": ()}


def test_options_under_their_own_names_are_options():
    assert mc.diff("x^3", "x", order=2) == mc.parse("6*x", x=())
    assert r"\mathbf" in mc.latex("A*x", bold=True)
    assert mc.check("x'*x", "x", seed=3, tol=1e-4, order=1).ok
    assert "def grad_x" in mc.codegen(g(), name="grad_x", checks=False)


def test_a_shape_under_an_option_name_declares_that_variable():
    # (SPEC 2: the value decides; `order` and `bold` are also possible variable names)
    f = mc.diff("order*x'*x", "x", order=(), x=("n",))
    assert f.variables == {"order": (), "x": ("n",)}
    assert mc.equivalent(f, "2*order*x")
    assert mc.latex("bold*x", bold=())


def test_the_option_value_is_still_checked():
    with pytest.raises(mc.MathcalcError):
        mc.diff("x'*x", "x", order=0)
    with pytest.raises(mc.MathcalcError):
        mc.diff("x'*x", "x", order="2")
