"""The one cost model of the back end: flops of a node, of a DAG, and contraction orders.

``optimize.reassociate`` compares forms with ``dag_cost``; the lowering
(``lower.py``) picks each product's pairwise order with ``best_path`` for the
sizes it is given (the argument sizes in lambdify, ``ASSUMED_SIZE`` for every
named dimension in codegen). Both read the same formulas, so lambdify and
codegen cannot disagree on what is cheap.
"""

from __future__ import annotations

import math
import random

import opt_einsum

from .. import nodes as E

# Size assumed for a dimension name when none is bound (codegen, build time).
ASSUMED_SIZE = 1000
# An element-wise pass (a sum of matrices, a function applied) is bound by
# memory, not arithmetic: it costs this many flops of a BLAS product per entry.
MEMORY_BOUND = 4


def symbols_spec(operand_labels, out) -> str:
    """opt_einsum subscripts over any number of indices (it renames them for numpy)."""
    sym = opt_einsum.get_symbol
    return ",".join("".join(sym(l) for l in ls) for ls in operand_labels) + "->" + \
        "".join(sym(l) for l in out)


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
    E.known("cost model", node)  # the rest: element-wise nodes, softmax, logsumexp, norms
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


def _search(n: int) -> str:
    # The exhaustive search is exponential in the factors and dynamic
    # programming nearly so on a deep chain's derivative (dozens of factors
    # sharing each index): 1 s a search at 32 factors. Past a dozen, greedy.
    return "optimal" if n <= 5 else "dp" if n <= 12 else "greedy"


def best_path(operand_labels, out, dims, sizes: dict):
    """opt_einsum's pairwise order for these sizes (unbound names: ASSUMED_SIZE), or None
    when its path is not pairwise."""
    spec = symbols_spec(operand_labels, out)
    shapes = [tuple(dim_size(dims[l], sizes) for l in ls) for ls in operand_labels]
    path, _ = opt_einsum.contract_path(spec, *shapes, shapes=True,
                                       optimize=_search(len(operand_labels)))
    path = [tuple(p) for p in path]
    return None if any(len(p) != 2 for p in path) else path


def order_depends_on_sizes(operand_labels, out, dims) -> bool:
    """Whether opt_einsum picks different orders at very different sizes."""
    names = sorted({d for d in dims if isinstance(d, str)})
    if not names:
        return False
    rng = random.Random(len(operand_labels) * 7919 + len(names))
    trials = [{n: 64 for n in names}] + [{n: rng.choice((3, 1000)) for n in names}
                                         for _ in range(6)]
    first = best_path(operand_labels, out, dims, trials[0])
    return any(best_path(operand_labels, out, dims, t) != first for t in trials[1:])
