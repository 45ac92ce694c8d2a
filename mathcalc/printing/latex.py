"""LaTeX for expression nodes: the same matrix-notation AST as ``matrix.py``.

``to_latex(node, bold=False)`` renders what ``recognise`` finds, with the
brackets of the shared precedence table (``mast.needs_parens``):
``A^{\\top}``, ``x \\odot y``, ``x \\oslash y``, ``X^{-1}``, ``\\operatorname{tr}``,
``\\det``, ``\\log\\det``, ``\\operatorname{diag}``, ``\\lVert x \\rVert_2``,
functions by their table's ``latex`` field (``\\sigma`` for sigmoid), ``I``
for the identity, ``\\mathbf{1}`` for ones, index notation with subscripts and
``\\delta_{ik}``. Names: Greek letters become commands (``α`` and ``alpha``
are ``\\alpha``), trailing digits and ``_`` parts become subscripts (``W1``
and ``W_1`` are ``W_{1}``). With ``bold=True`` vectors and matrices are bold
(``\\mathbf{x}``, ``\\boldsymbol{\\alpha}``); scalars stay italic.

Only macros KaTeX knows are used.
"""

from __future__ import annotations

import re

from .. import expr as E
from . import mast as M

GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu",
    "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "varsigma",
    "τ": "tau", "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
    "ϕ": "varphi", "ϑ": "vartheta", "ϵ": "epsilon",
    "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi",
    "Σ": "Sigma", "Υ": "Upsilon", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}
# Greek capitals that look Latin have no command of their own.
LATIN_LOOKING = {"Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
                 "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o"}
_GREEK_WORDS = set(GREEK.values())


def to_latex(node: E.Node, bold: bool = False) -> str:
    """LaTeX of an expression node (bold vectors and matrices with ``bold=True``)."""
    from .recognise import recognise

    return _Latex(bold).render_all(recognise(node))


def derivation_latex(f_node: E.Node, wrt_name: str, g_node: E.Node, wrt_shape: tuple,
                     bold: bool = False) -> str:
    """``\\frac{\\partial}{\\partial W} \\left( f \\right) = g`` as one display.

    A single symbol f reads ``\\frac{\\partial f}{\\partial x} = g``.
    """
    from .recognise import recognise

    printer = _Latex(bold)
    wrt = printer.name(wrt_name, len(wrt_shape) > 0)
    f_ast = recognise(f_node)
    f_tex = printer.render_all(f_ast)
    g_tex = printer.render_all(recognise(g_node))
    if isinstance(f_ast, M.Leaf):
        return rf"\frac{{\partial {f_tex}}}{{\partial {wrt}}} = {g_tex}"
    return rf"\frac{{\partial}}{{\partial {wrt}}} \left( {f_tex} \right) = {g_tex}"


def latex_name(name: str, bold: bool = False) -> str:
    """A variable name in LaTeX: ``W1`` -> ``W_{1}``, ``λ`` -> ``\\lambda``, ``x_hat`` -> ``x_{hat}``."""
    m = re.fullmatch(r"(.+?)_?(\d+)", name)
    if m and not m.group(1).endswith("_"):
        stem, sub = m.group(1), m.group(2)  # W1, W_2
    elif "_" in name[1:-1]:
        stem, sub = name.split("_", 1) if not name.startswith("_") else (name, "")  # x_hat
    else:
        stem, sub = name, ""
    body = _stem(stem).strip()
    if bold:
        body = _bold(stem, body)
    if sub:
        body += "_{" + _plain(sub) + "}"
    return body


def _stem(stem: str) -> str:
    if stem in _GREEK_WORDS:
        return "\\" + stem
    if len(stem) == 1:
        return _char(stem)
    return r"\mathit{" + _plain(stem) + "}"


def _char(ch: str) -> str:
    if ch in GREEK:
        return "\\" + GREEK[ch] + " "
    if ch in LATIN_LOOKING:
        return LATIN_LOOKING[ch]
    if ch == "_":
        return r"\_"
    if ch.isascii():
        return ch
    return r"\text{" + ch + "}"


def _plain(text: str) -> str:
    """Text inside \\mathit{} or a subscript: Greek as commands, _ escaped."""
    out = "".join(_char(ch) for ch in text)
    return out.rstrip()


def _bold(stem: str, body: str) -> str:
    if stem in _GREEK_WORDS or (len(stem) == 1 and stem in GREEK):
        return r"\boldsymbol{" + body.strip() + "}"
    if body.startswith(r"\mathit{"):
        return r"\mathbf{" + body[len(r"\mathit{"):]
    return r"\mathbf{" + body.strip() + "}"


_CALLS = {
    "tr": r"\operatorname{tr}",
    "det": r"\det",
    "logdet": r"\log\det",
    "diag": r"\operatorname{diag}",
    "sum": r"\operatorname{sum}",
    "softmax": r"\operatorname{softmax}",
    "logsumexp": r"\operatorname{logsumexp}",
    "max": r"\max",
    "min": r"\min",
}


class _Latex:
    def __init__(self, bold: bool):
        self.bold = bold
        self._done: dict = {}  # id -> (ast, text); the ast is kept so its id stays its own

    def name(self, name: str, nonscalar: bool) -> str:
        return latex_name(name, self.bold and nonscalar)

    def render_all(self, ast: M.Ast) -> str:
        """Render bottom-up (no deep recursion on deep results), then the whole."""
        for part in M.postorder(ast):
            self.render(part)
        return self.render(ast)

    def render(self, ast: M.Ast) -> str:
        done = self._done.get(id(ast))
        if done is not None:
            return done[1]
        rule = _LATEX_RULES.get(type(ast))
        if rule is None:
            raise TypeError(f"LaTeX printer: unknown AST node {type(ast).__name__}")
        text = rule(self, ast)
        self._done[id(ast)] = (ast, text)
        return text

    def _sub(self, parent: M.Ast, child: M.Ast, role: str) -> str:
        text = self.render(child)
        return rf"\left( {text} \right)" if M.needs_parens(parent, child, role) else text

    # -- leaves and calls ---------------------------------------------------

    def _leaf(self, a: M.Leaf) -> str:
        if a.role == "var":
            return self.name(a.text, a.kind != M.SCALAR)
        if a.role == "number":
            return _number(a.text)
        if a.role == "ones":
            return r"\mathbf{1}"
        if a.role == "zeros":
            return r"\mathbf{0}"
        if a.role == "eye":
            return "I"
        if a.role == "delta":
            return r"\delta"
        raise TypeError(f"LaTeX printer: unknown leaf role {a.role!r}")

    def _call(self, a: M.Call) -> str:
        args = [self.render(arg) for arg in a.args]
        if a.name == "inv":
            return self._superscript(a.args[0], "-1")
        if a.name in ("norm1", "norm2"):
            return rf"\left\lVert {args[0]} \right\rVert_{a.name[-1]}"
        fn = _CALLS.get(a.name) or _function_latex(a.name)
        if fn == r"\sqrt":
            return rf"\sqrt{{{args[0]}}}"
        return rf"{fn}\left( {', '.join(args)} \right)"

    def _superscript(self, base: M.Ast, sup: str) -> str:
        """``base^{sup}``, bracketing a base that is compound or already has a superscript."""
        text = self.render(base)
        if not _simple_base(base):
            text = rf"\left( {text} \right)"
        return f"{text}^{{{sup}}}"

    # -- operators -----------------------------------------------------------

    def _transpose(self, a: M.Transpose) -> str:
        arg = a.arg
        if isinstance(arg, M.Call) and arg.name == "inv":
            return self._superscript(arg.args[0], r"-\top")  # X^{-T}
        return self._superscript(arg, r"\top")

    def _neg(self, a: M.Neg) -> str:
        return "-" + self._sub(a, a.arg, "arg")

    def _power(self, a: M.Power) -> str:
        exponent = self.render(a.exponent)
        if a.elementwise:
            exponent = r"\circ " + exponent
        return self._superscript(a.base, exponent)

    def _operands(self, a: M.Ast, items) -> list:
        return [self._sub(a, item, "first" if k == 0 else "rest") for k, item in enumerate(items)]

    def _matmul(self, a: M.MatMul) -> str:
        return _juxtapose(self._operands(a, a.factors))

    def _hadamard(self, a: M.Hadamard) -> str:
        text = r" \odot ".join(self._operands(a, a.factors))
        for d in a.divisors:
            text += r" \oslash " + self._sub(a, d, "divisor")
        return text

    def _scaled(self, a: M.Scaled) -> str:
        """``\\frac{1}{2} x`` for numeric divisors alone, ``\\frac{3 x}{2 a}`` with symbolic ones."""
        numbers = [d for d in a.divisors if isinstance(d, M.Leaf) and d.role == "number"]
        symbols = [d for d in a.divisors if d not in numbers]
        rest = tuple(a.scalars) + ((a.body,) if a.body is not None else ())
        parts = []
        if numbers and not symbols:
            den = r" \cdot ".join(_number(d.text) for d in numbers)
            parts.append(rf"\frac{{{_number(a.number or '1')}}}{{{den}}}")
        elif a.number is not None or not rest:
            parts.append(_number(a.number or "1"))
        for item in rest:
            parts.append(self._sub(a, item, "rest" if parts else "first"))
        numerator = _juxtapose(parts)
        if not symbols:
            return numerator
        if parts == ["1"]:
            numerator = "1"
        den = _juxtapose([_number(d.text) for d in numbers] +
                         [self._sub(a, d, "rest" if k or numbers else "first")
                          for k, d in enumerate(symbols)])
        return rf"\frac{{{numerator}}}{{{den}}}"

    def _add(self, a: M.Add) -> str:
        parts = []
        for k, (sign, term) in enumerate(a.terms):
            text = self._sub(a, term, "term")
            if k == 0:
                parts.append(("-" if sign == "-" else "") + text)
            else:
                parts.append(f" {sign} {text}")
        return "".join(parts)

    def _indexed(self, a: M.Indexed) -> str:
        sub = "".join(a.indices) if all(len(i) == 1 for i in a.indices) else ",".join(a.indices)
        base = a.base
        text = self.render(base)
        if isinstance(base, M.Leaf) and "_" not in text and "^" not in text:
            return f"{text}_{{{sub}}}"
        if isinstance(base, M.Leaf):
            return f"{{{text}}}_{{{sub}}}"
        if isinstance(base, M.Call) and base.name not in ("inv", "norm1", "norm2"):
            return f"{text}_{{{sub}}}"
        return rf"\left( {text} \right)_{{{sub}}}"


_LATEX_RULES = {
    M.Leaf: _Latex._leaf,
    M.Call: _Latex._call,
    M.Transpose: _Latex._transpose,
    M.Neg: _Latex._neg,
    M.Power: _Latex._power,
    M.MatMul: _Latex._matmul,
    M.Hadamard: _Latex._hadamard,
    M.Scaled: _Latex._scaled,
    M.Add: _Latex._add,
    M.Indexed: _Latex._indexed,
}


def _simple_base(ast: M.Ast) -> bool:
    """A base that takes a superscript as it is: a symbol or a call, with no superscript
    of its own (X^{-1} and A^{\\top} are bracketed before another superscript)."""
    return isinstance(ast, (M.Leaf, M.Indexed)) or (isinstance(ast, M.Call) and ast.name != "inv")


def _function_latex(name: str) -> str:
    from ..functions import FUNCTIONS

    entry = FUNCTIONS.get(name)
    if entry is None:
        return r"\operatorname{" + name.replace("_", r"\_") + "}"
    tex = entry.latex
    if tex.startswith(r"\operatorname{"):
        inner = tex[len(r"\operatorname{"):-1].replace(r"\_", "_").replace("_", r"\_")
        tex = r"\operatorname{" + inner + "}"
    return tex


def _number(text: str) -> str:
    """``1e-05`` as ``1 \\cdot 10^{-5}``; other numbers as they are."""
    m = re.fullmatch(r"(\d+(?:\.\d*)?)[eE]([-+]?)0*(\d+)", text)
    if m:
        mant, sign, exp = m.groups()
        power = f"10^{{{'-' if sign == '-' else ''}{exp}}}"
        return power if mant in ("1", "1.0") else rf"{mant} \cdot {power}"
    if text in ("inf", "nan"):
        return r"\infty" if text == "inf" else r"\mathrm{NaN}"
    return text


def _juxtapose(parts: list) -> str:
    """Products side by side; ``\\cdot`` where a number would run into a number."""
    out = ""
    for part in parts:
        if out and part[:1].isdigit():
            out += r" \cdot " + part
        elif out:
            out += " " + part
        else:
            out = part
    return out
