"""Source generation: an expression DAG as a straight-line numpy function.

``generate`` is the one generator behind both ``codegen`` (a standalone
source string that imports only numpy) and ``lambdify`` (the same source,
exec'd in a namespace we build). The source contains no user text except
variable names, and those only after ``validate_variable_name`` (letters,
digits and ``_``, as the parser reads names): a name that is a plain Python
identifier meaning itself (``numeric.is_parameter_name``) is a keyword-only
parameter; any other (``lambda``, ``match``, ``__x``, ``ﬁ``, ``sum``) is read
from the ``**`` dict with its key written by ``repr``. Either way the value
is copied at once into an internal name (``v0``, ``v1``…); dimensions become
``n0``, ``n1``…, temporaries ``t0``, ``t1``…; every string literal is written
with ``repr``. Registered functions are passed as objects in lambdify's
namespace and printed by SymPy's numpy printer (from their SymPy form) in
standalone code.
"""

from __future__ import annotations

import itertools
import re
from fractions import Fraction

from . import expr as E
from .errors import MathcalcError, ShapeError
from .expression import keywords_are_shapes
from .functions import FUNCTIONS
from .numeric import (Contraction, _is_atom, _single, branch_condition, candidate_paths,
                      is_parameter_name, lower_product, path_cost_code, subscripts, symbols_spec,
                      validate_identifier, validate_variable_name)

# Built-in element-wise functions as numpy expressions; each matches the
# table's numpy implementation (a test compares them entry by entry).
_TEMPLATES = {
    "exp": "{np}.exp({a})",
    "log": "{np}.log({a})",
    "sin": "{np}.sin({a})",
    "cos": "{np}.cos({a})",
    "tan": "{np}.tan({a})",
    "tanh": "{np}.tanh({a})",
    "sqrt": "{np}.sqrt({a})",
    "abs": "{np}.abs({a})",
    "sign": "{np}.sign({a})",
    "step": "({a} > 0) * 1.0",
    "sigmoid": "0.5 * ({np}.tanh(0.5 * {a}) + 1.0)",  # stable: no overflow for large |a|
    "relu": "{np}.maximum({a}, 0.0)",
    "softplus": "{np}.logaddexp(0.0, {a})",  # log(1 + e^a) without overflow
}

# Functions whose template already scales its argument: sigmoid(c*u) costs no
# pass more than sigmoid(u) (the coefficient joins the 0.5).
_SCALED_TEMPLATES = {"sigmoid": "0.5 * ({np}.tanh({h} * {a}) + 1.0)"}

_INTERNAL = re.compile(r"^(v|t|n|f|c)\d+$")


class _Names:
    """Internal names that cannot collide with any variable name."""

    def __init__(self, taken):
        prefix = ""
        fixed = ("np", "ShapeError", "MISSING", "unexpected", "math", "functools", "FLOAT64",
                 "as_float64")
        while any(prefix + f in taken for f in fixed) or \
                any(_INTERNAL.match(t[len(prefix):]) for t in taken if t.startswith(prefix)):
            prefix += "_"
        self.prefix = prefix
        self.np = prefix + "np"
        self.error = prefix + "ShapeError"
        self.missing = prefix + "MISSING"
        self.extra = prefix + "unexpected"
        self.math = prefix + "math"
        self.functools = prefix + "functools"
        self.float64 = prefix + "FLOAT64"
        self.as_float64 = prefix + "as_float64"

    def __call__(self, kind: str, k: int) -> str:
        return f"{self.prefix}{kind}{k}"


class _Context:
    """What ``lower_product`` and the node lowerings write through."""

    def __init__(self, names: _Names, dims: dict, standalone: bool):
        self.names = names
        self.np = names.np
        self.lines: list[str] = []
        self.values: dict = {}
        self.dims = dims  # dimension name -> internal name
        self.standalone = standalone
        self.namespace: dict = {}
        self.imports: set = set()
        self._count = 0
        self._objects: dict = {}
        self.indent = 0  # extra levels, inside a branch
        self.fresh: set = set()  # codes of arrays made here (never views of an argument)
        self.literals: set = set()  # codes that are Python floats, not numpy float64
        self.arguments: set = set()  # codes of the arguments' arrays

    def emit(self, line: str) -> None:
        self.lines.append("    " * (1 + self.indent) + line)

    def tmp(self) -> str:
        self._count += 1
        return self.names("t", self._count - 1)

    def assign(self, code: str) -> str:
        if _is_name(code):
            return code
        name = self.tmp()
        self.emit(f"{name} = {code}")
        return name

    def lit(self, value) -> str:
        value = float(value) if isinstance(value, Fraction) else value
        text = repr(float(value))
        if text in ("inf", "-inf", "nan"):
            text = f"{self.np}.{text.lstrip('-')}" if not text.startswith("-") else f"(-{self.np}.inf)"
        code = f"({text})" if text.startswith("-") else text
        self.literals.add(code)
        return code

    def dim(self, d) -> str:
        return str(d) if isinstance(d, int) else self.dims[d]

    def shape(self, shape) -> str:
        parts = [self.dim(d) for d in shape]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def obj(self, kind: str, obj, key) -> str:
        """A namespace name bound to a Python object (lambdify only)."""
        if key not in self._objects:
            name = self.names(kind, len(self._objects))
            self._objects[key] = name
            self.namespace[name] = obj
        return self._objects[key]

    def contraction(self, operand_labels, out, codes) -> str:
        """An einsum whose pairwise order is chosen per size signature when it runs."""
        if self.standalone:
            subs = subscripts(*operand_labels, out)
            spec = ",".join(subs[:-1]) + "->" + subs[-1]
            return f"{self.np}.einsum({spec!r}, {', '.join(codes)}, optimize=True)"
        spec = symbols_spec(operand_labels, out)
        fn = self.obj("c", Contraction(spec), ("contraction", spec, len(self._objects)))
        return f"{fn}({', '.join(codes)})"

    def val(self, node: E.Node) -> str:
        """The code of a node's value, computing leaves that products did not absorb."""
        code = self.values.get(node)
        if code is None:
            code = _lower_leaf(node, self)
            self.values[node] = code
        return code


def _is_name(code: str) -> bool:
    return code.isidentifier()


def _lower_leaf(node, ctx: _Context) -> str:
    np_ = ctx.np
    if isinstance(node, E.Num):
        return ctx.lit(node.value)
    if isinstance(node, E.Zero):
        return ctx.assign(f"{np_}.zeros({ctx.shape(node.shape)})")
    if isinstance(node, E.Ones):
        return ctx.assign(f"{np_}.ones({ctx.shape(node.shape)})")
    if isinstance(node, E.Delta):
        return ctx.assign(f"{np_}.eye({ctx.dim(node.dim)})")
    raise MathcalcError(f"lambdify: node {type(node).__name__} was not computed before use")


# ---------------------------------------------------------------------------
# Node lowerings: one function per node type; an unknown type raises.


def _scaled_terms(order, root) -> set:
    """Products with a coefficient that only sums use: the sum applies the coefficient.

    ``2*A*x - 2*B*y`` is then ``2.0 * (a - b)``: one scaling and one
    subtraction, not a scaling of each term and an addition.
    """
    parents: dict = {}
    for n in order:
        for child in n.children():
            kind = ("apply", n.fn) if isinstance(n, E.Apply) else type(n)
            parents.setdefault(child, set()).add(kind)
    takers = {E.Sum} | {("apply", fn) for fn in _SCALED_TEMPLATES}
    return {n for n in order if isinstance(n, E.Product) and n.coef != 1 and n is not root
            and parents.get(n) and parents[n] <= takers}


def _unscaled(term, ctx) -> tuple:
    """(coefficient, code of term without it) for a term whose user applies the coefficient."""
    coef, unit = E.split_coef(term)
    code = ctx.values.get(unit)
    if code is None:
        code = ctx.val(unit) if isinstance(unit, _LEAVES) or not isinstance(unit, E.Product) \
            else lower_product(unit, ctx)
        ctx.values[unit] = code
    return float(coef), code


def _sum(node: E.Sum, ctx) -> str:
    scaled, const = [], 0.0  # (coefficient, code of the unscaled term)
    for term in node.terms:
        c = _constant(term)
        if c is not None:
            const += c
        elif term in getattr(ctx, "deferred", ()):
            scaled.append(_unscaled(term, ctx))
        else:
            scaled.append((1.0, ctx.val(term)))
    if not scaled:
        return ctx.assign(f"{ctx.np}.full({ctx.shape(node.shape)}, {ctx.lit(const)})"
                          if node.rank else ctx.lit(const))
    common = abs(scaled[0][0])
    if any(abs(c) != common for c, _ in scaled):
        common = 1.0
    # the positive terms first: a - b, not -b + a
    scaled.sort(key=lambda cc: cc[0] < 0)
    parts = []
    for c, code in scaled:
        c = c / common
        mag = "" if abs(c) == 1 else f"{ctx.lit(abs(c))} * "
        code = code if _is_atom(code) or not mag else f"({code})"
        parts.append((" - " if c < 0 else " + ") + mag + code)
    text = "".join(parts)
    if const:  # 1.0 - t, not -t + 1.0 (one pass, not two)
        text = f"{ctx.lit(const / common)}{text}"
    else:
        text = text[3:] if text.startswith(" + ") else "-" + text[3:]
    if common != 1:
        text = f"{ctx.lit(common)} * ({text})"
    return ctx.assign(text)


def _constant(node):
    """c for a term that is ``c * ones`` or a number, else None (so sums never build ones)."""
    if isinstance(node, E.Num):
        return float(node.value)
    if isinstance(node, E.Ones):
        return 1.0
    if isinstance(node, E.Product) and all(isinstance(f, E.Ones) for f, _ in node.factors) \
            and {l for _, idx in node.factors for l in idx} == set(range(node.rank)):
        return float(node.coef)
    return None


def _apply(node: E.Apply, ctx) -> str:
    if node.arg in getattr(ctx, "deferred", ()):  # sigmoid(c*u): c joins the template's 0.5
        coef, a = _unscaled(node.arg, ctx)
        a = a if _is_atom(a) else f"({a})"
        return ctx.assign(_SCALED_TEMPLATES[node.fn].format(np=ctx.np, h=ctx.lit(0.5 * coef), a=a))
    a = ctx.val(node.arg)
    entry = FUNCTIONS.get(node.fn)
    if entry is None:
        raise MathcalcError(f"unknown element-wise function {node.fn!r}")
    template = _TEMPLATES.get(node.fn) if entry.builtin else None
    if template is not None:
        return ctx.assign(template.format(np=ctx.np, a=a))
    if not ctx.standalone:
        fn = ctx.obj("f", entry.numpy, ("function", node.fn))
        return ctx.assign(f"{fn}({a})")
    return ctx.assign(_printed_function(entry, a, ctx))


def _printed_function(entry, a: str, ctx) -> str:
    """A registered function's SymPy form printed as numpy code (SymPy printing SymPy)."""
    import sympy
    from sympy.printing.numpy import NumPyPrinter

    from . import functions as F

    u = sympy.Symbol(a)
    scalar = entry.scalar.subs(F.U, u).replace(
        lambda e: isinstance(e, (F.sigmoid, F.relu, F.softplus, F.absolute, F.step, F.sign)),
        lambda e: _elementary(e, sympy, F))
    printer = NumPyPrinter({"fully_qualified_modules": True})
    code = printer.doprint(scalar)
    if printer._not_supported:
        raise MathcalcError(f"codegen: function {entry.name!r} has no numpy form; "
                            "use lambdify, which calls its implementation")
    modules = set(printer.module_imports)
    code = re.sub(r"\bnumpy\.", f"{ctx.np}.", code)
    if "math" in modules:  # scalar-only functions: map them over the entries
        ctx.imports.add("math")
        code = re.sub(r"\bmath\.", f"{ctx.names.math}.", code)
        return (f"{ctx.np}.vectorize(lambda {a}: {code}, otypes=[float])({a})")
    if "functools" in modules:
        ctx.imports.add("functools")
        code = re.sub(r"\bfunctools\.", f"{ctx.names.functools}.", code)
    if modules - {"numpy", "math", "functools"}:
        raise MathcalcError(f"codegen: function {entry.name!r} needs {sorted(modules)}")
    return f"{code} + 0.0 * {a}"  # keeps the argument's shape when the form is constant


def _elementary(e, sympy, F):
    x = e.args[0]
    if isinstance(e, F.sigmoid):
        return 1 / (1 + sympy.exp(-x))
    if isinstance(e, F.relu):
        return sympy.Max(x, 0)
    if isinstance(e, F.softplus):
        return sympy.log(1 + sympy.exp(x))
    if isinstance(e, F.absolute):
        return sympy.Abs(x)
    if isinstance(e, F.step):
        return sympy.Heaviside(x, 0)
    return sympy.sign(x)


def _pow(node: E.Pow, ctx) -> str:
    """Powers with numpy's float64 rules: a Python float base would give a complex
    number for (-1.0) ** 0.5, OverflowError or ZeroDivisionError where numpy
    gives NaN or inf, so a literal base is made a float64 first."""
    a = ctx.val(node.base)
    np_ = ctx.np
    if a in ctx.literals:
        a = ctx.assign(f"{np_}.float64({a})")
    if isinstance(node.exponent, E.Num):
        e = node.exponent.value
        if e == 2:
            return ctx.assign(f"{a} * {a}")
        if e == -1:
            return ctx.assign(f"1.0 / {a}")
        if e == Fraction(1, 2):
            return ctx.assign(f"{np_}.sqrt({a})")
        if e == Fraction(-1, 2):
            return ctx.assign(f"1.0 / {np_}.sqrt({a})")
        if isinstance(e, Fraction) and e.denominator == 1:
            return ctx.assign(f"{a} ** {int(e)}" if e > 0 else f"{a} ** ({int(e)})")
        return ctx.assign(f"{a} ** {ctx.lit(e)}")
    return ctx.assign(f"{np_}.power({a}, {ctx.val(node.exponent)})")


def _max(node, ctx) -> str:
    return ctx.assign(f"{ctx.np}.maximum({ctx.val(node.left)}, {ctx.val(node.right)})")


def _min(node, ctx) -> str:
    return ctx.assign(f"{ctx.np}.minimum({ctx.val(node.left)}, {ctx.val(node.right)})")


def _inv(node, ctx) -> str:
    return ctx.assign(f"{ctx.np}.linalg.inv({ctx.val(node.arg)})")


def _det(node, ctx) -> str:
    return ctx.assign(f"{ctx.np}.linalg.det({ctx.val(node.arg)})")


def _logdet(node, ctx) -> str:
    """log det X, NaN where det X <= 0 (SPEC), through slogdet (no overflow)."""
    sign, value = ctx.tmp(), ctx.tmp()
    ctx.emit(f"{sign}, {value} = {ctx.np}.linalg.slogdet({ctx.val(node.arg)})")
    ctx.emit(f"{value} = {value} if {sign} > 0 else {ctx.np}.float64({ctx.np}.nan)")
    return value


def _softmax(node, ctx) -> str:
    """exp(v - max v) / Σ exp(v - max v): the shift keeps exp from overflowing."""
    a = ctx.val(node.arg)
    e = ctx.assign(f"{ctx.np}.exp({a} - {ctx.np}.max({a}))")
    return ctx.assign(f"{e} / {ctx.np}.sum({e})")


def _logsumexp(node, ctx) -> str:
    a = ctx.val(node.arg)
    m = ctx.assign(f"{ctx.np}.max({a})")
    return ctx.assign(f"{m} + {ctx.np}.log({ctx.np}.sum({ctx.np}.exp({a} - {m})))")


def _norm1(node, ctx) -> str:
    return ctx.assign(f"{ctx.np}.sum({ctx.np}.abs({ctx.val(node.arg)}))")


def _norm2(node, ctx) -> str:
    """Euclidean norm of the entries (Frobenius for a matrix)."""
    a = ctx.val(node.arg)
    if node.arg.rank == 0:
        return ctx.assign(f"{ctx.np}.abs({a})")
    return ctx.assign(f"{ctx.np}.linalg.norm({a})")


_LOWER = {
    E.Sum: _sum, E.Product: lower_product, E.Apply: _apply, E.Pow: _pow,
    E.Max: _max, E.Min: _min, E.Inv: _inv, E.Det: _det, E.LogDet: _logdet,
    E.Softmax: _softmax, E.LogSumExp: _logsumexp, E.Norm1: _norm1, E.Norm2: _norm2,
}
_LEAVES = (E.Var, E.Num, E.Zero, E.Ones, E.Delta)


# ---------------------------------------------------------------------------
# The whole function.


def generate(expr, name: str = "f", standalone: bool = True, sizes: dict | None = None,
             variants=None):
    """(source, namespace, function name) for an Expr.

    With ``standalone`` the source begins with its imports and defines
    ``ShapeError``, the missing-argument marker and the argument converter
    itself; otherwise the namespace binds them (and registered functions,
    runtime contractions). ``variants`` are equal forms of ``expr.node``
    (re-associations): the source computes, from the argument sizes, the flop
    count of each (``optimize.dag_cost``, in the source) and evaluates the
    cheapest, the first of equals.
    """
    # ``sizes`` (dimension name -> size) fixes the contraction orders for
    # those sizes, so no product needs choosing its order at run time.
    import numpy as np

    validate_identifier(name, "function")
    variables = expr.variables
    for var in variables:
        validate_variable_name(var)
    params = [v for v in variables if is_parameter_name(v)]
    names = _Names(set(params) | {name})
    dims = {}
    ctx = _Context(names, dims, standalone)
    ctx.sizes = sizes
    nodes = list(dict.fromkeys(variants or [expr.node]))
    for node in nodes:
        if node.shape != expr.node.shape:
            raise MathcalcError("generate: a variant of another shape")  # pragma: no cover
    header = _header(name, variables, names, expr)
    _arguments(variables, ctx)
    for node in nodes:
        _check_dims(node, ctx)
    if len(nodes) == 1:
        _body(nodes[0], ctx)
    else:
        shared = set.intersection(*(set(E.walk(n)) for n in nodes))
        costs = [ctx.assign(_dag_cost_code(n, shared, ctx)) for n in nodes]
        base = dict(ctx.values)
        for k, node in enumerate(nodes):
            ctx.values = dict(base)
            last = k == len(nodes) - 1
            if not last:
                ctx.emit(branch_condition(costs, k, "if"))
                ctx.indent += 1
            _body(node, ctx)
            if not last:
                ctx.indent -= 1

    body = "\n".join(header + ctx.lines) + "\n"
    namespace = dict(ctx.namespace)
    if standalone:
        source = _preamble(names, ctx.imports) + body
    else:
        source = body
        namespace.update({names.np: np, names.error: ShapeError, names.missing: _MISSING,
                          names.float64: np.dtype(np.float64),
                          names.as_float64: _converter(names)})
    return source, namespace, name


def _check_dims(node, ctx) -> None:
    for n in E.walk(node):
        if isinstance(n, E.Var):
            continue
        for d in n.shape:
            if isinstance(d, str) and d not in ctx.dims:
                raise ShapeError(f"the size of dimension {d!r} is not the size of any "
                                 "variable's axis, so it cannot be read from the arguments")


def _body(root, ctx) -> None:
    """The lines computing ``root`` from the arguments, and its return."""
    order = E.walk(root)
    ctx.deferred = _scaled_terms(order, root)
    for node in order:
        if isinstance(node, _LEAVES) or node in ctx.values or node in ctx.deferred:
            continue  # leaves are materialised only where something needs them whole
        lower = _LOWER.get(type(node))
        if lower is None:
            raise MathcalcError(f"lambdify: unknown node type {type(node).__name__}")
        code = _transposed_twin(node, ctx)
        ctx.values[node] = code if code is not None else lower(node, ctx)
    result = ctx.val(root)
    np_ = ctx.np
    if root.rank == 0:
        ctx.emit(f"return {np_}.float64({result})")
    elif result in ctx.arguments or (result not in ctx.fresh and _may_alias_argument(root, ctx)):
        ctx.emit(f"return {np_}.array({result}, dtype={np_}.float64)")  # never hand back an argument's memory
    else:
        ctx.emit(f"return {result}")


# Products of this rank at most are matched against their transposes.
MAX_TWIN_RANK = 3


def _transposed_twin(node, ctx):
    """The code of ``node`` as a transpose of an equal product already computed, or None.

    ``inv(M)'`` is rewritten ``inv(M')``, so a derivative can hold both M and
    M' as separate products of the same factors: the second is a view of the
    first, not a second contraction.
    """
    if not isinstance(node, E.Product) or not 2 <= node.rank <= MAX_TWIN_RANK or \
            sum(1 for f, _ in node.factors if f.rank and not isinstance(f, (E.Delta, E.Ones))) < 2:
        return None
    axes = tuple(range(node.rank))
    for perm in itertools.permutations(axes):
        if perm == axes:
            continue
        twin = E.product([(node, axes)], perm)  # twin axis k is node axis perm[k]
        code = ctx.values.get(twin)
        if code is not None:
            return ctx.assign(_single(code, list(perm), list(axes), ctx))
    return None


def _may_alias_argument(node, ctx) -> bool:
    """Whether the value of ``node`` may be (a view of) an argument's array."""
    while True:
        if isinstance(node, E.Var):
            return True
        if not isinstance(node, E.Product) or ctx.values.get(node) in ctx.fresh:
            return False
        dense = [f for f, _ in node.factors if not isinstance(f, (E.Delta, E.Ones)) and f.rank]
        if len(dense) != 1 or node.coef != 1 or any(f.rank == 0 for f, _ in node.factors):
            return False  # computed: a product, a scaling
        node = dense[0]  # a transpose, diagonal or reduction of one factor: maybe a view


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


_MISSING = _Missing()


# ---------------------------------------------------------------------------
# The cost of a form, in the source: optimize.dag_cost as an expression in the
# dimension sizes, for choosing between re-associations at run time.


def _dag_cost_code(node, skip, ctx) -> str:
    parts = [_own_cost_code(n, ctx) for n in E.walk(node) if n not in skip]
    return " + ".join(p for p in parts if p != "0") or "0"


def _own_cost_code(node, ctx) -> str:
    """``optimize.own_cost`` of one node, as code (the same formulas, term by term)."""
    from . import optimize as O

    def size(shape) -> str:
        return "*".join(ctx.dim(d) for d in shape) or "1"

    if isinstance(node, E.Product):
        if not node.factors:
            return "0"
        if len(node.factors) == 1:
            return f"({size(node.factors[0][0].shape)} or 1)"
        labels = [idx for _, idx in node.factors]
        out = tuple(range(node.rank))
        if len(labels) == 2 or set(out) == {l for ls in labels for l in ls}:
            paths = [[tuple(range(len(labels)))]]  # opt_einsum's one-step case
        elif len(labels) <= 4:  # optimal: every pairwise order
            paths = list(_pairwise_paths(len(labels)))
        else:  # greedy: the orders it takes at the trial sizes
            paths = candidate_paths(labels, out, node.dims) or [[tuple(range(len(labels)))]]
        codes = list(dict.fromkeys(path_cost_code(labels, out, p, node.dims, ctx.dim) for p in paths))
        return codes[0] if len(codes) == 1 else f"min({', '.join(codes)})"
    if isinstance(node, (E.Inv, E.Det, E.LogDet)):
        d = ctx.dim(node.arg.shape[0])
        return f"{d}*{d}*{d}"
    if isinstance(node, (E.Var, E.Num, E.Zero, E.Ones, E.Delta)):
        return "0"
    if isinstance(node, E.Sum):
        return f"{O.MEMORY_BOUND * len(node.terms)}*{size(node.shape)}"
    children = node.children()
    if children and children[0].shape != node.shape:
        return f"{O.MEMORY_BOUND}*max({size(node.shape)}, {size(children[0].shape)})"
    return f"{O.MEMORY_BOUND}*{size(node.shape)}"


def _pairwise_paths(n: int):
    """Every order of contracting n operands two at a time (opt_einsum path format)."""
    if n <= 1:
        yield []
        return
    for pair in itertools.combinations(range(n), 2):
        for rest in _pairwise_paths(n - 1):
            yield [pair] + rest


# ---------------------------------------------------------------------------
# Preamble, header and argument checks.


# Reads an argument that is not a float64 array (a float64 array never calls
# it). Standalone source prints it; lambdify execs the same text, so the
# messages cannot drift. The body refers to builtins (type, float...): no
# parameter has a builtin's name (numeric.is_parameter_name).
_CONVERTER = """\
def {as_float64}(value, name):
    \"\"\"``value`` as a float64 array, or a {error} saying what is wrong with it.\"\"\"
    try:
        array = {np}.asarray(value)
    except Exception as exc:  # a ragged nested list, an object numpy cannot read
        what = "is ragged (nested lists of different lengths)" if "inhomogeneous" in str(exc) \\
            else "cannot be read as an array"
        raise {error}("argument %r %s: %s" % (name, what, exc)) from None
    if array.dtype is {float64}:  # a Python float, a list of them
        return array
    kind = array.dtype.kind
    if kind == "c":
        raise {error}("argument %r is complex (dtype %s); only real values are accepted"
                         % (name, array.dtype))
    if kind == "O":  # Python objects: real numbers (Fraction, Decimal) only
        for item in array.flat:
            try:
                if isinstance(item, (str, bytes, complex, {np}.complexfloating)):
                    raise TypeError
                float(item)
            except Exception:
                raise {error}("argument %r %s a value of type %s (%.60r), not a real number" % (
                    name, "is" if array.ndim == 0 else "holds", type(item).__name__, item)) from None
    elif kind not in "biuf":
        raise {error}("argument %r %s (dtype %s), not real numbers" % (
            name, "is a string" if kind in "US" else "has values", array.dtype))
    return array.astype({np}.float64)
"""

_CONVERTERS: dict = {}


def _converter(names: _Names):
    """The argument converter of ``_CONVERTER``, compiled once per name prefix (lambdify)."""
    fn = _CONVERTERS.get(names.prefix)
    if fn is None:
        import numpy as np

        namespace = {names.np: np, names.error: ShapeError, names.float64: np.dtype(np.float64)}
        source = _CONVERTER.format(np=names.np, error=names.error, as_float64=names.as_float64,
                                   float64=names.float64)
        exec(compile(source, "<mathcalc-argument-converter>", "exec"), namespace)  # our own text
        fn = _CONVERTERS[names.prefix] = namespace[names.as_float64]
    return fn


def _preamble(names: _Names, imports) -> str:
    lines = [f"import numpy as {names.np}"]
    if "math" in imports:
        lines.append(f"import math as {names.math}")
    if "functools" in imports:
        lines.append(f"import functools as {names.functools}")
    lines += ["", "",
              f"class {names.error}(ValueError):",
              '    """A missing, unexpected or wrongly shaped argument."""',
              "", "",
              f"{names.missing} = object()",
              f"{names.float64} = {names.np}.dtype({names.np}.float64)",
              "", "",
              _CONVERTER.format(np=names.np, error=names.error, as_float64=names.as_float64,
                                   float64=names.float64),
              ""]
    return "\n".join(lines) + "\n"


def _header(name, variables, names: _Names, expr) -> list:
    params = ", ".join(f"{v}={names.missing}" for v in variables if is_parameter_name(v))
    params = f"*, {params}, **{names.extra}" if params else f"**{names.extra}"
    lines = [f"def {name}({params}):", "    " + _docstring(expr, variables)]
    for k, var in enumerate(variables):
        if not is_parameter_name(var):  # not a Python parameter: a key of the ** dict
            lines.append(f"    {names('v', k)} = {names.extra}.pop({var!r}, {names.missing})")
    expected = ", ".join(variables) or "no arguments"
    lines += [f"    if {names.extra}:",
              f"        raise {names.error}({'unexpected argument(s) %s; this function takes ' + expected!r}"
              f" % ', '.join(map(repr, sorted({names.extra}))))"]
    return lines


def _docstring(expr, variables) -> str:
    try:
        text = str(expr)
    except Exception:  # the matrix printer may not know every node; the debug form always works
        text = E.debug_str(expr.node)
    args = "\n".join(f"    {v}: shape {_shape_text(s)}" for v, s in variables.items()) or "    (none)"
    doc = (f"{text}\n\nArguments (keyword only):\n{args}\n\n"
           f"Returns an array of shape {_shape_text(expr.shape)}.")
    if '"""' in doc or "\\" in doc or not all(ch.isprintable() or ch == "\n" for ch in doc):
        return repr(doc)
    body = "\n".join(("    " + line) if line else line for line in doc.split("\n"))
    return '"""' + body.lstrip() + '\n    """'


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _arguments(variables: dict, ctx: _Context) -> None:
    """Checks that read each argument into v<k> and bind the dimension sizes."""
    names = ctx.names
    np_, err = names.np, names.error
    bound_by = {}
    for k, (var, shape) in enumerate(variables.items()):
        v = names("v", k)
        given = var if is_parameter_name(var) else v  # else popped from the ** dict
        ctx.emit(f"if {given} is {names.missing}:")
        ctx.emit(f"    raise {err}({f'missing argument {var!r} of shape {_shape_text(shape)}'!r})")
        # A float64 array is taken as it is; anything else goes through the
        # converter, which converts it or says what is wrong with it.
        ctx.emit(f"{v} = {given} if type({given}) is {np_}.ndarray and {given}.dtype is {names.float64} "
                 f"else {names.as_float64}({given}, {var!r})")
        if not shape:
            msg = f"argument {var!r} must be a scalar (shape ()), got an array of shape %s"
            ctx.emit(f"if {v}.shape:")
            ctx.emit(f"    raise {err}({msg!r} % ({v}.shape,))")
            ctx.emit(f"{v} = {v}[()]")
            ctx.values[E.Var(var, shape)] = v
            ctx.arguments.add(v)
            continue
        s = v + ".shape"
        msg = (f"argument {var!r} must have shape {_shape_text(shape)} "
               f"({len(shape)} ax{'is' if len(shape) == 1 else 'es'}), got shape %s")
        ctx.emit(f"if {v}.ndim != {len(shape)}:")
        ctx.emit(f"    raise {err}({msg!r} % ({s},))")
        constrained = False
        for axis, d in enumerate(shape):
            if isinstance(d, int) or d in ctx.dims:
                constrained = True
            else:
                ctx.dims[d] = names("n", len(ctx.dims))
                bound_by[d] = var
                ctx.emit(f"{ctx.dims[d]} = {s}[{axis}]")
        if constrained:
            want = ctx.shape(shape)
            where = ", ".join(f"{d} = %s from {bound_by[d]!r}" for d in dict.fromkeys(shape)
                              if isinstance(d, str) and bound_by[d] != var)
            msg = (f"argument {var!r} has shape %s, but its declared shape {_shape_text(shape)} "
                   f"means %s here" + (f" ({where})" if where else ""))
            sizes = [ctx.dims[d] for d in dict.fromkeys(shape) if isinstance(d, str) and bound_by[d] != var]
            fmt_args = ", ".join([s, want] + sizes)
            ctx.emit(f"if {s} != {want}:")
            ctx.emit(f"    raise {err}({msg!r} % ({fmt_args}))")
        ctx.values[E.Var(var, shape)] = v
        ctx.arguments.add(v)


@keywords_are_shapes()
def codegen(expr, name: str = "f", **shapes) -> str:
    """The source of a standalone numpy function computing ``expr``.

    The function takes the variables as keyword arguments and imports only
    numpy (plus ``math`` for a registered function SymPy prints with it);
    its docstring gives the expression in matrix notation and the argument
    shapes. Shared subexpressions are computed once, as named temporaries.

    It evaluates what ``lambdify`` runs: the expression re-associated for
    speed (``optimize.reassociate``). Where the cheapest association depends
    on the sizes (``-2*(X - U*V')*V`` is best distributed when U and V are
    thin), every form ``reassociate`` picks at the trial sizes
    (``optimize.size_trials``) is written out, and the source computes each
    one's flop count from the argument shapes (``optimize.dag_cost``'s
    formulas) and evaluates the cheapest. Likewise a product of three or
    more factors whose best pairwise order depends on the sizes is written in
    each order opt_einsum picks at very different sizes, the one with the
    fewest flops for the arguments run; no contraction path is searched when
    the function runs. (lambdify searches for the argument sizes themselves,
    so for sizes between the trials it may pick a form not written here; the
    values agree either way.)
    """
    from .expression import as_expr
    from .numeric import reassociation_variants

    e = as_expr(expr, shapes)
    source, _, _ = generate(e, name, standalone=True, variants=reassociation_variants(e.node))
    return source
