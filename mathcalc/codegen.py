"""codegen: the source of a standalone function a user pastes into a project.

The same lowering and emitters as ``lambdify`` (``backend/``), in a frame a
person would write: the function imports only its backend library, takes
the variables as parameters named after them (in the order they first
appear in the text, or ``args=[...]``), uses ``@`` for matrix products and
computes shared subexpressions once. It evaluates the form ``lambdify``
runs for large sizes: the expression re-associated and each contraction
ordered by the cost model for ``cost.ASSUMED_SIZE`` (1000) in every named
dimension, one order, no branches on the sizes. ``checks=True`` adds one
line per parameter that raises ValueError on a wrong shape.

The source contains no user text except variable names, and those only
after ``validate_variable_name``: a name that is not a plain Python
identifier meaning itself (``lambda``, ``sum``, ``__x``) becomes a
parameter with ``_`` appended (``lambda_``), or ``v<k>``.
"""

from __future__ import annotations

from . import nodes as E
from .backend import lower as L
from .backend.ir import Ref
from .backend.names import Names, is_parameter_name, validate_identifier, validate_variable_name
from .errors import MathcalcError
from .declared import is_shape, shapes_named_like_options
from .expression import as_expr, keywords_are_shapes
from .lambdify import backend_module, shape_text
from .optimize import reassociate


@keywords_are_shapes()
def codegen(expr, /, name: str = "f", backend: str = "numpy", checks: bool = True, args=None,
            **shapes) -> str:
    """The source of a standalone function computing ``expr`` for one backend library.

    ``backend``: "numpy" (default), "jax", "torch", "cupy" or "dask".
    ``args``: the parameter order (every variable once); by default the
    order in which the variables first appear in the text.

    A variable may be named like an option: a shape given under ``name``,
    ``backend`` or ``checks`` declares it. Under ``args`` a list of names is
    the parameter order; ``()``, a structure or dimensions with an int
    declare a variable called ``args``.
    """
    name, backend, checks = shapes_named_like_options(
        shapes, name=(name, "f"), backend=(backend, "numpy"), checks=(checks, True))
    if _declares_args(args):
        shapes["args"], args = args, None
    if not isinstance(checks, bool):
        raise MathcalcError(f"checks must be True or False, not {checks!r}")
    if not isinstance(backend, str):
        raise MathcalcError(f"backend must be a name, not {backend!r}")
    e = as_expr(expr, shapes)
    module = backend_module(backend)
    validate_identifier(name, "function")
    variables = dict(e.variables)
    for var in variables:
        validate_variable_name(var)
    if args is not None:
        if not isinstance(args, (list, tuple)) or sorted(map(str, args)) != sorted(variables) or \
                len(set(args)) != len(args):
            raise MathcalcError(f"args must name every variable once ({', '.join(variables)}), "
                                f"got {args!r}")
        variables = {a: variables[a] for a in args}
    return _source(e, reassociate(e.node), variables, name, module, checks)


def _declares_args(value) -> bool:
    """A shape under ``args`` (not a parameter order): (), a structure, or dims with an int."""
    return is_shape(value) and (len(value) == 0 or hasattr(value, "structure")
                                or any(not isinstance(d, str) for d in value))


def _parameters(variables, function) -> dict:
    """variable -> parameter name: the variable's own name where it can be one."""
    taken = {v for v in variables if is_parameter_name(v)} | {function}
    params = {}
    for k, var in enumerate(variables):
        if is_parameter_name(var):
            params[var] = var
            continue
        alt = var + "_"
        if not is_parameter_name(alt) or alt in taken:
            alt = f"v{k}"
            while alt in taken:
                alt = "_" + alt
        taken.add(alt)
        params[var] = alt
    return params


def _source(e, node, variables, function, module, checks) -> str:
    params = _parameters(variables, function)
    dim_names = [d for shape in variables.values() for d in shape if isinstance(d, str)]
    names = Names(set(params.values()) | {function} | set(dim_names))
    em = module.Emitter(names.prefix, standalone=True)
    # Dimension sizes are named after the dimensions where that clashes with nothing.
    taken = set(params.values()) | {function}
    dims = {}
    for k, d in enumerate(dict.fromkeys(dim_names)):
        ok = is_parameter_name(d) and d not in taken  # Names keeps internal names off d
        dims[d] = Ref(d if ok else names("n", k))
        taken.add(dims[d].name)
    arguments = {E.Var(v, s): Ref(params[v]) for v, s in variables.items()}
    program = L.lower(node, arguments, dims, lambda k: names("t", k), {})

    lines = []
    bound = set()
    needed = set(program.dims_used)
    if checks:
        needed |= set(dim_names)
    for var, shape in variables.items():
        p = params[var]
        new = [d for d in dict.fromkeys(shape) if isinstance(d, str) and d not in bound]
        if checks:
            lines.append(_check_line(p, shape, dims, bound, em))
        use = [d for d in new if d in needed]
        if use:
            if len(use) == len(shape) and len(set(shape)) == len(shape):
                lines.append(", ".join(dims[d].name for d in shape) +
                             ("," if len(shape) == 1 else "") + f" = {p}.shape")
            else:
                for d in use:
                    lines.append(f"{dims[d].name} = {p}.shape[{shape.index(d)}]")
        bound.update(new)
    if "dtype" in program.needs:
        lines += module.codegen_frame_lines(em, [params[v] for v, s in variables.items() if s] or
                                            list(params.values()))
    steps = list(program.steps)
    last = steps[-1] if steps else None
    inline = last is not None and len(last.targets) == 1 and last.targets[0] == program.result \
        and not hasattr(em, "stmt_" + getattr(last.value, "op", ""))
    for step in steps[:-1] if inline else steps:
        lines += em.lines(step)
    lines.append(f"return {em.expr(last.value if inline else program.result)}")

    doc = _docstring(e, variables, params)
    header = [f"def {function}({', '.join(params[v] for v in variables)}):", "    " + doc]
    imports = em.imports()
    if "math" in em.extra_imports:
        imports.append("import math" if not names.prefix else f"import math as {names.fixed('math')}")
    if "functools" in em.extra_imports:
        imports.append("import functools" if not names.prefix else
                       f"import functools as {names.fixed('functools')}")
    return "\n".join(imports + ["", ""] + header + ["    " + line for line in lines]) + "\n"


def _check_line(p, shape, dims, bound, em) -> str:
    """One line that raises ValueError unless parameter ``p`` has ``shape``."""
    if not shape:
        return (f"if getattr({p}, 'shape', ()) != (): raise ValueError("
                f"{p + ': expected a scalar, got shape %s'!r} % ({p}.shape,))")
    known = [isinstance(d, int) or d in bound for d in shape]
    text = shape_text(shape)
    if all(known):
        want = "(" + ", ".join(str(d) if isinstance(d, int) else dims[d].name for d in shape) + \
            ("," if len(shape) == 1 else "") + ")"
        return (f"if {p}.shape != {want}: raise ValueError("
                f"{p + ': expected shape ' + text + ' = %s, got %s'!r} % ({want}, tuple({p}.shape)))")
    conds = [f"{p}.ndim != {len(shape)}"]
    seen = set()
    for axis, d in enumerate(shape):
        if isinstance(d, int):
            conds.append(f"{p}.shape[{axis}] != {d}")
        elif d in bound or d in seen:
            ref = dims[d].name if d in bound else f"{p}.shape[{shape.index(d)}]"
            conds.append(f"{p}.shape[{axis}] != {ref}")
        seen.add(d)
    return (f"if {' or '.join(conds)}: raise ValueError("
            f"{p + ': expected shape ' + text + ', got %s'!r} % (tuple({p}.shape),))")


def _docstring(e, variables, params) -> str:
    """The expression, then the parameters' shapes and the result's on one line."""
    try:
        text = str(e)
    except Exception:  # the matrix printer may not know every node; the debug form always works
        text = E.debug_str(e.node)
    shapes = ", ".join(f"{params[v]}: {shape_text(s) if s else '()'}" +
                       (f" (variable {v})" if params[v] != v else "") for v, s in variables.items())
    doc = f"{text}\n\n{shapes or '(no arguments)'} -> {shape_text(e.shape)}"
    if '"""' in doc or "\\" in doc or not all(ch.isprintable() or ch == "\n" for ch in doc):
        return repr(doc)
    return '"""' + doc.replace("\n\n", "\n\n    ") + '\n    """'
