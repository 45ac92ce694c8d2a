"""Declared shapes: what a shape keyword may be (SPEC 2), and the structures (SPEC 6).

``normalise_shape`` turns ``("m", "n")``, ``[3]`` or ``mc.spd("n")`` into a
plain tuple or says why not; ``keywords_are_shapes`` makes every public entry
point refuse a keyword that is not a shape. It sits with shapes.py, below the
parser, which reads declared shapes through it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import operator

import click

from .errors import MathcalcError, ShapeError


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


def shapes_named_like_options(shapes: dict, **options) -> tuple:
    """The options' values, after moving to ``shapes`` those that are really shapes.

    ``options`` maps a keyword option to ``(value given, default)``. A variable
    may be named like an option (``seed``, ``values``, ``backend``): a shape
    given under that name declares the variable, and the option keeps its
    default.
    """
    out = []
    for name, (value, default) in options.items():
        if is_shape(value):
            shapes[name] = value
            value = default
        out.append(value)
    return tuple(out)


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


# ---------------------------------------------------------------------------
# A shape written on the command line or the page: x=n, A=m,n, a=


def parse_shape_spec(spec: str) -> tuple[str, tuple]:
    """``x=n`` → ("x", ("n",)); ``A=m,n`` → ("A", ("m", "n")); ``a=`` or ``a=()`` → ("a", ()).

    Dimensions are names or positive ints (``x=3``); parentheses are optional.
    Raises ``click.BadParameter`` on anything else.
    """
    name, sep, dims = spec.partition("=")
    name, dims = name.strip(), dims.strip()
    if not sep or not name:
        raise click.BadParameter(f"{spec!r}: write NAME=DIMS, e.g. x=n, A=m,n, a= (scalar)")
    if dims.startswith("(") and dims.endswith(")"):
        dims = dims[1:-1].strip()
    parts = [p.strip() for p in dims.split(",")] if dims else []
    if parts and parts[-1] == "":  # "n," as in a Python tuple
        parts.pop()
    shape = []
    for p in parts:
        if p.isdigit():
            shape.append(int(p))
        elif p.isidentifier():
            shape.append(p)
        else:
            raise click.BadParameter(f"{spec!r}: dimension {p!r} is neither a name nor a positive int")
    if len(shape) > 2:
        raise click.BadParameter(f"{spec!r}: variables are scalars, vectors or matrices (at most 2 dims)")
    return name, tuple(shape)
