"""The one table of element-wise functions.

Each entry is the function's numpy implementation, its scalar SymPy form and
its LaTeX name. Its derivative is never written by hand: SymPy differentiates
the scalar form, and the result is read back into expression nodes applied
element-wise. Adding a function is one entry (or one ``register_function``
call from user code).

Non-smooth points follow one convention everywhere: the derivative at a kink
is 0 (step(0) = 0, so d max(0, u)/du at u = 0 is 0; sign(0) = 0, so
d abs(u)/du at 0 is 0).
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy

from . import expr as E
from .errors import MathcalcError

U = sympy.Symbol("u", real=True)


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


@dataclass
class ElementwiseFunction:
    name: str
    scalar: sympy.Expr  # the function applied to the symbol U
    numpy: Callable
    latex: str  # LaTeX command or operator name, e.g. r"\tanh"
    builtin: bool = True
    _derivative: sympy.Expr | None = field(default=None, repr=False)

    def scalar_derivative(self) -> sympy.Expr:
        if self._derivative is None:
            self._derivative = sympy.diff(self.scalar, U)
        return self._derivative

    def derivative(self, arg: E.Node) -> E.Node:
        """f'(arg) as an expression node, element-wise over arg."""
        return from_scalar_sympy(self.scalar_derivative(), arg)


def _op(name):
    return r"\operatorname{" + name + "}"


FUNCTIONS: dict[str, ElementwiseFunction] = {}


def _builtin(name, scalar, numpy, latex):
    FUNCTIONS[name] = ElementwiseFunction(name, scalar, numpy, latex)


_builtin("exp", sympy.exp(U), np.exp, r"\exp")
_builtin("log", sympy.log(U), np.log, r"\log")
_builtin("sin", sympy.sin(U), np.sin, r"\sin")
_builtin("cos", sympy.cos(U), np.cos, r"\cos")
_builtin("tan", sympy.tan(U), np.tan, r"\tan")
_builtin("tanh", sympy.tanh(U), np.tanh, r"\tanh")
_builtin("sqrt", sympy.sqrt(U), np.sqrt, r"\sqrt")
_builtin("abs", absolute(U), np.abs, _op("abs"))
_builtin("sign", sign(U), np.sign, _op("sign"))
_builtin("step", step(U), _step_np, _op("step"))
_builtin("sigmoid", sigmoid(U), _sigmoid_np, r"\sigma")
_builtin("relu", relu(U), lambda u: np.maximum(u, 0.0), _op("relu"))
_builtin("softplus", softplus(U), lambda u: np.logaddexp(0.0, u), _op("softplus"))

# SymPy heads that read back as a table function.
_SYMPY_HEADS = {
    sympy.exp: "exp", sympy.log: "log", sympy.sin: "sin", sympy.cos: "cos",
    sympy.tan: "tan", sympy.tanh: "tanh", sympy.Abs: "abs", sympy.sign: "sign",
    step: "step", sign: "sign", sigmoid: "sigmoid", relu: "relu",
    softplus: "softplus", absolute: "abs", sympy.Heaviside: "step",
}

# Names the language gives other meanings; a registered function may not take them.
RESERVED = {"max", "min", "sum", "tr", "det", "logdet", "inv", "norm1", "norm2", "diag",
            "softmax", "logsumexp", "eye", "ones", "zeros", "I", "vector", "matrix", "T"}

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def lookup(name: str) -> ElementwiseFunction | None:
    return FUNCTIONS.get(name)


def register_function(name: str, scalar_expr, latex: str | None = None,
                      symbol: sympy.Symbol | None = None) -> ElementwiseFunction:
    """Add an element-wise function given by a SymPy expression in one symbol.

    ``register_function("swish", x / (1 + sympy.exp(-x)))`` makes ``swish(u)``
    parse, differentiate (through SymPy), print and lambdify.
    """
    if not isinstance(name, str) or not _IDENT.match(name) or keyword.iskeyword(name):
        raise MathcalcError(f"{name!r} is not a valid function name (letters, digits, _)")
    if name in RESERVED or (name in FUNCTIONS and FUNCTIONS[name].builtin):
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
    # SymPy's own printer turns the expression into numpy calls; the text comes
    # from a SymPy object the caller built in Python, with our own symbol U.
    numpy_fn = _numpy_of(scalar)
    entry = ElementwiseFunction(name, scalar, _vectorised(numpy_fn),
                                latex or _op(name), builtin=False)
    FUNCTIONS[name] = entry
    return entry


# Special functions numpy lacks, element-wise through the math module.
_SPECIAL = {name: np.vectorize(getattr(math, name), otypes=[float])
            for name in ("erf", "erfc", "gamma", "lgamma")}
_SPECIAL["loggamma"] = _SPECIAL["lgamma"]


def _numpy_of(scalar: sympy.Expr):
    return sympy.lambdify(U, scalar, modules=[_SPECIAL, "numpy"])


def _vectorised(fn):
    def call(u):
        out = fn(u)
        return np.broadcast_to(np.asarray(out, dtype=float), np.shape(u)).copy() \
            if np.shape(out) != np.shape(u) else out
    return call


def _derived_function(scalar: sympy.Expr) -> str:
    """A table entry for a scalar expression the node set cannot spell (e.g. erf)."""
    for entry in FUNCTIONS.values():
        if entry.scalar == scalar:
            return entry.name
    k = 1
    while f"d{k}_fn" in FUNCTIONS:
        k += 1
    name = f"d{k}_fn"
    numpy_fn = _numpy_of(scalar)
    FUNCTIONS[name] = ElementwiseFunction(name, scalar, _vectorised(numpy_fn), _op(name),
                                          builtin=False)
    return name


def from_scalar_sympy(s: sympy.Expr, arg: E.Node) -> E.Node:
    """Read a SymPy expression in U back as nodes, U standing for ``arg`` element-wise."""
    if s == U:
        return arg
    if not s.has(U):
        if s.is_Rational:
            return _broadcast(E.num(sympy.Rational(s).p) if s.is_Integer
                              else E.num(_fraction(s)), arg)
        return _broadcast(E.num(float(s)), arg)
    if isinstance(s, sympy.Add):
        return E.add(*[from_scalar_sympy(t, arg) for t in s.args])
    if isinstance(s, sympy.Mul):
        result = None
        for t in s.args:
            node = from_scalar_sympy(t, arg)
            result = node if result is None else E.hadamard(result, node)
        return result
    if isinstance(s, sympy.Pow):
        base = from_scalar_sympy(s.base, arg)
        e = s.exp
        if e == sympy.Rational(1, 2):
            return E.apply("sqrt", base)
        if e == -sympy.Rational(1, 2):
            return E.power(E.apply("sqrt", base), E.num(-1))
        if e.is_Rational:
            return E.power(base, E.num(_fraction(e)))
        if s.base == sympy.E:
            return E.apply("exp", from_scalar_sympy(e, arg))
    if isinstance(s, (sympy.Max, sympy.Min)) and len(s.args) == 2:
        make = E.maximum if isinstance(s, sympy.Max) else E.minimum
        a, b = (E.num(_fraction(t)) if t.is_Rational else from_scalar_sympy(t, arg) for t in s.args)
        return make(a, b)
    head = s.func
    if head in _SYMPY_HEADS and len(s.args) == 1:
        return E.apply(_SYMPY_HEADS[head], from_scalar_sympy(s.args[0], arg))
    if isinstance(s, sympy.Function) and len(s.args) == 1 and s.func.__name__ in FUNCTIONS:
        return E.apply(s.func.__name__, from_scalar_sympy(s.args[0], arg))
    return E.apply(_derived_function(s), arg)


def _fraction(r):
    from fractions import Fraction

    r = sympy.Rational(r)
    return Fraction(int(r.p), int(r.q))


def _broadcast(node: E.Node, like: E.Node) -> E.Node:
    return node if like.rank == 0 else E.hadamard(node, E.ones(like.shape))
