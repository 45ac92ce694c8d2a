"""The small matrix-notation AST that both printers render, and its ONE precedence table.

``recognise.py`` turns core nodes (orientation-free einsums) into these nodes;
``matrix.py`` renders them as input-language text and ``latex.py`` as LaTeX.
Both ask ``needs_parens`` where to put brackets, so the two can never disagree
about precedence.

Every node carries a ``kind`` of calls.py's vocabulary: ``SCALAR``, ``COLUMN``
vector, ``ROW`` vector or ``MATRIX`` (index-notation terms are scalars).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..calls import TRANSPOSED, C as COLUMN, M as MATRIX, R as ROW, S as SCALAR


class Ast:
    """Base of the matrix-notation nodes (frozen dataclasses, hashable)."""

    kind: int


@dataclass(frozen=True)
class Leaf(Ast):
    """A name, a number or a sized constant, spelled ``text`` in the input language.

    ``role`` tells LaTeX how to draw it: ``var`` (a variable), ``number``,
    ``ones`` (``ones(n)``), ``zeros``, ``eye`` (identity) or ``delta`` (the δ of
    index notation). ``dims`` are a sized constant's dimensions (``ones(m, n)``:
    ``("m", "n")``), so that no reader takes them back out of ``text``.
    """

    text: str
    kind: int
    role: str = "var"
    dims: tuple = ()


@dataclass(frozen=True)
class Call(Ast):
    """``name(arg, ...)``: element-wise functions, reductions, matrix functions."""

    name: str
    args: tuple
    kind: int


@dataclass(frozen=True)
class Transpose(Ast):
    arg: Ast

    @property
    def kind(self) -> int:
        return TRANSPOSED[self.arg.kind]


@dataclass(frozen=True)
class Neg(Ast):
    arg: Ast

    @property
    def kind(self) -> int:
        return self.arg.kind


@dataclass(frozen=True)
class Power(Ast):
    """``base ^ exponent`` (scalars) or ``base .^ exponent`` (element-wise)."""

    base: Ast
    exponent: Ast
    elementwise: bool
    kind: int


@dataclass(frozen=True)
class MatMul(Ast):
    """A chain ``F1*F2*...`` of vectors and matrices (never scalars: see Scaled)."""

    factors: tuple

    @property
    def kind(self) -> int:
        rows = self.factors[0].kind in (COLUMN, MATRIX)
        cols = self.factors[-1].kind in (ROW, MATRIX)
        return {(True, True): MATRIX, (True, False): COLUMN,
                (False, True): ROW, (False, False): SCALAR}[(rows, cols)]


@dataclass(frozen=True)
class Hadamard(Ast):
    """``a .* b .* ... ./ d ./ ...``: element-wise products and quotients, one shape."""

    factors: tuple
    divisors: tuple
    kind: int


@dataclass(frozen=True)
class Scaled(Ast):
    """``number * s1 * s2 * body / d1 / d2``: scalar factors in front, divisions at the end.

    ``number`` is the text of a positive numeric factor or None; ``body`` is the
    vector or matrix being scaled (None for a scalar product); ``divisors`` are
    scalars (numbers included).
    """

    number: str | None
    scalars: tuple
    body: Ast | None
    divisors: tuple = ()

    @property
    def kind(self) -> int:
        return self.body.kind if self.body is not None else SCALAR

    def items(self) -> tuple:
        """The multiplied operands in printing order."""
        lead = (Leaf(self.number, SCALAR, "number"),) if self.number is not None else ()
        body = (self.body,) if self.body is not None else ()
        items = lead + tuple(self.scalars) + body
        return items or (Leaf("1", SCALAR, "number"),)


@dataclass(frozen=True)
class Add(Ast):
    """``t1 + t2 - t3``: ``terms`` is a tuple of (sign, term) with sign ``+`` or ``-``."""

    terms: tuple
    kind: int


@dataclass(frozen=True)
class Indexed(Ast):
    """Index notation: ``base(i,j)`` is entry (i, j) of base (``x(i)``, ``δ(i,k)``)."""

    base: Ast
    indices: tuple
    kind: int = field(default=SCALAR)


def children(ast: Ast) -> list:
    """The AST nodes directly under ``ast``."""
    out = []
    for value in vars(ast).values():
        if isinstance(value, Ast):
            out.append(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Ast):
                    out.append(item)
                elif isinstance(item, tuple):  # Add's (sign, term) pairs
                    out.extend(v for v in item if isinstance(v, Ast))
    return out


def postorder(ast: Ast) -> list:
    """Every node under ``ast``, children first, without recursion (deep results
    are rendered bottom-up so no printer recurses deeply)."""
    order, stack, seen = [], [(ast, False)], set()
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children(node))
    return order


# ---------------------------------------------------------------------------
# The one precedence table (tightest binds highest), as in SPEC section 1:
# postfix transpose and calls; ^ and .^ (right-assoc); unary minus; all
# products * .* ./ / (one level, left to right); + -.

ADD, PRODUCT, NEG, POWER, POSTFIX, ATOM = 1, 2, 3, 4, 5, 6

PRECEDENCE = {
    Add: ADD,
    MatMul: PRODUCT,
    Hadamard: PRODUCT,
    Scaled: PRODUCT,
    Neg: NEG,
    Power: POWER,
    Transpose: POSTFIX,
    Call: POSTFIX,
    Indexed: POSTFIX,
    Leaf: ATOM,
}


def precedence(ast: Ast) -> int:
    try:
        return PRECEDENCE[type(ast)]
    except KeyError:
        raise TypeError(f"no precedence for {type(ast).__name__}") from None


def needs_parens(parent: Ast, child: Ast, role: str) -> bool:
    """Whether ``child`` must be bracketed where it stands in ``parent``.

    ``role`` is where it stands: ``first`` or ``rest`` operand of a product
    level node, ``divisor``, ``term`` of a sum, ``base``/``exponent`` of a
    power, ``arg`` of a transpose/negation, ``indexed`` base. Call arguments
    never need brackets.
    """
    p, c = precedence(parent), precedence(child)
    if role == "call":
        return False
    if role in ("first", "rest", "divisor"):
        if isinstance(child, Neg):
            return True  # never an operator followed by a minus sign
        if c > PRODUCT:
            return False
        # Products are associative with scalars in front: 2*X'*(X*w - y) and
        # c*x'*y need no brackets around the matrix chain they scale; other
        # mixes of products are bracketed for the reader: x .* (A*y),
        # (x'*y)*A (not A*y .* x, x'*y*A).
        return not (isinstance(parent, Scaled) and isinstance(child, MatMul)
                    and child is parent.body)
    if role == "term":
        return c <= ADD
    if role == "base":
        return c <= POWER  # right-associative: (a^b)^c keeps its brackets
    if role == "exponent":
        return c < POWER
    if role == "arg":  # of a postfix transpose or of a unary minus
        if isinstance(parent, Neg):
            # -(a*b) = (-a)*b: a product prints with no brackets after a minus.
            return c < PRODUCT or isinstance(child, Neg)
        return c < p or isinstance(child, Neg)
    if role == "indexed":
        return c < POSTFIX or isinstance(child, Transpose)
    raise ValueError(f"unknown role {role!r}")
