"""The body of a POST to /api/...: checked field by field before any work is queued.

Everything here raises ``mc.MathcalcError`` (answered 400 with kind
"MathcalcError") for a request that is not what SPEC section 10 describes, so
that the worker only ever sees plain, well-typed values. No user text is
evaluated: shapes are read by the small parser below, expressions only by
mathcalc's grammar (in the worker).

``shapes`` is either the SPEC's object (``{"A": ["n", "n"]}``, with
``structure`` beside it) or the page's one-line text form
``A=n,n; x=n; S=spd(n); a=`` (``a=`` or ``a=()`` a scalar), which carries the
structure itself.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import click

from ..declared import parse_shape_spec
from ..errors import MathcalcError

MAX_ORDER = 8
STRUCTURES = ("symmetric", "spd")
FIELDS = {
    "diff": ("expression", "wrt", "order", "shapes", "structure", "backend"),
    "check": ("expression", "wrt", "order", "shapes", "structure"),
    "shapes": ("expression", "shapes", "structure"),
}


@dataclass(frozen=True)
class Job:
    """A checked request, as plain data (it is pickled to a worker)."""

    expression: str
    wrt: str = ""
    order: int = 1
    shapes: dict = field(default_factory=dict)     # name -> tuple of dims (ints or names)
    structure: dict = field(default_factory=dict)  # name -> "symmetric" | "spd"
    backend: str = "numpy"


def ShapesTextError(message: str, text: str, column: int) -> MathcalcError:
    """A mistake in the page's shapes text: a MathcalcError (its kind on the wire) that
    carries the 1-based column of the entry and shows the text with a caret under it."""
    caret = " " * (column - 1) + "^"
    err = MathcalcError(f"in the shapes: {message} (column {column})\n  {text}\n  {caret}")
    err.line, err.column = 1, column
    return err


def job_from(body, kind: str) -> Job:
    """The Job of a parsed JSON body for endpoint ``kind`` ("diff", "check", "shapes")."""
    if not isinstance(body, dict):
        raise MathcalcError("the request body must be a JSON object such as "
                            '{"expression": "x\'*A*x", "wrt": "x"}')
    allowed = FIELDS[kind]
    for key in body:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (fields: {', '.join(allowed)})"
            raise MathcalcError(f"unknown field {str(key)[:40]!r}{hint}")
    expression = _string(body, "expression", required=True)
    wrt = _string(body, "wrt", required=kind != "shapes")
    if kind != "shapes" and not wrt.strip():
        raise MathcalcError("'wrt' is empty: name the variable to differentiate with respect to")
    order = body.get("order", 1)
    if isinstance(order, str) and order.strip().isdigit():
        order = int(order)
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        raise MathcalcError(f"'order' must be an integer from 1 to {MAX_ORDER}, not {order!r:.40}")
    shapes_field = body.get("shapes", {})
    if isinstance(shapes_field, str):
        shapes, structure = parse_shapes_text(shapes_field)
    else:
        shapes, structure = _shapes_object(shapes_field), {}
    structure.update(_structure_object(body.get("structure", {})))
    backend = _string(body, "backend") or "numpy"
    return Job(expression, wrt.strip(), order, shapes, structure, backend)


def _string(body: dict, key: str, required: bool = False) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise MathcalcError(f"the request has no {key!r} (a string)")
        return ""
    if not isinstance(value, str):
        raise MathcalcError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _name(name, where: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise MathcalcError(f"{where}: {str(name)[:40]!r} is not a variable name")
    return name


def _dims(name: str, dims) -> tuple:
    if not isinstance(dims, (list, tuple)):
        raise MathcalcError(f"the shape of {name!r} must be a list of dimensions such as "
                            f'["n"] or ["m", "n"] ([] a scalar), not {dims!r:.40}')
    if len(dims) > 2:
        raise MathcalcError(f"the shape of {name!r} has {len(dims)} dimensions: variables are "
                            "scalars, vectors or matrices (at most 2)")
    out = []
    for d in dims:
        if isinstance(d, int) and not isinstance(d, bool) and d >= 1:
            out.append(d)
        elif isinstance(d, str) and d.isidentifier():
            out.append(d)
        else:
            raise MathcalcError(f"the shape of {name!r}: dimension {d!r:.40} is neither a name "
                                "nor a positive integer")
    return tuple(out)


def _shapes_object(value) -> dict:
    if not isinstance(value, dict):
        raise MathcalcError('\'shapes\' must be an object such as {"A": ["n", "n"], "x": ["n"]}')
    return {_name(k, "shapes"): _dims(k, v) for k, v in value.items()}


def _structure_object(value) -> dict:
    if not isinstance(value, dict):
        raise MathcalcError('\'structure\' must be an object such as {"S": "spd"}')
    out = {}
    for k, v in value.items():
        _name(k, "structure")
        if v not in STRUCTURES:
            raise MathcalcError(f"the structure of {k!r} must be 'symmetric' or 'spd', not {v!r:.40}")
        out[k] = v
    return out


_STRUCTURED = re.compile(r"^(symmetric|spd)\s*\(\s*([^()]*?)\s*\)$")


def parse_shapes_text(text: str) -> tuple[dict, dict]:
    """``"A=n,n; x=n; S=spd(n); a="`` → ({"A": ("n", "n"), "x": ("n",), "S": ("n", "n"), "a": ()},
    {"S": "spd"}). Entries are separated by ``;`` or newlines; an empty text declares nothing."""
    shapes, structure = {}, {}
    flat = text.replace("\n", ";")
    pos = 0
    for entry in flat.split(";"):
        column = pos + len(entry) - len(entry.lstrip()) + 1
        pos += len(entry) + 1
        entry = entry.strip()
        if not entry:
            continue
        name, sep, dims = (part.strip() for part in entry.partition("="))
        if not sep or not name:
            raise ShapesTextError(f"write NAME=DIMS, e.g. x=n, A=m,n, S=spd(n), a= (a scalar), "
                                  f"not {entry[:40]!r}", flat, column)
        if not name.isidentifier():
            raise ShapesTextError(f"{name[:40]!r} is not a variable name", flat, column)
        if name in shapes:
            raise ShapesTextError(f"{name!r} is given a shape twice", flat, column)
        kind = _STRUCTURED.match(dims)
        try:  # the dimensions are read as the command line's --shape reads them
            _, shape = parse_shape_spec(f"{name}={kind.group(2) if kind else dims}")
        except click.BadParameter as err:
            raise ShapesTextError(err.message, flat, column) from None
        if 0 in shape:
            raise ShapesTextError(f"{name!r}: a dimension is a name or a positive integer, not 0",
                                  flat, column)
        if kind:
            if len(shape) == 1:
                shape = shape * 2  # spd(n) is n×n
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ShapesTextError(f"{kind.group(1)}(…) takes one dimension, as in "
                                      f"{name}={kind.group(1)}(n)", flat, column)
            structure[name] = kind.group(1)
        shapes[name] = tuple(shape)
    return shapes, structure
