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


# ---------------------------------------------------------------- element-wise functions

KINKED = ["abs", "sign", "step", "relu", "sigmoid", "softplus"]
POINTS = [-1.75, -0.5, 0.0, 0.25, 2.0]  # 0: the kink convention, step(0) = sign(0) = 0


@pytest.mark.parametrize("fn", KINKED)
def test_functions_go_over_as_sympy_functions(fn):
    """to_sympy gives SymPy's own functions (no undefined heads such as absolute(a)),
    whose values SymPy computes: equal to mathcalc's lambdify at each point, kinks included."""
    e = mc.parse(f"{fn}(a)")
    s = e.to_sympy()
    assert all(not isinstance(f, sympy.core.function.AppliedUndef)
               for f in s.atoms(sympy.Function)), s
    f = mc.lambdify(e)
    for value in POINTS:
        ours = float(f(a=np.float64(value)))
        theirs = float(s.subs(sympy.Symbol("a"), sympy.Float(value)).evalf())
        assert theirs == pytest.approx(ours, rel=1e-12, abs=1e-15), (fn, value)
    assert sympy.lambdify(sympy.Symbol("a"), s, "numpy")(0.0) == pytest.approx(float(f(a=0.0)))


def test_sympy_heads():
    a = sympy.Symbol("a")
    assert mc.parse("abs(a)").to_sympy() == sympy.Abs(a)
    assert mc.parse("sign(a)").to_sympy() == sympy.sign(a)
    assert mc.parse("step(a)").to_sympy() == sympy.Heaviside(a, 0)
    assert mc.parse("relu(a)").to_sympy() == sympy.Max(0, a)


@pytest.mark.parametrize("fn", KINKED)
def test_functions_round_trip_as_vectors(fn):
    e = mc.parse(f"{fn}(W*x + b)", W=SHAPES["W"], x=SHAPES["x"], b=SHAPES["b"])
    s = e.to_sympy()
    back = mc.from_sympy(s)
    assert back.shape == e.shape and mc.equivalent(back, e)
    # The SymPy form's value, entry by entry, at a point with a kink: W*x + b is
    # exactly (0, 0.75) there (quarters multiply and add exactly, in SymPy too).
    vals = {k: np.round(4 * v) / 4 for k, v in _values().items()}
    vals["b"] = -(vals["W"] @ vals["x"]) + np.array([0.0, 0.75])
    assert list(vals["W"] @ vals["x"] + vals["b"]) == [0.0, 0.75]
    ours = mc.lambdify(e)(W=vals["W"], x=vals["x"], b=vals["b"])
    np.testing.assert_allclose(_sympy_value(s, vals), ours, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("fn", KINKED)
def test_functions_round_trip_as_scalars(fn):
    e = mc.parse(f"{fn}(a) + {fn}(-a)")
    back = mc.from_sympy(e.to_sympy())
    assert mc.equivalent(back, e)
    assert str(mc.from_sympy(mc.parse(f"{fn}(a)").to_sympy())) in (f"{fn}(a)", "max(0, a)")


def test_from_sympy_reads_heaviside_abs_sign():
    n = sympy.Symbol("n")
    x = sympy.MatrixSymbol("x", n, 1)
    shapes = dict(x=("n",))
    read = lambda f: mc.from_sympy(x.applyfunc(f))  # noqa: E731
    assert mc.equivalent(read(lambda u: sympy.Heaviside(u, 0)), mc.parse("step(x)", **shapes))
    assert str(read(lambda u: sympy.Heaviside(u, 0))) == "step(x)"
    assert str(read(sympy.Abs)) == "abs(x)"
    assert str(read(sympy.sign)) == "sign(x)"
    # Heaviside(u) is Heaviside(u, 1/2): read exactly, with its value 1/2 at 0.
    half = read(sympy.Heaviside)
    assert "_fn" not in str(half) and "aux" not in str(half)
    assert mc.equivalent(half, mc.parse("(1 + sign(x))/2", **shapes))
    assert mc.equivalent(read(lambda u: sympy.Heaviside(u, 1)), mc.parse("1 - step(-x)", **shapes))
    third = read(lambda u: sympy.Heaviside(u, sympy.Rational(1, 3)))
    f = mc.lambdify(third)
    np.testing.assert_allclose(f(x=np.array([-2.0, 0.0, 3.0])), [0.0, 1 / 3, 1.0])
    np.testing.assert_allclose(mc.lambdify(half)(x=np.array([-2.0, 0.0, 3.0])), [0.0, 0.5, 1.0])
    with pytest.raises(mc.MathcalcError, match="Heaviside"):
        read(lambda u: sympy.Heaviside(u, sympy.Symbol("h")))


def test_from_sympy_reads_scalar_heaviside_and_max():
    a, b = sympy.symbols("a b")
    assert str(mc.from_sympy(sympy.Heaviside(a, 0))) == "step(a)"
    assert mc.equivalent(mc.from_sympy(sympy.Max(0, a, b)), mc.parse("max(max(0, a), b)"))
    assert mc.equivalent(mc.from_sympy(1 / (1 + sympy.exp(-a))), mc.parse("sigmoid(a)"))
    assert mc.equivalent(mc.from_sympy(sympy.log(1 + sympy.exp(a))), mc.parse("softplus(a)"))
