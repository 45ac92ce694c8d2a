"""The derivative rules: one entry per node type, each naming its identity.

A rule returns ∂node/∂X, a tensor of shape ``node.shape + X.shape`` (the
layout of ``jax.jacobian``), given the derivatives of the node's children
through ``d(child)``. Rules are written in index form with ``product``: the
node's own axes are labelled ``o0, o1, …``, X's axes ``x0, x1, …``, summed
axes anything else. Children that do not depend on X have derivative zero
and are skipped, never multiplied out.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from . import nodes as E
from .functions import FUNCTIONS


@dataclass(frozen=True)
class Wrt:
    """The variable differentiated by: its name, shape and axis labels."""

    name: str
    shape: tuple

    @property
    def labels(self) -> tuple:
        return tuple(f"x{k}" for k in range(len(self.shape)))


def out_labels(node: E.Node) -> tuple:
    return tuple(f"o{k}" for k in range(node.rank))


def depends(node: E.Node, wrt: Wrt) -> bool:
    return wrt.name in node.free_vars


def zero_derivative(node: E.Node, wrt: Wrt) -> E.Node:
    return E.zeros(node.shape + wrt.shape)


def rule_var(node: E.Var, d, wrt: Wrt) -> E.Node:
    """∂X(i,j)/∂X(k,l) = δ(i,k)·δ(j,l); any other variable is a constant.

    A symmetric X (declared symmetric or spd) has no independent entries: the
    derivative lives on the symmetric matrices, ∂S(i,j)/∂S(k,l) =
    (δ(i,k)δ(j,l) + δ(i,l)δ(j,k))/2, so a scalar's gradient is G_s = (G + Gᵀ)/2
    (Srinivasan & Panda 2019; SPEC 6) and Jacobians and Hessians of any order
    are symmetrised over S's axes by the chain rule alone.
    """
    if node.name != wrt.name:
        return zero_derivative(node, wrt)
    o, x = out_labels(node), wrt.labels
    if not o:
        return E.num(1)
    plain = E.product([(E.eye(dim), (a, b)) for dim, a, b in zip(node.shape, o, x)], o + x)
    if node.structure is None:
        return plain
    (n, _), (i, j), (k, l) = node.shape, o, x
    swapped = E.product([(E.eye(n), (i, l)), (E.eye(n), (j, k))], o + x)
    return E.add(E.scale(Fraction(1, 2), plain), E.scale(Fraction(1, 2), swapped))


def var_adjoint(node: E.Var, adjoint: E.Node, f_labels: tuple) -> E.Node:
    """∂f/∂X from X's adjoint (f's derivative with X's entries independent):
    the adjoint contracted with ∂X/∂X of ``rule_var``, term by term.

    For a plain X that is the adjoint itself; for a symmetric S it is the
    adjoint symmetrised over S's two axes, (J[…, i, j] + J[…, j, i])/2.
    """
    if node.structure is None:
        return adjoint
    wrt = Wrt(node.name, node.shape)
    own = out_labels(node)
    rule = RULES[E.Var](node, None, wrt)  # the table's entry, so a plant in it shows
    terms = rule.terms if isinstance(rule, E.Sum) else (rule,)
    return E.add(*[E.product([(adjoint, tuple(f_labels) + own), (t, own + wrt.labels)],
                             tuple(f_labels) + wrt.labels) for t in terms])


def rule_constant(node, d, wrt: Wrt) -> E.Node:
    """∂c/∂X = 0 for numbers, zeros, ones and identities."""
    return zero_derivative(node, wrt)


def rule_sum(node: E.Sum, d, wrt: Wrt) -> E.Node:
    """Linearity: ∂(Σ t)/∂X = Σ ∂t/∂X."""
    return E.add(*[d(t) for t in node.terms if depends(t, wrt)] or [zero_derivative(node, wrt)])


def rule_product(node: E.Product, d, wrt: Wrt) -> E.Node:
    """Product rule on the einsum: ∂(c·Π fₖ)/∂X = c·Σₖ (Π_{j≠k} fⱼ)·∂fₖ/∂X."""
    x = wrt.labels
    out = tuple(range(node.rank)) + x
    terms = []
    for k, (factor, idx) in enumerate(node.factors):
        if not depends(factor, wrt):
            continue
        factors = [(f, i) for j, (f, i) in enumerate(node.factors) if j != k]
        factors.append((d(factor), tuple(idx) + x))
        terms.append(E.product(factors, out, coef=node.coef))
    return E.add(*terms) if terms else zero_derivative(node, wrt)


def elementwise_chain(node: E.Node, partial: E.Node, operand: E.Node, d, wrt: Wrt) -> E.Node:
    """Chain rule for an element-wise node: ∂y(i)/∂X = y'(i)·∂u(i)/∂X.

    ``partial`` is ∂y/∂u element by element (node's shape); a scalar operand
    broadcast over the node contributes to every element.
    """
    if not depends(operand, wrt):
        return zero_derivative(node, wrt)
    o, x = out_labels(node), wrt.labels
    du = d(operand)
    if operand.rank == node.rank:
        return E.product([(partial, o), (du, o + x)], o + x)
    return E.product([(partial, o), (du, x)], o + x)


def rule_apply(node: E.Apply, d, wrt: Wrt) -> E.Node:
    """∂f(u)/∂X = f'(u) ⊙ ∂u/∂X, with f' from SymPy on the scalar form."""
    return elementwise_chain(node, FUNCTIONS[node.fn].derivative(node.arg), node.arg, d, wrt)


def _bsub(a: E.Node, b: E.Node) -> E.Node:
    """a - b with a scalar side broadcast."""
    shape = E.broadcast_shape(a, b)
    widen = (lambda n: n if n.shape == shape else E.hadamard(n, E.ones(shape)))
    return E.sub(widen(a), widen(b))


def rule_pow(node: E.Pow, d, wrt: Wrt) -> E.Node:
    """∂(u^e) = e·u^(e-1) ⊙ ∂u + u^e·log(u) ⊙ ∂e."""
    u, e = node.base, node.exponent
    terms = []
    if depends(u, wrt):
        lower = E.power(u, E.add(e, E.num(-1)) if not isinstance(e, E.Num) else E.num(e.value - 1))
        terms.append(elementwise_chain(node, E.hadamard(e, lower), u, d, wrt))
    if depends(e, wrt):
        terms.append(elementwise_chain(node, E.hadamard(node, E.apply("log", u)), e, d, wrt))
    return E.add(*terms) if terms else zero_derivative(node, wrt)


def rule_max(node: E.Max, d, wrt: Wrt) -> E.Node:
    """∂max(a,b) = step(a-b) ⊙ ∂a + step(b-a) ⊙ ∂b (0 on ties: the kink convention)."""
    a, b = node.left, node.right
    terms = [elementwise_chain(node, E.apply("step", _bsub(a, b)), a, d, wrt),
             elementwise_chain(node, E.apply("step", _bsub(b, a)), b, d, wrt)]
    return E.add(*terms)


def rule_min(node: E.Min, d, wrt: Wrt) -> E.Node:
    """∂min(a,b) = step(b-a) ⊙ ∂a + step(a-b) ⊙ ∂b (0 on ties)."""
    a, b = node.left, node.right
    terms = [elementwise_chain(node, E.apply("step", _bsub(b, a)), a, d, wrt),
             elementwise_chain(node, E.apply("step", _bsub(a, b)), b, d, wrt)]
    return E.add(*terms)


def rule_inv(node: E.Inv, d, wrt: Wrt) -> E.Node:
    """d inv(X) = -inv(X)·dX·inv(X)  (Matrix Cookbook eq. 59)."""
    x = wrt.labels
    return E.product([(node, ("o0", "a")), (d(node.arg), ("a", "b") + x), (node, ("b", "o1"))],
                     ("o0", "o1") + x, coef=-1)


def rule_det(node: E.Det, d, wrt: Wrt) -> E.Node:
    """d det(X) = det(X)·tr(inv(X)·dX)  (Jacobi's formula; Cookbook eq. 46)."""
    x = wrt.labels
    return E.product([(node, ()), (E.inv(node.arg), ("b", "a")), (d(node.arg), ("a", "b") + x)], x)


def rule_logdet(node: E.LogDet, d, wrt: Wrt) -> E.Node:
    """d logdet(X) = tr(inv(X)·dX)  (Cookbook eq. 57)."""
    x = wrt.labels
    return E.product([(E.inv(node.arg), ("b", "a")), (d(node.arg), ("a", "b") + x)], x)


def rule_softmax(node: E.Softmax, d, wrt: Wrt) -> E.Node:
    """∂softmax(v) = (diag(s) - s·s')·∂v with s = softmax(v)."""
    x = wrt.labels
    dv = d(node.arg)
    own = E.product([(node, ("o0",)), (dv, ("o0",) + x)], ("o0",) + x)
    cross = E.product([(node, ("o0",)), (node, ("a",)), (dv, ("a",) + x)], ("o0",) + x)
    return E.sub(own, cross)


def rule_logsumexp(node: E.LogSumExp, d, wrt: Wrt) -> E.Node:
    """∂logsumexp(v) = softmax(v)'·∂v."""
    x = wrt.labels
    return E.product([(E.softmax(node.arg), ("a",)), (d(node.arg), ("a",) + x)], x)


def _all_axes(node: E.Node) -> tuple:
    return tuple(f"a{k}" for k in range(node.rank))


def rule_norm2(node: E.Norm2, d, wrt: Wrt) -> E.Node:
    """∂‖X‖₂ = Σ X(i,j)·∂X(i,j) / ‖X‖₂  (Euclidean or Frobenius)."""
    x, a = wrt.labels, _all_axes(node.arg)
    return E.product([(node.arg, a), (E.power(node, E.num(-1)), ()), (d(node.arg), a + x)], x)


def rule_norm1(node: E.Norm1, d, wrt: Wrt) -> E.Node:
    """∂‖X‖₁ = Σ sign(X(i,j))·∂X(i,j)  (sign(0) = 0: the kink convention)."""
    x, a = wrt.labels, _all_axes(node.arg)
    return E.product([(E.apply("sign", node.arg), a), (d(node.arg), a + x)], x)


RULES = {
    E.Var: rule_var,
    E.Num: rule_constant,
    E.Zero: rule_constant,
    E.Ones: rule_constant,
    E.Delta: rule_constant,
    E.Sum: rule_sum,
    E.Product: rule_product,
    E.Apply: rule_apply,
    E.Pow: rule_pow,
    E.Max: rule_max,
    E.Min: rule_min,
    E.Inv: rule_inv,
    E.Det: rule_det,
    E.LogDet: rule_logdet,
    E.Softmax: rule_softmax,
    E.LogSumExp: rule_logsumexp,
    E.Norm1: rule_norm1,
    E.Norm2: rule_norm2,
}
