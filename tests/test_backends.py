"""The backends of SPEC section 9: every backend against numpy, traceability, dtypes, codegen.

Each installed backend (jax, torch, dask; cupy where a GPU is) is compared with
the numpy backend on every identity of tests/identities.py (orders 1 and 2)
and on the property generator's random expressions; jax.jit / jax.vmap /
jax.grad and torch.autograd run through generated functions; float32 stays
float32; codegen's source runs in a fresh namespace that imports only its
backend. Sizes are small and jax functions are compiled sparingly (the
whole file runs in well under a minute).
"""

from __future__ import annotations

import ast
import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc.backend.names import is_parameter_name
from mathcalc.diff import diff_node
# registered_function is test_property's autouse fixture: imported, it registers the
# property tests' function for this module too
from test_property import VARS, expressions, point_for, registered_function, with_wrt  # noqa: F401

HAVE = {name: importlib.util.find_spec(name) is not None for name in ("jax", "torch", "dask")}
INSTALLED = [name for name in ("jax", "torch", "dask") if HAVE[name]]

if HAVE["jax"]:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64, to compare with numpy at 1e-10
    import jax.numpy as jnp
if HAVE["torch"]:
    import torch
if HAVE["dask"]:
    import dask.array as da


def to_backend(backend, value):
    if not isinstance(value, np.ndarray):
        return value  # Python numbers are accepted by every backend
    if backend == "jax":
        return jnp.asarray(value)
    if backend == "torch":
        return torch.from_numpy(value)
    if backend == "dask":
        return da.from_array(value, chunks=tuple(max(1, (s + 1) // 2) for s in value.shape) or ())
    return value


def to_numpy(backend, value):
    if backend == "torch":
        return value.detach().cpu().numpy()
    if backend == "dask":
        assert isinstance(value, da.Array), type(value)  # lazy until computed
        return np.asarray(value.compute(scheduler="synchronous"))
    return np.asarray(value)


def run(backend, g, vals):
    fn = mc.lambdify(g, backend=backend)
    return to_numpy(backend, fn(**{k: to_backend(backend, v) for k, v in vals.items()}))


def agree(got, want, rtol=1e-9, what=""):
    want = np.asarray(want, dtype=float)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = max(np.max(np.abs(want), initial=0.0), 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, equal_nan=True, err_msg=what)


backends = pytest.mark.parametrize("backend", INSTALLED)


# ---------------------------------------------------------------------------
# Every identity, orders 1 and 2


@backends
def test_every_identity_agrees_with_numpy(backend):
    from identities import IDENTITIES
    from test_identities import point

    failures = []
    for ident in IDENTITIES:
        f = mc.parse(ident["f"], **ident["shapes"])
        g = mc.diff(f, ident["wrt"], order=ident["order"])
        vals = point(ident)
        want = mc.lambdify(g)(**vals)
        try:
            agree(run(backend, g, vals), want, what=f"{ident['f']} d/d{ident['wrt']}")
        except AssertionError as exc:
            failures.append(f"{ident['f']} (order {ident['order']}): {str(exc)[:300]}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# The property generator's random expressions


def _property_case(fw, seed, backends_):
    f, wrt = fw
    g = diff_node(f, wrt, VARS[wrt])
    vals = point_for([f, g], seed)
    for node in (f, g):
        e = mc.Expr(node, VARS)
        with np.errstate(all="ignore"):
            want = mc.lambdify(e)(**vals)
        if not np.all(np.isfinite(want)) or np.max(np.abs(want), initial=0) > 1e8:
            continue  # overflow: libraries may differ in where inf turns to nan
        for backend in backends_:
            agree(run(backend, e, vals), want, rtol=1e-7, what=f"{backend}: {E.debug_str(node)}")


# jax compiles every op for every new shape while it runs eagerly (about 0.1 s
# each on this machine): fewer examples for it than for torch and dask.
EXAMPLES = {"jax": 12, "torch": 40, "dask": 25}


def _random_expressions_test(backend):
    @pytest.mark.skipif(not HAVE[backend], reason=f"{backend} not installed")
    @settings(max_examples=EXAMPLES[backend], deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(data=st.data(), seed=st.integers(0, 2 ** 16))
    def test(data, seed):
        # test_property's registered function (an autouse fixture, imported) takes part too
        fw = data.draw(with_wrt(expressions(depth=3)))
        with np.errstate(all="ignore"):
            _property_case(fw, seed, [backend])
    test.__name__ = f"test_random_expressions_agree_with_numpy_{backend}"
    return test


test_random_expressions_agree_with_numpy_jax = _random_expressions_test("jax")
test_random_expressions_agree_with_numpy_torch = _random_expressions_test("torch")
test_random_expressions_agree_with_numpy_dask = _random_expressions_test("dask")


# ---------------------------------------------------------------------------
# JAX: pure functions, so jit, vmap and grad apply

LOGISTIC = "sum(log(1 + exp(-y .* (X*w))))"
LOG_SHAPES = dict(X=("m", "n"), w=("n",), y=("m",))


def _logistic_data(rng, m=5, n=3, dtype=np.float64):
    return dict(X=rng.standard_normal((m, n)).astype(dtype), w=rng.standard_normal(n).astype(dtype),
                y=np.sign(rng.standard_normal(m)).astype(dtype))


def _logistic_problem(seed):
    """(values, loss, gradient, Hessian) of logistic regression at a random point."""
    f = mc.parse(LOGISTIC, **LOG_SHAPES)
    return _logistic_data(np.random.default_rng(seed)), f, mc.grad(f, "w"), mc.hessian(f, "w")


@pytest.mark.skipif(not HAVE["jax"], reason="jax not installed")
def test_jax_jit_vmap_and_grad_through_generated_functions():
    rng = np.random.default_rng(1)
    vals, f, g, h = _logistic_problem(1)
    jv = {k: jnp.asarray(v) for k, v in vals.items()}
    grad_fn = mc.lambdify(g, backend="jax")
    np.testing.assert_allclose(jax.jit(grad_fn)(**jv), mc.lambdify(g)(**vals), rtol=1e-12)
    with pytest.raises(mc.ShapeError, match="'w'"):  # checked while tracing: still a ShapeError
        jax.jit(grad_fn)(**{**jv, "w": jnp.ones(4)})
    # vmap over a batch of weight vectors
    ws = rng.standard_normal((4, 3))
    batched = jax.vmap(lambda w: grad_fn(X=jv["X"], w=w, y=jv["y"]))(jnp.asarray(ws))
    for k in range(4):
        np.testing.assert_allclose(batched[k], mc.lambdify(g)(**{**vals, "w": ws[k]}), rtol=1e-12)
    # jax.grad of the lambdified loss is mathcalc's gradient; jax.jacfwd of that, the Hessian
    loss = mc.lambdify(f, backend="jax")
    by_jax = jax.grad(lambda w: loss(X=jv["X"], w=w, y=jv["y"]))(jv["w"])
    np.testing.assert_allclose(by_jax, mc.lambdify(g)(**vals), rtol=1e-12)
    hess = jax.jacfwd(lambda w: grad_fn(X=jv["X"], w=w, y=jv["y"]))(jv["w"])
    np.testing.assert_allclose(hess, mc.lambdify(h)(**vals), rtol=1e-10)
    # a Hessian block fill and a masked fill are pure too
    mf = mc.hessian("norm2(X - U*V')^2", "U", X=("m", "p"), U=("m", "k"), V=("p", "k"))
    mv = dict(X=rng.standard_normal((4, 3)), U=rng.standard_normal((4, 2)), V=rng.standard_normal((3, 2)))
    np.testing.assert_allclose(jax.jit(mc.lambdify(mf, backend="jax"))(**mv), mc.lambdify(mf)(**mv))
    relu = mc.diff("sum(relu(W*x + b))", "W", W=("m", "n"), x=("n",), b=("m",))
    rv = dict(W=rng.standard_normal((4, 3)), x=rng.standard_normal(3), b=rng.standard_normal(4))
    np.testing.assert_allclose(jax.jit(mc.lambdify(relu, backend="jax"))(**rv), mc.lambdify(relu)(**rv))


@pytest.mark.skipif(not HAVE["jax"], reason="jax not installed")
def test_jax_logdet_is_nan_for_a_negative_determinant_under_jit():
    fn = jax.jit(mc.lambdify(mc.parse("logdet(A)", A=("n", "n")), backend="jax"))
    assert np.isnan(fn(A=-jnp.eye(3)))
    assert float(fn(A=2 * jnp.eye(3))) == pytest.approx(3 * np.log(2))


# ---------------------------------------------------------------------------
# torch: tensors in, tensors out, on their device, under autograd


@pytest.mark.skipif(not HAVE["torch"], reason="torch not installed")
def test_torch_autograd_through_generated_functions():
    vals, f, g, h = _logistic_problem(2)
    t = {k: torch.from_numpy(v) for k, v in vals.items()}
    w = t["w"].clone().requires_grad_(True)
    loss = mc.lambdify(f, backend="torch")(X=t["X"], w=w, y=t["y"])
    assert isinstance(loss, torch.Tensor) and loss.shape == ()
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), mc.lambdify(g)(**vals), rtol=1e-12)
    # the generated gradient is differentiable again: its Jacobian is the Hessian
    jac = torch.autograd.functional.jacobian(
        lambda w: mc.lambdify(g, backend="torch")(X=t["X"], w=w, y=t["y"]), t["w"])
    np.testing.assert_allclose(jac.numpy(), mc.lambdify(h)(**vals), rtol=1e-10)
    out = mc.lambdify(h, backend="torch")(**t)
    assert isinstance(out, torch.Tensor) and out.device == t["X"].device and out.dtype == torch.float64


@pytest.mark.skipif(not HAVE["torch"], reason="torch not installed")
def test_torch_functions_run_under_torch_func():
    g = mc.grad(LOGISTIC, "w", **LOG_SHAPES)
    fn = mc.lambdify(g, backend="torch")
    vals = _logistic_data(np.random.default_rng(3))
    t = {k: torch.from_numpy(v) for k, v in vals.items()}
    ws = torch.from_numpy(np.random.default_rng(4).standard_normal((3, 3)))
    batched = torch.func.vmap(lambda w: fn(X=t["X"], w=w, y=t["y"]))(ws)
    for k in range(3):
        np.testing.assert_allclose(batched[k].numpy(), mc.lambdify(g)(**{**vals, "w": ws[k].numpy()}),
                                   rtol=1e-12)


# ---------------------------------------------------------------------------
# dtypes: float32 in, float32 out; Python numbers give float64

DTYPE_CASES = [
    (LOGISTIC, "w", 2, LOG_SHAPES),  # the symmetric (syrk) form
    ("sum(relu(W*x + b))", "W", 1, dict(W=("m", "n"), x=("n",), b=("m",))),  # masked fill
    ("norm2(X - U*V')^2", "U", 2, dict(X=("m", "p"), U=("m", "k"), V=("p", "k"))),  # block fill
    ("logdet(A) + tr(S*inv(A))", "A", 1, dict(A=("n", "n"), S=("n", "n"))),
    ("c*x'*x + logsumexp(x)", "x", 1, dict(c=(), x=("n",))),
]


def _dtype_values(shapes, rng):
    sizes = {"m": 4, "n": 3, "p": 3, "k": 2}
    vals = {}
    for name, shape in shapes.items():
        v = rng.standard_normal(tuple(sizes[d] for d in shape))
        if name == "A":
            v = v @ v.T + 3 * np.eye(3)
        vals[name] = v if shape else 0.5
    return vals


@pytest.mark.parametrize("backend", ["numpy"] + INSTALLED)
def test_float32_stays_float32(backend):
    rng = np.random.default_rng(5)
    for text, wrt, order, shapes in DTYPE_CASES:
        g = mc.diff(text, wrt, order=order, **shapes)
        vals = _dtype_values(shapes, rng)
        want = mc.lambdify(g)(**vals)
        v32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v) for k, v in vals.items()}
        out = mc.lambdify(g, backend=backend)(**{k: to_backend(backend, v) for k, v in v32.items()})
        assert str(out.dtype).endswith("float32"), (backend, text, out.dtype)
        np.testing.assert_allclose(to_numpy(backend, out), want, rtol=2e-4, atol=2e-4)
        out64 = mc.lambdify(g, backend=backend)(**{k: to_backend(backend, v) for k, v in vals.items()})
        assert str(out64.dtype).endswith("float64"), (backend, text, out64.dtype)
    # Python numbers and ints give float64
    s = mc.lambdify(mc.parse("a*b + a^2", a=(), b=()), backend=backend)(a=2, b=3)
    assert str(s.dtype).endswith("float64") and float(to_numpy(backend, s)) == 10.0


# ---------------------------------------------------------------------------
# Bad arguments are MathcalcErrors on every backend


@pytest.mark.parametrize("backend", ["numpy"] + INSTALLED)
def test_bad_arguments_are_mathcalc_errors(backend):
    fn = mc.lambdify(mc.grad(LOGISTIC, "w", **LOG_SHAPES), backend=backend)
    vals = _logistic_data(np.random.default_rng(6))
    ok = {k: to_backend(backend, v) for k, v in vals.items()}
    with pytest.raises(mc.ShapeError, match="'w'.*shape"):
        fn(**{**ok, "w": to_backend(backend, np.ones(4))})
    with pytest.raises(mc.ShapeError, match="missing argument 'y'"):
        fn(X=ok["X"], w=ok["w"])
    with pytest.raises(mc.ShapeError, match="unexpected argument.*'z'"):
        fn(**ok, z=1.0)
    with pytest.raises(mc.ShapeError, match="'X' is complex"):
        fn(**{**ok, "X": to_backend(backend, vals["X"] + 1j)} if backend != "dask" else
           {**ok, "X": vals["X"] + 1j})
    with pytest.raises(mc.ShapeError, match="'w' is ragged"):
        fn(**{**ok, "w": [[1.0], [2.0, 3.0]]})
    with pytest.raises(mc.MathcalcError, match="unknown backend 'tensorflow'"):
        mc.lambdify(mc.parse("x'*x"), backend="tensorflow")


# ---------------------------------------------------------------------------
# dask: lazy results, n-by-n factorisations in memory


@pytest.mark.skipif(not HAVE["dask"], reason="dask not installed")
def test_dask_results_are_lazy_dask_arrays():
    g = mc.grad("logdet(S) + x'*inv(S)*x + sum(log(1 + exp(-y .* (X*w))))", "w",
                S=("n", "n"), x=("n",), X=("m", "n"), w=("n",), y=("m",))
    rng = np.random.default_rng(7)
    Xv = rng.standard_normal((40, 3))
    vals = dict(S=np.eye(3) * 2, x=rng.standard_normal(3), X=Xv, w=rng.standard_normal(3),
                y=np.sign(rng.standard_normal(40)))
    dv = {**vals, "X": da.from_array(Xv, chunks=(10, 3))}
    out = mc.lambdify(g, backend="dask")(**dv)
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(out.compute(scheduler="synchronous"), mc.lambdify(g)(**vals), rtol=1e-12)
    h = mc.diff("logdet(S) + tr(inv(S)*A)", "S", S=("n", "n"), A=("n", "n"))
    hv = dict(S=np.eye(3) * 2 + 0.1, A=rng.standard_normal((3, 3)))
    lazy = mc.lambdify(h, backend="dask")(**{k: da.from_array(v, chunks=2) for k, v in hv.items()})
    assert isinstance(lazy, da.Array)  # inv on one chunk, still lazy
    np.testing.assert_allclose(lazy.compute(scheduler="synchronous"), mc.lambdify(h)(**hv), rtol=1e-12)


# ---------------------------------------------------------------------------
# codegen: source to paste, for every installed backend

NEURON = "2*step(w'*x + b)*(max(0, w'*x + b) - y)*x"
CODEGEN_CASES = [
    (LOGISTIC, "w", 2, LOG_SHAPES),
    ("sum(relu(W*x + b))", "W", 1, dict(W=("m", "n"), x=("n",), b=("m",))),
    ("norm2(X - U*V')^2", "U", 2, dict(X=("m", "p"), U=("m", "k"), V=("p", "k"))),
    ("norm2(X - U*V')^2", "U", 1, dict(X=("m", "p"), U=("m", "k"), V=("p", "k"))),
    ("logdet(A) + tr(S*inv(A))", "A", 1, dict(A=("n", "n"), S=("n", "n"))),
    ("-t'*log(softmax(W*x))", "W", 1, dict(t=("m",), W=("m", "n"), x=("n",))),
    ("(max(0, w'*x + b) - y)^2", "w", 1, dict(w=("n",), x=("n",), b=(), y=())),
]
MODULES = {"numpy": {"numpy"}, "jax": {"jax.numpy"}, "torch": {"torch"},
           "dask": {"dask.array", "numpy"}, "cupy": {"cupy"}}


def _exec_fresh(source, name):
    namespace: dict = {}
    exec(compile(source, "<pasted>", "exec"), namespace)  # our own generated source
    return namespace[name]


@pytest.mark.parametrize("backend", ["numpy"] + INSTALLED)
def test_codegen_source_runs_alone_and_agrees(backend):
    rng = np.random.default_rng(8)
    for text, wrt, order, shapes in CODEGEN_CASES:
        g = mc.diff(text, wrt, order=order, **shapes)
        for checks in (True, False):
            src = mc.codegen(g, name="grad_fn", backend=backend, checks=checks)
            tree = ast.parse(src)
            imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                        for a in n.names}
            assert imported == MODULES[backend], (backend, imported)
            assert not any(isinstance(n, ast.ClassDef) for n in ast.walk(tree))
            funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
            assert len(funcs) == 1 and [a.arg for a in funcs[0].args.args] == list(g.variables)
            assert ".dot(" not in src and "einsum(" not in src or order == 2, src
            body = src.splitlines()
            raises = [line for line in body if "raise " in line]
            branches = [line for line in body if line.strip().startswith(("if ", "elif", "else"))
                        and "raise ValueError" not in line]
            assert not branches, src  # one order, no size branches
            assert len(raises) <= (len(g.variables) if checks else 0), src
            vals = _dtype_values(shapes, rng)
            fn = _exec_fresh(src, "grad_fn")
            got = fn(*[to_backend(backend, vals[v]) for v in g.variables])
            agree(to_numpy(backend, got), mc.lambdify(g)(**vals), what=f"{backend} {text}")


@pytest.mark.parametrize("backend", ["numpy"] + INSTALLED)
def test_neuron_gradient_source_is_at_most_20_lines(backend):
    g = mc.grad("(max(0, w'*x + b) - y)^2", "w")
    assert str(g) == NEURON
    src = mc.codegen(g, name="dloss_dw", backend=backend)
    assert len(src.rstrip("\n").splitlines()) <= 20, src
    assert "def dloss_dw(w, x, b, y):" in src and " @ " in src


def test_codegen_args_order_and_renamed_parameters():
    g = mc.grad(LOGISTIC, "w", **LOG_SHAPES)
    src = mc.codegen(g, args=["X", "w", "y"])
    assert "def f(X, w, y):" in src
    vals = _logistic_data(np.random.default_rng(9))
    agree(_exec_fresh(src, "f")(vals["X"], vals["w"], vals["y"]), mc.lambdify(g)(**vals))
    with pytest.raises(mc.MathcalcError, match="args must name every variable once"):
        mc.codegen(g, args=["X", "w"])
    e = mc.parse("lambda*x + sum(x)", **{"lambda": (), "x": ("n",)})
    src = mc.codegen(e)
    assert "def f(lambda_, x):" in src and is_parameter_name("lambda_")
    np.testing.assert_allclose(_exec_fresh(src, "f")(2.0, np.array([1.0, 2.0])), [5.0, 7.0])


def test_cli_code_for_each_backend():
    from click.testing import CliRunner

    from mathcalc.cli import main

    runner = CliRunner()
    plain = runner.invoke(main, ["diff", "x'*A*x", "--wrt", "x", "--numpy"])
    same = runner.invoke(main, ["diff", "x'*A*x", "--wrt", "x", "--code", "numpy"])
    assert plain.exit_code == 0 and plain.output == same.output
    rng = np.random.default_rng(10)
    xv, av = rng.standard_normal(3), rng.standard_normal((3, 3))
    for backend in ["numpy"] + INSTALLED:
        out = runner.invoke(main, ["diff", "x'*A*x", "--wrt", "x", "--code", backend, "--name", "g"])
        assert out.exit_code == 0, out.output
        fn = _exec_fresh(out.output, "g")
        got = fn(to_backend(backend, xv), to_backend(backend, av))
        agree(to_numpy(backend, got), (av + av.T) @ xv, what=backend)
    bad = runner.invoke(main, ["diff", "x'*A*x", "--wrt", "x", "--code", "tensorflow"])
    assert bad.exit_code == 2 and "tensorflow" in bad.output


# ---------------------------------------------------------------------------
# cupy, on a GPU only


@pytest.mark.gpu
def test_cupy_agrees_with_numpy():
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
    except Exception:  # cupy without a GPU
        pytest.skip("no GPU")
    rng = np.random.default_rng(11)
    for text, wrt, order, shapes in DTYPE_CASES:
        g = mc.diff(text, wrt, order=order, **shapes)
        vals = _dtype_values(shapes, rng)
        out = mc.lambdify(g, backend="cupy")(**{k: cp.asarray(v) if isinstance(v, np.ndarray) else v
                                                  for k, v in vals.items()})
        assert isinstance(out, cp.ndarray)
        agree(cp.asnumpy(out), mc.lambdify(g)(**vals), what=text)
        src = mc.codegen(g, name="h", backend="cupy")
        got = _exec_fresh(src, "h")(*[cp.asarray(vals[v]) if isinstance(vals[v], np.ndarray) else vals[v]
                                      for v in g.variables])
        agree(cp.asnumpy(got), mc.lambdify(g)(**vals), what=text)


def test_cupy_backend_without_cupy_is_a_clear_error():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("cupy is installed")
    with pytest.raises(mc.MathcalcError, match="backend 'cupy' needs cupy"):
        mc.lambdify(mc.parse("x'*x"), backend="cupy")


# ---------------------------------------------------------------------------
# The layers: no import cycle; the shared subexpressions are one function


def test_backend_layers_have_no_import_cycle():
    from pathlib import Path

    root = Path(mc.__file__).parent
    files = sorted(root.glob("backend/*.py")) + [root / "lambdify.py", root / "codegen.py",
                                                 root / "optimize.py"]
    graph = {}
    for path in files:
        mod = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = mod.split(".")[:len(mod.split(".")) - node.level]
                target = ".".join(base + ([node.module] if node.module else []))
                deps.add(target)
                deps.update(f"{target}.{a.name}" for a in node.names)
        graph[mod] = deps
    known = set(graph)

    def visit(mod, stack):
        assert mod not in stack, " -> ".join(stack + [mod])
        for dep in graph.get(mod, ()):
            if dep in known:
                visit(dep, stack + [mod])

    for mod in graph:
        visit(mod, [])


def test_shared_nodes_are_what_the_program_computes_once():
    from mathcalc.backend.lower import shared_nodes

    g = mc.diff("sum(tanh(W*x + b)) + sum(sigmoid(W*x + b))", "W", W=("m", "n"), x=("n",), b=("m",))
    z = mc.parse("W*x + b", W=("m", "n"), x=("n",), b=("m",)).node
    assert z in shared_nodes(g.node)
    assert mc.codegen(g).count(" @ ") == 1  # W*x once


def test_cupy_emitter_with_numpy_standing_in_for_cupy(monkeypatch):
    """Where there is no GPU, numpy (which cupy mirrors) stands in for cupy, so the
    cupy emitter's calls are run all the same (the GPU test above runs the real one)."""
    import sys
    import types

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("the real cupy is installed")
    fake = types.ModuleType("cupy")
    fake.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    fake.asnumpy = np.asarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delitem(sys.modules, "mathcalc.backend.cupy", raising=False)
    monkeypatch.setattr(sys.modules["mathcalc.lambdify"], "_CACHE", {})  # (mc.lambdify is the function)
    rng = np.random.default_rng(12)
    for text, wrt, order, shapes in DTYPE_CASES + CODEGEN_CASES:
        g = mc.diff(text, wrt, order=order, **shapes)
        vals = _dtype_values(shapes, rng)
        agree(np.asarray(mc.lambdify(g, backend="cupy")(**vals)), mc.lambdify(g)(**vals), what=text)
        src = mc.codegen(g, name="h", backend="cupy")
        assert "import cupy as cp" in src and "numpy" not in src.split('"""')[0]
        agree(np.asarray(_exec_fresh(src, "h")(*[vals[v] for v in g.variables])),
              mc.lambdify(g)(**vals), what=text)
    monkeypatch.delitem(sys.modules, "mathcalc.backend.cupy", raising=False)
