"""SymPy interop: Expr.to_sympy() and mc.from_sympy() round trips, checked in numbers."""

import numpy as np
import pytest
import sympy

import mathcalc as mc

SHAPES = dict(A=(3, 3), B=(2, 3), W=(2, 3), X=(3, 3), x=(3,), y=(2,), z=(3,), b=(2,), a=())

EXPRESSIONS = [
    "x'*A*x", "A*x", "x*y'", "W*x + b", "A .* X", "tr(A*X)", "det(X)", "logdet(X)",
    "inv(X)", "A'", "2*x", "a*x", "exp(A*x)", "sum(tanh(W*x + b))", "sum(max(0, W*x + b))",
    "softmax(z)", "logsumexp(z)", "norm2(x)", "norm1(W*x - y)", "diag(x)", "diag(A)",
    "x .^ 2", "sigmoid(W*x) .* y", "1 - tanh(x) .^ 2",
]

DERIVATIVES = [
    ("x'*A*x", "x"), ("sum(max(0, W*x + b))", "W"), ("logdet(X)", "X"), ("tr(B*X*B')", "X"),
    ("norm2(W*x - y)^2", "x"), ("logsumexp(z)", "z"), ("sum(tanh(W*x))", "W"),
    ("softmax(z)", "z"),
]


def _values():
    rng = np.random.default_rng(1)
    vals = {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}
    vals["X"] = vals["X"] @ vals["X"].T + 3 * np.eye(3)  # inside the domain of logdet/inv
    return vals


def _sympy_value(s, vals):
    """Evaluate a SymPy (matrix) expression with explicit matrices substituted."""
    subs = {}
    for sym in s.atoms(sympy.MatrixSymbol):
        v = np.atleast_2d(vals[sym.name].T).T if vals[sym.name].ndim == 1 else vals[sym.name]
        subs[sym] = sympy.Matrix(v)
    for sym in s.atoms(sympy.Symbol):
        if sym.name in vals:
            subs[sym] = sympy.Float(float(vals[sym.name]))
    value = s.xreplace(subs).doit()
    if hasattr(value, "applyfunc"):
        value = value.applyfunc(lambda e: e.doit())
    return np.array(sympy.N(value), dtype=float).squeeze()


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_round_trip_through_sympy(text):
    e = mc.parse(text, **SHAPES)
    s = e.to_sympy()
    assert isinstance(s, sympy.Basic)
    back = mc.from_sympy(s)
    assert back.shape == e.shape
    assert mc.equivalent(back, e)


@pytest.mark.parametrize("text", ["x'*A*x", "A*x", "W*x + b", "tr(A*X)", "logdet(X)", "a*x",
                                  "A .* X", "inv(X)", "x*y'"])
def test_sympy_form_has_the_same_value(text):
    vals = _values()
    e = mc.parse(text, **SHAPES)
    ours = mc.lambdify(e)(**{k: vals[k] for k in e.variables})
    np.testing.assert_allclose(_sympy_value(e.to_sympy(), vals), ours, rtol=1e-9)


@pytest.mark.parametrize("f, wrt", DERIVATIVES)
def test_derivatives_round_trip(f, wrt):
    g = mc.diff(f, wrt, **SHAPES)
    back = mc.from_sympy(g.to_sympy())
    assert mc.equivalent(back, g)


def test_from_sympy_reads_matrix_expressions():
    n, m = sympy.symbols("n m")
    X = sympy.MatrixSymbol("X", n, n)
    x = sympy.MatrixSymbol("x", n, 1)
    W = sympy.MatrixSymbol("W", m, n)
    e = mc.from_sympy(x.T * X * x)
    assert e.shape == () and e.variables == {"x": ("n",), "X": ("n", "n")}
    assert mc.equivalent(e, mc.parse("x'*X*x", x=("n",), X=("n", "n")))
    e = mc.from_sympy((W * x).applyfunc(sympy.tanh))
    assert mc.equivalent(e, mc.parse("tanh(W*x)", W=("m", "n"), x=("n",)))
    assert mc.equivalent(mc.from_sympy(sympy.log(sympy.Determinant(X))),
                         mc.parse("logdet(X)", X=("n", "n")))
    assert mc.equivalent(mc.from_sympy(sympy.HadamardProduct(x, x)),
                         mc.parse("x .* x", x=("n",)))


def test_index_notation_results_have_no_sympy_form():
    g = mc.diff("W*x", "W", W=("m", "n"), x=("n",))
    with pytest.raises(mc.MathcalcError):
        g.to_sympy()


def test_from_sympy_rejects_non_sympy_input():
    with pytest.raises(mc.MathcalcError):
        mc.from_sympy("x'*A*x")
