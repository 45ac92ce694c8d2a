"""Every row of the element-wise function table through every part of mathcalc
(STYLE habit 2: "an open table of element-wise functions"; issue 13.1).

A row (``functions.ElementwiseFunction``) is the only place a function is
described: its numpy implementation, every backend's spelling, its SymPy
scalar form (SymPy gives the derivative), its LaTeX name, its domain and its
form in SymPy's own functions. Each row is walked through parse, diff
(against the SymPy derivative and central finite differences, at the
distinct non-square sizes m=2, n=3), print (read back), LaTeX (rendered by
KaTeX), lambdify on every installed backend against numpy, codegen, the
SymPy round trip (and SymPy's value of the interop form), the domain
analysis of ``check`` and the back end's value ranges.

Three planted functions go through the same walk, each added only to the
table: one by ``register_function`` (every field from its SymPy form) and
two as rows written here, with their own spelling, LaTeX name and domain
(``arctan``, bounded; ``log2``, positive arguments only). That no other file
had to change for them is the point of the table.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import sympy

import mathcalc as mc
from mathcalc import checking
from mathcalc import nodes as E
from mathcalc import functions as F
from mathcalc.backend import lower as L
from mathcalc.backend.numpy import NumpyEmitter

SHAPES = {"A": ("m", "n"), "x": ("n",)}
M, N = 2, 3

ROWS = [f.name for f in F.builtin_rows()]

u = sympy.Symbol("u")
REGISTERED = "swishrows"  # u·σ(u), registered from its SymPy form alone
PLANTED = {
    # bounded, smooth: the back end reads its range; SymPy's atan reads back as it
    "arctan": dict(scalar=sympy.atan(F.U), numpy=np.arctan, latex=r"\arctan",
                   call="{lib}.arctan({0})", range=(-math.pi / 2, math.pi / 2)),
    # defined for positive arguments only: check draws them positive
    "log2": dict(scalar=sympy.log(F.U) / sympy.log(2), numpy=np.log2, latex=r"\log_2",
                 call="{lib}.log2({0})", positive=True),
}
ALL = ROWS + [REGISTERED, *PLANTED]

BACKENDS = [b for b in ("jax", "torch", "dask") if importlib.util.find_spec(b) is not None]
if "jax" in BACKENDS:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64, to compare with numpy closely


@pytest.fixture
def row(request):
    """The function's name, its row planted in the table for the test (and every entry
    a derivative added removed afterwards)."""
    name = request.param
    before = set(F.FUNCTIONS)
    if name == REGISTERED:
        mc.register_function(name, u / (1 + sympy.exp(-u)))
    elif name in PLANTED:
        F.FUNCTIONS[name] = F.ElementwiseFunction(name, **PLANTED[name])
    yield F.FUNCTIONS[name]
    for added in set(F.FUNCTIONS) - before:
        del F.FUNCTIONS[added]


def rows(test):
    return pytest.mark.parametrize("row", ALL, indirect=True)(test)


def _point(entry, seed=0):
    """A, x with every entry of A x inside the function's domain, 0.15 or more from 0
    (the kinks), and |A x| < 1.5 (tan's poles are at ±π/2)."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        a = rng.uniform(0.1, 0.5, (M, N))
        x = rng.uniform(0.3, 1.0, N)
        if not entry.positive:
            x = x * rng.choice((-1.0, 1.0), N)
        z = a @ x
        if np.all(np.abs(z) > 0.15) and np.all(np.abs(z) < 1.5):
            return {"A": a, "x": x}
    raise AssertionError("no point found")  # pragma: no cover


def _f(entry):
    return mc.parse(f"{entry.name}(A*x)", **SHAPES)


def _derivative_numpy(entry):
    """f' as a numpy function: SymPy's derivative of the scalar form, in SymPy's own
    functions, printed for numpy by SymPy (our own SymPy object, not user text)."""
    d = F.own_form(entry.scalar_derivative())
    return sympy.lambdify(F.U, d, modules=[F._SPECIAL, "numpy"])


def _values(fn, vals, backend="numpy"):
    if backend == "numpy":
        return np.asarray(fn(**vals))
    if backend == "jax":
        import jax.numpy as jnp

        return np.asarray(fn(**{k: jnp.asarray(v) for k, v in vals.items()}))
    if backend == "torch":
        import torch

        return fn(**{k: torch.from_numpy(v) for k, v in vals.items()}).detach().numpy()
    if backend == "dask":
        import dask.array as da

        out = fn(**{k: da.from_array(v, chunks=1) for k, v in vals.items()})
        return np.asarray(out.compute(scheduler="synchronous"))
    raise AssertionError(backend)  # pragma: no cover


# ---------------------------------------------------------------------------
# The table itself


def test_every_builtin_row_is_complete():
    """Each built-in row has a SymPy form in U, a LaTeX name, and either a spelling for
    every backend or none (then every backend prints its SymPy form)."""
    assert {"exp", "log", "tanh", "sigmoid", "relu", "softplus", "step", "sign", "abs",
            "erf"} <= set(ROWS)
    for entry in F.builtin_rows():
        assert entry.scalar.free_symbols == {F.U}, entry.name
        assert entry.latex.startswith("\\"), entry.name
        spelled = [entry.spelling(b) is not None for b in F.BACKENDS]
        assert all(spelled) or not any(spelled), entry.name
        assert set(entry.calls) <= set(F.BACKENDS), entry.name
        assert entry.op == (all(spelled) or entry.scaled), entry.name


def test_the_back_end_reads_the_rows():
    """The emitters' ops and the lowering's set of functions with ops are the rows'."""
    assert set(L.BUILTIN_FUNCTIONS) == {f.name for f in F.builtin_rows() if f.op}
    for name, template in F.spellings("numpy").items():
        assert NumpyEmitter.OPS[name] == template


# ---------------------------------------------------------------------------
# Each row (and each planted one) through every part


@rows
def test_parse_and_numpy_value(row):
    f = _f(row)
    assert f.shape == ("m",)
    assert isinstance(f.node, E.Apply) and f.node.fn == row.name
    vals = _point(row)
    with np.errstate(all="ignore"):
        want = row.numpy(vals["A"] @ vals["x"])
    np.testing.assert_allclose(mc.lambdify(f)(**vals), want, rtol=1e-12, atol=1e-14)


@rows
def test_diff_is_the_sympy_derivative_and_passes_check(row):
    f = _f(row)
    d = mc.diff(f, "x")
    assert d.shape == ("m", "n")  # distinct sizes: a missing transpose cannot pass
    vals = _point(row)
    z = vals["A"] @ vals["x"]
    want = np.broadcast_to(_derivative_numpy(row)(z), z.shape)[:, None] * vals["A"]
    np.testing.assert_allclose(mc.lambdify(d)(**vals), want, rtol=1e-10, atol=1e-12)
    result = mc.check(f, "x", values=vals)
    assert result.ok, result.max_rel_error


@rows
def test_printed_forms_read_back(row):
    f = _f(row)
    d = mc.diff(f, "x")
    for g in (f, d):
        back = mc.parse(str(g), **SHAPES)
        assert mc.equivalent(back, g), str(g)
    assert row.name in str(f)


@rows
def test_latex_uses_the_row_and_renders(row, render_all):
    f = _f(row)
    tex = [mc.latex(f), mc.latex(mc.diff(f, "x"))]
    assert row.latex.replace("_", r"\_") in tex[0] or row.latex in tex[0], tex[0]
    assert render_all(tex) == []


@rows
@pytest.mark.parametrize("backend", BACKENDS + ["cupy"])
def test_lambdify_and_codegen_on_every_backend(row, backend):
    if backend == "cupy":
        cp = pytest.importorskip("cupy")
        try:
            cp.cuda.runtime.getDeviceCount()
        except Exception:  # cupy without a GPU
            pytest.skip("cupy has no GPU here")
    f = _f(row)
    d = mc.diff(f, "x")
    vals = _point(row, seed=1)
    if row.spelling(backend) is None:
        # No spelling of its own: the backend prints the SymPy form, or says it cannot
        # (SymPy prints erf for jax and dask through the math module, scalars only).
        try:
            mc.lambdify(f, backend=backend)
        except mc.MathcalcError as exc:
            assert f"function {row.name!r} has no" in str(exc)
            with pytest.raises(mc.MathcalcError, match="has no"):
                mc.codegen(f, backend=backend)
            return
    for g in (f, d):
        want = _values(mc.lambdify(g), vals)
        if backend == "cupy":
            got = cp.asnumpy(mc.lambdify(g, backend="cupy")(
                **{k: cp.asarray(v) for k, v in vals.items()}))
        else:
            got = _values(mc.lambdify(g, backend=backend), vals, backend)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    if backend == "numpy":
        return
    namespace: dict = {}
    exec(compile(mc.codegen(f, backend=backend), "<codegen>", "exec"), namespace)  # our source
    if backend != "cupy":
        got = _values(namespace["f"], vals, backend)
        np.testing.assert_allclose(got, _values(mc.lambdify(f), vals), rtol=1e-9, atol=1e-12)


@rows
def test_numpy_codegen(row):
    f = _f(row)
    vals = _point(row, seed=2)
    namespace: dict = {}
    exec(compile(mc.codegen(f), "<codegen>", "exec"), namespace)  # our own generated source
    np.testing.assert_allclose(namespace["f"](**vals), mc.lambdify(f)(**vals), rtol=1e-12)


@rows
def test_sympy_round_trip_in_sympys_own_functions(row):
    f = _f(row)
    s = f.to_sympy()
    if row.sympy_own is not None:  # SymPy's own form, not the table's head
        assert not s.has(row.scalar.func), s
    back = mc.from_sympy(s)
    assert mc.equivalent(back, f), (s, str(back))
    # SymPy's value of the form it was given
    vals = _point(row, seed=3)
    symbols = {sym.name: sym for sym in s.free_symbols}
    concrete = s.xreplace({symbols[k]: sympy.ImmutableMatrix(v.reshape(v.shape[0], -1))
                           for k, v in vals.items()}).doit()
    got = np.array(sympy.Matrix(concrete).evalf(), dtype=float).ravel()
    np.testing.assert_allclose(got, mc.lambdify(f)(**vals), rtol=1e-10, atol=1e-12)


@rows
def test_check_reads_the_domain(row):
    f = _f(row)
    dom = checking.analyse(f.node)
    assert (dom.positive >= {"A", "x"}) == row.positive
    assert (f.node.arg in dom.kinks) == row.kink
    if row.positive or row.kink:  # points drawn by check itself respect the domain
        result = mc.check(f, "x")
        assert result.ok, result.max_rel_error


@rows
def test_the_back_end_reads_the_range(row):
    node = E.apply(row.name, E.var("x", ("n",)))
    assert L.bounds(node) == row.range
