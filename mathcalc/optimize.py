"""Re-association for evaluation speed: distribute a product over a sum when cheaper.

The printed form of a derivative keeps sums factored, as a person writes it
(``-2*(X - U*V')*V``); evaluated as written that builds the m×p residual.
Distributed, ``2*(U*(V'*V) - X*V)`` needs only small products. Which is
cheaper depends on the sizes, so the choice is made by a flop count with the
sizes bound when a function is built.
"""

from __future__ import annotations

from . import nodes as E
from .backend.cost import ASSUMED_SIZE, MEMORY_BOUND, dag_cost, dim_size, numel, own_cost  # noqa: F401

# Sums with more terms than this are never distributed (the work grows as a product).
MAX_TERMS = 4


def reassociate(node: E.Node, sizes: dict | None = None) -> E.Node:
    """An equal node that is cheaper to evaluate for these sizes (or the node itself)."""
    sizes = sizes or {}
    memo: dict = {}
    cache: dict = {}
    for n in E.walk(node):
        memo[n] = _cheapest(n.with_children([memo[k] for k in n.children()]), sizes, cache)
    return memo[node]


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
