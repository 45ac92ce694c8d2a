"""lambdify: an expression as a fast function of one backend's arrays (compile, cache, size dispatch).

The expression is re-associated for speed (``optimize.reassociate``),
lowered to a straight-line program (``backend.lower``) and written as Python
source by the backend's emitter (``backend.numpy``, ``backend.jax``, …),
which is compiled once and cached per expression and backend. The function
takes the variables as keyword arguments, checks each one (a missing, extra
or wrongly shaped argument, or a value that is not an array of real numbers,
is a ShapeError naming the variable), and binds the dimension sizes from
them. Where the cheapest form or contraction order depends on the sizes, it
compiles one program per argument-shape signature, on first use.
"""

from __future__ import annotations

import builtins
import difflib
import functools
import importlib
import linecache
import math

import numpy as np

from . import nodes as E
from .backend import lower as L
from .backend.ir import Call, Ref
from .backend.names import Names, is_parameter_name, validate_variable_name
from .errors import MathcalcError, ShapeError
from .declared import shapes_named_like_options
from .expression import as_expr
from .functions import FUNCTIONS
from .optimize import reassociate, size_trials
from .expression import keywords_are_shapes

BACKENDS = ("numpy", "jax", "torch", "cupy", "dask")
_LIBRARY = {"numpy": "numpy", "jax": "jax", "torch": "torch", "cupy": "cupy", "dask": "dask[array]"}


def backend_module(name):
    """The module of a backend (its emitter and argument reader); a MathcalcError
    naming the choices for an unknown name, or saying what to install."""
    if name not in BACKENDS:
        close = difflib.get_close_matches(str(name), BACKENDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise MathcalcError(f"unknown backend {name!r} (choose one of {', '.join(BACKENDS)}){hint}")
    try:
        return importlib.import_module(f"mathcalc.backend.{name}")
    except ImportError as exc:
        raise MathcalcError(f"backend {name!r} needs {_LIBRARY[name]}, which is not importable "
                            f"here ({exc}); pip install 'mathcalc[{name}]'") from None


_MISSING = type("MISSING", (), {"__repr__": lambda self: "MISSING", "__slots__": ()})()

_CACHE: dict = {}
_CACHE_LIMIT = 512


@keywords_are_shapes()
def lambdify(expr, /, backend: str = "numpy", **shapes):
    """A fast function of the expression, keyword arguments by variable name.

    ``fn = lambdify(g); fn(W=..., x=..., b=...)`` returns an array of shape
    ``g.shape`` (dimension names bound from the arrays), or a scalar when g
    is a scalar (numpy: a numpy floating scalar, so ``np.shape(result) == ()``).
    ``backend`` is "numpy" (the default), "jax", "torch", "cupy" or "dask":
    the function takes and returns that library's arrays (SPEC section 9):
    jax functions are pure (jit, vmap, grad apply), torch tensors stay on
    their device and under autograd, dask results are lazy dask arrays.
    Other values (lists, numpy arrays) are read by numpy and converted (for
    torch, to CPU tensors). Results keep the floating dtype of the inputs
    (float32 stays float32; Python numbers and integer arrays are read as
    float64, which JAX keeps only with ``jax_enable_x64``). Every
    variable of the Expr must be passed, even one that dropped out of a
    derivative; a missing, extra or wrongly shaped argument is a ShapeError
    naming the variable and both shapes, and so is a value that is not an
    array of real numbers (a ragged list, a string, a complex array: complex
    values are never cast to real). Vectors are 1-D arrays, scalars Python
    numbers or 0-d arrays. The numpy result never shares memory with an
    argument.

    ``fn.source`` is the generated source, ``fn.expr`` the expression. Where
    the cheapest evaluation depends on the sizes (``optimize.reassociate``;
    contraction orders), the function compiles one variant per
    argument-shape signature, on first use: ``fn.source`` is then the
    variant for assumed sizes and ``fn.sources`` maps each shape signature
    seen so far (the variables' shapes, in order) to the source compiled for it.
    """
    (backend,) = shapes_named_like_options(shapes, backend=(backend, "numpy"))
    if not isinstance(backend, str):
        raise MathcalcError(f"backend must be a name ({', '.join(BACKENDS)}), not {backend!r}")
    e = as_expr(expr, shapes)
    key = (e.node, tuple(e.variables.items()), backend)
    fn = _CACHE.get(key)
    if fn is not None:
        return fn
    module = backend_module(backend)
    variants = reassociation_variants(e.node)
    fn = _compile(e, variants[0], module)
    if len(variants) > 1 or fn.size_dependent:
        fn = _size_dispatch(e, module, fn)
    fn.expr = e
    fn.backend = backend
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[key] = fn
    return fn


def reassociation_variants(node) -> list:
    """The distinct forms ``optimize.reassociate`` picks at the trial sizes
    (``optimize.size_trials``), in trial order: one form when the choice does
    not depend on the sizes."""
    return list(dict.fromkeys(reassociate(node, sizes) for sizes in size_trials(node)))


def _size_dispatch(e, module, first):
    """A function that picks, per argument shapes, the cheapest form and order for those sizes.

    It has the name, docstring and signature of the generated function;
    ``.source`` is the source for assumed sizes and ``.sources`` the source
    compiled for each shape signature seen.
    """
    variables = e.variables
    names = tuple(variables)
    ranks = tuple(len(shape) for shape in variables.values())
    by_shapes: dict = {}
    sources: dict = {}

    def slow_key(kwargs):
        try:
            return tuple(tuple(np.shape(kwargs.get(name, ()))) for name in names)
        except Exception:  # not an array (a ragged list): the checks say what is wrong
            return None

    def dispatch(**kwargs):
        try:  # arrays: a fraction of a microsecond per argument
            key = tuple([tuple(kwargs[name].shape) for name in names])
        except (KeyError, AttributeError, TypeError):
            key = slow_key(kwargs)
        fn = by_shapes.get(key)
        if fn is None:
            if key is None or tuple(map(len, key)) != ranks or \
                    any(name not in kwargs for name in variables):
                return first(**kwargs)  # raises the ShapeError naming the argument
            sizes = {}
            for (name, shape), actual in zip(variables.items(), key):
                for dim, n in zip(shape, actual):
                    if isinstance(dim, str):
                        sizes.setdefault(dim, n)
            fn = _compile(e, reassociate(e.node, sizes), module, sizes)
            if len(by_shapes) > 64:
                by_shapes.clear()
                sources.clear()
            by_shapes[key] = fn
            sources[key] = fn.source
        return fn(**kwargs)

    functools.update_wrapper(dispatch, first)  # name, docstring, signature, .source
    dispatch.sources = sources
    dispatch.size_dependent = True
    return dispatch


_COUNT = [0]


def _compile(e, node, module, sizes=None):
    """The generated function computing ``node`` (a form of ``e``) for this backend."""
    source, namespace, size_dependent = generate(e, node, module, sizes)
    _COUNT[0] += 1
    filename = f"<mathcalc-lambdify-{_COUNT[0]}>"
    _register_source(filename, source)
    # Real builtins: numpy's C code imports through the calling frame's builtins.
    namespace["__builtins__"] = builtins
    exec(compile(source, filename, "exec"), namespace)  # our own generated code, identifiers validated
    fn = namespace["f"]
    fn.source = source
    fn.size_dependent = size_dependent and sizes is None
    return fn


def _register_source(filename: str, source: str) -> None:
    """Let tracebacks show the generated lines."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


# ---------------------------------------------------------------------------
# The frame: header, argument checks, the body from the emitter.


def generate(e, node, module, sizes=None):
    """(source, namespace, size_dependent) of lambdify's function for ``node``."""
    variables = e.variables
    for var in variables:
        validate_variable_name(var)
    params = [v for v in variables if is_parameter_name(v)]
    names = Names(set(params) | {"f"})
    em = module.Emitter(names.prefix, standalone=False)
    fx = names.fixed
    error, missing, extra, read = fx("ShapeError"), fx("MISSING"), fx("unexpected"), fx("read")
    namespace = {error: ShapeError, missing: _MISSING, read: module.read}
    namespace.update({names.fixed(k): v for k, v in module.modules().items()})

    header = _header(variables, names, e, error, missing, extra)
    lines, dims, arguments, refs = [], {}, {}, []
    bound_by = {}
    for k, (var, shape) in enumerate(variables.items()):
        v = names("v", k)
        given = var if is_parameter_name(var) else v  # else popped from the ** dict
        lines.append(f"if {given} is {missing}:")
        lines.append(f"    raise {error}({f'missing argument {var!r} of shape {shape_text(shape)}'!r})")
        fast = module.FAST_SCALAR if not shape else module.FAST_ARRAY
        if fast:
            lines.append(f"{v} = {given} if {fast.format(v=given, lib=em.lib)} "
                         f"else {read}({given}, {var!r}, {len(shape)})")
        else:
            lines.append(f"{v} = {read}({given}, {var!r}, {len(shape)})")
        arguments[E.Var(var, shape)] = Ref(v)
        refs.append(v)
        if not shape:
            continue
        s = v + ".shape"
        msg = (f"argument {var!r} must have shape {shape_text(shape)} "
               f"({len(shape)} ax{'is' if len(shape) == 1 else 'es'}), got shape %s")
        lines.append(f"if {v}.ndim != {len(shape)}:")
        lines.append(f"    raise {error}({msg!r} % (tuple({s}),))")
        constrained = False
        for axis, d in enumerate(shape):
            if isinstance(d, int) or d in dims:
                constrained = True
            else:
                dims[d] = Ref(names("n", len(dims)))
                bound_by[d] = var
                lines.append(f"{dims[d].name} = {s}[{axis}]")
        if constrained:
            want = "(" + ", ".join(str(d) if isinstance(d, int) else dims[d].name for d in shape) + \
                ("," if len(shape) == 1 else "") + ")"
            where = ", ".join(f"{d} = %s from {bound_by[d]!r}" for d in dict.fromkeys(shape)
                              if isinstance(d, str) and bound_by[d] != var)
            msg = (f"argument {var!r} has shape %s, but its declared shape {shape_text(shape)} "
                   f"means %s here" + (f" ({where})" if where else ""))
            sizes_ = [dims[d].name for d in dict.fromkeys(shape) if isinstance(d, str) and bound_by[d] != var]
            fmt_args = ", ".join([f"tuple({s})", want] + sizes_)
            lines.append(f"if {s} != {want}:")  # torch.Size is a tuple too
            lines.append(f"    raise {error}({msg!r} % ({fmt_args}))")

    program = L.lower(node, arguments, dims, lambda k: names("t", k), sizes)
    for entry in _registered(node):
        name = names("f", len(em.functions))
        if module.__name__.endswith(".numpy"):
            em.functions[entry.name] = name
            namespace[name] = entry.numpy
    if "dtype" in program.needs:
        lines += module.frame_lines(em, refs)
    for step in program.steps:
        lines += em.lines(step)
    lines += _result_lines(program, em)
    if "math" in em.extra_imports:
        namespace[names.fixed("math")] = math
    if "functools" in em.extra_imports:
        namespace[names.fixed("functools")] = functools
    body = "\n".join(header + ["    " + line for line in lines]) + "\n"
    return body, namespace, program.size_dependent


def _registered(node):
    seen = {}
    for n in E.walk(node):
        if isinstance(n, E.Apply):
            entry = FUNCTIONS.get(n.fn)
            if entry is not None and not entry.op:  # no spelling of its own: its SymPy form
                seen.setdefault(n.fn, entry)
    return list(seen.values())


def _result_lines(program, em) -> list:
    result = program.result
    if program.rank == 0:
        return [f"return {em.expr(Call('scalar', result))}"]
    if program.aliases_argument:
        return [f"return {em.expr(Call('copy', result))}"]  # never hand back an argument's memory
    return [f"return {em.expr(result)}"]


def _header(variables, names, expr, error, missing, extra) -> list:
    params = ", ".join(f"{v}={missing}" for v in variables if is_parameter_name(v))
    params = f"*, {params}, **{extra}" if params else f"**{extra}"
    lines = ["def f(" + params + "):", "    " + docstring(expr, variables)]
    for k, var in enumerate(variables):
        if not is_parameter_name(var):  # not a Python parameter: a key of the ** dict
            lines.append(f"    {names('v', k)} = {extra}.pop({var!r}, {missing})")
    expected = ", ".join(variables) or "no arguments"
    lines += [f"    if {extra}:",
              f"        raise {error}({'unexpected argument(s) %s; this function takes ' + expected!r}"
              f" % ', '.join(map(repr, sorted({extra}))))"]
    return lines


def docstring(expr, variables, arguments: str = "Arguments (keyword only)", rename=None) -> str:
    try:
        text = str(expr)
    except Exception:  # the matrix printer may not know every node; the debug form always works
        text = E.debug_str(expr.node)
    rename = rename or {}
    args = "\n".join(f"    {rename.get(v, v)}: shape {shape_text(s)}" +
                     (f" (the variable {v})" if rename.get(v, v) != v else "")
                     for v, s in variables.items()) or "    (none)"
    doc = (f"{text}\n\n{arguments}:\n{args}\n\n"
           f"Returns an array of shape {shape_text(expr.shape)}.")
    if '"""' in doc or "\\" in doc or not all(ch.isprintable() or ch == "\n" for ch in doc):
        return repr(doc)
    body = "\n".join(("    " + line) if line else line for line in doc.split("\n"))
    return '"""' + body.lstrip() + '\n    """'


def shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
