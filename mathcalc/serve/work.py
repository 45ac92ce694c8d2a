"""What a worker process computes for the page: one function per endpoint, plain data in and out.

``handle(task, job)`` is the pool's handler (pool.py pickles it by reference).
Each task answers ``{"ok": {...}}`` or ``{"error": {kind, message, line,
column}}`` for bad input (a ``MathcalcError``); anything else escaping is a
bug, which the pool reports as such.

The features that other parts of mathcalc add over time (``mc.where``,
``mc.explain``, ``mc.codegen(..., backend=)``, ``mc.symmetric``/``mc.spd``)
are looked up when used: where one is absent its field is empty and
``notes`` says why, so the page works with any version of the library.
"""

from __future__ import annotations

import inspect
import math
import re

import mathcalc as mc

from ..printing.latex import derivation_latex, latex_name
from .request import Job

BACKENDS = ("numpy", "jax", "torch", "cupy", "dask")  # SPEC section 9
MAX_FIELD = 1_000_000  # characters: a longer output is left out (the browser could not show it)
_POSITION = re.compile(r"\(line (\d+), column (\d+)\)")


# ---------------------------------------------------------------------------
# what this version of mathcalc offers


def backends() -> list[str]:
    """The backends ``mc.codegen`` can write code for."""
    try:
        params = inspect.signature(mc.codegen).parameters
    except (TypeError, ValueError):
        return ["numpy"]
    return list(BACKENDS) if "backend" in params else ["numpy"]


def features() -> dict:
    return {
        "where": hasattr(mc, "where"),
        "steps": hasattr(mc, "explain"),
        "structure": hasattr(mc, "spd") and hasattr(mc, "symmetric"),
        "backends": backends(),
    }


# ---------------------------------------------------------------------------
# the tasks


def handle(task: str, job: Job) -> dict:
    try:
        return {"ok": TASKS[task](job)}
    except mc.MathcalcError as err:
        return {"error": error_json(err)}
    except RecursionError:
        return {"error": {"kind": "MathcalcError", "message": "the expression is nested too deeply",
                          "line": None, "column": None}}


def error_json(err: Exception) -> dict:
    """SPEC 10's error object. ``line``/``column`` are 1-based; null for an error that
    points at no place in the text (a wrt that is not a variable)."""
    message = str(err)
    line, column = getattr(err, "line", None), getattr(err, "column", None)
    if not isinstance(line, int) or not isinstance(column, int):
        found = _POSITION.search(message.split("\n", 1)[0])
        line, column = (int(found.group(1)), int(found.group(2))) if found else (None, None)
    return {"kind": type(err).__name__, "message": message, "line": line, "column": column}


def parse(job: Job) -> mc.Expr:
    """The expression with its declared shapes and structure."""
    shapes = dict(job.shapes)
    if job.structure:
        if not (hasattr(mc, "spd") and hasattr(mc, "symmetric")):
            names = ", ".join(f"{k}={v}" for k, v in job.structure.items())
            raise mc.MathcalcError(f"structure ({names}) needs mc.symmetric and mc.spd, which "
                                   "this version of mathcalc does not have; declare the shape "
                                   "alone (S=n,n)")
        undeclared = [name for name in job.structure if name not in shapes]
        if undeclared:  # read the size of a structured matrix from how it is used
            inferred = mc.parse(job.expression, **shapes).variables
            for name in undeclared:
                shapes[name] = inferred.get(name, ("n", "n"))
        for name, kind in job.structure.items():
            dims = tuple(shapes[name])
            if len(dims) != 2 or dims[0] != dims[1]:
                raise mc.ShapeError(f"{name} is declared {kind}, so it must be a square matrix, "
                                    f"not of shape {dims}")
            shapes[name] = getattr(mc, kind)(dims[0])
    return mc.parse(job.expression, **shapes)


def shapes(job: Job) -> dict:
    f = parse(job)
    return {"shape": _dims(f.shape), "variables": _variables(f), "structure": _structure(f)}


def derive(job: Job) -> dict:
    available = backends()
    if job.backend not in available:
        raise mc.MathcalcError(f"no code generator for backend {job.backend!r} "
                               f"(available: {', '.join(available)})")
    f = parse(job)
    g = mc.diff(f, job.wrt, order=job.order)
    notes = {}
    out = {
        "result": str(g),
        "latex": mc.latex(g),
        "shape": _dims(g.shape),
        "variables": _variables(f),
        "structure": _structure(f),
        "expression_shape": _dims(f.shape),
        "order": job.order,
        "derivation_latex": _optional(notes, "derivation_latex", lambda: _derivation(f, g, job)),
        "where": "", "where_latex": "",
        "steps": "", "steps_latex": "",
        "code": "", "backend": job.backend,
        "backends": backends(),
        "notes": notes,
    }
    if hasattr(mc, "where"):
        w = _optional(notes, "where", lambda: mc.where(g))
        if w is not None:
            out["where"] = _optional(notes, "where", lambda: str(w))
            out["where_latex"] = _optional(notes, "where", lambda: mc.latex(w))
    else:
        notes["where"] = "named temporaries (mc.where) are not in this version of mathcalc"
    if not hasattr(mc, "explain"):
        notes["steps"] = "step-by-step derivations (mc.explain) are not in this version of mathcalc"
    elif job.order != 1:
        notes["steps"] = "the step-by-step derivation is shown for first derivatives"
    else:
        ex = _optional(notes, "steps", lambda: mc.explain(f, job.wrt))
        if ex is not None:
            out["steps"] = _optional(notes, "steps", lambda: str(ex))
            out["steps_latex"] = _optional(notes, "steps", lambda: ex.latex)
    out["code"] = _optional(notes, "code", lambda: _code(g, job))
    for key, value in out.items():
        if isinstance(value, str) and len(value) > MAX_FIELD:
            out[key] = ""
            notes[key] = f"left out: {len(value):,} characters is more than the page shows"
    return {k: ("" if v is None else v) for k, v in out.items()}


def check(job: Job) -> dict:
    f = parse(job)
    result = mc.check(f, job.wrt, order=job.order)
    err = float(getattr(result, "max_rel_error", float("nan")))
    return {"ok": bool(result.ok), "max_rel_error": err if math.isfinite(err) else None,
            "text": str(result)}


TASKS = {"diff": derive, "check": check, "shapes": shapes}


def warm_up() -> None:
    """One small derivation and check: builds the parser and loads the printers, the code
    generator and the checker, which a first request would otherwise wait for (~0.5 s)."""
    job = Job("sum(tanh(W*x + b)) + x'*A*x", "x")
    handle("diff", job)
    handle("check", job)


# ---------------------------------------------------------------------------
# helpers


def _optional(notes: dict, key: str, compute):
    """An extra output: its value, or None with a note when this expression has none."""
    try:
        return compute()
    except mc.MathcalcError as err:
        notes[key] = str(err)
    except (NotImplementedError, RecursionError) as err:
        notes[key] = f"not available for this expression ({type(err).__name__}: {err})"
    return None


def _code(g: mc.Expr, job: Job) -> str:
    name = f"df_d{job.wrt}" if job.order == 1 else f"d{job.order}f_d{job.wrt}{job.order}"
    if backends() == ["numpy"]:  # a codegen without the backend parameter
        return mc.codegen(g, name=name)
    return mc.codegen(g, name=name, backend=job.backend)


def _derivation(f: mc.Expr, g: mc.Expr, job: Job) -> str:
    """The statement ∂/∂X f = g as one display."""
    if job.order == 1:
        return derivation_latex(f.node, job.wrt, g.node, f.variables[job.wrt])
    k = job.order
    wrt = latex_name(job.wrt)
    return (rf"\frac{{\partial^{{{k}}}}}{{\partial {wrt}^{{{k}}}}} \left( {mc.latex(f)} \right)"
            rf" = {mc.latex(g)}")


def _dims(shape) -> list:
    return [d if isinstance(d, int) else str(d) for d in shape]


def _variables(f: mc.Expr) -> dict:
    return {name: _dims(shape) for name, shape in f.variables.items()}


def _structure(f: mc.Expr) -> dict:
    structure = getattr(f, "structure", None) or {}
    return {str(k): str(v) for k, v in dict(structure).items()}
