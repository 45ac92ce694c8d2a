"""The text of a matrix-notation AST and the metrics that rank candidate forms.

Each AST node type spells itself as a layout (literal strings and (child,
role) pairs); ``render`` joins it into text, ``measure`` counts tokens, quotes
and minus signs from the same layout, and ``cost`` ranks forms by those
counts. It sits right above the AST (``tree.py``) so that recognition
(``recognise.py``) ranks forms without importing the matrix printer that
calls it (``matrix.py``).
"""

from __future__ import annotations

import re

from . import tree as M


# ---------------------------------------------------------------------------
# Layouts: each AST node type spells itself as a list of literal strings and
# (child, role) pairs. ``render`` joins them into text; ``measure`` counts
# tokens, quotes and minus signs from the same layout and the children's
# cached counts, without building any text (forms are ranked many times while
# a product is recognised; deep results have long texts).


def layout(ast: M.Ast) -> list:
    """The parts of ``ast``'s text; raises TypeError for an unknown AST node."""
    try:
        rule = _RULES[type(ast)]
    except KeyError:
        raise TypeError(f"matrix printer: unknown AST node {type(ast).__name__}") from None
    return rule(ast)


def render(ast: M.Ast) -> str:
    """Text of a matrix-notation AST; raises TypeError for an unknown AST node.

    The text is kept on the (immutable) node.
    """
    text = ast.__dict__.get("_text")
    if text is None:
        out = []
        for part in layout(ast):
            if isinstance(part, str):
                out.append(part)
            else:
                child, role = part
                child_text = render(child)
                out.append(f"({child_text})" if M.needs_parens(ast, child, role) else child_text)
        text = "".join(out)
        object.__setattr__(ast, "_text", text)
    return text


def _leaf(a: M.Leaf) -> list:
    return [a.text]


def _call(a: M.Call) -> list:
    parts = [a.name + "("]
    for k, arg in enumerate(a.args):
        if k:
            parts.append(", ")
        parts.append((arg, "call"))
    parts.append(")")
    return parts


def _transpose(a: M.Transpose) -> list:
    return [(a.arg, "arg"), "'"]


def _neg(a: M.Neg) -> list:
    return ["-", (a.arg, "arg")]


def _power(a: M.Power) -> list:
    exponent = (a.exponent, "exponent")
    if not a.elementwise and _first_char(a.exponent) == "T" and \
            not M.needs_parens(a, a.exponent, "exponent"):
        exponent = "(" + render(a.exponent) + ")"  # a^(Tb), not a^Tb: ^T is the transpose
    return [(a.base, "base"), " .^ " if a.elementwise else "^", exponent]


def _first_char(ast: M.Ast) -> str:
    """The first character of ``ast``'s text, from the first part of its layout (no text built)."""
    for part in layout(ast):
        if isinstance(part, str):
            if part:
                return part[0]
            continue
        child, role = part
        return "(" if M.needs_parens(ast, child, role) else _first_char(child)
    return ""


def _operands(items, op: str) -> list:
    parts = []
    for k, item in enumerate(items):
        if k:
            parts.append(op)
        parts.append((item, "first" if k == 0 else "rest"))
    return parts


def _matmul(a: M.MatMul) -> list:
    return _operands(a.factors, "*")


def _hadamard(a: M.Hadamard) -> list:
    parts = _operands(a.factors, " .* ")
    for d in a.divisors:
        parts += [" ./ ", (d, "divisor")]
    return parts


def _scaled(a: M.Scaled) -> list:
    parts = _operands(a.items(), "*")
    for d in a.divisors:
        parts += ["/", (d, "divisor")]
    return parts


def _add(a: M.Add) -> list:
    parts = []
    for k, (sign, term) in enumerate(a.terms):
        if k:
            parts.append(f" {sign} ")
        elif sign == "-":
            parts.append("-")
        parts.append((term, "term"))
    return parts


def _indexed(a: M.Indexed) -> list:
    return [(a.base, "indexed"), "(" + ",".join(a.indices) + ")"]


_RULES = {
    M.Leaf: _leaf,
    M.Call: _call,
    M.Transpose: _transpose,
    M.Neg: _neg,
    M.Power: _power,
    M.MatMul: _matmul,
    M.Hadamard: _hadamard,
    M.Scaled: _scaled,
    M.Add: _add,
    M.Indexed: _indexed,
}

_TOKEN = re.compile(r"\.\*|\./|\.\^|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\w+|\S")
_LITERALS: dict = {}  # literal text -> (tokens, quotes, minus signs)


def _literal(text: str) -> tuple:
    found = _LITERALS.get(text)
    if found is None:
        found = (len(_TOKEN.findall(text)), text.count("'"), text.count("-"))
        if len(_LITERALS) < 100000:
            _LITERALS[text] = found
    return found


def measure(ast: M.Ast) -> tuple:
    """(tokens, quotes, minus signs) of ``ast``'s text, from its layout and its
    children's cached counts: the text is never built or scanned.

    The layout puts spaces or brackets between a child and a literal, so the
    tokens of the whole are the sum of the parts' tokens.
    """
    found = ast.__dict__.get("_measure")
    if found is None:
        tokens = quotes = minuses = 0
        for part in layout(ast):
            if isinstance(part, str):
                t, q, n = _literal(part)
            else:
                child, role = part
                t, q, n = measure(child)
                if M.needs_parens(ast, child, role):
                    t += 2
            tokens, quotes, minuses = tokens + t, quotes + q, minuses + n
        found = (tokens, quotes, minuses)
        object.__setattr__(ast, "_measure", found)
    return found


class _Text:
    """An AST's text as a tie-break, rendered only when a comparison reaches it."""

    __slots__ = ("ast",)

    def __init__(self, ast):
        self.ast = ast

    def __str__(self):
        return render(self.ast)

    def __eq__(self, other):
        return self.ast is other.ast or render(self.ast) == render(other.ast)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        return render(self.ast) < render(other.ast)

    def __le__(self, other):
        return render(self.ast) <= render(other.ast)

    def __gt__(self, other):
        return render(self.ast) > render(other.ast)

    def __ge__(self, other):
        return render(self.ast) >= render(other.ast)

    def __hash__(self):
        return hash(render(self.ast))


def cost(ast: M.Ast) -> tuple:
    """How a candidate form ranks: fewer tokens, then fewer transposes, then fewer
    minus signs (``-(W + W')*u`` over ``(-W - W')*u``), then the text.

    The counts come from ``measure`` (compositional, cached); the text, last,
    is compared lazily.
    """
    found = ast.__dict__.get("_cost")
    if found is None:
        tokens, quotes, minuses = measure(ast)
        found = (tokens, quotes, minuses, _Text(ast))
        object.__setattr__(ast, "_cost", found)
    return found
