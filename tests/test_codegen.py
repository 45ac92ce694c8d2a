"""codegen: standalone numpy source that agrees with lambdify."""

from __future__ import annotations

import ast

import numpy as np
import pytest
import sympy

from mathcalc import expr as E
from mathcalc.codegen import codegen
from mathcalc.errors import MathcalcError
from mathcalc.expression import Expr
from mathcalc.functions import register_function
from mathcalc.numeric import lambdify
from test_numeric import CASES, ENV, _values


def _load(source: str, name: str = "f"):
    """Execute generated source as a user would: a fresh module namespace."""
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("case", sorted(CASES))
def test_codegen_round_trip_agrees_with_lambdify(case):
    e = Expr(CASES[case], ENV)
    fn = _load(codegen(e))
    vals = _values(e.node, np.random.default_rng(5))
    np.testing.assert_allclose(fn(**vals), lambdify(e)(**vals), rtol=1e-12, atol=1e-14)


def test_source_imports_only_numpy():
    e = Expr(E.logsumexp(E.add(E.einsum("ij,j->i", E.var("W", ("m", "n")), E.var("x", ("n",))),
                                E.var("b", ("m",)))))
    tree = ast.parse(codegen(e))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names]
    assert imported == ["numpy"]


def test_docstring_gives_expression_and_shapes():
    e = Expr(E.einsum("ij,j->i", E.var("W", ("m", "n")), E.var("x", ("n",))))
    fn = _load(codegen(e, name="predict"), "predict")
    assert str(e) in fn.__doc__
    assert "W: shape (m, n)" in fn.__doc__ and "x: shape (n,)" in fn.__doc__
    assert "shape (m,)" in fn.__doc__


def test_shared_subexpressions_are_named_temporaries():
    W, x, b = E.var("W", ("m", "n")), E.var("x", ("n",)), E.var("b", ("m",))
    z = E.add(E.einsum("ij,j->i", W, x), b)
    e = Expr(E.add(E.apply("tanh", z), E.apply("sigmoid", z)))
    src = codegen(e)
    assert src.count(".dot(") == 1
    assert "t0 = " in src


def test_standalone_function_raises_its_own_shape_error():
    e = Expr(E.einsum("i,i->", E.var("x", ("n",)), E.var("y", ("n",))))
    fn = _load(codegen(e))
    with pytest.raises(ValueError, match="'y'"):
        fn(x=np.ones(2), y=np.ones(3))
    with pytest.raises(ValueError, match="missing argument 'y'"):
        fn(x=np.ones(2))


def test_registered_function_is_printed_by_sympy():
    t = sympy.Symbol("t")
    register_function("gauss_codegen_test", sympy.exp(-t ** 2) * t)
    e = Expr(E.apply("gauss_codegen_test", E.var("x", ("n",))))
    src = codegen(e)
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(_load(src)(x=v), lambdify(e)(x=v), rtol=1e-14)
    np.testing.assert_allclose(_load(src)(x=v), v * np.exp(-v ** 2))


def test_function_name_is_validated():
    e = Expr(E.var("x", ("n",)))
    with pytest.raises(MathcalcError, match="not a plain identifier"):
        codegen(e, name="f(): pass\nimport os\ndef g")


def test_user_names_that_clash_with_internal_ones():
    e = Expr(E.add(E.var("np", ("n",)), E.var("t0", ("n",)), E.var("MISSING", ("n",))))
    fn = _load(codegen(e))
    np.testing.assert_allclose(fn(np=np.ones(2), t0=np.ones(2), MISSING=np.ones(2)), [3.0, 3.0])
