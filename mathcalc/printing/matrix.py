"""Matrix notation: expression nodes printed in the mathcalc input language.

``to_str(node)`` recognises matrix forms in the node (``recognise.py``) and
renders them as text that parses back to the same numbers (SPEC 3) for
results of tensor order <= 2. Brackets come from the one precedence table in
``mast.py``.

Results with no matrix form (tensor order >= 3, or a product no chain of
matrix operations spells) print in index notation:

- the result's axes are named ``i, j, k, l, p, q, ...`` in order; every other
  index in a term is summed over (Einstein convention, also when it occurs
  only once, which is a sum over that axis);
- an entry of a tensor is written with parentheses: ``W(i,j)``, ``x(k)``;
  a subexpression with a matrix form is printed in matrix form and then
  indexed: ``(W*x + b)(i)``, ``tanh(u)(i)``;
- ``δ(i,k)`` is the identity (1 where i = k, else 0);
- products of entries are written with ``*``, sums with ``+``/``-``, and
  element-wise functions apply to the indexed entry: ``step((W*x + b)(i))``.

For example the derivative of ``W*x`` with respect to ``W`` (order 3) prints
``δ(i,j)*x(k)``.
"""

from __future__ import annotations

import re

from . import mast as M


def to_str(node) -> str:
    """The matrix-notation text of an expression node."""
    from .recognise import recognise  # recognise ranks candidate forms by render()

    ast = recognise(node)
    for part in M.postorder(ast):  # bottom-up: deep results never recurse deeply
        render(part)
    return render(ast)


def render(ast: M.Ast) -> str:
    """Text of a matrix-notation AST; raises TypeError for an unknown AST node.

    The text is kept on the (immutable) node: forms are ranked by their text
    many times while a product is recognised.
    """
    text = ast.__dict__.get("_text")
    if text is None:
        try:
            rule = _RULES[type(ast)]
        except KeyError:
            raise TypeError(f"matrix printer: unknown AST node {type(ast).__name__}") from None
        text = rule(ast)
        object.__setattr__(ast, "_text", text)
    return text


def _sub(parent: M.Ast, child: M.Ast, role: str) -> str:
    text = render(child)
    return f"({text})" if M.needs_parens(parent, child, role) else text


def _leaf(a: M.Leaf) -> str:
    return a.text


def _call(a: M.Call) -> str:
    return f"{a.name}({', '.join(render(arg) for arg in a.args)})"


def _transpose(a: M.Transpose) -> str:
    return _sub(a, a.arg, "arg") + "'"


def _neg(a: M.Neg) -> str:
    return "-" + _sub(a, a.arg, "arg")


def _power(a: M.Power) -> str:
    op = " .^ " if a.elementwise else "^"
    return _sub(a, a.base, "base") + op + _sub(a, a.exponent, "exponent")


def _operands(a: M.Ast, items) -> list:
    return [_sub(a, item, "first" if k == 0 else "rest") for k, item in enumerate(items)]


def _matmul(a: M.MatMul) -> str:
    return "*".join(_operands(a, a.factors))


def _hadamard(a: M.Hadamard) -> str:
    text = " .* ".join(_operands(a, a.factors))
    for d in a.divisors:
        text += " ./ " + _sub(a, d, "divisor")
    return text


def _scaled(a: M.Scaled) -> str:
    text = "*".join(_operands(a, a.items()))
    for d in a.divisors:
        text += "/" + _sub(a, d, "divisor")
    return text


def _add(a: M.Add) -> str:
    parts = []
    for k, (sign, term) in enumerate(a.terms):
        text = _sub(a, term, "term")
        if k == 0:
            parts.append(("-" if sign == "-" else "") + text)
        else:
            parts.append(f" {sign} {text}")
    return "".join(parts)


def _indexed(a: M.Indexed) -> str:
    return _sub(a, a.base, "indexed") + "(" + ",".join(a.indices) + ")"


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


def cost(ast: M.Ast) -> tuple:
    """How a candidate form ranks: fewer tokens, then fewer transposes, then the text."""
    found = ast.__dict__.get("_cost")
    if found is None:
        text = render(ast)
        found = (len(_TOKEN.findall(text)), text.count("'"), text)
        object.__setattr__(ast, "_cost", found)
    return found
