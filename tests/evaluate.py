"""A small, independent numpy evaluator of the core nodes, and finite differences.

This is the reference the derivative tests compare against. It deliberately
shares nothing with ``mathcalc/lambdify.py``: it reads the nodes of
``mathcalc/nodes.py`` directly, one plain numpy call per node type, so a bug in
lambdify and a bug here are unlikely to agree.

- ``evaluate(node, values)``: the value of ``node`` with variables bound by
  name in ``values``; symbolic dimensions are bound from the arrays' shapes.
- ``fd_jacobian(f, wrt, values, h)``: central finite differences of ``f`` with
  respect to the variable ``wrt``; shape ``f.shape + X.shape`` (the layout of
  ``jax.jacobian`` and of the spec).
- ``rel_error(a, b)``: the norm-wise relative error used by the tests.
"""

from __future__ import annotations

import numpy as np

from mathcalc import nodes as E
from mathcalc.functions import FUNCTIONS


def bind_dims(node: E.Node, values: dict) -> dict:
    """Symbolic dimension name -> size, read from the arrays bound to the variables."""
    sizes: dict = {}
    for n in E.walk(node):
        if isinstance(n, E.Var) and n.name in values:
            arr = np.asarray(values[n.name])
            if arr.ndim != len(n.shape):
                raise ValueError(f"{n.name} has shape {n.shape}, got an array of shape {arr.shape}")
            for dim, size in zip(n.shape, arr.shape):
                if isinstance(dim, str):
                    if sizes.setdefault(dim, size) != size:
                        raise ValueError(f"dimension {dim} bound to {sizes[dim]} and {size}")
                elif dim != size:
                    raise ValueError(f"{n.name} has shape {n.shape}, got {arr.shape}")
    return sizes


def _size(dim, sizes: dict) -> int:
    if isinstance(dim, int):
        return dim
    if dim not in sizes:
        raise ValueError(f"dimension {dim!r} is bound by no variable")
    return sizes[dim]


def _shape(shape, sizes) -> tuple:
    return tuple(_size(d, sizes) for d in shape)


def evaluate(node: E.Node, values: dict, sizes: dict | None = None) -> np.ndarray:
    """The value of ``node`` at ``values`` (name -> array), as a float ndarray."""
    if sizes is None:
        sizes = bind_dims(node, values)
    memo: dict = {}
    with np.errstate(all="ignore"):
        for n in E.walk(node):
            memo[n] = np.asarray(_eval_one(n, memo, values, sizes), dtype=float)
    return memo[node]


def _eval_one(n: E.Node, memo: dict, values: dict, sizes: dict):
    kids = [memo[c] for c in n.children()]
    if isinstance(n, E.Var):
        return np.asarray(values[n.name], dtype=float)
    if isinstance(n, E.Num):
        return float(n.value)
    if isinstance(n, E.Zero):
        return np.zeros(_shape(n.shape, sizes))
    if isinstance(n, E.Ones):
        return np.ones(_shape(n.shape, sizes))
    if isinstance(n, E.Delta):
        return np.eye(_size(n.dim, sizes))
    if isinstance(n, E.Sum):
        total = kids[0]
        for k in kids[1:]:
            total = total + k
        return total
    if isinstance(n, E.Product):
        return float(n.coef) * np.einsum(n.einsum_spec(), *kids)
    if isinstance(n, E.Apply):
        return FUNCTIONS[n.fn].numpy(kids[0])
    if isinstance(n, E.Pow):
        return np.power(kids[0], kids[1])
    if isinstance(n, E.Max):
        return np.maximum(kids[0], kids[1])
    if isinstance(n, E.Min):
        return np.minimum(kids[0], kids[1])
    if isinstance(n, E.Inv):
        return np.linalg.inv(kids[0])
    if isinstance(n, E.Det):
        return np.linalg.det(kids[0])
    if isinstance(n, E.LogDet):
        d = np.linalg.det(kids[0])
        return np.log(d) if d > 0 else np.nan
    if isinstance(n, E.Softmax):
        v = kids[0]
        e = np.exp(v - np.max(v))
        return e / e.sum()
    if isinstance(n, E.LogSumExp):
        v = kids[0]
        m = np.max(v)
        return m + np.log(np.sum(np.exp(v - m)))
    if isinstance(n, E.Norm1):
        return np.sum(np.abs(kids[0]))
    if isinstance(n, E.Norm2):
        return np.sqrt(np.sum(kids[0] ** 2))
    raise TypeError(f"evaluate: unknown node type {type(n).__name__}")


def fd_jacobian(f: E.Node, wrt: str, values: dict, h: float = 1e-6) -> np.ndarray:
    """Central differences of f with respect to ``wrt``: shape f.shape + X.shape."""
    sizes = bind_dims(f, values)
    x0 = np.array(values[wrt], dtype=float)
    f_shape = _shape(f.shape, sizes)
    jac = np.zeros(f_shape + x0.shape)
    point = dict(values)
    for idx in np.ndindex(*x0.shape):
        xp = x0.copy()
        xp[idx] += h
        point[wrt] = xp
        fp = evaluate(f, point, sizes)
        xm = x0.copy()
        xm[idx] -= h
        point[wrt] = xm
        fm = evaluate(f, point, sizes)
        jac[(Ellipsis,) + idx] = (fp - fm) / (2 * h)
    return jac


def rel_error(a, b, floor: float = 1e-3) -> float:
    """max|a - b| / max(max|a|, max|b|, floor): norm-wise relative error (inf on NaN)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)), floor)
    return float(np.max(np.abs(a - b)) / scale)
