"""The one table of built-in matrix calls, and the kinds it is written in.

**Kinds.** Every subexpression is a scalar, a column vector, a row vector or
a matrix (SPEC 1: vectors are columns, ``x'`` is a row; the core nodes are
orientation-free, so orientation lives in these kinds). Shape inference
(shapes.py), the printers' notation AST (printing/tree.py) and the SymPy
bridge (sympy_interop.py) use this one vocabulary. Kinds are bit flags, so
that a set of kinds is an int (the kind solver in shapes.py narrows sets).

**Products.** ``MATMUL`` is the one table of products of two non-scalars:
the result's kind and the einsum that computes it. Shapes (which dimensions
a product ties), lowering (the einsum's labels) and the SymPy bridge read it.

**Calls.** ``CALLS`` has one row per built-in call of the language that is
not an element-wise function (those are functions.py's table): how many
arguments it takes, its shape rule (argument kinds -> result kind, whether a
matrix argument must be square), the Term the parser builds for it and the
expression constructor it lowers to. Shape inference and the parser read
the rows; nothing else lists the calls.

**Names.** ``RESERVED`` are the names a variable or a definition cannot take
(``I``/``eye`` the identity, ``vector``/``matrix``), ``CALL_NAMES`` those a
registered function cannot take.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Callable

from . import nodes as E

# ---------------------------------------------------------------------------
# Kinds

S, C, R, M = 1, 2, 4, 8  # scalar, column vector, row vector, matrix
KINDS = (S, C, R, M)
RANK = {S: 0, C: 1, R: 1, M: 2}
KIND_OF_RANK = {0: S, 1: C, 2: M}  # a shape alone never makes a row vector
TRANSPOSED = {S: S, C: R, R: C, M: M}
KIND_NAMES = {S: "scalar", C: "column", R: "row", M: "matrix"}  # short, as SymPy's shapes
KIND_WORDS = {S: "scalar", C: "column vector", R: "row vector", M: "matrix"}  # in messages


# ---------------------------------------------------------------------------
# Products of two non-scalars: (left kind, right kind) -> (result kind, einsum).
# A scalar side scales the other and is not in the table.

MATMUL = {
    (M, M): (M, "ij,jk->ik"),
    (M, C): (C, "ij,j->i"),
    (R, M): (R, "i,ij->j"),
    (R, C): (S, "i,i->"),  # inner product
    (C, R): (M, "i,j->ij"),  # outer product
}
# The language's one addition (SPEC 1): two columns of equal length give their
# inner product, as w·x in Parr & Howard and @ in numpy. Matrix algebra (SymPy)
# has no such product.
MATMUL_LANGUAGE = {**MATMUL, (C, C): (S, "i,i->")}


def matmul_axes(lk: int, left: tuple, rk: int, right: tuple) -> tuple:
    """A product of two non-scalars: ``(kind, ties, axes)``.

    ``left`` and ``right`` name the operands' axes (dimension ids, einsum
    labels: anything hashable); ``ties`` pairs a left axis with the right
    axis it is contracted with, ``axes`` are the result's (a tied axis is
    named by its left side).
    """
    kind, spec = MATMUL_LANGUAGE[(lk, rk)]
    operands, out = spec.split("->")
    ls, rs = operands.split(",")
    axis = dict(zip(rs, right))
    axis.update(zip(ls, left))
    ties = [(left[ls.index(c)], right[i]) for i, c in enumerate(rs) if c in ls]
    return kind, ties, tuple(axis[c] for c in out)


# ---------------------------------------------------------------------------
# Calls


def takes(n: int) -> str:
    """``1 argument``, ``2 arguments``: an arity in words, for messages."""
    return f"{n} argument" if n == 1 else f"{n} arguments"


@dataclass(frozen=True)
class MatrixCall:
    """One built-in call.

    ``form`` is the Term the parser builds: ``call`` (arguments are
    expressions), ``sized`` (arguments are sizes: ints or dimension names)
    or ``filled`` (``vector(c)``: a constant sized by context).

    ``kinds`` is the shape rule: for ``call`` and ``filled``, argument kinds
    -> result kind (a missing row is a ShapeError saying the call ``needs``
    ...); for ``sized``, the number of sizes -> result kind (one size of a
    matrix is both of its sides). ``square``: a matrix argument's two
    dimensions are tied (``tr``, ``inv``, the diagonal of a matrix).
    ``elementwise``: the arguments combine as in ``+`` (``max``, ``min``).

    ``lower(args, kinds, shape)`` builds the node from the arguments' nodes
    and kinds and the result's shape.
    """

    name: str
    form: str
    arity: tuple
    kinds: dict
    lower: Callable
    need: str = ""
    square: bool = False
    elementwise: bool = False
    arity_words: str = ""  # the arity in words, where "n arguments" is not enough
    arity_hint: str = ""  # said after a wrong number of arguments

    def arity_error(self, got: int) -> str | None:
        """The message for ``got`` arguments, or None when that many are right."""
        if got in self.arity:
            return None
        words = self.arity_words or takes(self.arity[0])
        return f"{self.name} takes {words}, got {got}{self.arity_hint}"

    def result_dims(self, arg_kind: int, dims: tuple) -> tuple:
        """The result's dimensions from a single argument's kind and dimensions."""
        kind = self.kinds[(arg_kind,)]
        if kind == S:
            return ()
        if RANK[kind] == RANK[arg_kind]:  # softmax, inv
            return dims
        if kind == M:  # diag(v): a square matrix of v's length
            return (dims[0], dims[0])
        return (dims[0],)  # diag(X): the diagonal of a square matrix


def _elementwise_kinds() -> dict:
    """Same shape and orientation, or a scalar side (+ - .* ./ .^ max min)."""
    table = {}
    for k in KINDS:
        table[(k, k)] = k
        table[(S, k)] = k
        table[(k, S)] = k
    return table


ELEMENTWISE = _elementwise_kinds()
_TO_SCALAR = {(k,): S for k in KINDS}
_SQUARE_TO_SCALAR = {(M,): S}
_VECTOR = {(C,): C, (R,): R}


def _unary(make):
    return lambda args, kinds, shape: make(args[0])


def _lower_diag(args, kinds, shape):
    return E.diag_vector(args[0]) if kinds[0] == M else E.diag_matrix(args[0])


def _lower_sized(make):
    return lambda args, kinds, shape: make(shape)


def _lower_filled(args, kinds, shape):
    return E.hadamard(args[0], E.ones(shape))


_ROWS = [
    # reductions and matrix functions
    MatrixCall("sum", "call", (1,), _TO_SCALAR, _unary(E.sum_all)),
    MatrixCall("norm1", "call", (1,), _TO_SCALAR, _unary(E.norm1)),
    MatrixCall("norm2", "call", (1,), _TO_SCALAR, _unary(E.norm2)),
    MatrixCall("tr", "call", (1,), _SQUARE_TO_SCALAR, _unary(E.trace),
               need="a square matrix", square=True),
    MatrixCall("det", "call", (1,), _SQUARE_TO_SCALAR, _unary(E.det),
               need="a square matrix", square=True),
    MatrixCall("logdet", "call", (1,), _SQUARE_TO_SCALAR, _unary(E.logdet),
               need="a square matrix", square=True),
    MatrixCall("inv", "call", (1,), {(M,): M}, _unary(E.inv), need="a square matrix",
               square=True),
    MatrixCall("diag", "call", (1,), {(C,): M, (R,): M, (M,): C}, _lower_diag,
               need="a vector or a square matrix", square=True),
    MatrixCall("softmax", "call", (1,), _VECTOR, _unary(E.softmax), need="a vector"),
    MatrixCall("logsumexp", "call", (1,), {(C,): S, (R,): S}, _unary(E.logsumexp),
               need="a vector"),
    # element-wise binary: max(0, W*x + b) is ReLU
    MatrixCall("max", "call", (2,), ELEMENTWISE, lambda args, kinds, shape: E.maximum(*args),
               elementwise=True),
    MatrixCall("min", "call", (2,), ELEMENTWISE, lambda args, kinds, shape: E.minimum(*args),
               elementwise=True),
    # constants with a size
    MatrixCall("eye", "sized", (1,), {1: M}, _lower_sized(lambda shape: E.eye(shape[0])),
               arity_words="1 argument (a size)",
               arity_hint="; write eye alone for an identity sized by context"),
    MatrixCall("ones", "sized", (1, 2), {1: C, 2: M}, _lower_sized(E.ones),
               arity_words="1 or 2 arguments (sizes)"),
    MatrixCall("zeros", "sized", (1, 2), {1: C, 2: M}, _lower_sized(E.zeros),
               arity_words="1 or 2 arguments (sizes)"),
    # constants sized by context: every entry c
    MatrixCall("vector", "filled", (1,), {(S,): C}, _lower_filled),
    MatrixCall("matrix", "filled", (1,), {(S,): M}, _lower_filled),
]
CALLS: dict = {row.name: row for row in _ROWS}
FORMS = ("call", "sized", "filled")
assert all(row.form in FORMS for row in _ROWS)


# ---------------------------------------------------------------------------
# Names

IDENTITY_NAMES = ("I", "eye")  # the identity, sized by context, when written alone
# Names that are never variables nor definitions, each with what it is.
RESERVED = {"I": "the identity matrix", "eye": "the identity matrix",
            "vector": "vector(c) fills a vector", "matrix": "matrix(c) fills a matrix"}
# Names a registered function may not take: the calls, I, and T (A^T is the transpose).
CALL_NAMES = frozenset(CALLS) | {"I", "T"}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_identifier(name) -> bool:
    """An ASCII Python identifier that is not a keyword (a name generated source can use)."""
    return isinstance(name, str) and bool(_IDENTIFIER.fullmatch(name)) and \
        not keyword.iskeyword(name)
