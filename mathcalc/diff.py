"""The chain rule over the expression DAG, in reverse mode.

The rules (rules.py) say how a node's derivative depends, linearly, on its
children's derivatives. Reverse mode runs that map backwards: starting from
the result f, each node n gets its adjoint ∂f/∂n (shape ``f.shape +
n.shape``) once all its parents have contributed, and hands each child the
adjoint contracted with the child's coefficient in the rule. The adjoint of
X is ∂f/∂X in the layout of the spec (``f.shape + X.shape``).

Each rule is used as it is written: it is called with a placeholder for each
child's derivative (a variable no user can name), and the products it
returns are read as ``coefficient · placeholder``. So the rule table stays
the one source of truth, and a planted mistake in it shows in every mode.

Reverse mode keeps the work linear in the depth of a network: the adjoint of
a hidden layer has the layer's shape, while the forward Jacobians a forward
sweep carries have the layer's shape times X's. Applying ``diff_node`` again
gives Hessians and any order.
"""

from __future__ import annotations

from . import nodes as E
from .rules import RULES, Wrt, depends, var_adjoint, zero_derivative
from .simplify import simplify

# Placeholder names start with NUL, which the parser never accepts in a name.
_PLACEHOLDER = "\x00d"


def raw_derivative(node: E.Node, name: str, shape: tuple) -> E.Node:
    """∂node/∂name before simplification: a node of shape node.shape + shape."""
    wrt = Wrt(name, tuple(shape))
    order = E.walk(node)
    for n in order:  # every node a type the rules know, also where f does not depend on X
        if type(n) not in RULES:
            raise E.unknown_node("diff (rules.RULES)", n)
    if not depends(node, wrt):
        return zero_derivative(node, wrt)
    scalar_wrt = Wrt(name, ())  # the rules' own X axes stay empty: adjoints carry f's axes
    f_labels = tuple(("f", k) for k in range(node.rank))
    contributions: dict = {node: [_seed(node, f_labels)]}
    result = None
    for n in reversed(order):
        parts = contributions.pop(n, None)
        if parts is None:  # every path from f to n has a zero derivative (sign, step, a ./ 0)
            continue
        adjoint = E.add(*parts)
        if isinstance(n, E.Var):
            # the one variable that depends on X is X (symmetrised if X is symmetric)
            result = var_adjoint(n, adjoint, f_labels)
            continue
        for child, part in _pullback(n, adjoint, f_labels, scalar_wrt):
            contributions.setdefault(child, []).append(part)
    return zero_derivative(node, wrt) if result is None else result


def diff_node(node: E.Node, name: str, shape: tuple) -> E.Node:
    """∂node/∂name, simplified: a node of shape node.shape + shape."""
    return simplify(raw_derivative(node, name, shape))


def _seed(node: E.Node, f_labels: tuple) -> E.Node:
    """∂f/∂f: 1 for a scalar, the identity over f's axes otherwise."""
    if not f_labels:
        return E.num(1)
    n_labels = tuple(("n", k) for k in range(node.rank))
    return E.product([(E.eye(dim), (a, b)) for dim, a, b in zip(node.shape, f_labels, n_labels)],
                     f_labels + n_labels)


def _pullback(n: E.Node, adjoint: E.Node, f_labels: tuple, wrt: Wrt):
    """(child, contribution to ∂f/∂child) for each term of n's rule."""
    rule = RULES.get(type(n))
    if rule is None:
        raise E.unknown_node("diff (rules.RULES)", n)
    placeholders: dict = {}
    owner: dict = {}

    def d(child: E.Node) -> E.Node:
        if not depends(child, wrt):
            return zero_derivative(child, wrt)
        p = placeholders.get(child)
        if p is None:
            p = E.var(f"{_PLACEHOLDER}{len(placeholders)}", child.shape)
            placeholders[child] = p
            owner[p.name] = child
        return p

    linear = rule(n, d, wrt)
    if linear.shape != n.shape:  # a rule that breaks the layout is a bug
        raise AssertionError(f"rule for {type(n).__name__} gave shape {linear.shape}, "
                             f"expected {n.shape}")
    terms = linear.terms if isinstance(linear, E.Sum) else (linear,)
    for term in terms:
        if E.is_zero(term):
            continue
        coef, factors, dims = _as_product(term)
        found = [k for k, (f, _) in enumerate(factors)
                 if isinstance(f, E.Var) and f.name in owner]
        if len(found) != 1 or any(_PLACEHOLDER in name for f, _ in factors
                                  for name in f.free_vars if not isinstance(f, E.Var)):
            raise AssertionError(f"rule for {type(n).__name__} is not linear in the "
                                 f"derivatives of its children: {E.debug_str(term)}")
        (k,) = found
        placeholder, p_idx = factors[k]
        rest = [(f, tuple(_label(i, n.rank) for i in idx))
                for j, (f, idx) in enumerate(factors) if j != k]
        yield owner[placeholder.name], _contribution(adjoint, f_labels, n, coef, rest, p_idx,
                                                     dims)


def _as_product(term: E.Node) -> tuple:
    """(coef, factors, dims) of a rule's term; a bare placeholder is a one-factor product.

    A product past nodes.MAX_INLINED_FACTORS stays one factor of the products
    built on it, so the placeholder of a long product's rule can sit inside
    such a nested factor: the nested products on its way are opened here
    (their summed indices numbered after the term's), so the placeholder is
    a factor of the term itself.
    """
    if not isinstance(term, E.Product):
        return 1, ((term, tuple(range(term.rank))),), term.shape
    coef, factors, dims = term.coef, list(term.factors), list(term.dims)
    while True:
        k = next((k for k, (f, _) in enumerate(factors) if isinstance(f, E.Product)
                  and any(name.startswith(_PLACEHOLDER) for name in f.free_vars)), None)
        if k is None:
            return coef, tuple(factors), tuple(dims)
        inner, idx = factors.pop(k)
        mapping = dict(zip(range(inner.rank), idx))
        for i in range(inner.rank, inner.n_indices):
            mapping[i] = len(dims)
            dims.append(inner.dims[i])
        coef = coef * inner.coef
        factors[k:k] = [(f, tuple(mapping[i] for i in fidx)) for f, fidx in inner.factors]


def _label(i: int, rank: int):
    return ("n", i) if i < rank else ("s", i)


def _contribution(adjoint, f_labels, n, coef, rest, p_idx, dims) -> E.Node:
    """Σ adjoint[f, n-axes] · rest → f-axes + the child's axes (the placeholder's indices)."""
    n_labels = tuple(("n", k) for k in range(n.rank))
    out, extra = [], []
    for pos, i in enumerate(p_idx):
        label = _label(i, n.rank)
        if label in out:  # a diagonal of the child (tr, diag): δ ties the repeated axis
            fresh = ("d", pos)
            extra.append((E.eye(dims[i]), (label, fresh)))
            label = fresh
        out.append(label)
    # An axis of the child no other factor carries is broadcast: Σ of a sum(X) is ones.
    extra += [(E.ones((dims[i],)), (_label(i, n.rank),)) for i in set(p_idx)]
    factors = [(adjoint, f_labels + n_labels)] + list(rest) + extra
    return E.product(factors, f_labels + tuple(out), coef=coef)
