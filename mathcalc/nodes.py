"""The closed set of expression nodes, and constructors that check shapes and fold.

Every multiplication is one node, ``Product``: an einsum with a rational
coefficient, ``coef * Σ Π factor[indices] -> out``. Matrix products, inner and
outer products, Hadamard products, transposes, traces, sums and diagonals are
all products; derivative rules, printing and lambdify handle the one node
(Laue, Mitterreiter, Giesen, AAAI 2020).

Nodes are frozen (assigning to any attribute raises) and hashed by a structural
digest computed once, so equal subexpressions compare equal in O(1) and work on
them can be cached. The set of node types is closed (``NODE_TYPES``): a pass
handles every one and raises ``UnknownNodeError`` on anything else; a pass that
only replaces children goes through ``Node.with_children``.

Dimensions are ints or names (``"n"``); a name never equals an int. Indices
inside a Product are ints: ``0 .. rank-1`` are the output axes in order, the
rest are summed.
"""

from __future__ import annotations

import hashlib
import itertools
from fractions import Fraction
from typing import Iterable, Sequence, Union

from .errors import ShapeError

Dim = Union[int, str]
Shape = tuple
Number = Union[Fraction, float]


def as_number(value) -> Number:
    """An exact Fraction for ints, rationals and decimal strings; a float otherwise."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        return Fraction(int(value))
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, str):
        return Fraction(value)
    value = float(value)
    if value.is_integer() and abs(value) < 2**53:
        return Fraction(int(value))
    return value


def _digest(*parts) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, Node):
            h.update(b"N")
            h.update(part._digest)
        elif isinstance(part, Fraction):
            # hex, not repr: Python refuses decimal conversion of huge ints
            h.update(f"F{part.numerator:x}/{part.denominator:x}".encode())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(repr(part).encode())
        h.update(b"|")
    return h.digest()


class UnknownNodeError(TypeError):
    """A pass met a node type it does not handle: a bug in mathcalc, not bad input.

    The node types are a closed set (``NODE_TYPES``); a new one must be taught to
    every pass, and tests/test_node_types.py walks each type through each pass."""


def unknown_node(where: str, node) -> UnknownNodeError:
    """The error a pass raises (``raise unknown_node("latex", node)``) on a node type
    it does not handle, instead of a silent fallback."""
    return UnknownNodeError(f"{where}: unknown node type {type(node).__name__} "
                            f"(every pass handles exactly the types of nodes.NODE_TYPES)")


def known(where: str, node):
    """``node``, where its type is one of NODE_TYPES; else ``unknown_node`` is raised.
    For a pass that reads only some node types and passes the rest by."""
    if type(node) not in _CLOSED_SET:
        raise unknown_node(where, node)
    return node


class Node:
    """Base of all expression nodes: a tensor with a shape and children.

    Frozen: ``__setattr__`` always raises. Constructors fill the slots once, through
    ``_set`` (``object.__setattr__``), which is also how the derived caches
    (``_digest``, ``_hash``, ``_free``, ``_sym``) are stored, eagerly, at construction.
    """

    __slots__ = ("shape", "_digest", "_hash", "_free", "_sym")

    def _set(self, **fields) -> None:
        """Fill slots: for constructors (and unpickling) only."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _init(self, shape: Shape, *parts) -> None:
        shape = tuple(shape)
        digest = _digest(type(self).__name__, shape, *parts)
        # Computed eagerly from the children (built first), so deep trees never recurse.
        free = frozenset()
        for child in self.children():
            free = free | child._free if child._free else free
        self._set(shape=shape, _digest=digest, _hash=int.from_bytes(digest[:8], "little"),
                  _free=free)
        self._set(_sym=self.rank == 2 and self._symmetric())

    def _symmetric(self) -> bool:
        """Whether the matrix equals its transpose by construction (see
        ``is_symmetric``); False unless a subclass knows better."""
        return False

    @property
    def rank(self) -> int:
        return len(self.shape)

    def children(self) -> tuple:
        return ()

    def with_children(self, children) -> "Node":
        """This node with ``children`` in place of ``children()`` (same number, same
        order), rebuilt through the folding constructors: ``add`` drops zeros and
        collects terms, ``product`` contracts deltas, ``inv(inv(X))`` is X. The node
        itself where every child is the same object. The one way passes rebuild."""
        if type(self) not in _CLOSED_SET:
            raise unknown_node("with_children", self)
        new = tuple(children)
        old = self.children()
        if len(new) != len(old):
            raise TypeError(f"with_children: {type(self).__name__} has {len(old)} children, "
                            f"{len(new)} given")
        if all(a is b for a, b in zip(new, old)):
            return self
        return self._rebuilt(new)

    def _rebuilt(self, new: tuple) -> "Node":
        """``with_children`` for a node with children, once something changed; each
        type with children defines it through its constructor."""
        raise unknown_node("with_children", self)

    @property
    def free_vars(self) -> frozenset:
        """Names of the variables this node depends on."""
        return self._free

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, Node) and self._digest == other._digest)

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} nodes are frozen: cannot set {name!r} "
                             f"(build a new node: the constructors, with_children)")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} nodes are frozen: cannot delete {name!r}")

    def __setstate__(self, state) -> None:
        # pickle and copy restore the slots here (their default would call __setattr__)
        _, slots = state
        self._set(**slots)

    def __repr__(self) -> str:
        return debug_str(self)

    def sort_key(self) -> bytes:
        """A deterministic key (the same in every process) for canonical orderings."""
        return self._digest


# ---------------------------------------------------------------------------
# Leaves


STRUCTURES = ("symmetric", "spd")  # spd: symmetric positive definite


class Var(Node):
    """A variable; ``structure`` is None, ``"symmetric"`` or ``"spd"`` (a square matrix
    equal to its transpose, and positive definite): a property of the variable,
    so S' is S and its derivative lives on the symmetric matrices (rules.rule_var)."""

    __slots__ = ("name", "structure")

    def __init__(self, name: str, shape: Shape, structure: str | None = None):
        shape = tuple(shape)
        if structure is not None and (structure not in STRUCTURES or len(shape) != 2
                                      or shape[0] != shape[1]):
            raise ShapeError(f"{name!r} of shape {shape} cannot be {structure!r}: structure is "
                             f"one of {', '.join(STRUCTURES)}, for a square matrix")
        self._set(name=name, structure=structure)
        # (the structure joins the digest only when there is one: plain variables
        # hash as they always have)
        self._init(shape, name, *((structure,) if structure else ()))
        self._set(_free=frozenset((name,)))

    def _symmetric(self) -> bool:
        return self.structure is not None


class Num(Node):
    """A scalar constant: an exact Fraction where possible, else a float."""

    __slots__ = ("value",)

    def __init__(self, value):
        self._set(value=as_number(value))
        self._init((), self.value)


class Zero(Node):
    """A tensor of zeros of any shape: the symbolic zero rules skip."""

    __slots__ = ()

    def __init__(self, shape: Shape):
        self._init(shape)


class Ones(Node):
    """A tensor of ones of any shape (scalar broadcasting, sums over an axis)."""

    __slots__ = ()

    def __init__(self, shape: Shape):
        self._init(shape)


class Delta(Node):
    """The identity matrix δ(i,j) of one dimension."""

    __slots__ = ("dim",)

    def __init__(self, dim: Dim):
        self._set(dim=dim)
        self._init((dim, dim))

    def _symmetric(self) -> bool:
        return True  # δ(i,j) = δ(j,i): one orientation in every product


# ---------------------------------------------------------------------------
# Sums and products


class Sum(Node):
    """A sum of two or more terms of one shape (built by ``add``)."""

    __slots__ = ("terms",)

    def __init__(self, terms: tuple, shape: Shape):
        self._set(terms=tuple(terms))
        self._init(shape, *self.terms)

    def children(self):
        return self.terms

    def _rebuilt(self, new):
        return add(*new)

    def _symmetric(self) -> bool:
        return _all_symmetric(self.terms)


class Product(Node):
    """``coef * Σ_dummies Π factors[i][indices[i]]`` with output indices 0..rank-1.

    ``factors`` is a tuple of (node, indices) pairs; ``dims[k]`` is the size
    of index k. Built only by ``product``, which flattens, folds constants,
    contracts deltas and canonicalises the index names.
    """

    __slots__ = ("coef", "factors", "dims")

    def __init__(self, coef: Number, factors: tuple, dims: tuple, rank: int):
        self._set(coef=coef, factors=tuple(factors), dims=tuple(dims))
        parts = [coef, rank, self.dims]
        for node, idx in self.factors:
            parts.append(node)
            parts.append(idx)
        self._init(self.dims[:rank], *parts)

    def children(self):
        return tuple(node for node, _ in self.factors)

    def _rebuilt(self, new):
        return product([(c, idx) for c, (_, idx) in zip(new, self.factors)],
                       tuple(range(self.rank)), coef=self.coef)

    def _symmetric(self) -> bool:
        # c·S, S .* T, a·S: every matrix factor symmetric and on the two output axes
        if self.n_indices != 2:
            return False
        mats = [f for f, idx in self.factors if f.rank]
        return all(len(set(idx)) == 2 for f, idx in self.factors if f.rank) and \
            _all_symmetric(mats)

    @property
    def n_indices(self) -> int:
        return len(self.dims)

    def einsum_spec(self) -> str:
        """The numpy einsum subscripts of this product (coefficient excluded)."""
        letters = _einsum_letters(self.n_indices)
        ins = ",".join("".join(letters[i] for i in idx) for _, idx in self.factors)
        return f"{ins}->{''.join(letters[:self.rank])}"


def _einsum_letters(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if n > len(letters):
        raise ShapeError(f"a product with {n} indices is more than einsum can name")
    return letters[:n]


# ---------------------------------------------------------------------------
# Element-wise nodes


class Apply(Node):
    """An element-wise function from the function table applied to a tensor."""

    __slots__ = ("fn", "arg")

    def __init__(self, fn: str, arg: Node):
        self._set(fn=fn, arg=arg)
        self._init(arg.shape, fn, arg)

    def children(self):
        return (self.arg,)

    def _rebuilt(self, new):
        return apply(self.fn, *new)

    def _symmetric(self) -> bool:
        return self.arg._sym


class _Binary(Node):
    """An element-wise binary node; a scalar operand broadcasts over the other."""

    __slots__ = ("left", "right")

    def __init__(self, left: Node, right: Node):
        self._set(left=left, right=right)
        self._init(broadcast_shape(left, right), left, right)

    def children(self):
        return (self.left, self.right)

    def _symmetric(self) -> bool:
        return _all_symmetric([c for c in (self.left, self.right) if c.rank])


class Pow(_Binary):
    """``base .^ exponent``, element-wise (the scalar ``^`` is the rank-0 case)."""

    __slots__ = ()

    @property
    def base(self):
        return self.left

    @property
    def exponent(self):
        return self.right

    def _rebuilt(self, new):
        return power(*new)


class Max(_Binary):
    __slots__ = ()

    def _rebuilt(self, new):
        return maximum(*new)


class Min(_Binary):
    __slots__ = ()

    def _rebuilt(self, new):
        return minimum(*new)


def broadcast_shape(a: Node, b: Node) -> Shape:
    if a.rank == 0:
        return b.shape
    if b.rank == 0 or a.shape == b.shape:
        return a.shape
    raise ShapeError(f"element-wise operands of shapes {a.shape} and {b.shape} do not match")


# ---------------------------------------------------------------------------
# Matrix and vector functions


class _Unary(Node):
    __slots__ = ("arg",)
    needs = "any"  # "square", "vector" or "any"
    scalar_result = True

    def __init__(self, arg: Node):
        _check_arg(type(self).__name__.lower(), self.needs, arg)
        self._set(arg=arg)
        self._init(() if self.scalar_result else arg.shape, arg)

    def children(self):
        return (self.arg,)


def _check_arg(name: str, needs: str, arg: Node) -> None:
    if needs == "square" and not (arg.rank == 2 and arg.shape[0] == arg.shape[1]):
        raise ShapeError(f"{name} needs a square matrix, not shape {arg.shape}")
    if needs == "vector" and arg.rank != 1:
        raise ShapeError(f"{name} needs a vector, not shape {arg.shape}")


class Inv(_Unary):
    __slots__ = ()
    needs = "square"
    scalar_result = False

    def _symmetric(self) -> bool:
        return self.arg._sym

    def _rebuilt(self, new):
        return inv(*new)


class Det(_Unary):
    __slots__ = ()
    needs = "square"

    def _rebuilt(self, new):
        return det(*new)


class LogDet(_Unary):
    __slots__ = ()
    needs = "square"

    def _rebuilt(self, new):
        return logdet(*new)


class Softmax(_Unary):
    __slots__ = ()
    needs = "vector"
    scalar_result = False

    def _rebuilt(self, new):
        return softmax(*new)


class LogSumExp(_Unary):
    __slots__ = ()
    needs = "vector"

    def _rebuilt(self, new):
        return logsumexp(*new)


class Norm1(_Unary):
    __slots__ = ()

    def _rebuilt(self, new):
        return norm1(*new)


class Norm2(_Unary):
    __slots__ = ()

    def _rebuilt(self, new):
        return norm2(*new)


def _all_symmetric(mats) -> bool:
    """Matrices each symmetric (square ones and zeros count), at least one of them not
    a constant of that kind."""
    return any(m._sym for m in mats) and all(m._sym or _constant_symmetric(m) for m in mats)


def _constant_symmetric(node: Node) -> bool:
    return isinstance(node, (Ones, Zero)) and node.rank == 2 and node.shape[0] == node.shape[1]


def is_symmetric(node: Node) -> bool:
    """Whether ``node`` is a matrix equal to its transpose by construction: I, and
    S, inv(S), S + I, exp(S), c·S for S declared symmetric. (Only what follows
    from its parts: B*B' is symmetric too, but is not reported.)"""
    return node._sym


NODE_TYPES = (Var, Num, Zero, Ones, Delta, Sum, Product, Apply, Pow, Max, Min,
              Inv, Det, LogDet, Softmax, LogSumExp, Norm1, Norm2)
_CLOSED_SET = frozenset(NODE_TYPES)  # exact types: a subclass of one is not one of them


# ---------------------------------------------------------------------------
# Constructors: the only way nodes should be built outside this module.

ONE = Num(1)


def num(value) -> Node:
    return Num(value)


def var(name: str, shape: Shape = (), structure: str | None = None) -> Var:
    return Var(name, tuple(shape), structure)


def zeros(shape: Shape) -> Node:
    shape = tuple(shape)
    return Num(0) if not shape else Zero(shape)


def ones(shape: Shape) -> Node:
    shape = tuple(shape)
    return ONE if not shape else Ones(shape)


def eye(dim: Dim) -> Node:
    return Delta(dim)


def is_zero(node: Node) -> bool:
    return isinstance(node, Zero) or (isinstance(node, Num) and node.value == 0)


def is_one(node: Node) -> bool:
    return isinstance(node, Num) and node.value == 1


def add(*terms: Node) -> Node:
    """The sum of terms of one shape; flattens, drops zeros, collects like terms."""
    if not terms:
        raise ShapeError("add needs at least one term")
    shape = terms[0].shape
    for t in terms:
        if t.shape != shape:
            raise ShapeError(f"cannot add shapes {shape} and {t.shape}")
    flat = []
    stack = list(reversed(terms))
    while stack:
        t = stack.pop()
        if isinstance(t, Sum):
            stack.extend(reversed(t.terms))
        elif not is_zero(t) and not (isinstance(t, Product) and t.coef == 0):
            flat.append(t)
    coefs: dict = {}
    for t in flat:
        c, base = split_coef(t)
        coefs[base] = coefs.get(base, 0) + c
    kept = [scale(c, base) for base, c in coefs.items() if c != 0]
    # Fold constant terms into one number.
    if not kept:
        return zeros(shape)
    if len(kept) == 1:
        return kept[0]
    kept.sort(key=Node.sort_key)
    return Sum(tuple(kept), shape)


def split_coef(node: Node) -> tuple:
    """(c, rest) with node == c * rest and rest carrying no numeric coefficient."""
    if isinstance(node, Num):
        return node.value, ONE
    if isinstance(node, Product) and node.coef != 1:
        identity = tuple(range(node.rank))
        if len(node.factors) == 1 and node.factors[0][1] == identity and node.n_indices == node.rank:
            return node.coef, node.factors[0][0]
        return node.coef, Product(Fraction(1), node.factors, node.dims, node.rank)
    return Fraction(1), node


def scale(c, node: Node) -> Node:
    """``c * node`` for a number c."""
    c = as_number(c)
    if c == 1:
        return node
    if c == 0 or is_zero(node):
        return zeros(node.shape)
    if isinstance(node, Num):
        return Num(c * node.value)
    labels = tuple(range(node.rank))
    return product([(node, labels)], labels, coef=c)


def neg(node: Node) -> Node:
    return scale(-1, node)


def sub(a: Node, b: Node) -> Node:
    return add(a, neg(b))


class _Fresh:
    """A label no caller can have used: summed indices of inlined products."""

    __slots__ = ()
    _counter = itertools.count()

    def __new__(cls):
        return ("_fresh", next(cls._counter))


# A nested product of more factors than this stays one factor of the product
# that uses it. Inlining it would copy it into every product built on it: in
# a deep network each layer's adjoint holds the layers above, and building
# them all would take time quadratic in the depth. Derivatives of ordinary
# expressions have products of at most a handful of factors.
MAX_INLINED_FACTORS = 12


def product(factors: Iterable, out: Sequence, coef=1) -> Node:
    """``coef * Σ Π node[labels] -> out``, an einsum with arbitrary hashable labels.

    ``factors`` is a sequence of ``(node, labels)``; a label in ``out`` is an
    output axis, any other is summed. Nested products are inlined, numbers
    multiply into the coefficient, identities are contracted away, ones drop
    out, powers of one scalar merge, and the result is canonical.
    """
    coef = as_number(coef)
    out = tuple(out)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated output index in {out}")
    items = []  # (node, labels) still to place
    ones_labels = []  # labels of rank-1 ones factors
    dims: dict = {}
    zero = False

    def bind(label, dim):
        old = dims.setdefault(label, dim)
        if old != dim or type(old) is not type(dim):
            raise ShapeError(f"index of size {old} meets size {dim}")

    stack = _cancel_scalar_powers([(node, tuple(labels)) for node, labels in factors])[::-1]
    while stack:
        node, labels = stack.pop()
        if len(labels) != node.rank:
            raise ShapeError(f"{len(labels)} indices given for a tensor of shape {node.shape}")
        for label, dim in zip(labels, node.shape):
            bind(label, dim)
        if isinstance(node, Num):
            coef = coef * node.value
        elif isinstance(node, Zero):
            zero = True
        elif isinstance(node, Ones):
            ones_labels.extend(labels)
        elif isinstance(node, Product) and len(node.factors) <= MAX_INLINED_FACTORS:
            coef = coef * node.coef
            mapping = {k: labels[k] for k in range(node.rank)}
            for k in range(node.rank, node.n_indices):
                mapping[k] = _Fresh()
                dims[mapping[k]] = node.dims[k]
            for sub_node, idx in reversed(node.factors):
                stack.append((sub_node, tuple(mapping[i] for i in idx)))
        else:
            items.append([node, labels])
    for label in out:
        if label not in dims:
            raise ShapeError(f"output index {label!r} is in no factor")
    shape = tuple(dims[label] for label in out)
    if zero or coef == 0:
        return zeros(shape)

    items, ones_labels = _contract_deltas(items, ones_labels, out)
    items = _merge_powers(items, ones_labels, out)
    items, coef = _drop_ones(items, ones_labels, out, dims, coef)
    if not items:
        return Num(coef) if not out else scale(coef, Ones(shape))
    if coef == 1 and len(items) == 1 and (tuple(items[0][1]) == out or (
            _is_sym_factor(*items[0]) and tuple(items[0][1]) == out[::-1])):
        return items[0][0]  # (S' is S for a symmetric S)
    return _canonical(coef, items, out, dims)


def _is_sym_factor(node: Node, labels) -> bool:
    """A symmetric matrix read on two different indices: S(i,j) and S(j,i) are one."""
    return node._sym and labels[0] != labels[1]


def _cancel_scalar_powers(factors):
    """Drop scalar factors u and u^-1 that cancel, before inlining hides u."""
    net: dict = {}
    for node, labels in factors:
        if node.rank == 0:
            base, e = power_of(node)
            net[base] = net.get(base, 0) + e
    gone = {base for base, e in net.items() if e == 0 and not isinstance(base, Num)}
    if not gone:
        return factors
    return [(n, l) for n, l in factors if n.rank or power_of(n)[0] not in gone]


def power_of(node):
    """(base, exponent) with node = base .^ exponent for a numeric exponent (else exponent 1)."""
    if isinstance(node, Pow) and isinstance(node.exponent, Num) and node.base.rank == node.rank:
        return node.base, node.exponent.value
    return node, Fraction(1)


def _contract_deltas(items, ones_labels, out):
    """δ(i,j) with j summed: rename j to i everywhere and drop the δ."""
    out_set = set(out)
    changed = True
    while changed:
        changed = False
        for pos, (node, labels) in enumerate(items):
            if not isinstance(node, Delta):
                continue
            a, b = labels
            if a == b:  # δ(i,i): a one for each i
                del items[pos]
                ones_labels.append(a)
                changed = True
                break
            if b in out_set and a in out_set:
                continue
            keep, gone = (a, b) if b not in out_set else (b, a)
            del items[pos]
            for item in items:
                item[1] = tuple(keep if lab == gone else lab for lab in item[1])
            ones_labels[:] = [keep if lab == gone else lab for lab in ones_labels]
            if not any(keep in item[1] for item in items):
                ones_labels.append(keep)  # Σ_j δ(i,j) = 1 for every i
            changed = True
            break
    return items, ones_labels


def _drop_ones(items, ones_labels, out, dims, coef):
    """A ones factor on an index some other factor carries changes nothing."""
    used = {lab for _, labels in items for lab in labels}
    kept = []
    for label in dict.fromkeys(ones_labels):  # ones(i)*ones(i) summed or not is ones(i)
        if label in used:
            continue
        if label not in out and isinstance(dims[label], int):
            coef = coef * dims[label]  # Σ_i 1 = n
            continue
        kept.append(label)
    for label in kept:
        items.append([Ones((dims[label],)), (label,)])
    return items, coef


def _merge_powers(items, ones_labels, out):
    """u * u^k -> u^(k+1) for factors with the same base on the same output axes.

    Powers that cancel (u .* u.^-1) leave a ones factor on their indices,
    which ``_drop_ones`` then drops where another factor carries them.
    """
    out_set = set(out)
    places: dict = {}  # label -> how many factors carry it
    for _, labels in items:
        for lab in set(labels):
            places[lab] = places.get(lab, 0) + 1
    groups: dict = {}
    order = []
    rest = []
    for node, labels in items:
        labels = tuple(labels)
        # x(i)·x(i) summed alone is an inner product x'*x and stays one; with
        # the index also elsewhere (an output, a third factor) it is x.^2.
        hadamard_context = all(lab in out_set or places[lab] >= 3 for lab in labels)
        if not hadamard_context or len(set(labels)) != len(labels):
            rest.append([node, labels])
            continue
        base, e = power_of(node)
        key = (base, labels)
        if key not in groups:
            groups[key] = 0
            order.append(key)
        groups[key] += e
    merged = []
    for key in order:
        base, labels = key
        e = groups[key]
        if e == 0:
            ones_labels.extend(labels)
            continue
        merged.append([power(base, Num(e)) if e != 1 else base, labels])
    return merged + rest


# Ties between equal factors (x twice in x'*A*x) that refinement cannot split
# (symmetric products: (x'*A*x)^2) are settled by trying each tied factor
# first, recursively, and keeping the smallest naming; past this many tries
# the smallest found so far is kept.
MAX_TIE_TRIES = 256
# Ties are settled only in products of at most this many factors.
MAX_TIE_FACTORS = 32


def _canonical(coef, items, out, dims) -> Product:
    """The Product with its factors sorted and its summed indices named canonically.

    Factors sort by (node, which output axes they carry); summed indices are
    numbered in order of first appearance. Where equal factors tie, the
    naming would depend on the order they came in, so the ties are split by
    the factors their indices meet (colour refinement) and what is left
    tied is settled by the smallest naming over the orders of the tied
    factors: x'*A*x and x'*A'*x become one node.
    """
    out_pos = {label: k for k, label in enumerate(out)}
    rank = len(out)

    def key(item):
        node, labels = item
        axes = tuple(out_pos.get(lab, rank) for lab in labels)
        return (node.sort_key(), tuple(sorted(axes)) if _is_sym_factor(node, labels) else axes)

    keyed = sorted(((key(item), item) for item in items), key=lambda p: p[0])
    groups = []
    for k, item in keyed:
        if groups and groups[-1][0] == k:
            groups[-1][1].append(item)
        else:
            groups.append((k, [item]))
    if all(len(g) == 1 for _, g in groups) or len(items) > MAX_TIE_FACTORS:
        # Past MAX_TIE_FACTORS factors (a parsed chain A*A*…*A) refinement would
        # take time quadratic in the length; the order they came in is kept.
        order = [item for _, g in groups for item in g]
    else:
        order = _settle_ties([g for _, g in groups], out_pos)
    names = _first_appearance(order, out_pos)
    index_dims = [None] * len(names)
    for lab, k in names.items():
        index_dims[k] = dims[lab]
    factors = tuple((node, _named(node, labels, names)) for node, labels in order)
    return Product(coef, factors, tuple(index_dims), rank)


def _named(node: Node, labels, names: dict) -> tuple:
    """The factor's indices by their names; a symmetric factor's in ascending order."""
    idx = tuple(names[lab] for lab in labels)
    return tuple(sorted(idx)) if _is_sym_factor(node, labels) else idx


def _first_appearance(order, out_pos) -> dict:
    """Index names in order of first appearance. The two new indices of a
    symmetric factor (which has no first and second axis) are named in the order
    of the factors they meet elsewhere, so S(a,b) and S(b,a) name alike."""
    names = dict(out_pos)
    meets = None
    for node, labels in order:
        if _is_sym_factor(node, labels) and labels[0] not in names and labels[1] not in names:
            if meets is None:
                meets = _meetings(order, out_pos)
            labels = sorted(labels, key=lambda lab: meets[lab])
        for lab in labels:
            if lab not in names:
                names[lab] = len(names)
    return names


def _meetings(order, out_pos) -> dict:
    """For each summed index, the factors (and their axes) it occurs in: one round of
    colour refinement, with a symmetric factor's two axes alike."""
    meets: dict = {}
    for node, labels in order:
        sym = _is_sym_factor(node, labels)
        for pos, lab in enumerate(labels):
            if lab not in out_pos:
                meets.setdefault(lab, []).append((node.sort_key(), 0 if sym else pos))
    return {lab: sorted(found) for lab, found in meets.items()}


def _settle_ties(groups, out_pos):
    """An order of the items whose naming does not depend on the order they came in.

    Individualisation and refinement, as graph canonisers do it: each summed
    index is coloured by the factors and positions it meets until the
    colours are stable; where equal factors still tie, each in turn has an
    index given a colour of its own and the refinement goes on; of the
    orders reached, the one with the smallest naming is kept.
    """
    rank = len(out_pos)
    gid = {}
    for g, members in enumerate(groups):
        for item in members:
            gid[id(item)] = g
    items = [item for members in groups for item in members]
    summed = {lab for _, labels in items for lab in labels if lab not in out_pos}
    best = []  # [(naming, order)]
    tries = [0]

    def signature(item, colour):
        colours = tuple(colour[lab] for lab in item[1])
        return (gid[id(item)], tuple(sorted(colours)) if _is_sym_factor(*item) else colours)

    def refine(colour):
        n_colours = len(set(colour.values()))
        while True:
            seen = {lab: [] for lab in summed}
            for item in items:
                sig = signature(item, colour)
                sym = _is_sym_factor(*item)
                for pos, lab in enumerate(item[1]):
                    if lab in seen:
                        seen[lab].append((sig, 0 if sym else pos))
            new = {lab: (colour[lab], tuple(sorted(occ))) for lab, occ in seen.items()}
            ranks = {v: rank + k for k, v in enumerate(sorted(set(new.values())))}
            colour = dict(colour)
            for lab, v in new.items():
                colour[lab] = ranks[v]
            count = len(set(colour.values()))
            if count == n_colours:
                return colour
            n_colours = count

    def tied_run(order, colour):
        """The first run of factors with one signature and different indices, or None."""
        start = 0
        for k in range(1, len(order) + 1):
            if k < len(order) and signature(order[k], colour) == signature(order[start], colour):
                continue
            run = order[start:k]
            if len({tuple(item[1]) for item in run}) > 1:
                return run
            start = k
        return None

    def search(colour, depth):
        colour = refine(colour)
        order = sorted(items, key=lambda item: signature(item, colour))
        run = tied_run(order, colour) if depth < len(items) else None
        if run is None:
            tries[0] += 1
            names = _first_appearance(order, out_pos)
            naming = tuple(_named(node, labels, names) for node, labels in order)
            if not best or naming < best[0][0]:
                best[:] = [(naming, order)]
            return
        # an axis where the tied factors have different (equally coloured) indices
        pos = next(p for p in range(len(run[0][1])) if len({item[1][p] for item in run}) > 1)
        fresh = max(colour.values()) + 1
        for lab in dict.fromkeys(item[1][pos] for item in run):
            if tries[0] >= MAX_TIE_TRIES:
                return
            search({**colour, lab: fresh}, depth + 1)

    search({lab: out_pos.get(lab, rank) for _, labels in items for lab in labels}, 0)
    return best[0][1]


def einsum(spec: str, *operands: Node, coef=1) -> Node:
    """``product`` written as numpy einsum subscripts: ``einsum("ij,j->i", A, x)``."""
    ins, out = spec.replace(" ", "").split("->")
    labels = ins.split(",") if ins else []
    if len(labels) != len(operands):
        raise ShapeError(f"einsum spec {spec!r} names {len(labels)} operands, {len(operands)} given")
    return product(list(zip(operands, labels)), out, coef=coef)


def with_labels(node: Node, labels) -> Node:
    """Helper for rules: node read with the given output labels (a relabelling)."""
    return product([(node, tuple(labels))], tuple(labels))


# ---- matrix-level helpers (shapes in the orientation-free core) ----


def transpose(node: Node) -> Node:
    if node.rank < 2:
        return node
    if node.rank != 2:
        raise ShapeError(f"transpose of a tensor of order {node.rank}")
    return einsum("ij->ji", node)


def hadamard(a: Node, b: Node) -> Node:
    """Element-wise product; a scalar side broadcasts."""
    if a.rank == 0 or b.rank == 0:
        return product([(a, tuple(range(a.rank))), (b, tuple(range(b.rank)))],
                       tuple(range(max(a.rank, b.rank))))
    if a.shape != b.shape:
        raise ShapeError(f"element-wise product of shapes {a.shape} and {b.shape}")
    labels = tuple(range(a.rank))
    return product([(a, labels), (b, labels)], labels)


def power(base: Node, exponent: Node) -> Node:
    if isinstance(exponent, Num):
        e = exponent.value
        if e == 1:
            return base
        if e == 0:
            return ones(base.shape)
        if isinstance(base, Num):
            folded = _fold_power(base.value, e)
            if folded is not None:
                return Num(folded)
        if isinstance(base, Pow) and isinstance(base.exponent, Num) and \
                isinstance(e, Fraction) and e.denominator == 1:
            return power(base.base, Num(base.exponent.value * e))
        if is_zero(base) and e > 0:
            return zeros(base.shape)
    return Pow(base, exponent)


# Exact powers are folded only while they stay this small; larger ones stay symbolic.
MAX_FOLDED_BITS = 16384  # above the parser's own limit on constants


def _fold_power(b, e):
    if isinstance(b, Fraction) and isinstance(e, Fraction) and e.denominator == 1:
        if b == 0 and e < 0:
            return None
        bits = max(b.numerator.bit_length(), b.denominator.bit_length())
        if abs(e.numerator) <= 64 and bits * abs(e.numerator) <= MAX_FOLDED_BITS:
            return b ** e.numerator
    return None


def maximum(a: Node, b: Node) -> Node:
    if a == b:
        return a
    return Max(a, b)


def minimum(a: Node, b: Node) -> Node:
    if a == b:
        return a
    return Min(a, b)


def apply(fn: str, arg: Node) -> Node:
    return Apply(fn, arg)


def inv(x: Node) -> Node:
    if isinstance(x, Inv):
        return x.arg
    if isinstance(x, Delta):
        return x
    return Inv(x)


def det(x: Node) -> Node:
    return Det(x)


def logdet(x: Node) -> Node:
    return LogDet(x)


def softmax(v: Node) -> Node:
    return Softmax(v)


def logsumexp(v: Node) -> Node:
    return LogSumExp(v)


def norm1(x: Node) -> Node:
    return Norm1(x)


def norm2(x: Node) -> Node:
    return Norm2(x)


def sum_all(x: Node) -> Node:
    return product([(x, tuple(range(x.rank)))], ())


def trace(x: Node) -> Node:
    _check_arg("tr", "square", x)
    return einsum("ii->", x)


def diag_matrix(v: Node) -> Node:
    """The diagonal matrix with v on its diagonal."""
    if v.rank != 1:
        raise ShapeError(f"diag of shape {v.shape}")
    return product([(v, ("i",)), (Delta(v.shape[0]), ("i", "j"))], ("i", "j"))


def diag_vector(x: Node) -> Node:
    """The diagonal of a square matrix."""
    _check_arg("diag", "square", x)
    return einsum("ii->i", x)


def divide(a: Node, s: Node) -> Node:
    """``a / s`` for a scalar s."""
    if s.rank != 0:
        raise ShapeError(f"division by a non-scalar of shape {s.shape}")
    return hadamard(a, power(s, Num(-1)))


def walk(node: Node):
    """Every distinct node under ``node`` once, children before parents."""
    seen = set()
    order = []
    stack = [(node, False)]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        stack.append((n, True))
        for child in reversed(n.children()):
            if child not in seen:
                stack.append((child, False))
    return order


def restructure(node: Node, structure: dict) -> Node:
    """``node`` with each variable's structure as ``structure`` says (name -> None,
    "symmetric" or "spd"; names not given keep theirs). Rebuilt bottom-up through
    the constructors: with S symmetric, S - S' folds to 0 and S'*x is S*x."""
    memo: dict = {}
    for n in walk(node):
        if isinstance(n, Var):
            want = structure.get(n.name, n.structure)
            memo[n] = n if want == n.structure else Var(n.name, n.shape, want)
            continue
        memo[n] = n.with_children([memo[k] for k in n.children()])
    return memo[node]


def structure_of(node: Node) -> dict:
    """name -> structure of the structured variables in ``node``."""
    return {n.name: n.structure for n in walk(node) if isinstance(n, Var) and n.structure}


def unstructured(node: Node) -> Node:
    """``node`` with every variable plain: the same values at symmetric points, for
    code that looks variables up by name and shape (numeric evaluation)."""
    found = structure_of(node)
    return restructure(node, dict.fromkeys(found)) if found else node


def debug_str(node: Node) -> str:
    """A plain s-expression of the node tree, for debugging and error messages."""
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Num):
        return str(node.value)
    if isinstance(node, (Zero, Ones)):
        return f"{type(node).__name__.lower()}{node.shape}"
    if isinstance(node, Delta):
        return f"δ({node.dim})"
    if isinstance(node, Sum):
        return "(" + " + ".join(debug_str(t) for t in node.terms) + ")"
    if isinstance(node, Product):
        parts = [] if node.coef == 1 else [str(node.coef)]
        for f, idx in node.factors:
            parts.append(f"{debug_str(f)}[{','.join(map(str, idx))}]")
        return "(" + " ".join(parts) + f" -> {','.join(map(str, range(node.rank)))})"
    if isinstance(node, Apply):
        return f"{node.fn}({debug_str(node.arg)})"
    if isinstance(node, _Binary):
        return f"{type(node).__name__.lower()}({debug_str(node.left)}, {debug_str(node.right)})"
    if isinstance(node, _Unary):
        return f"{type(node).__name__.lower()}({debug_str(node.arg)})"
    raise unknown_node("debug_str", node)
