"""Numeric speed (issue 4 §6): lambdified derivatives vs hand-written numpy, JAX and torch.func.

Every implementation is first checked against the hand-written numpy result
(``np.testing.assert_allclose``); a wrong result is reported as an error in
its cell and never timed. Run alone with ``python benchmarks/bench_numeric.py``
(BLAS is pinned to one thread only when run through ``run_all.py``).
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (Timeout, build, diff_fn, find_lambdify, fmt_ratio, fmt_time,  # noqa: E402
                     md_table, short_error, time_call, time_interleaved,
                     time_limit)

SIZES = (10, 100, 1000)
GRAD_TARGET = 1.1
HESS_TARGET = 1.2
OVERHEAD_TARGET_US = 5.0
RTOL = 1e-6


@dataclass
class Case:
    name: str
    text: str
    shapes: dict
    wrt: str
    order: int
    args: tuple  # argument order for the jax / torch functions
    dims: Callable  # n -> {dim name: size}
    data: Callable  # (rng, dims) -> {name: array}
    hand: Callable  # (**vals) -> array
    f: Callable  # (ops, *args) -> scalar, for jax and torch
    skip: dict = field(default_factory=dict)  # (tool, n) -> reason


# ---------------------------------------------------------------------------
# Data


def _spd(rng, n):
    b = rng.standard_normal((n, n))
    return b.dot(b.T) / n + np.eye(n)


def d_xax(rng, d):
    n = d["n"]
    return dict(x=rng.standard_normal(n), A=rng.standard_normal((n, n)))


def d_lsq(rng, d):
    m, n = d["m"], d["n"]
    return dict(X=rng.standard_normal((m, n)), w=rng.standard_normal(n), y=rng.standard_normal(m))


def d_logistic(rng, d):
    m, n = d["m"], d["n"]
    return dict(X=rng.standard_normal((m, n)), w=rng.standard_normal(n) / np.sqrt(n),
                y=rng.choice([-1.0, 1.0], size=m))


def d_relu(rng, d):
    m, n = d["m"], d["n"]
    return dict(W=rng.standard_normal((m, n)), x=rng.standard_normal(n), b=rng.standard_normal(m))


def d_mlp(rng, d):
    n, h, o = d["n"], d["h"], d["o"]
    return dict(W1=rng.standard_normal((h, n)) / np.sqrt(n), x=rng.standard_normal(n),
                b1=rng.standard_normal(h) * 0.1, W2=rng.standard_normal((o, h)) / np.sqrt(h),
                t=rng.standard_normal(o))


def d_mf(rng, d):
    m, p, k = d["m"], d["p"], d["k"]
    return dict(X=rng.standard_normal((m, p)), U=rng.standard_normal((m, k)),
                V=rng.standard_normal((p, k)))


def d_logdet(rng, d):
    n = d["n"]
    return dict(X=_spd(rng, n), S=_spd(rng, n))


# ---------------------------------------------------------------------------
# Hand-written numpy: what an expert writes for the same formula


def h_xax_grad(x, A):
    return A.dot(x) + x.dot(A)


def h_xax_hess(x, A):
    return A + A.T


def h_lsq_grad(X, w, y):
    return 2.0 * X.T.dot(X.dot(w) - y)


def h_lsq_hess(X, w, y):
    return 2.0 * X.T.dot(X)  # syrk


def h_logistic_grad(X, w, y):
    return X.T.dot(-y / (1.0 + np.exp(y * X.dot(w))))


def h_logistic_hess(X, w, y):
    s = 1.0 / (1.0 + np.exp(y * X.dot(w)))  # sigmoid(-y .* (X*w))
    d = y * y * s * (1.0 - s)
    return X.T.dot(X * d[:, None])


def h_relu_grad(W, x, b):
    return np.outer(W.dot(x) + b > 0, x)


def h_mlp_grad(W1, x, b1, W2, t):
    z = W1.dot(x) + b1
    r = W2.dot(np.maximum(z, 0.0)) - t
    return np.outer(2.0 * W2.T.dot(r) * (z > 0), x)


def h_mf_grad(X, U, V):
    return 2.0 * (U.dot(V.T.dot(V)) - X.dot(V))


def h_mf_hess(X, U, V):
    m, k = U.shape
    H = np.zeros((m, k, m, k))
    idx = np.arange(m)
    H[idx, :, idx, :] = 2.0 * V.T.dot(V)  # block fill of I ⊗ 2V'V
    return H


def h_logdet_grad(X, S):
    Xi = np.linalg.inv(X)
    return (Xi - Xi.dot(S).dot(Xi)).T


# ---------------------------------------------------------------------------
# The same functions for jax and torch (ops: a namespace of array functions)


def f_xax(o, x, A):
    return x @ (A @ x)


def f_lsq(o, X, w, y):
    return o.sum((X @ w - y) ** 2)


def f_logistic(o, X, w, y):
    return o.sum(o.log(1 + o.exp(-y * (X @ w))))


def f_relu(o, W, x, b):
    return o.sum(o.relu(W @ x + b))


def f_mlp(o, W1, x, b1, W2, t):
    return o.sum((W2 @ o.relu(W1 @ x + b1) - t) ** 2)


def f_mf(o, X, U, V):
    return o.sum((X - U @ V.T) ** 2)


def f_logdet(o, X, S):
    return o.logdet(X) + o.trace(S @ o.inv(X))


def _dims_n(n):
    return dict(n=n)


def _dims_mn2(n):
    return dict(m=2 * n, n=n)


def _dims_mn(n):
    return dict(m=n, n=n)


def _dims_mlp(n):
    return dict(n=n, h=n, o=n)


def _dims_mf(n):
    return dict(m=n, p=n, k=max(2, n // 10))


def _dims_mf_hess(n):
    k = max(2, n // 10)
    if (n * k) ** 2 > 4_000_000:  # the (m, k, m, k) Hessian would not fit: keep k = 2
        k = 2
    return dict(m=n, p=n, k=k)


_BIG = "skipped (16 GB, see Sizes)"

CASES = [
    Case("x'*A*x", "x'*A*x", dict(x=("n",), A=("n", "n")), "x", 1, ("x", "A"),
         _dims_n, d_xax, h_xax_grad, f_xax),
    Case("least squares", "norm2(X*w - y)^2", dict(X=("m", "n"), w=("n",), y=("m",)), "w", 1,
         ("X", "w", "y"), _dims_mn2, d_lsq, h_lsq_grad, f_lsq),
    Case("logistic regression", "sum(log(1 + exp(-y .* (X*w))))",
         dict(X=("m", "n"), w=("n",), y=("m",)), "w", 1, ("X", "w", "y"), _dims_mn2, d_logistic,
         h_logistic_grad, f_logistic),
    Case("ReLU layer (d/dW)", "sum(relu(W*x + b))", dict(W=("m", "n"), x=("n",), b=("m",)), "W",
         1, ("W", "x", "b"), _dims_mn, d_relu, h_relu_grad, f_relu),
    Case("two-layer MLP (d/dW1)", "norm2(W2*relu(W1*x + b1) - t)^2",
         dict(W1=("h", "n"), x=("n",), b1=("h",), W2=("o", "h"), t=("o",)), "W1", 1,
         ("W1", "x", "b1", "W2", "t"), _dims_mlp, d_mlp, h_mlp_grad, f_mlp),
    Case("matrix factorisation (d/dU)", "norm2(X - U*V')^2",
         dict(X=("m", "p"), U=("m", "k"), V=("p", "k")), "U", 1, ("X", "U", "V"), _dims_mf, d_mf,
         h_mf_grad, f_mf),
    Case("logdet(X) + tr(S*inv(X))", "logdet(X) + tr(S*inv(X))",
         dict(X=("n", "n"), S=("n", "n")), "X", 1, ("X", "S"), _dims_n, d_logdet, h_logdet_grad,
         f_logdet),
    Case("Hessian x'*A*x", "x'*A*x", dict(x=("n",), A=("n", "n")), "x", 2, ("x", "A"),
         _dims_n, d_xax, h_xax_hess, f_xax),
    Case("Hessian least squares", "norm2(X*w - y)^2", dict(X=("m", "n"), w=("n",), y=("m",)),
         "w", 2, ("X", "w", "y"), _dims_mn2, d_lsq, h_lsq_hess, f_lsq),
    Case("Hessian logistic regression", "sum(log(1 + exp(-y .* (X*w))))",
         dict(X=("m", "n"), w=("n",), y=("m",)), "w", 2, ("X", "w", "y"), _dims_mn2, d_logistic,
         h_logistic_hess, f_logistic),
    Case("Hessian matrix factorisation", "norm2(X - U*V')^2",
         dict(X=("m", "p"), U=("m", "k"), V=("p", "k")), "U", 2, ("X", "U", "V"), _dims_mf_hess,
         d_mf, h_mf_hess, f_mf, skip={("jax", 1000): _BIG, ("torch", 1000): _BIG}),
]


# ---------------------------------------------------------------------------
# Competitors


def _jax_ops():
    import jax
    import jax.numpy as jnp

    return types.SimpleNamespace(sum=jnp.sum, exp=jnp.exp, log=jnp.log, relu=jax.nn.relu,
                                 inv=jnp.linalg.inv, trace=jnp.trace,
                                 logdet=lambda X: jnp.linalg.slogdet(X)[1])


def _torch_ops():
    import torch

    return types.SimpleNamespace(sum=torch.sum, exp=torch.exp, log=torch.log, relu=torch.relu,
                                 inv=torch.linalg.inv, trace=torch.trace,
                                 logdet=lambda X: torch.linalg.slogdet(X)[1])


def make_jax(case: Case):
    import jax

    ops = _jax_ops()
    i = case.args.index(case.wrt)
    f = lambda *a: case.f(ops, *a)  # noqa: E731
    g = jax.grad(f, argnums=i) if case.order == 1 else jax.hessian(f, argnums=i)
    jg = jax.jit(g)

    def prepare(vals):
        import jax.numpy as jnp

        args = [jnp.asarray(vals[a]) for a in case.args]
        return lambda: jg(*args).block_until_ready()
    return prepare


def make_torch(case: Case):
    import torch
    import torch.func

    ops = _torch_ops()
    i = case.args.index(case.wrt)
    f = lambda *a: case.f(ops, *a)  # noqa: E731
    g = torch.func.grad(f, argnums=i) if case.order == 1 else torch.func.hessian(f, argnums=i)

    def prepare(vals):
        args = [torch.from_numpy(np.ascontiguousarray(vals[a])) for a in case.args]

        def call():
            with torch.no_grad():
                return g(*args)
        return call
    return prepare


def _to_numpy(out):
    if hasattr(out, "detach"):
        return out.detach().numpy()
    return np.asarray(out)


def _check(out, ref, what):
    out = _to_numpy(out)
    if out.shape != ref.shape:
        raise AssertionError(f"{what} returned shape {out.shape}, hand numpy {ref.shape}")
    scale = max(1.0, float(np.max(np.abs(ref))))
    np.testing.assert_allclose(out, ref, rtol=RTOL, atol=RTOL * scale,
                               err_msg=f"{what} disagrees with hand numpy")


def _wrong(exc: AssertionError) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    keep = [ln for ln in lines if "Max relative" in ln or "shape" in ln or "Mismatched" in ln]
    return "error: WRONG RESULT — " + ("; ".join(keep[:2]) or lines[0] if lines else "mismatch")


# ---------------------------------------------------------------------------
# The run


def _mathcalc_fn(case: Case, lambdify):
    diff = diff_fn()
    expr, how = build(case.text, case.shapes)
    g = diff(expr, case.wrt, order=case.order)
    return lambdify(g), how


def run(log=print, deadline_s=420.0, sizes=SIZES, with_jax=True, with_torch=True):
    start = time.perf_counter()
    lambdify, lambdify_name = find_lambdify()
    notes = []
    jax_ok = torch_ok = False
    if with_jax:
        try:
            import jax

            jax.config.update("jax_enable_x64", True)
            jax_ok = True
            notes.append(f"jax {jax.__version__} (jax.jit, x64)")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"jax n/a ({short_error(exc)})")
    if with_torch:
        try:
            import torch

            torch.set_num_threads(1)
            torch.set_default_dtype(torch.float64)
            torch_ok = True
            notes.append(f"torch {torch.__version__} (torch.func, float64, "
                         f"{torch.get_num_threads()} thread)")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"torch n/a ({short_error(exc)})")
    notes.append(f"mathcalc: {lambdify_name}" if lambdify else
                 "mathcalc: n/a — no lambdify yet (neither mc.lambdify nor "
                 "mathcalc.numeric.lambdify exists)")

    rows = []
    records = []
    rng = np.random.default_rng(0)
    for case in CASES:
        mc_fn = mc_err = None
        how = ""
        if lambdify is not None:
            try:
                with time_limit(60):
                    t0 = time.perf_counter()
                    mc_fn, how = _mathcalc_fn(case, lambdify)
                    build_s = time.perf_counter() - t0
            except (Exception, Timeout) as exc:  # noqa: BLE001
                mc_err = short_error(exc)
        else:
            mc_err = "n/a (no lambdify)"
        jax_prep = torch_prep = None
        jax_err = torch_err = None
        if jax_ok:
            try:
                jax_prep = make_jax(case)
            except Exception as exc:  # noqa: BLE001
                jax_err = short_error(exc)
        if torch_ok:
            try:
                torch_prep = make_torch(case)
            except Exception as exc:  # noqa: BLE001
                torch_err = short_error(exc)
        for n in sizes:
            dims = case.dims(n)
            vals = case.data(rng, dims)
            label = f"{case.name} [{', '.join(f'{k}={v}' for k, v in dims.items())}]"
            rec = dict(case=case.name, n=n, order=case.order, label=label)
            ref = case.hand(**vals)
            over_budget = time.perf_counter() - start > deadline_s

            # mathcalc, timed in alternation with the hand code (same load for both)
            hand_call = lambda: case.hand(**vals)  # noqa: E731
            mc_ok = False
            if mc_fn is not None:
                try:
                    with time_limit(120):
                        _check(mc_fn(**vals), ref, "mathcalc")
                        mc_ok = True
                except AssertionError as exc:
                    rec["mc_err"] = _wrong(exc)
                except (Exception, Timeout) as exc:  # noqa: BLE001
                    rec["mc_err"] = short_error(exc)
            else:
                rec["mc_err"] = mc_err
            if mc_ok:
                try:
                    with time_limit(180):
                        rec["hand"], rec["mc"] = time_interleaved(
                            [hand_call, lambda: mc_fn(**vals)])
                except (Exception, Timeout) as exc:  # noqa: BLE001
                    rec["mc_err"] = short_error(exc)
            if rec.get("hand") is None:
                rec["hand"] = time_call(hand_call)

            # competitors
            for tool, prep, err in (("jax", jax_prep, jax_err), ("torch", torch_prep, torch_err)):
                if (tool, n) in case.skip:
                    rec[f"{tool}_err"] = case.skip[(tool, n)]
                    continue
                if prep is None:
                    rec[f"{tool}_err"] = err or "n/a"
                    continue
                if over_budget:
                    rec[f"{tool}_err"] = "skipped (time budget)"
                    continue
                try:
                    with time_limit(120):
                        call = prep(vals)
                        _check(call(), ref, tool)
                        rec[tool] = time_call(call, max_single=0.5)
                except AssertionError as exc:
                    rec[f"{tool}_err"] = _wrong(exc)
                except (Exception, Timeout) as exc:  # noqa: BLE001
                    rec[f"{tool}_err"] = short_error(exc)
            rec["verdict"] = verdict(case, n, rec, sizes)
            records.append(rec)
            rows.append(_row(rec))
            log("  " + " | ".join(str(c) for c in rows[-1]))
    headers = ["case", "hand numpy", "mathcalc", "mc/hand", "jax.jit", "jax/hand",
               "torch.func", "torch/hand", "target"]
    return md_table(headers, rows), records, notes


def _ratio(rec, key):
    if rec.get(key) and rec.get("hand"):
        return rec[key] / rec["hand"]
    return None


def verdict(case: Case, n: int, rec: dict, sizes) -> str:
    if n == min(sizes) and n == 10:
        if rec.get("mc") is None:
            return f"overhead ≤ {OVERHEAD_TARGET_US:g} µs: n/a"
        over = (rec["mc"] - rec["hand"]) * 1e6
        rec["overhead_us"] = over
        ok = over <= OVERHEAD_TARGET_US
        return f"overhead {over:+.1f} µs ≤ {OVERHEAD_TARGET_US:g}: {'met' if ok else 'NOT MET'}"
    if n == max(sizes):
        target = GRAD_TARGET if case.order == 1 else HESS_TARGET
        r = _ratio(rec, "mc")
        if r is None:
            return f"≤ {target}×: n/a"
        return f"≤ {target}×: {'met' if r <= target else 'NOT MET'}"
    return ""


def _row(rec):
    def cell(key):
        return rec.get(f"{key}_err") or fmt_time(rec.get(key))

    def ratio(key):
        r = _ratio(rec, key)
        return fmt_ratio(r) if r is not None else ""

    return [rec["label"], fmt_time(rec["hand"]), cell("mc"), ratio("mc"), cell("jax"),
            ratio("jax"), cell("torch"), ratio("torch"), rec["verdict"]]


def report(log=print, **kw) -> str:
    table, records, notes = run(log=log, **kw)
    lines = ["### Lambdified derivatives vs hand-written numpy (issue 4 §6)", "",
             "Median time per call; ratios are to the hand-written numpy of the same formula "
             "(`X.T.dot(X)` for syrk, `np.outer`, block fills), measured in this run. Every "
             "implementation is checked against the hand result (rtol 1e-6) before it is timed. "
             f"Targets: gradients ≤ {GRAD_TARGET}× hand at n = 1000, Hessians ≤ {HESS_TARGET}× "
             f"(at the largest size run), per-call overhead ≤ {OVERHEAD_TARGET_US:g} µs at "
             "n = 10.", "",
             "Competitors: " + "; ".join(notes) + ".", "",
             "Sizes: least squares and logistic regression use m = 2n samples; the ReLU layer "
             "is n×n; the MLP has h = o = n; matrix factorisation has m = p = n and rank "
             "k = max(2, n/10), except its Hessian at n = 1000, where k = 2 (the (m,k,m,k) "
             "Hessian has (mk)² entries: 4·10⁶ at k = 2, 10¹⁰ at k = 100); there jax.hessian and "
             "torch.func.hessian are skipped: forward-over-reverse vmaps 2000 tangents, each "
             "with its own m×p residual (16 GB).", "",
             table, ""]
    not_met = [r for r in records if "NOT MET" in r.get("verdict", "")]
    if not_met:
        lines += ["Targets NOT met:", ""]
        for r in not_met:
            extra = (f" (mathcalc {fmt_ratio(_ratio(r, 'mc'))} hand)" if _ratio(r, "mc") else "")
            lines.append(f"- {r['label']}: {r['verdict']}{extra}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
