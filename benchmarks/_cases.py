"""The benchmark problems: data, hand-written reference code, and the same functions for jax/torch.

One ``Case`` per derivative. Each carries

- ``hand``: the derivative as an expert writes it by hand, in numpy (or cupy:
  every hand function takes ``xp``, the array module). These are the
  references every other implementation is checked against, and the numpy
  ones are the bar the numpy backend is measured against, so they are the
  fastest forms we know, not the literal formula: Gram products as syrk
  (``Xs.T @ Xs`` of one buffer), ``X'*diag(d)*X`` with d >= 0 as the syrk of
  ``X .* sqrt(d)``, a 0/1 mask times an outer product as a masked row fill,
  the I ⊗ B Hessian as a block fill of a zero array;
- ``f``: the scalar function itself written against an array namespace
  (``jax.numpy`` or ``torch``), for ``jax.grad``/``jax.hessian`` and
  ``torch.func.grad``/``torch.func.hessian``;
- ``text``/``shapes``/``wrt``/``order``: the same problem for mathcalc.

Nothing here times anything.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

# Dense Hessians (the forward-over-reverse competitors can only be beaten by a
# constant factor there) and structured ones (mathcalc's Hessian is a block
# fill; jax.hessian/torch.func.hessian push one tangent per entry of U).
DENSE = "dense"
STRUCTURED = "structured"


@dataclass
class Case:
    name: str
    text: str
    shapes: dict
    wrt: str
    order: int
    args: tuple  # argument order of ``f`` (and of the jax / torch functions)
    dims: Callable  # n -> {dim name: size}
    data: Callable  # (rng, dims) -> {name: float64 array}
    hand: Callable  # (**vals, xp=np) -> array
    f: Callable  # (ops, *args) -> scalar
    kind: Optional[str] = None  # Hessians: DENSE or STRUCTURED
    # Bytes the forward-over-reverse Hessian of jax/torch needs at these dims
    # (one tangent per entry of wrt, each with its own largest intermediate).
    fwd_rev_bytes: Optional[Callable] = None
    # Sizes added to the jax/torch tables: where the competitor cannot run at
    # n = 1000, the largest size below it where it fits is where the target is judged.
    extra_sizes: tuple = ()


# ---------------------------------------------------------------------------
# Data (float64; cast by the caller for float32 runs)


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
# Hand-written: what an expert writes for the same derivative. Each was timed
# against the obvious alternatives (benchmarks/NOTES.md) and is the fastest
# form found with one BLAS thread at n = 1000.


def h_xax_grad(x, A, xp=np):
    # Two matrix-vector products read A twice; (A + A.T) @ x would also write n².
    return A.dot(x) + x.dot(A)


def h_xax_hess(x, A, xp=np):
    return A + A.T


def h_lsq_grad(X, w, y, xp=np):
    return 2.0 * X.T.dot(X.dot(w) - y)


def h_lsq_hess(X, w, y, xp=np):
    G = X.T @ X  # the same buffer on both sides: numpy calls syrk (half the flops of gemm)
    G *= 2.0  # in place: no second n×n array
    return G


def h_logistic_grad(X, w, y, xp=np):
    return X.T.dot(-y / (1.0 + xp.exp(y * X.dot(w))))


def h_logistic_hess(X, w, y, xp=np):
    # X'*diag(d)*X with d = y.^2 .* s .* (1 - s) >= 0 (s = sigmoid(-y .* (X*w))):
    # the syrk of X .* sqrt(d), half the flops of X.T @ (d[:, None] * X).
    s = 1.0 / (1.0 + xp.exp(y * X.dot(w)))
    Xs = X * xp.sqrt(y * y * s * (1.0 - s))[:, None]
    return Xs.T @ Xs


def h_relu_grad(W, x, b, xp=np):
    # step(W*x + b)*x': rows of x where the unit is active, zeros elsewhere.
    G = xp.zeros(W.shape, dtype=W.dtype)
    G[W.dot(x) + b > 0] = x
    return G


def h_mlp_grad(W1, x, b1, W2, t, xp=np):
    # The masked row fill does not pay here: the active rows are scaled
    # (np.outer of v[mask] plus the scatter is slower than one np.outer).
    z = W1.dot(x) + b1
    r = W2.dot(xp.maximum(z, 0.0)) - t
    return xp.outer(2.0 * W2.T.dot(r) * (z > 0), x)


def h_mf_grad(X, U, V, xp=np):
    return 2.0 * (U.dot(V.T @ V) - X.dot(V))


def h_mf_hess(X, U, V, xp=np):
    m, k = U.shape
    H = xp.zeros((m, k, m, k), dtype=U.dtype)
    idx = xp.arange(m)
    H[idx, :, idx, :] = 2.0 * (V.T @ V)  # block fill of I ⊗ 2V'V
    return H


def h_logdet_grad(X, S, xp=np):
    Xi = xp.linalg.inv(X)
    return (Xi - Xi.dot(S).dot(Xi)).T


# ---------------------------------------------------------------------------
# The same functions for jax and torch (o: a namespace of array functions)


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


def jax_ops():
    import jax
    import jax.numpy as jnp

    return types.SimpleNamespace(sum=jnp.sum, exp=jnp.exp, log=jnp.log, relu=jax.nn.relu,
                                 inv=jnp.linalg.inv, trace=jnp.trace,
                                 logdet=lambda X: jnp.linalg.slogdet(X)[1])


def torch_ops():
    import torch

    return types.SimpleNamespace(sum=torch.sum, exp=torch.exp, log=torch.log, relu=torch.relu,
                                 inv=torch.linalg.inv, trace=torch.trace,
                                 logdet=lambda X: torch.linalg.slogdet(X)[1])


# ---------------------------------------------------------------------------
# Sizes


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


def _bytes_mf(d, itemsize=8):
    return d["m"] * d["k"] * d["m"] * d["p"] * itemsize  # m*k tangents, each an m×p residual


def _bytes_vec(d, itemsize=8):
    return d["n"] * d.get("m", d["n"]) * itemsize  # n tangents, each an m-vector


V_, M_ = ("n",), ("n", "n")
_LSQ = dict(X=("m", "n"), w=V_, y=("m",))
_MF = dict(X=("m", "p"), U=("m", "k"), V=("p", "k"))

CASES = [
    Case("x'*A*x", "x'*A*x", dict(x=V_, A=M_), "x", 1, ("x", "A"),
         _dims_n, d_xax, h_xax_grad, f_xax),
    Case("least squares", "norm2(X*w - y)^2", _LSQ, "w", 1, ("X", "w", "y"),
         _dims_mn2, d_lsq, h_lsq_grad, f_lsq),
    Case("logistic regression", "sum(log(1 + exp(-y .* (X*w))))", _LSQ, "w", 1,
         ("X", "w", "y"), _dims_mn2, d_logistic, h_logistic_grad, f_logistic),
    Case("ReLU layer (d/dW)", "sum(relu(W*x + b))", dict(W=("m", "n"), x=V_, b=("m",)), "W",
         1, ("W", "x", "b"), _dims_mn, d_relu, h_relu_grad, f_relu),
    Case("two-layer MLP (d/dW1)", "norm2(W2*relu(W1*x + b1) - t)^2",
         dict(W1=("h", "n"), x=V_, b1=("h",), W2=("o", "h"), t=("o",)), "W1", 1,
         ("W1", "x", "b1", "W2", "t"), _dims_mlp, d_mlp, h_mlp_grad, f_mlp),
    Case("matrix factorisation (d/dU)", "norm2(X - U*V')^2", _MF, "U", 1, ("X", "U", "V"),
         _dims_mf, d_mf, h_mf_grad, f_mf),
    Case("logdet(X) + tr(S*inv(X))", "logdet(X) + tr(S*inv(X))", dict(X=M_, S=M_), "X", 1,
         ("X", "S"), _dims_n, d_logdet, h_logdet_grad, f_logdet),
    Case("Hessian x'*A*x", "x'*A*x", dict(x=V_, A=M_), "x", 2, ("x", "A"),
         _dims_n, d_xax, h_xax_hess, f_xax, kind=DENSE, fwd_rev_bytes=_bytes_vec),
    Case("Hessian least squares", "norm2(X*w - y)^2", _LSQ, "w", 2, ("X", "w", "y"),
         _dims_mn2, d_lsq, h_lsq_hess, f_lsq, kind=DENSE, fwd_rev_bytes=_bytes_vec),
    Case("Hessian logistic regression", "sum(log(1 + exp(-y .* (X*w))))", _LSQ, "w", 2,
         ("X", "w", "y"), _dims_mn2, d_logistic, h_logistic_hess, f_logistic, kind=DENSE,
         fwd_rev_bytes=_bytes_vec),
    Case("Hessian matrix factorisation", "norm2(X - U*V')^2", _MF, "U", 2, ("X", "U", "V"),
         _dims_mf_hess, d_mf, h_mf_hess, f_mf, kind=STRUCTURED, fwd_rev_bytes=_bytes_mf,
         extra_sizes=(300,)),
]


def label(case: Case, dims: dict) -> str:
    return f"{case.name} [{', '.join(f'{k}={v}' for k, v in dims.items())}]"


# ---------------------------------------------------------------------------
# mathcalc's side


_EXPRS: dict = {}


def derivative(case: Case):
    """diff(parse(case.text), case.wrt, order=case.order), built once per case."""
    from _common import build, diff_fn

    if case.name not in _EXPRS:
        expr, how = build(case.text, case.shapes)
        _EXPRS[case.name] = (diff_fn()(expr, case.wrt, order=case.order), how)
    return _EXPRS[case.name]


def mc_function(case: Case, backend: str):
    """mc.lambdify(derivative, backend=...): the numpy default is asked for without the keyword."""
    from _common import find_lambdify

    lambdify, _ = find_lambdify()
    if lambdify is None:
        raise RuntimeError("no mc.lambdify")
    g, _ = derivative(case)
    return lambdify(g) if backend == "numpy" else lambdify(g, backend=backend)


# ---------------------------------------------------------------------------
# Checking a result against the reference


def to_numpy(out):
    if hasattr(out, "detach"):  # torch
        return out.detach().cpu().numpy()
    if hasattr(out, "get") and type(out).__module__.startswith("cupy"):
        return out.get()
    return np.asarray(out)


def check(out, ref, what, rtol=1e-6, dtype=None):
    """AssertionError unless ``out`` matches ``ref`` (shape, values, and dtype when given)."""
    ref = to_numpy(ref)
    got = to_numpy(out)
    if got.shape != ref.shape:
        raise AssertionError(f"{what} returned shape {got.shape}, reference {ref.shape}")
    if dtype is not None and got.dtype != np.dtype(dtype):
        raise AssertionError(f"{what} returned {got.dtype} for {np.dtype(dtype)} inputs")
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale,
                               err_msg=f"{what} disagrees with the reference")


def wrong(exc: AssertionError) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    keep = [ln for ln in lines if "Max relative" in ln or "shape" in ln or "Mismatched" in ln
            or "returned" in ln]
    return "error: WRONG RESULT — " + ("; ".join(keep[:2]) or (lines[0] if lines else "mismatch"))
