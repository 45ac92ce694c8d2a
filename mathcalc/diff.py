"""The chain rule over the expression DAG.

Derivatives are accumulated from the leaves up (each node's Jacobian with
respect to X, of shape ``node.shape + X.shape``), once per distinct node, so
shared subexpressions are differentiated once and a deep network's
derivative grows linearly. Products are einsums, so whether the chain is
accumulated forwards or backwards makes no difference to the flattened
result: the contraction order is chosen later, when the result is
evaluated. Applying ``diff_node`` again gives Hessians and any order.
"""

from __future__ import annotations

from . import expr as E
from .errors import DiffError
from .rules import RULES, Wrt, depends, zero_derivative
from .simplify import simplify


def raw_derivative(node: E.Node, name: str, shape: tuple) -> E.Node:
    """∂node/∂name before simplification."""
    wrt = Wrt(name, tuple(shape))
    if not depends(node, wrt):
        return zero_derivative(node, wrt)
    done: dict = {}

    def d(child: E.Node) -> E.Node:
        if not depends(child, wrt):
            return zero_derivative(child, wrt)
        return done[child]

    for n in E.walk(node):
        if not depends(n, wrt):
            continue
        rule = RULES.get(type(n))
        if rule is None:
            raise DiffError(f"no derivative rule for {type(n).__name__}")
        result = rule(n, d, wrt)
        if result.shape != n.shape + wrt.shape:  # a rule that breaks the layout is a bug
            raise AssertionError(
                f"rule for {type(n).__name__} gave shape {result.shape}, "
                f"expected {n.shape + wrt.shape}")
        done[n] = result
    return done[node]


def diff_node(node: E.Node, name: str, shape: tuple) -> E.Node:
    """∂node/∂name, simplified: a node of shape node.shape + shape."""
    return simplify(raw_derivative(node, name, shape))
