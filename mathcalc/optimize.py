"""Re-association for evaluation speed: distribute a product over a sum when cheaper.

The printed form of a derivative keeps sums factored, as a person writes it
(``-2*(X - U*V')*V``); evaluated as written that builds the m×p residual.
Distributed, ``2*(U*(V'*V) - X*V)`` needs only small products. Which is
cheaper depends on the sizes, so the choice is made by a flop count with the
sizes bound when a function is built.
"""

from __future__ import annotations

import math

import opt_einsum

from . import expr as E
from .numeric import symbols_spec

# Size assumed for a dimension name when none is bound.
ASSUMED_SIZE = 1000
# Sums with more terms than this are never distributed (the work grows as a product).
MAX_TERMS = 4
# An element-wise pass (a sum of matrices, a function applied) is bound by
# memory, not arithmetic: it costs this many flops of a BLAS product per entry.
MEMORY_BOUND = 4


def dim_size(dim, sizes: dict) -> int:
    return dim if isinstance(dim, int) else sizes.get(dim, ASSUMED_SIZE)


def numel(node: E.Node, sizes: dict) -> int:
    return math.prod(dim_size(d, sizes) for d in node.shape)


def own_cost(node: E.Node, sizes: dict) -> float:
    """Flops to compute ``node`` from its children."""
    if isinstance(node, E.Product):
        if not node.factors:
            return 0.0
        shapes = [tuple(dim_size(node.dims[i], sizes) for i in idx) for _, idx in node.factors]
        if len(node.factors) == 1:
            return float(math.prod(shapes[0]) or 1)
        spec = symbols_spec([idx for _, idx in node.factors], range(node.rank))
        _, info = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize="optimal"
                                           if len(shapes) <= 4 else "greedy")
        return float(info.opt_cost)
    if isinstance(node, (E.Inv, E.Det, E.LogDet)):
        return float(dim_size(node.arg.shape[0], sizes) ** 3)
    if isinstance(node, (E.Var, E.Num, E.Zero, E.Ones, E.Delta)):
        return 0.0
    if isinstance(node, E.Sum):
        return float(MEMORY_BOUND * numel(node, sizes) * len(node.terms))
    return float(MEMORY_BOUND * max(numel(node, sizes),
                                    numel(node.children()[0], sizes) if node.children() else 1))


def dag_cost(node: E.Node, sizes: dict, cache: dict | None = None) -> float:
    """Flops of the whole DAG, each shared subexpression counted once."""
    cache = {} if cache is None else cache
    total = 0.0
    for n in E.walk(node):
        if n not in cache:
            cache[n] = own_cost(n, sizes)
        total += cache[n]
    return total


def reassociate(node: E.Node, sizes: dict | None = None) -> E.Node:
    """An equal node that is cheaper to evaluate for these sizes (or the node itself)."""
    sizes = sizes or {}
    memo: dict = {}
    cache: dict = {}
    for n in E.walk(node):
        memo[n] = _cheapest(_rebuilt(n, memo), sizes, cache)
    return memo[node]


def _rebuilt(n: E.Node, memo: dict) -> E.Node:
    from .simplify import _rebuild

    return _rebuild(n, memo)


# Distributed terms are themselves re-associated this many levels deep, at most.
MAX_DEPTH = 2


def _cheapest(n: E.Node, sizes: dict, cache: dict, depth: int = 0) -> E.Node:
    if not isinstance(n, E.Product) or depth > MAX_DEPTH:
        return n
    best, best_cost = n, dag_cost(n, sizes, cache)
    for k, (factor, idx) in enumerate(n.factors):
        # Only sums of matrices (or larger) are worth distributing: the saving is
        # a matrix never built (A + A', the residual X - U*V'), while an
        # element-wise vector sum such as 1 - tanh(u).^2 costs next to nothing.
        if not isinstance(factor, E.Sum) or factor.rank < 2 or len(factor.terms) > MAX_TERMS:
            continue
        out = tuple(range(n.rank))
        others = [f for j, f in enumerate(n.factors) if j != k]
        terms = [E.product(others + [(t, idx)], out, coef=n.coef) for t in factor.terms]
        terms = [_cheapest(t, sizes, cache, depth + 1) for t in terms]
        candidate = E.add(*terms)
        cost = dag_cost(candidate, sizes, cache)
        if cost < best_cost:
            best, best_cost = candidate, cost
    return best


def size_trials(node: E.Node) -> list:
    """Size assignments that tell whether the cheapest form depends on the sizes."""
    names = sorted({d for n in E.walk(node) for d in n.shape if isinstance(d, str)})
    trials = [{}]
    if len(names) <= 6:
        trials += [{name: 10} for name in names]
    return trials
