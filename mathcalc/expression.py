"""The public ``Expr``: an expression node together with the variables it is about.

A node knows only the variables it contains; an ``Expr`` also keeps the ones
declared for it or inherited from the expression it was derived from (SPEC 3:
``d(a'*x)/dx = a`` still accepts ``x``).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import operator

from . import expr as E
from .errors import MathcalcError, ShapeError


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
        from .printing.matrix import to_str

        # Index names avoid the variables that dropped out too: they are still arguments.
        return to_str(self.node, avoid=tuple(self._env))

    def __repr__(self) -> str:
        return f"Expr({str(self)!r}, shape={self.shape!r})"

    def _repr_latex_(self) -> str:
        """A notebook shows the math (parsed text as it was written) and the shape."""
        from .printing.notebook import shape_latex
        from .printing.source import expr_latex

        return "$" + expr_latex(self) + shape_latex(self.shape) + "$"

    def to_sympy(self):
        from .sympy_interop import to_sympy

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
        from .parse import parse_text

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


# ---------------------------------------------------------------------------
# Structure: the shape of a symmetric or positive definite matrix (SPEC 6)


class Structured(tuple):
    """The shape ``(n, n)`` of a square matrix with a structure: a tuple, so it
    goes wherever a shape goes, that also says ``structure``."""

    __slots__ = ()
    structure = None

    def __new__(cls, dim):
        if isinstance(dim, (tuple, list)):  # (n, n) as well as n (and unpickling)
            if len(dim) != 2 or dim[0] != dim[1]:
                raise ShapeError(f"a {cls.structure} matrix is square: give one dimension, "
                                 f"not {tuple(dim)!r}")
            dim = dim[0]
        if isinstance(dim, (bytes, bytearray)) or _as_int(dim) is None and not isinstance(dim, str):
            raise ShapeError(f"the dimension of a {cls.structure} matrix must be an int or a "
                             f"name, not {dim!r}")
        (d, _) = normalise_shape(f"{cls.structure}(...)", (dim, dim))
        return super().__new__(cls, (d, d))

    def __repr__(self) -> str:
        return f"{self.structure}({self[0]!r})"


class _Symmetric(Structured):
    __slots__ = ()
    structure = "symmetric"


class _SPD(Structured):
    __slots__ = ()
    structure = "spd"


_STRUCTURED = {"symmetric": _Symmetric, "spd": _SPD}


def structured(structure: str, dim) -> Structured:
    """The shape of an n×n matrix with ``structure`` ("symmetric" or "spd")."""
    return _STRUCTURED[structure](dim)


def symmetric(dim) -> Structured:
    """The shape of a symmetric ``dim`` × ``dim`` matrix (S = S'), for any shape keyword:
    ``mc.parse("x'*S*x", S=mc.symmetric("n"))``. Derivatives with respect to it are
    symmetric: G_s = (G + G')/2 (SPEC 6)."""
    return _Symmetric(dim)


def spd(dim) -> Structured:
    """The shape of a symmetric positive definite ``dim`` × ``dim`` matrix (a
    covariance): symmetric as ``symmetric(dim)``, and drawn positive definite by
    check, equivalent and assert_derivative."""
    return _SPD(dim)


def is_shape(value) -> bool:
    """A shape keyword's value: a tuple or list of dimensions, or a structure."""
    return isinstance(value, (tuple, list))


def normalise_shape(name: str, shape) -> tuple:
    """A declared shape as a plain tuple of ints and names, or a ShapeError saying why not.

    A shape is a tuple or list of dimensions (``()`` for a scalar) or a
    structure; a bare dimension, a number or None is not (SPEC 2: keywords are
    shapes, and nothing else).
    """
    if not is_shape(shape):
        raise ShapeError(f"the shape of {name!r} must be a tuple or list of dimensions "
                         f"(('n',), ('m', 'n'), () for a scalar) or mc.symmetric(n) / mc.spd(n), "
                         f"not {_short_repr(shape)}")
    shape = tuple(shape)
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


def _short_repr(value, limit: int = 40) -> str:
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is still named by its type
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------------------
# Keywords are shapes, and nothing else (SPEC 2)


def keywords_are_shapes(*options: str):
    """Decorator for a function that takes variables' shapes as keywords (``**shapes``).

    A keyword that is not one of the function's own parameters must be a
    shape (``is_shape``); anything else — an int, a string, None — is a
    MathcalcError naming the keyword, with the nearest option where one is
    close: ``diff(..., ordr=2)`` → "did you mean order=2?". ``options`` are
    options read from ``**shapes`` because a variable may share their name
    (``order``, ``bold``: a tuple there declares the variable); with the
    function's parameters that have defaults, they are what is suggested.
    """
    def decorate(fn):
        params = inspect.signature(fn).parameters.values()
        named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        choices = tuple(options) + tuple(p.name for p in params if p.name in named
                                         and p.default is not p.empty)
        extra = frozenset(options)

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            __tracebackhide__ = True  # pytest shows the caller's line (assert_derivative)
            for key, value in kwargs.items():
                if key not in named and not is_shape(value) and key not in extra:
                    raise MathcalcError(bad_keyword(fn.__name__, key, value, choices))
            return fn(*args, **kwargs)

        return checked

    return decorate


def bad_keyword(function: str, key: str, value, options) -> str:
    """The message for ``function(..., key=value)`` where ``value`` is not a shape."""
    others = (f"keywords other than its options ({', '.join(dict.fromkeys(options))})"
              if options else "its keywords")
    msg = (f"{function}: {key}={_short_repr(value)} is not a shape: {others} declare variables' "
           "shapes, each a tuple or list of dimensions (x=('n',), A=('m', 'n'), a=() for a "
           "scalar) or mc.symmetric(n) / mc.spd(n)")
    by_case = {o.lower(): o for o in options}
    close = difflib.get_close_matches(key.lower(), list(by_case), n=1, cutoff=0.6)
    if close:
        msg += f"; did you mean {by_case[close[0]]}={_short_repr(value)}?"
    return msg


def _as_int(value):
    """An int for Python and numpy integers (not bools), else None."""
    if isinstance(value, (bool, str)) or getattr(value, "dtype", None) == bool:
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None
