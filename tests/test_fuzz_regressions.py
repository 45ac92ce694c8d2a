"""Crashes and name collisions found by an outside differential fuzzer (issue 14).

1. Products of 13 or more factors (past nodes.MAX_INLINED_FACTORS, where a
   nested product stays one factor) differentiate, to any order; property
   tests build long products at random and check every derivative against
   finite differences.
2. check(order=2) never lets numpy's LinAlgError out.
3. Every function that takes shapes as keywords accepts a variable named
   like any of its parameters (the expression and variable parameters are
   positional-only; an option's name given a shape declares a variable).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc.api import diff
from mathcalc.checking import check, equivalent
from mathcalc.testing import assert_derivative

VEC = dict(z=("n",), x=("n",), v=("n",), A=("n", "n"), B=("n", "n"), C=("n", "n"))


# ---------------------------------------------------------------------------
# 1. long products


def test_product_of_thirteen_factors_differentiates():
    text = "(z'*z)*(x'*A*x)*(v'*v)*(v'*v)*(v'*v)*(v'*v)"
    f = mc.parse(text, **VEC)
    assert sum(len(n.factors) for n in E.walk(f.node) if isinstance(n, E.Product)) >= 13
    g = diff(f, "z")
    assert mc.equivalent(g, "2*(x'*A*x)*(v'*v)^4*z")
    for order in (1, 2, 3):
        result = check(f, "z", order=order)
        assert result.ok, (order, result.message)


def test_hessian_of_a_long_chain_squared():
    f = mc.parse("(z'*C'*B'*A'*A*B*C*z)^2", **VEC)
    h = mc.hessian(f, "z")
    # the same as the short spelling that always worked
    assert mc.equivalent(h, mc.hessian("norm2(A*B*C*z)^4", "z", **VEC))
    assert check(f, "z", order=2).ok


def test_products_past_the_inlining_limit():
    # k factors x'*x, up to well past MAX_INLINED_FACTORS: (x'*x)^k
    for k in (E.MAX_INLINED_FACTORS - 1, E.MAX_INLINED_FACTORS + 1, 2 * E.MAX_INLINED_FACTORS):
        f = mc.parse("*".join(["(x'*x)"] * k), x=("n",))
        g = diff(f, "x")
        assert mc.equivalent(g, f"{2 * k}*(x'*x)^{k - 1}*x", x=("n",))
        assert check(f, "x", order=2).ok


_FACTORS = ["(z'*z)", "(x'*A*z)", "(v'*z)", "(z'*B*z)", "sum(z)", "(x'*A*x)", "(v'*v)",
            "tr(A)", "(z'*C*v)", "(1 + z'*z)"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FACTORS), min_size=10, max_size=16),
       st.integers(min_value=1, max_value=2))
def test_long_products_differentiate_to_any_order(factors, order):
    f = mc.parse("*".join(factors), **VEC)
    result = check(f, "z", order=order)
    assert result.ok, ("*".join(factors), order, result.message)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=10, max_value=20))
def test_long_matrix_chains_differentiate(k):
    # z'*M1*…*Mk*z with the Ms drawn from A, B, C, transposed or not
    mats = ["A", "B'", "C", "A'", "B", "C'"]
    chain = "*".join(mats[i % len(mats)] for i in range(k))
    f = mc.parse(f"(z'*{chain}*z)^2", **VEC)
    assert check(f, "z").ok
    assert check(f, "z", order=2).ok


# ---------------------------------------------------------------------------
# 2. no numpy exception leaves check


def test_second_order_check_of_logdet_of_a_gram_matrix():
    result = check("logdet(X'*X)/a", "X", order=2, X=("m", "n"), a=())
    assert result.ok, result.message
    m, n = result.point["X"].shape
    assert m >= n  # the binding that makes X'*X invertible


def test_check_of_an_everywhere_singular_argument_is_not_ok_and_raises_nothing_else():
    for order in (1, 2):
        result = check("logdet(x*x')", "x", order=order)  # rank one: det = 0 everywhere
        assert not result.ok and "no point was found" in result.message


# ---------------------------------------------------------------------------
# 3. variables named like parameters


def _expected_gradient(name):
    return f"2*{name}*x"


def _call(fn_name, name):
    """Call the API function with a variable called ``name``; return something to assert on."""
    text = f"{name}*x'*x"
    shapes = {name: (), "x": ("n",)}
    fn = getattr(mc, fn_name)
    if fn_name == "parse":
        return fn(text, **shapes).variables == shapes
    if fn_name in ("diff", "jacobian", "grad"):
        return mc.equivalent(fn(text, "x", **shapes), _expected_gradient(name), **shapes)
    if fn_name == "hessian":
        return mc.equivalent(fn(text, "x", **shapes), f"2*{name}*eye(n)", **shapes)
    if fn_name in ("latex", "where"):
        return bool(str(fn(text, **shapes)))
    if fn_name in ("latex_derivation",):
        return bool(fn(text, "x", **shapes))
    if fn_name == "explain":
        return mc.equivalent(fn(text, "x", **shapes).result, _expected_gradient(name), **shapes)
    if fn_name == "check":
        return fn(text, "x", **shapes).ok
    if fn_name == "equivalent":
        return fn(text, f"x'*x*{name}", **shapes) and not fn(text, f"2*x'*x*{name}", **shapes)
    if fn_name == "lambdify":
        out = fn(text, **shapes)(**{name: 3.0, "x": np.array([1.0, 2.0])})
        return np.isclose(out, 15.0)
    if fn_name == "codegen":
        return "def " in fn(text, **shapes)
    raise AssertionError(fn_name)


API = ["parse", "diff", "grad", "jacobian", "hessian", "latex", "latex_derivation", "explain",
       "where", "check", "equivalent", "lambdify", "codegen"]


def _cases():
    cases = []
    for fn_name in API:
        fn = getattr(mc, fn_name, None)
        if fn is None:
            continue
        for p in inspect.signature(fn).parameters.values():
            if p.kind is not p.VAR_KEYWORD:
                cases.append((fn_name, p.name))
    return cases


@pytest.mark.parametrize("fn_name, name", _cases())
def test_a_variable_may_be_named_like_any_parameter(fn_name, name):
    assert _call(fn_name, name)


@pytest.mark.parametrize("name", [p for p in inspect.signature(assert_derivative).parameters
                                  if p != "shapes"])
def test_assert_derivative_takes_a_variable_named_like_any_parameter(name):
    shapes = {name: (), "x": ("n",)}
    assert_derivative(f"{name}*x'*x", "x", _expected_gradient(name), **shapes)
    with pytest.raises(AssertionError):
        assert_derivative(f"{name}*x'*x", "x", f"3*{name}*x", **shapes)


def test_the_fuzzer_examples():
    assert equivalent("sum(max(0, W*x + b))", "sum(relu(W*x + b))",
                      W=("m", "n"), x=("n",), b=("m",))
    result = check("f*x'*x", "x", f=(), x=("n",))
    assert result.ok
    # an option under its own name is still the option; a shape there declares a variable
    assert check("seed*x'*x", "x", seed=(), x=("n",)).ok
    assert check("x'*x", "x", seed=3).ok
    assert mc.diff("order*x'*x", "x", order=(), x=("n",)).shape == ("n",)
