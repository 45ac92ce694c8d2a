"""The one table of element-wise functions: one row per function.

A row (``ElementwiseFunction``) holds everything mathcalc knows about a
function: its numpy implementation, its spelling in every backend (one
array-API template plus the backends that spell it differently), its scalar
SymPy form, its LaTeX name, its domain (positive arguments only, a kink at
0, the range of its values) and its form in SymPy's own functions (for
``to_sympy``/``from_sympy``). Parsing, the derivative rules, checking, the
printers, the SymPy interop and the backends read the row; adding a
built-in function is one ``_builtin`` row here (or one ``register_function``
call from user code, which takes every field from the SymPy form).

Its derivative is never written by hand: SymPy differentiates the scalar
form, and the result is read back into expression nodes applied
element-wise.

Non-smooth points follow one convention everywhere: the derivative at a kink
is 0 (step(0) = 0, so d max(0, u)/du at u = 0 is 0; sign(0) = 0, so
d abs(u)/du at 0 is 0).

An entry never changes meaning once it is in the table: expressions, their
derivatives and compiled functions refer to it by name. Where a derivative
needs a scalar function the table lacks (SymPy's ``atan``, say), an entry is
added for it, named after the SymPy function, or ``<f>_aux<k>`` after the
function ``f`` being differentiated; it parses, prints and lambdifies like
any other, and ``register_function`` cannot take its name for another
function.
"""

from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy

from . import nodes as E
from .calls import CALL_NAMES, is_identifier
from .errors import MathcalcError

U = sympy.Symbol("u", real=True)

BACKENDS = ("numpy", "jax", "torch", "cupy", "dask")


# SymPy scalar forms of the functions SymPy does not have, each with its
# derivative written in terms of the table, so derivatives read as a person
# writes them (sigmoid' = σ(1-σ), not exp(-u)/(1+exp(-u))²).
class step(sympy.Function):
    """1 where u > 0, else 0."""

    def fdiff(self, argindex=1):
        return sympy.Integer(0)


class sign(sympy.Function):
    """-1, 0 or 1; its derivative is 0 everywhere (0 at the kink, by convention)."""

    def fdiff(self, argindex=1):
        return sympy.Integer(0)


class sigmoid(sympy.Function):
    def fdiff(self, argindex=1):
        return sigmoid(self.args[0]) * (1 - sigmoid(self.args[0]))


class relu(sympy.Function):
    def fdiff(self, argindex=1):
        return step(self.args[0])


class softplus(sympy.Function):
    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


class absolute(sympy.Function):
    """abs with derivative sign (sign(0) = 0)."""

    def fdiff(self, argindex=1):
        return sign(self.args[0])


def _sigmoid_np(u):
    return 0.5 * (np.tanh(0.5 * u) + 1.0)


def _step_np(u):
    return (np.asarray(u) > 0).astype(float)


# Special functions numpy lacks, element-wise through the math module.
_SPECIAL = {name: np.vectorize(getattr(math, name), otypes=[float])
            for name in ("erf", "erfc", "gamma", "lgamma")}
_SPECIAL["loggamma"] = _SPECIAL["lgamma"]


# Reading SymPy's own forms back as the table's heads (SymPy interop): each takes a
# SymPy expression and returns its form in the table's head, or None.
def _heaviside(e):
    """Heaviside(t, h0) in the table's step and sign, exactly (h0 is its value at 0)."""
    if not isinstance(e, sympy.Heaviside):
        return None
    arg, h0 = (e.args + (sympy.S.Half,))[:2]
    if h0 == 0:
        return step(arg)
    if h0 == sympy.S.Half:
        return (1 + sign(arg)) / 2
    if h0 == 1:
        return 1 - step(-arg)
    if not h0.is_number:
        raise MathcalcError(f"Heaviside({arg}, {h0}): a value at 0 that is not a number "
                            "has no mathcalc form")
    return (1 - h0) * step(arg) + h0 * (1 - step(-arg))


def _one_plus_exp(s):
    """t for s = 1 + exp(t), else None."""
    if isinstance(s, sympy.Add) and len(s.args) == 2 and sympy.S.One in s.args:
        (other,) = [a for a in s.args if a != 1]
        if isinstance(other, sympy.exp):
            return other.args[0]
    return None


def _logistic(e):
    """sigmoid(t) for e = 1/(1 + exp(-t)), else None."""
    if isinstance(e, sympy.Pow) and e.exp == -1:
        t = _one_plus_exp(e.base)
        if t is not None:
            return sigmoid(-t)
    return None


def _log_one_plus_exp(e):
    """softplus(t) for e = log(1 + exp(t)), else None."""
    if isinstance(e, sympy.log):
        t = _one_plus_exp(e.args[0])
        if t is not None:
            return softplus(t)
    return None


@dataclass
class ElementwiseFunction:
    """One row of the table: everything every part of mathcalc needs about a function."""

    name: str
    scalar: sympy.Expr  # the function applied to the symbol U; SymPy differentiates it
    numpy: Callable  # the numpy implementation (evaluation, lambdify of registered ones)
    latex: str  # LaTeX command or operator name, e.g. r"\tanh"
    kind: str = "builtin"  # "builtin" (the language's), "user" (register_function), "derived"
    origin: str = ""  # for a derived entry: the function whose derivative needed it
    # The backends' spelling: a template of the emitters ({lib} the library's alias,
    # {0} the argument, {a0} it bracketed unless an atom; backend/emit.py) that writes an
    # atom (a call, or an expression in brackets), one array-API spelling for every
    # backend and the backends that differ. None: every backend prints the SymPy form
    # (SymPy's printers), as for every registered function.
    call: str | None = None
    calls: dict = field(default_factory=dict)  # backend -> its own template
    scaled: bool = False  # its op takes a coefficient c of f(c*u), written by each emitter
    # SymPy interop: u -> the function in SymPy's own functions (None: the scalar form is
    # already SymPy's), and the reader of that form back into the table's head.
    sympy_own: Callable | None = None
    read_own: Callable | None = None
    # Domain: defined for positive arguments only (checking draws them in [0.5, 2]); a
    # kink at 0 (checking keeps arguments away from it); the range of its values
    # (lo, hi), None for an unbounded side (the back end's syrk form needs d >= 0).
    positive: bool = False
    kink: bool = False
    range: tuple | None = None
    _derivative: sympy.Expr | None = field(default=None, repr=False)
    _heads: tuple | None = field(default=None, repr=False)

    @property
    def op(self) -> bool:
        """The back end lowers it to an op of its own (named after it), not ``fn``."""
        return self.call is not None or self.scaled

    @property
    def builtin(self) -> bool:  # the earlier name of ``op`` (tests read it)
        return self.op

    def spelling(self, backend: str) -> str | None:
        """The template of this function's call in ``backend`` (None: printed from SymPy)."""
        return self.calls.get(backend, self.call)

    def own_form(self, u):
        """The function of ``u`` in SymPy's own functions."""
        return self.sympy_own(u) if self.sympy_own is not None else self.scalar.subs(U, u)

    def sympy_heads(self) -> tuple:
        """The one-argument SymPy heads that read back as this function: its scalar
        form's (``tanh``, the table's ``sigmoid``) and its own form's (``Abs``, ``Heaviside``)."""
        if self._heads is None:
            forms = (self.scalar, self.own_form(U))
            self._heads = tuple(dict.fromkeys(
                g.func for g in forms if isinstance(g, sympy.Function) and g.args[:1] == (U,)))
        return self._heads

    def scalar_derivative(self) -> sympy.Expr:
        if self._derivative is None:
            self._derivative = sympy.diff(self.scalar, U)
        return self._derivative

    def derivative(self, arg: E.Node) -> E.Node:
        """f'(arg) as an expression node, element-wise over arg."""
        return from_scalar_sympy(self.scalar_derivative(), arg, self.origin or self.name)


def _op(name):
    return r"\operatorname{" + name + "}"


FUNCTIONS: dict[str, ElementwiseFunction] = {}


def _builtin(name, scalar, numpy, latex, call="{lib}.%s({0})", **row):
    """A row of the language; ``call`` defaults to the library function of the same name."""
    if call is not None and "%s" in call:
        call = call % name
    FUNCTIONS[name] = ElementwiseFunction(name, scalar, numpy, latex, call=call, **row)


_STEP_MASK = "({a0} > 0).astype({a0}.dtype)"  # 1 where u > 0, else 0, in u's dtype

_builtin("exp", sympy.exp(U), np.exp, r"\exp", range=(0.0, None))
_builtin("log", sympy.log(U), np.log, r"\log", positive=True)
_builtin("sin", sympy.sin(U), np.sin, r"\sin", range=(-1.0, 1.0))
_builtin("cos", sympy.cos(U), np.cos, r"\cos", range=(-1.0, 1.0))
_builtin("tan", sympy.tan(U), np.tan, r"\tan")
_builtin("tanh", sympy.tanh(U), np.tanh, r"\tanh", range=(-1.0, 1.0))
_builtin("sqrt", sympy.sqrt(U), np.sqrt, r"\sqrt", positive=True, range=(0.0, None))
_builtin("abs", absolute(U), np.abs, _op("abs"), sympy_own=sympy.Abs, kink=True,
         range=(0.0, None))
_builtin("sign", sign(U), np.sign, _op("sign"), sympy_own=sympy.sign, kink=True,
         range=(-1.0, 1.0))
_builtin("step", step(U), _step_np, _op("step"), call="{lib}.heaviside({0}, 0.0)",
         calls={"torch": "({a0} > 0).to({a0}.dtype)", "cupy": _STEP_MASK, "dask": _STEP_MASK},
         sympy_own=lambda u: sympy.Heaviside(u, 0), read_own=_heaviside, kink=True,
         range=(0.0, 1.0))
# sigmoid(c*u) is one op with its coefficient (no pass over c*u): each emitter writes it.
_builtin("sigmoid", sigmoid(U), _sigmoid_np, r"\sigma", call=None, scaled=True,
         sympy_own=lambda u: 1 / (1 + sympy.exp(-u)), read_own=_logistic, range=(0.0, 1.0))
_builtin("relu", relu(U), lambda u: np.maximum(u, 0.0), _op("relu"),
         call="{lib}.maximum({0}, 0.0)", calls={"torch": "{lib}.relu({0})"},
         sympy_own=lambda u: sympy.Max(0, u), kink=True, range=(0.0, None))
# log(1 + e^u) without overflow
_builtin("softplus", softplus(U), lambda u: np.logaddexp(0.0, u), _op("softplus"),
         call="{lib}.logaddexp(0.0, {0})",
         calls={"torch": "{lib}.logaddexp({0}, {a0}.new_zeros(()))"},
         sympy_own=lambda u: sympy.log(1 + sympy.exp(u)), read_own=_log_one_plus_exp,
         range=(0.0, None))
# erf (GELU's Gaussian CDF is (1 + erf(u/√2))/2) is the language's too, but has no
# spelling yet: the backends print its SymPy form (numpy maps math.erf over the entries).
_builtin("erf", sympy.erf(U), _SPECIAL["erf"], _op("erf"), call=None)


def builtin_rows() -> list:
    """The language's rows (not registered or derived ones), in table order."""
    return [f for f in FUNCTIONS.values() if f.kind == "builtin"]


def spellings(backend: str) -> dict:
    """Function name -> its template in ``backend``, for every row that has one (the
    emitters' ``OPS`` start from this; ``emit.Emitter`` reads rows added since)."""
    return {f.name: f.spelling(backend) for f in builtin_rows()
            if f.spelling(backend) is not None}


def sympy_head(head) -> str | None:
    """The built-in function a one-argument SymPy head reads back as (``sympy_heads``)."""
    for f in builtin_rows():
        if head in f.sympy_heads():
            return f.name
    return None


def own_form(scalar):
    """A scalar form in SymPy's own functions: absolute(u) -> Abs(u), step(u) ->
    Heaviside(u, 0), sigmoid(u) -> 1/(1 + exp(-u)), ... (each row's ``sympy_own``)."""
    for f in builtin_rows():
        head = f.scalar.func
        if f.sympy_own is not None and scalar.has(head):
            scalar = scalar.replace(head, f.sympy_own)
    return scalar


def table_heads(obj):
    """SymPy's own forms (Heaviside, 1/(1 + exp(-t)), log(1 + exp(t))) as the table's heads."""
    for f in builtin_rows():
        if f.read_own is not None:
            obj = obj.replace(lambda e, read=f.read_own: read(e) is not None, f.read_own)
    return obj


def lookup(name: str) -> ElementwiseFunction | None:
    return FUNCTIONS.get(name)


def register_function(name: str, scalar_expr, latex: str | None = None,
                      symbol: sympy.Symbol | None = None) -> ElementwiseFunction:
    """Add an element-wise function given by a SymPy expression in one symbol.

    ``register_function("swish", x / (1 + sympy.exp(-x)))`` makes ``swish(u)``
    parse, differentiate (through SymPy), print and lambdify.

    A name is registered once. Registering it again with the same expression
    returns the entry (taking the new ``latex``, if given); with a different
    expression it is a MathcalcError, because expressions, derivatives and
    compiled functions made before would silently change meaning: register
    the new function under a new name. Built-in names, the language's own
    names (``sum``, ``max``, ``I``, …) and names mathcalc gave a function a
    derivative needed (see the module docstring) cannot be redefined.
    """
    if not is_identifier(name):
        raise MathcalcError(f"{name!r} is not a valid function name (letters, digits, _)")
    if name in CALL_NAMES or (name in FUNCTIONS and FUNCTIONS[name].kind == "builtin"):
        raise MathcalcError(f"{name!r} is a built-in name and cannot be redefined")
    if not isinstance(scalar_expr, sympy.Basic):
        raise MathcalcError("register_function needs a SymPy expression in one symbol")
    free = scalar_expr.free_symbols
    if symbol is None:
        if len(free) != 1:
            raise MathcalcError(
                f"the expression for {name!r} must have exactly one free symbol, has {len(free)}")
        (symbol,) = free
    elif not free <= {symbol}:
        raise MathcalcError(f"the expression for {name!r} has symbols other than {symbol}")
    scalar = scalar_expr.subs(symbol, U)
    old = FUNCTIONS.get(name)
    if old is not None:
        if old.scalar == scalar:
            if latex is not None:
                old.latex = latex
            return old
        made = ("registered" if old.kind == "user" else
                f"defined by mathcalc for the derivative of {old.origin!r}")
        raise MathcalcError(
            f"{name!r} is already {made} as {old.scalar.subs(U, symbol)}; a function cannot "
            "be redefined (expressions already using it would change meaning): register "
            "the new one under another name")
    # SymPy's own printer turns the expression into numpy calls; the text comes
    # from a SymPy object the caller built in Python, with our own symbol U.
    numpy_fn = _numpy_of(scalar)
    entry = ElementwiseFunction(name, scalar, _vectorised(numpy_fn),
                                latex or _op(name), kind="user")
    FUNCTIONS[name] = entry
    return entry


def _numpy_of(scalar: sympy.Expr):
    return sympy.lambdify(U, scalar, modules=[_SPECIAL, "numpy"])


def _vectorised(fn):
    def call(u):
        out = fn(u)
        return np.broadcast_to(np.asarray(out, dtype=float), np.shape(u)).copy() \
            if np.shape(out) != np.shape(u) else out
    return call


def _free_name(name: str) -> bool:
    return is_identifier(name) and name not in CALL_NAMES and name not in FUNCTIONS


def _derived_function(scalar: sympy.Expr, origin: str) -> str:
    """The table entry for a scalar function of U the table lacks, added if need be.

    Named after the SymPy function where ``scalar`` is one applied to U (``atan``),
    else ``<origin>_aux<k>``, always a name not yet taken; register_function
    cannot take it later for another function (entries never change meaning).
    """
    for entry in FUNCTIONS.values():
        if entry.scalar == scalar:
            return entry.name
    name = scalar.func.__name__ if isinstance(scalar, sympy.Function) else ""
    if not (scalar.args == (U,) and _free_name(name)):
        k = 1
        while not _free_name(f"{origin}_aux{k}"):
            k += 1
        name = f"{origin}_aux{k}"
    numpy_fn = _numpy_of(scalar)
    FUNCTIONS[name] = ElementwiseFunction(name, scalar, _vectorised(numpy_fn), _op(name),
                                          kind="derived", origin=origin)
    return name


def from_scalar_sympy(s: sympy.Expr, arg: E.Node, origin: str = "sympy") -> E.Node:
    """Read a SymPy expression in U back as nodes, U standing for ``arg`` element-wise.

    ``origin`` names what the expression came from (the function being
    differentiated), for naming a function the table has to gain.
    """
    if s == U:
        return arg
    if not s.has(U):
        return _broadcast(_constant(s), arg)
    if isinstance(s, sympy.Add):
        return E.add(*[from_scalar_sympy(t, arg, origin) for t in s.args])
    if isinstance(s, sympy.Mul):
        # The constant factors as one coefficient: 1/sqrt(2*pi), not 0.56…*sqrt(2)/2.
        const = sympy.Mul(*[t for t in s.args if not t.has(U)])
        result = None
        for t in s.args:
            if t.has(U):
                node = from_scalar_sympy(t, arg, origin)
                result = node if result is None else E.hadamard(result, node)
        c = _constant(const)
        return E.scale(c.value, result) if isinstance(c, E.Num) else E.hadamard(c, result)
    if isinstance(s, sympy.Pow):
        base = from_scalar_sympy(s.base, arg, origin)
        e = s.exp
        if e == sympy.Rational(1, 2):
            return E.apply("sqrt", base)
        if e == -sympy.Rational(1, 2):
            return E.power(E.apply("sqrt", base), E.num(-1))
        if e.is_Rational:
            return E.power(base, E.num(_fraction(e)))
        if s.base == sympy.E:
            return E.apply("exp", from_scalar_sympy(e, arg, origin))
    if isinstance(s, (sympy.Max, sympy.Min)) and len(s.args) == 2:
        make = E.maximum if isinstance(s, sympy.Max) else E.minimum
        a, b = (E.num(_fraction(t)) if t.is_Rational else from_scalar_sympy(t, arg, origin)
                for t in s.args)
        return make(a, b)
    head = s.func
    name = sympy_head(head) if len(s.args) == 1 else None
    if name is not None:
        return E.apply(name, from_scalar_sympy(s.args[0], arg, origin))
    if isinstance(s, sympy.Function) and len(s.args) == 1 and head(U).func is head:
        # A function of one argument: its own entry, applied to the argument read back,
        # so erfc(sqrt(2)*u/2) reads as erfc(sqrt(2)*x/2).
        name = _derived_function(head(U), origin)
        return E.apply(name, from_scalar_sympy(s.args[0], arg, origin))
    return E.apply(_derived_function(s, origin), arg)


def _constant(c: sympy.Expr) -> E.Node:
    """A constant as a scalar node: exact for a rational times the square root of a
    rational (sqrt(2)/2), a float otherwise (the language has no pi)."""
    if c.is_Rational:
        return E.num(_fraction(c))
    coef, rest = c.as_coeff_Mul()
    if coef.is_Rational and isinstance(rest, sympy.Pow) and rest.base.is_Rational \
            and rest.base > 0 and rest.exp in (sympy.Rational(1, 2), sympy.Rational(-1, 2)):
        root = E.apply("sqrt", E.num(_fraction(rest.base)))
        if rest.exp < 0:
            root = E.power(root, E.num(-1))
        return E.scale(_fraction(coef), root)
    try:
        return E.num(float(c))
    except TypeError:
        raise MathcalcError(f"the constant {c} has no real value") from None


def _fraction(r):
    r = sympy.Rational(r)
    return Fraction(int(r.p), int(r.q))


def _broadcast(node: E.Node, like: E.Node) -> E.Node:
    return node if like.rank == 0 else E.hadamard(node, E.ones(like.shape))
