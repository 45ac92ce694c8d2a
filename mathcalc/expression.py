"""The public ``Expr``: an expression node together with the variables it is about.

A node knows only the variables it contains; an ``Expr`` also keeps the ones
declared for it or inherited from the expression it was derived from (SPEC 3:
``d(a'*x)/dx = a`` still accepts ``x``).
"""

from __future__ import annotations

import operator

from . import expr as E
from .errors import MathcalcError


class Expr:
    """An expression with shapes: what ``parse``, ``diff`` and friends return."""

    __slots__ = ("node", "_env")

    def __init__(self, node: E.Node, env: dict | None = None):
        self.node = node
        env = dict(env or {})
        for n in E.walk(node):
            if isinstance(n, E.Var):
                env.setdefault(n.name, n.shape)
        self._env = env

    @property
    def shape(self) -> tuple:
        return self.node.shape

    @property
    def variables(self) -> dict:
        """Every variable's shape: those in the expression and those kept with it."""
        return dict(self._env)

    def __str__(self) -> str:
        from .printing.matrix import to_str

        # Index names avoid the variables that dropped out too: they are still arguments.
        return to_str(self.node, avoid=tuple(self._env))

    def __repr__(self) -> str:
        return f"Expr({str(self)!r}, shape={self.shape!r})"

    def _repr_latex_(self) -> str:
        from .printing.latex import to_latex

        return "$" + to_latex(self.node) + "$"

    def to_sympy(self):
        from .sympy_interop import to_sympy

        return to_sympy(self.node)

    def __eq__(self, other) -> bool:
        return isinstance(other, Expr) and self.node == other.node

    def __hash__(self) -> int:
        return hash(self.node)


def as_expr(obj, shapes: dict | None = None) -> Expr:
    """An Expr from an Expr, a node or text (parsed with ``shapes``)."""
    shapes = shapes or {}
    if isinstance(obj, Expr):
        if shapes:
            env = obj.variables
            for name, shape in shapes.items():
                env.setdefault(name, normalise_shape(name, shape))
            return Expr(obj.node, env)
        return obj
    if isinstance(obj, E.Node):
        return Expr(obj, {k: normalise_shape(k, v) for k, v in shapes.items()})
    if isinstance(obj, str):
        from .parse import parse_text

        node, env = parse_text(obj, shapes)
        return Expr(node, env)
    raise MathcalcError(f"expected an expression or a string, got {type(obj).__name__}")


def normalise_shape(name: str, shape) -> tuple:
    """A declared shape as a tuple of ints and names, or a MathcalcError saying why not."""
    from .errors import ShapeError

    if isinstance(shape, (bytes, bytearray, dict, set, frozenset)):
        raise ShapeError(f"the shape of {name!r} must be a tuple of dimensions, not {shape!r}")
    if _as_int(shape) is not None or isinstance(shape, str):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise ShapeError(f"the shape of {name!r} must be a tuple of dimensions, not {shape!r}") from None
    if len(shape) > 2:
        raise ShapeError(f"the shape of {name!r} has {len(shape)} axes; variables are scalars, "
                         "vectors or matrices")
    dims = []
    for d in shape:
        if not isinstance(d, str):
            n = _as_int(d)
            if n is None:
                raise ShapeError(f"dimension {d!r} of {name!r} must be an int or a name")
            d = n
        if isinstance(d, int) and d < 1:
            raise ShapeError(f"dimension {d} of {name!r} must be positive")
        if isinstance(d, str) and not (d.isidentifier() and d.isascii()):
            raise ShapeError(f"dimension name {d!r} of {name!r} must be an identifier")
        dims.append(d)
    return tuple(dims)


def _as_int(value):
    """An int for Python and numpy integers (not bools), else None."""
    if isinstance(value, (bool, str)) or getattr(value, "dtype", None) == bool:
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None
