"""The public ``Expr``: an expression node together with the variables it is about.

A node knows only the variables it contains; an ``Expr`` also keeps the ones
declared for it or inherited from the expression it was derived from (SPEC 3:
``d(a'*x)/dx = a`` still accepts ``x``).
"""

from __future__ import annotations

from . import nodes as E
from .declared import (  # noqa: F401  (Expr's home re-exports the shape keywords)
    Structured, bad_keyword, is_shape, keywords_are_shapes, normalise_shape, spd, structured,
    symmetric)
from .errors import MathcalcError, ShapeError
from .parse import parse_text
from .printing.matrix import to_str
from .printing.notebook import shape_latex
from .printing.source import expr_latex
from .sympy_interop import to_sympy


class Expr:
    """An expression with shapes: what ``parse``, ``diff`` and friends return."""

    __slots__ = ("node", "_env", "_structure", "source")

    def __init__(self, node: E.Node, env: dict | None = None, structure: dict | None = None,
                 source: str | None = None):
        self.node = node
        # The text it was parsed from, or None: the left-hand side of a statement and
        # messages show the expression as the user wrote it (printing/source.py).
        self.source = source
        env = dict(env or {})
        found = dict(structure or {})
        for n in E.walk(node):
            if isinstance(n, E.Var):
                env.setdefault(n.name, n.shape)
                if n.structure:
                    found[n.name] = n.structure
        self._env = env
        # kept for variables that dropped out too (d tr(S)/dS = I is still about an spd S)
        self._structure = {name: found[name] for name in env if found.get(name)}

    @property
    def shape(self) -> tuple:
        return self.node.shape

    @property
    def variables(self) -> dict:
        """Every variable's shape: those in the expression and those kept with it."""
        return dict(self._env)

    @property
    def structure(self) -> dict:
        """The structured variables: name -> "symmetric" or "spd" (SPEC 6)."""
        return dict(self._structure)

    def declared(self) -> dict:
        """Every variable's shape as ``parse`` takes it: structured ones as
        ``mc.symmetric(n)`` / ``mc.spd(n)``, so text parsed with them reads alike."""
        return {name: structured(self._structure[name], shape[0]) if name in self._structure
                else shape for name, shape in self._env.items()}

    def __str__(self) -> str:
        # Index names avoid the variables that dropped out too: they are still arguments.
        return to_str(self.node, avoid=tuple(self._env))

    def __repr__(self) -> str:
        return f"Expr({str(self)!r}, shape={self.shape!r})"

    def _repr_latex_(self) -> str:
        """A notebook shows the math (parsed text as it was written) and the shape."""
        return "$" + expr_latex(self) + shape_latex(self.shape) + "$"

    def to_sympy(self):
        return to_sympy(self.node)

    def __eq__(self, other) -> bool:
        return isinstance(other, Expr) and self.node == other.node

    def __hash__(self) -> int:
        return hash(self.node)


def as_expr(obj, shapes: dict | None = None) -> Expr:
    """An Expr from an Expr, a node or text (parsed with ``shapes``).

    A structure among the shapes (``S=mc.spd("n")``) makes that variable
    structured, in text and in a given Expr or node alike.
    """
    shapes = shapes or {}
    structure = {k: v.structure for k, v in shapes.items() if isinstance(v, Structured)}
    if isinstance(obj, str):
        node, env = parse_text(obj, shapes)
        return Expr(_structured(node, structure), env, structure, source=obj)
    if isinstance(obj, Expr):
        if not shapes:
            return obj
        env, node, kept, source = obj.variables, obj.node, obj.structure, obj.source
    elif isinstance(obj, E.Node):
        env, node, kept, source = {}, obj, {}, None
    else:
        raise MathcalcError(f"expected an expression or a string, got {type(obj).__name__}")
    for name, shape in shapes.items():
        shape = normalise_shape(name, shape)
        if name in structure and env.setdefault(name, shape) != shape:
            raise ShapeError(f"{name!r} has shape {env[name]} in the expression, so it cannot "
                             f"be declared {shapes[name]!r}")
        env.setdefault(name, shape)
    return Expr(_structured(node, structure), env, {**kept, **structure}, source=source)


def _structured(node: E.Node, structure: dict) -> E.Node:
    return E.restructure(node, structure) if structure else node
