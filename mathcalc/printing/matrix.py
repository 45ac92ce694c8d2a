"""Matrix notation: expression nodes printed in the mathcalc input language.

``to_str(node)`` recognises matrix forms in the node (``recognise.py``) and
renders them as text that parses back to the same numbers (SPEC 3) for
results of tensor order <= 2. Brackets come from the one precedence table in
``tree.py``.

Results with no matrix form (tensor order >= 3, or a product no chain of
matrix operations spells) print in index notation:

- the result's axes are named ``i, j, k, l, p, q, ...`` in order; every other
  index in a term is summed over (Einstein convention, also when it occurs
  only once, which is a sum over that axis), named on from there
  (``..., u, v, w, a, ..., h``, then ``i1, j1, ...``);
- an index is never named like a variable of the result (nor a name passed
  as ``to_str(node, avoid=...)``): such a name is skipped and the next one in
  the order above taken (the derivative of ``W*k`` by ``W`` is
  ``δ(i,j)*k(l)``; with a variable ``i``, the axes are ``j, k, l``);
- an entry of a tensor is written with parentheses: ``W(i,j)``, ``x(k)``;
  a subexpression with a matrix form is printed in matrix form and then
  indexed: ``(W*x + b)(i)``, ``tanh(u)(i)``;
- ``δ(i,k)`` is the identity (1 where i = k, else 0), written ``I(i,k)`` where
  a variable is named ``δ`` (``I`` is reserved: never a variable);
- products of entries are written with ``*``, sums with ``+``/``-``, and
  element-wise functions apply to the indexed entry: ``step((W*x + b)(i))``.

For example the derivative of ``W*x`` with respect to ``W`` (order 3) prints
``δ(i,j)*x(k)``.
"""

from __future__ import annotations

from . import tree as M
from .layout import cost, layout, measure, render  # noqa: F401  (the printer's text, by name)
from .recognise import recognise


def to_str(node, avoid=()) -> str:
    """The matrix-notation text of an expression node; index notation names no
    index like a variable of ``node`` or a name in ``avoid``."""
    ast = recognise(node, avoid)
    for part in M.postorder(ast):  # bottom-up: deep results never recurse deeply
        render(part)
    return render(ast)
