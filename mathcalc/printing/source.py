"""LaTeX of an expression as the user wrote it: from the syntax tree of the text.

The core folds every expression into a canonical DAG (products are einsums
with sorted factors, sums sorted terms), which is right for derivatives and
wrong for the left-hand side of a statement: ``tr(inv(X)*A)`` would print as
``tr(A X^{-1})``. ``source_latex`` therefore parses the text again (the
grammar's tree, ``parse.parse_terms``) and writes it in the user's order:
factors and terms as written, the user's brackets kept except where LaTeX
delimits anyway (call arguments, exponents, the sides of a fraction), and
brackets added only where a LaTeX form needs one the text did not (the base
of a superscript: ``inv(A*B)`` is ``\\left( A B \\right)^{-1}``). Names,
numbers and functions are written as the result side writes them (latex.py).

Operators: ``*`` and ``@`` juxtapose (``\\cdot`` between numbers), ``·``
is ``\\cdot``, ``.*``/``⊙`` ``\\odot``, ``./`` ``\\oslash``, ``/`` a fraction
of everything before it in the chain (``a*b/c`` is ``\\frac{a b}{c}``); where a
chain changes between element-wise and matrix products, the part before is
bracketed unless it or the next operand is a scalar.

Text the tree walk does not know (a construct added to the grammar later)
gives None, and the caller prints the canonical form instead.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import definitions as D
from ..errors import MathcalcError
from ..parse import parse_program, parse_terms
from ..shapes import infer_shapes, iter_postorder
from . import tree as M
from .latex import _CALLS, _function_latex, _Latex, _number, latex_name, to_latex

# How tightly a rendered piece binds, loosest first (as the grammar's levels).
SUM, PRODUCT, NEG, SUPERSCRIPT, CALL, ATOM = 1, 2, 3, 4, 5, 6

_MATMUL = {"*": "", "@": "", "·": r"\cdot", "⋅": r"\cdot"}
_ELEMENTWISE = {".*": r"\odot", "⊙": r"\odot", "./": r"\oslash"}


class _Piece(NamedTuple):
    text: str
    level: int
    scalar: bool


class _Unknown(Exception):
    """A term the walk has no rule for: the caller falls back to the canonical form."""


def expr_latex(f, bold: bool = False) -> str:
    """LaTeX of an Expr: as its text was written where it has one, else canonical."""
    source = getattr(f, "source", None)
    if source is not None:
        tex = source_latex(source, f.variables, bold=bold)
        if tex is not None:
            return tex
    return to_latex(f.node, bold=bold)


def source_latex(text: str, variables: dict, bold: bool = False) -> str | None:
    """LaTeX of ``text`` in the user's order, definitions after it (``… \\quad \\text{where }
    u = W x + b``), or None where the text has a form this walk does not know.
    ``variables`` are the shapes the text was read with."""
    parts = source_parts(text, variables, bold)
    if parts is None:
        return None
    piece, definitions = parts
    return piece.text + where_latex(definitions)


def written_form(f, bold: bool = False) -> tuple | None:
    """f as the user wrote it, for ``latex.derivation_latex``: ``(tex, loose, symbol,
    where)``, or None for an Expr with no text (or text this walk does not know)."""
    source = getattr(f, "source", None)
    parts = source_parts(source, f.variables, bold) if source is not None else None
    if parts is None:
        return None
    piece, definitions = parts
    return (piece.text, piece.level <= NEG, piece.level == ATOM and not piece.text.startswith(
        "\\left("), where_latex(definitions))


def where_latex(definitions: list) -> str:
    """``\\quad \\text{where } u = …, \\; v = …`` for (name, LaTeX) pairs; "" for none."""
    if not definitions:
        return ""
    return r" \quad \text{where } " + r", \; ".join(f"{n} = {t}" for n, t in definitions)


def source_parts(text: str, variables: dict, bold: bool = False):
    """(the expression's piece, [(name in LaTeX, definition in LaTeX)]) or None.

    A piece's ``level`` says how loosely it binds (SUM, PRODUCT, NEG, …), for a
    caller that puts an operator in front of it."""
    try:
        tree = parse_terms(text)
        if not isinstance(tree, D.Program):
            return _render(tree, text, dict(variables), bold), []
        # A defined name reads as a variable of its definition's shape in the other parts.
        _, _, nodes = parse_program(text, dict(variables))
        declared = {**dict(variables), **{name: node.shape for name, node in nodes}}
        defs = []
        for d in tree.definitions:
            tex = _render(d.term, text, {k: v for k, v in declared.items() if k != d.name}, bold)
            defs.append((latex_name(d.name, bold and bool(declared[d.name])), tex.text))
        return _render(tree.expression, text, declared, bold), defs
    except (_Unknown, MathcalcError, AttributeError, TypeError, KeyError):
        return None


def _render(root, text: str, declared: dict, bold: bool) -> _Piece:
    infer_shapes(root, text, declared)
    done: dict = {}
    for term in iter_postorder(root):
        rule = _RULES.get(term.op)
        if rule is None:
            raise _Unknown(term.op)
        done[id(term)] = rule(term, [done[id(a)] for a in term.args], bold, done)
    return done[id(root)]


# ---------------------------------------------------------------------------
# Bracketing: the user's parentheses, and what LaTeX forms need


def _bracket(text: str) -> str:
    return rf"\left( {text} \right)"


def _arg(term, piece: _Piece) -> str:
    """An operand where LaTeX delimits it anyway: the user's brackets are dropped."""
    return piece.text


def _operand(term, piece: _Piece, loosest: int) -> str:
    """An operand that must bind at least as tightly as ``loosest``."""
    if term.paren and piece.level < ATOM:
        return _bracket(piece.text)
    return piece.text if piece.level >= loosest else _bracket(piece.text)


def _base(term, piece: _Piece) -> str:
    """The base of a superscript: a symbol or a call as it is, anything else bracketed
    (a superscript of its own too: KaTeX refuses a double superscript)."""
    if term.paren and piece.level < ATOM:
        return _bracket(piece.text)
    if piece.level == ATOM and "^" in piece.text:
        return "{" + piece.text + "}"  # a name with a superscript of its own (xʰ)
    return piece.text if piece.level >= CALL else _bracket(piece.text)


def _superscript(term, piece: _Piece, sup: str) -> _Piece:
    return _Piece(f"{_base(term, piece)}^{{{sup}}}", SUPERSCRIPT, piece.scalar)


def _scalar(term) -> bool:
    return term.kind == M.SCALAR  # the Terms' kinds are the printers' (calls.py)


# ---------------------------------------------------------------------------
# One rule per term op (shapes.TERM_OPS)


def _num(term, args, bold, done):
    return _Piece(_number(term.value), ATOM, True)


def _var(term, args, bold, done):
    return _Piece(latex_name(term.value, bold and not _scalar(term)), ATOM, _scalar(term))


def _identity(term, args, bold, done):
    return _Piece("I", ATOM, False)


def _sized(term, args, bold, done):
    name, _ = term.value
    tex = {"eye": "I", "ones": r"\mathbf{1}", "zeros": r"\mathbf{0}"}[name]
    return _Piece(tex, ATOM, False)


def _filled(term, args, bold, done):
    (c,) = args
    return _Piece(rf"\operatorname{{{term.value}}}\left( {_arg(term.args[0], c)} \right)",
                  CALL, False)


def _neg(term, args, bold, done):
    (piece,) = args
    text = _operand(term.args[0], piece, SUPERSCRIPT)
    for _ in range(term.count - 1):  # - - x, as written
        text = "-" + text
        text = _bracket(text)
    return _Piece("-" + text, NEG, piece.scalar)


def _transpose(term, args, bold, done):
    (piece,) = args
    inner = term.args[0]
    if inner.op == "call" and inner.value == "inv" and not inner.paren and term.count == 1:
        # inv(X)' is X^{-T}, as the result side writes it
        return _superscript(inner.args[0], done[id(inner.args[0])], r"-\top")
    out = _superscript(inner, piece, r"\top")
    for _ in range(term.count - 1):  # A'' as written: bracketed between superscripts
        out = _Piece(f"{_bracket(out.text)}^{{\\top}}", SUPERSCRIPT, piece.scalar)
    return out


def _pow(term, args, bold, done):
    base, exponent = args
    sup = _arg(term.args[1], exponent)
    if term.value == ".^":
        sup = r"\circ " + sup
    return _superscript(term.args[0], base, sup)


def _sum(term, args, bold, done):
    parts = []
    for k, (arg, piece) in enumerate(zip(term.args, args)):
        text = _operand(arg, piece, PRODUCT)
        if k == 0:
            parts.append(text)
        else:
            if piece.level == NEG and not arg.paren:
                text = _bracket(text)  # a + -b: the sign after an operator is bracketed
            parts.append(f" {term.ops[k - 1][0]} {text}")
    return _Piece("".join(parts), SUM, _scalar(term))


def _prod(term, args, bold, done):
    first, first_piece = term.args[0], args[0]
    # A leading minus reads the same on the whole product: -0.5 logdet(S).
    text = first_piece.text if first_piece.level == NEG and not first.paren else \
        _operand(first, first_piece, NEG)
    family, fraction = None, False
    run = int(not first_piece.scalar)  # non-scalar operands in the current run of one family
    for (op, _), arg, piece in zip(term.ops, term.args[1:], args[1:]):
        if op == "/":
            text = rf"\frac{{{text}}}{{{_arg(arg, piece)}}}"
            family, run, fraction = None, int(run > 0), True
            continue
        operand = _operand(arg, piece, SUPERSCRIPT)
        new = "matmul" if op in _MATMUL else "elementwise"
        if family is not None and family != new:
            # (A*x) .* y, (x .* y)*A: the chain's order, where another grouping would
            # give another value (scalars commute with both products: 2 x ⊙ y).
            if run > 1 and not piece.scalar:
                text = _bracket(text)
            run = int(run > 0)
        family = new
        run += int(not piece.scalar)
        fraction = False
        symbol = _MATMUL.get(op, _ELEMENTWISE.get(op))
        if symbol:
            text = f"{text} {symbol} {operand}"
        elif operand[:1].isdigit():
            text = rf"{text} \cdot {operand}"
        else:
            text = f"{text} {operand}"
    # a chain that ends in / is one fraction: delimited like a call (∂/∂x \frac{x'Ax}{2})
    return _Piece(text, CALL if fraction else PRODUCT, _scalar(term))


def _call(term, args, bold, done):
    name = term.value
    texts = [_arg(a, p) for a, p in zip(term.args, args)]
    if name == "inv":
        return _superscript(term.args[0], args[0], "-1")
    if name in ("norm1", "norm2"):
        return _Piece(_Latex(bold)._norm(name, M.Leaf("", term.args[0].kind), texts[0]), CALL,
                      True)
    fn = _CALLS.get(name) or _function_latex(name)
    if fn == r"\sqrt":
        return _Piece(rf"\sqrt{{{texts[0]}}}", CALL, _scalar(term))
    return _Piece(rf"{fn}\left( {', '.join(texts)} \right)", CALL, _scalar(term))


_RULES = {"num": _num, "var": _var, "identity": _identity, "sized": _sized, "filled": _filled,
          "neg": _neg, "transpose": _transpose, "pow": _pow, "sum": _sum, "prod": _prod,
          "call": _call}
