"""Rendering a lowered program as Python source: what every backend's emitter shares.

A backend module (``numpy.py``, ``jax.py``, …) subclasses ``Emitter`` with
its table ``OPS``: op name → a template of that library's call. In a
template ``{0}``, ``{1}`` are the rendered operands where any expression may
stand (inside a call's parentheses), ``{a0}``, ``{a1}`` the same operands
bracketed unless they are atoms (before ``.T`` or ``[...]``), ``{args}``
all operands joined by commas, ``{lib}`` the library's alias, ``{dtype}`` and
``{device}`` the names the function's frame binds (the result's dtype and,
for torch, device), and any other field an
attribute of the op (``{perm}``, ``{spec!r}``). A template is a string (an
atom: a call, an attribute) or a ``(string, precedence)`` pair for one that
is an arithmetic expression. Ops that are statements (``embed``, ``masked``,
``logdet`` where the library has no pure form) are methods ``stmt_<op>``
returning lines. Arithmetic (``add``, ``sub``, ``mul``, ``div``, ``neg``,
``pow``) is Python's own operators, bracketed by one precedence table.
"""

from __future__ import annotations

import re

import sympy
from sympy.printing import numpy as printers

from .. import functions as F
from ..errors import MathcalcError
from .ir import Call, Lit, Ref

# Python operator precedence, loosest to tightest (only what the emitters write).
ADD, MUL, NEG, POW, ATOM = 5, 6, 7, 8, 10


def matmul(em, x):
    """``a @ b``: the matrix product of the libraries other than numpy's lambdify."""
    return f"{em.atom(x.args[0])} @ {em.atom(x.args[1])}", MUL


def sigmoid_tanh(em, x):
    """0.5 * (tanh(u/2) + 1): no overflow for large |u|; a coefficient joins the 0.5."""
    h = em.lit(0.5 * x.attrs["scale"])
    return f"0.5 * ({em.lib}.tanh({h} * {em.atom(x.args[0])}) + 1.0)", MUL


class Emitter:
    lib = "np"  # the alias the library is imported as
    module = "numpy"  # what the source imports as ``lib``
    backend = "numpy"  # the backend's name: the key of its spelling in a function's row
    OPS: dict = {}

    # SymPy's printer for registered functions, and the module name it writes
    printer = "NumPyPrinter"
    printer_module = "numpy"

    def __init__(self, prefix: str = "", standalone: bool = False):
        self.prefix = prefix
        self.standalone = standalone
        self.functions: dict = {}  # registered function name -> namespace name (lambdify)
        self.extra_imports: set = set()
        self.lib = prefix + type(self).lib
        self.dtype = prefix + "dtype"
        self.device = prefix + "device"
        self.device_arg = ""  # ", device=..." where arrays are made on a device (torch)

    # -- source of the imports (codegen) ----------------------------------------
    def imports(self) -> list:
        alias = self.lib
        if self.module == alias:
            return [f"import {self.module}"]
        return [f"import {self.module} as {alias}"]

    # -- expressions ------------------------------------------------------------
    def expr(self, x) -> str:
        return self._render(x)[0]

    def atom(self, x) -> str:
        text, prec = self._render(x)
        return text if prec >= ATOM else f"({text})"

    def lit(self, value) -> str:
        text = repr(float(value))
        if text == "inf":
            return f"{self.lib}.inf"
        if text == "-inf":
            return f"(-{self.lib}.inf)"
        if text == "nan":
            return f"{self.lib}.nan"
        return f"({text})" if text.startswith("-") else text

    def _render(self, x):
        if isinstance(x, Ref):
            return x.name, ATOM
        if isinstance(x, Lit):
            if isinstance(x.value, int) and not isinstance(x.value, bool):
                return str(x.value), ATOM  # a size
            return self.lit(x.value), ATOM
        if not isinstance(x, Call):
            raise TypeError(f"not an operand: {x!r}")  # pragma: no cover - a lowering bug
        arith = getattr(self, "_arith_" + x.op, None)
        if arith is not None:
            return arith(x)
        entry = self.OPS.get(x.op)
        if entry is None and x.op in F.FUNCTIONS:  # a function row added after import
            entry = F.FUNCTIONS[x.op].spelling(self.backend)
        if entry is None:
            raise NotImplementedError(f"{type(self).__name__}: no call for op {x.op!r}")
        if callable(entry):
            return entry(self, x)
        template, prec = (entry, ATOM) if isinstance(entry, str) else entry
        return self.fill(template, x), prec

    def fill(self, template: str, x: Call) -> str:
        texts = [self.expr(a) for a in x.args]
        fields = {f"a{k}": self.atom(a) for k, a in enumerate(x.args)}
        attrs = {k: (self.expr(v) if isinstance(v, (Ref, Lit, Call)) else v)
                 for k, v in x.attrs.items()}
        return template.format(*texts, lib=self.lib, dtype=self.dtype, device=self.device,
                               args=", ".join(texts), **fields, **attrs)

    def shape(self, x) -> str:
        """A ``tuple`` op (sizes) as a Python tuple."""
        parts = [self.expr(a) for a in x.args]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def index(self, present) -> str:
        return ", ".join(":" if p else "None" for p in present)

    # -- arithmetic -------------------------------------------------------------
    def _operand(self, x, least: int) -> str:
        text, prec = self._render(x)
        return text if prec >= least else f"({text})"

    def _arith_add(self, x):
        left = self._operand(x.args[0], ADD)
        rest = "".join(" + " + self._operand(a, ADD + 1) for a in x.args[1:])
        return left + rest, ADD

    def _arith_sub(self, x):
        return f"{self._operand(x.args[0], ADD)} - {self._operand(x.args[1], ADD + 1)}", ADD

    def _arith_mul(self, x):
        left = self._operand(x.args[0], MUL)
        return left + "".join(" * " + self._operand(a, MUL + 1) for a in x.args[1:]), MUL

    def _arith_div(self, x):
        return f"{self._operand(x.args[0], MUL)} / {self._operand(x.args[1], MUL + 1)}", MUL

    def _arith_neg(self, x):
        return "-" + self._operand(x.args[0], NEG), NEG

    def _arith_pow(self, x):
        base = self._operand(x.args[0], POW + 1)
        e = x.args[1]
        exponent = self._operand(e, ATOM) if not (isinstance(e, Lit) and isinstance(e.value, int)
                                                  and e.value < 0) else f"({e.value})"
        return f"{base} ** {exponent}", POW

    def _arith_tuple(self, x):
        return self.shape(x), ATOM

    def printed(self, name, arg) -> str:
        """A registered function's SymPy form printed for this library (SymPy printing SymPy)."""
        return printed_function(self, name, self.expr(arg))

    # -- statements ---------------------------------------------------------------
    def lines(self, step) -> list:
        """The source lines of one step of the program."""
        method = getattr(self, "stmt_" + step.value.op, None) if isinstance(step.value, Call) \
            else None
        if method is not None:
            return method(step.targets, step.value)
        target = ", ".join(t.name for t in step.targets)
        return [f"{target} = {self.expr(step.value)}"]

    def stmt_logdet(self, targets, x) -> list:
        """log det through slogdet, NaN where det <= 0, without a Python branch on a value."""
        sign, value = (t.name for t in targets)
        return [f"{sign}, {value} = {self.lib}.linalg.slogdet({self.expr(x.args[0])})",
                f"{value} = {self.lib}.where({sign} > 0, {value}, {self.lib}.nan)"]

    def stmt_embed(self, targets, x) -> list:
        """A pure placement (no writes): the value times identities on the tied axes.

        ``x.args`` = (value or None, shape tuple); attrs ``out`` (each output
        axis's representative label), ``labels`` (the value's labels, in
        output order).
        """
        (t,) = targets
        value, shape = x.args
        out, labels = x.attrs["out"], x.attrs["labels"]
        parts = []
        if value is not None:
            parts.append(self._aligned(self.atom(value), labels, out))
        dims = shape.args
        for pos, rep in enumerate(out):
            if rep != pos:  # axis pos is tied to axis rep: δ on (rep, pos)
                eye = self.eye_call(self.expr(dims[rep]))
                present = [p in (rep, pos) for p in range(len(out))]
                first = present.index(True)
                index = self.index(present[first:])
                parts.append(eye if all(present[first:]) else f"{eye}[{index}]")
        tied = {out[p] for p in range(len(out)) if out[p] != p}  # axes an identity spans
        free = [p for p in range(len(out)) if out[p] == p and p not in labels and p not in tied]
        if len(parts) == (value is not None) and (value is None or isinstance(value, Lit)):
            # a constant: no array to broadcast (torch broadcasts only tensors)
            fill = "1.0" if value is None else self.expr(value)
            return [f"{t.name} = {self.lib}.full({self.shape(shape)}, {fill}, dtype={self.dtype}"
                    f"{self.device_arg})"]
        product = " * ".join(parts)
        if free:
            product = self.broadcast_call(product if len(parts) <= 1 else f"({product})",
                                          self.shape(shape))
        return [f"{t.name} = {product}"]

    def _aligned(self, code, labels, out) -> str:
        """``code`` (axes ``labels``, output positions in order) indexed to broadcast over ``out``."""
        present = [p in labels for p in range(len(out))]
        if not labels:
            return code
        first = present.index(True)
        if all(present[first:]):
            return code  # trailing axes align by themselves
        return f"{code}[{self.index(present[first:])}]"

    def eye_call(self, n: str) -> str:
        return f"{self.lib}.eye({n}, dtype={self.dtype})"

    def broadcast_call(self, value: str, shape: str) -> str:
        return f"{self.lib}.broadcast_to({value}, {shape})"

    def stmt_masked(self, targets, x) -> list:
        """``where(mask, rest, 0)``: the rows where the mask's argument is positive hold
        ``rest``, the others zero (no multiplication by a 0/1 array)."""
        (t,) = targets
        arg, rest, shape = x.args
        rank, lead = len(shape.args), x.attrs["lead"]
        mask = f"{self.atom(arg)} > 0"
        if lead < rank:
            mask = f"({mask})[{self.index([True] * lead + [False] * (rank - lead))}]"
        return [f"{t.name} = {self.where_call(mask, self.expr(rest))}"]

    def where_call(self, mask: str, value: str) -> str:
        return f"{self.lib}.where({mask}, {value}, 0.0)"


def printed_function(em, name: str, a: str) -> str:
    entry = F.FUNCTIONS[name]
    u = sympy.Symbol(a if a.isidentifier() else "__u__")
    scalar = F.own_form(entry.scalar.subs(F.U, u))  # SymPy's own functions: its printers know them
    if em.printer == "TorchPrinter":  # a module of its own (SymPy >= 1.13)
        from sympy.printing.pytorch import TorchPrinter as cls
    else:
        cls = getattr(printers, em.printer)
    printer = cls({"fully_qualified_modules": True})
    code = printer.doprint(scalar)
    if printer._not_supported:
        raise MathcalcError(f"codegen: function {entry.name!r} has no {em.module} form; "
                            "use lambdify with numpy, which calls its implementation")
    modules = {m.split(".")[0] for m in printer.module_imports}
    code = re.sub(rf"\b{re.escape(em.printer_module)}\.", f"{em.lib}.", code)
    if not a.isidentifier():
        code = code.replace("__u__", f"({a})")
    if "math" in modules:  # scalar-only functions: map them over the entries
        if em.module != "numpy":
            raise MathcalcError(f"codegen: function {entry.name!r} has no {em.module} form")
        em.extra_imports.add("math")
        code = re.sub(r"\bmath\.", f"{em.prefix}math.", code)
        return f"{em.lib}.vectorize(lambda {a}: {code}, otypes=[float])({a})"
    if "functools" in modules:
        em.extra_imports.add("functools")
        code = re.sub(r"\bfunctools\.", f"{em.prefix}functools.", code)
    if modules - {em.printer_module.split(".")[0], "math", "functools"}:
        raise MathcalcError(f"codegen: function {entry.name!r} needs {sorted(modules)}")
    return f"{code} + 0.0 * {a if a.isidentifier() else '(' + a + ')'}"  # keeps the shape
