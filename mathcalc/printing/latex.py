"""LaTeX for expression nodes: the same matrix-notation AST as ``matrix.py``.

``to_latex(node, bold=False)`` renders what ``recognise`` finds, with the
brackets of the shared precedence table (``tree.needs_parens``):
``A^{\\top}``, ``x \\odot y``, ``x \\oslash y``, ``X^{-1}``, ``\\operatorname{tr}``,
``\\det``, ``\\log\\det``, ``\\operatorname{diag}``, ``\\lVert x \\rVert_2``
(for matrices ``\\lVert X \\rVert_F`` and ``\\lVert \\operatorname{vec}(X) \\rVert_1``),
functions by their table's ``latex`` field (``\\sigma`` for sigmoid), ``I``
for the identity, ``\\mathbf{1}`` for ones, index notation with subscripts,
``\\delta_{ik}`` and an explicit ``\\sum_{p,q}`` over the summed indices.
Fractions take no brackets a sum or product would need elsewhere
(``\\frac{a + b}{c d}``). Names: Greek letters become commands (``α`` and
``alpha`` are ``\\alpha``), trailing digits and ``_`` parts become subscripts
(``W1`` and ``W_1`` are ``W_{1}``), Unicode compatibility forms are read as
the letters they stand for (``µ``, ``Wᵢ``, ``ℓ``: see ``latex_name``). With
``bold=True`` vectors and matrices are bold (``\\mathbf{x}``,
``\\boldsymbol{\\alpha}``); scalars stay italic.

Only macros KaTeX knows are used.
"""

from __future__ import annotations

import re
import unicodedata

from .. import nodes as E
from ..functions import FUNCTIONS
from . import tree as M
from . import recognise as R

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
    printer = _Latex(bold)
    return printer.render_all(printer.recognise(node))


class LatexString(str):
    """LaTeX that a notebook renders as math (``_repr_latex_``); printed, ``str()``'d or
    compared it is the LaTeX string itself."""

    __slots__ = ()

    def _repr_latex_(self) -> str:
        return "$$" + str(self) + "$$"


def derivation_latex(f_node: E.Node, wrt_name: str, g_node: E.Node, wrt_shape: tuple,
                     bold: bool = False, written: tuple | None = None) -> LatexString:
    """``\\frac{\\partial}{\\partial W} \\left( f \\right) = g`` as one display.

    A single symbol f reads ``\\frac{\\partial f}{\\partial x} = g``; f is
    bracketed only where the operator's reach needs it (sums, products, a
    leading minus): ``\\frac{\\partial}{\\partial x} \\exp\\left( x \\right)``.
    ``written`` is f as the user wrote it, ``(tex, loose, symbol, where)``
    (printing/source.py): its LaTeX, whether it is a sum, product or leading
    minus, whether it is a single symbol, and its definitions (`` \\quad
    \\text{where } …``, after the result). Without it f is printed from its node.
    """
    printer = _Latex(bold)
    wrt = printer.name(wrt_name, len(wrt_shape) > 0)
    g_tex = printer.render_all(printer.recognise(g_node))
    if written is not None:
        f_tex, loose, symbol, where = written
    else:
        f_ast = printer.recognise(f_node)
        f_tex, where = printer.render_all(f_ast), ""
        symbol = isinstance(f_ast, M.Leaf)
        loose = M.precedence(f_ast) <= M.NEG or id(f_ast) in printer.summed
    if symbol:
        return LatexString(rf"\frac{{\partial {f_tex}}}{{\partial {wrt}}} = {g_tex}{where}")
    if loose:
        # The operator's reach: a sum, a product or a minus sign is bracketed.
        f_tex = rf"\left( {f_tex} \right)"
    return LatexString(rf"\frac{{\partial}}{{\partial {wrt}}} {f_tex} = {g_tex}{where}")


def latex_name(name: str, bold: bool = False) -> str:
    """A variable name in LaTeX: ``W1`` -> ``W_{1}``, ``λ`` -> ``\\lambda``, ``x_hat`` -> ``x_{hat}``.

    Unicode compatibility characters are read by their NFKC form where that
    keeps their meaning: ``µ`` (micro sign) is ``\\mu``, fullwidth ``ｘ`` is
    ``x``, ``ﬁ`` is ``fi``; subscript and superscript letters become scripts
    (``Wᵢ`` -> ``W_{i}``, ``xʰ`` -> ``x^{h}``); mathematical font letters keep
    their font (``𝐱`` -> ``\\mathbf{x}``, ``ℝ`` -> ``\\mathbb{R}``); ``ℓ`` is
    ``\\ell``. Other non-ASCII letters are ``\\text{…}`` (``é``, ``中``). So
    that every name typesets in KaTeX's strict mode, two names the parser
    keeps apart (``µ`` and ``μ``) can typeset alike.
    """
    stem_text, sub_scripts, sup_scripts = _peel_scripts(name)
    if sub_scripts and len(stem_text) > 1 and stem_text.endswith("_"):
        stem_text = stem_text[:-1]  # x_ᵢ is x_{i}
    m = re.fullmatch(r"(.+?)_?(\d+)", stem_text)
    if m and not m.group(1).endswith("_"):
        stem, sub = m.group(1), m.group(2)  # W1, W_2
    elif "_" in stem_text[1:-1]:
        stem, sub = stem_text.split("_", 1) if not stem_text.startswith("_") else (stem_text, "")
    else:
        stem, sub = stem_text, ""
    body = _stem(stem).strip()
    if bold:
        body = _bold(stem, body)
    subs = [_plain(part, script=True) for part in (sub, sub_scripts) if part]
    if subs:
        body += "_{" + ",".join(subs) + "}"
    if sup_scripts:
        body += "^{" + _plain(sup_scripts, script=True) + "}"
    return body


def _peel_scripts(name: str) -> tuple:
    """``Wᵢⱼ`` -> ("W", "ij", ""): trailing subscript and superscript letters, folded."""
    end, subs, sups = len(name), [], []
    while end > 1:
        tag, folded = _compat(name[end - 1])
        if tag == "<sub>":
            subs.append(folded)
        elif tag == "<super>":
            sups.append(folded)
        else:
            break
        end -= 1
    return name[:end], "".join(reversed(subs)), "".join(reversed(sups))


def _compat(ch: str) -> tuple:
    """(decomposition tag such as ``<sub>`` or None, NFKC form) of one character."""
    decomposition = unicodedata.decomposition(ch)
    tag = decomposition.split(" ", 1)[0] if decomposition.startswith("<") else None
    return tag, unicodedata.normalize("NFKC", ch)


def _stem(stem: str) -> str:
    if stem in _GREEK_WORDS:
        return "\\" + stem
    tag, folded = _compat(stem) if len(stem) == 1 else (None, stem)
    if tag in ("<sub>", "<super>"):
        return _plain(folded)  # a name ᵢ alone is i
    if len(stem) == 1 and not (tag in _FOLDED_TAGS and len(folded) > 1):  # ﬁ is fi
        return _char(stem)
    return r"\mathit{" + _plain(stem) + "}"


def _char(ch: str, script: bool = False) -> str:
    """One character of a name; ``script`` inside a subscript (where ``ᵢ`` is just ``i``)."""
    if ch in GREEK:
        return "\\" + GREEK[ch] + " "
    if ch in LATIN_LOOKING:
        return LATIN_LOOKING[ch]
    if ch in LETTERLIKE:
        return LETTERLIKE[ch] + " "
    if ch == "_":
        return r"\_"
    if ch.isascii():
        return ch
    tag, folded = _compat(ch)
    if tag == "<sub>":
        inner = _plain(folded, script=True)
        return inner if script else "_{" + inner + "}"
    if tag == "<super>":
        return "^{" + _plain(folded, script=True) + "}"
    if tag == "<font>":
        return _font(ch, _plain(folded, script))
    if tag in _FOLDED_TAGS:
        return "".join(_char(c, script) for c in folded)
    return r"\text{" + ch + "}"


# Decomposition tags whose NFKC form is the same letter (µ, ｘ, ﬁ, ...).
_FOLDED_TAGS = {"<compat>", "<wide>", "<narrow>", "<small>", "<noBreak>",
                "<initial>", "<medial>", "<final>", "<isolated>"}

# Letters with a command of their own (ℓ's NFKC form, l, would lose its meaning).
LETTERLIKE = {"ℓ": r"\ell", "ℏ": r"\hbar", "℘": r"\wp", "ı": r"\imath", "ȷ": r"\jmath"}

# Mathematical font letters (𝐱, ℝ, 𝔄, ...): the font, from the Unicode name, in this order.
_FONTS = (("DOUBLE-STRUCK", r"\mathbb"), ("FRAKTUR", r"\mathfrak"), ("BLACK-LETTER", r"\mathfrak"),
          ("SCRIPT", r"\mathcal"), ("SANS-SERIF", r"\mathsf"), ("MONOSPACE", r"\mathtt"),
          ("BOLD", r"\mathbf"))


def _font(ch: str, letter: str) -> str:
    name = unicodedata.name(ch, "")
    for word, command in _FONTS:
        if word in name:
            if command == r"\mathbf" and (letter.startswith("\\") or "ITALIC" in name):
                command = r"\boldsymbol"  # bold Greek, bold italic
            return command + "{" + letter + "}"
    return letter  # italic (𝑥, ℎ): how math letters are set anyway


def _plain(text: str, script: bool = False) -> str:
    """Text inside \\mathit{} or a subscript: Greek as commands, _ escaped."""
    out = "".join(_char(ch, script) for ch in text)
    return out.rstrip()


def _bold(stem: str, body: str) -> str:
    if body.startswith((r"\mathbf{", r"\boldsymbol{")):
        return body  # 𝐱, 𝛂: bold already
    if body.startswith(r"\mathit{"):
        return r"\mathbf{" + body[len(r"\mathit{"):]
    if body.startswith("\\") and not body.startswith(r"\text{"):
        return r"\boldsymbol{" + body.strip() + "}"  # \alpha, \ell, \mathbb{R}
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


class _SumsRecogniser(R._Recogniser):
    """The recogniser, noting the indices each index-notation product sums over.

    ``summed`` maps id(ast) -> (ast, indices) for the AST of every product
    with summed indices (under a minus sign: the AST inside it), so that
    LaTeX can write ``\\sum_{p,q}``: ``\\delta_{ik} \\delta_{jl} X_{pq}`` alone
    would read as one entry of X. The index names are the recogniser's own
    (``_fresh_index``), taken again from where the product's names began.
    """

    def __init__(self):
        super().__init__()
        self.summed: dict = {}

    def indexed(self, node: E.Node, names: tuple) -> M.Ast:
        if not isinstance(node, E.Product) or node.n_indices == node.rank:
            return super().indexed(node, names)
        first = self._next_index
        ast = super().indexed(node, names)
        after, self._next_index = self._next_index, first
        bound = tuple(self._fresh_index() for _ in range(node.rank, node.n_indices))
        self._next_index = after
        target = ast.arg if isinstance(ast, M.Neg) else ast
        outer = self.summed.get(id(target), (None, ()))[1]  # a lone factor summing again
        self.summed[id(target)] = (target, bound + outer)
        return ast


class _Latex:
    def __init__(self, bold: bool):
        self.bold = bold
        self._done: dict = {}  # id -> (ast, text); the ast is kept so its id stays its own
        self.summed: dict = {}  # id -> (ast, indices summed over), from recognise()

    def recognise(self, node: E.Node) -> M.Ast:
        """``recognise.recognise(node)``, keeping the summed indices of index notation."""
        recogniser = _SumsRecogniser()
        ast = R.recognise(node, recogniser=recogniser)
        self.summed.update(recogniser.summed)
        return ast

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
        summed = self.summed.get(id(ast))
        if summed is not None:
            text = rf"\sum_{{{','.join(summed[1])}}} " + text
        self._done[id(ast)] = (ast, text)
        return text

    def _sub(self, parent: M.Ast, child: M.Ast, role: str) -> str:
        text = self.render(child)
        if id(child) in self.summed:
            # A sum reaches to the next + or -: bracketed anywhere but as a term
            # or after a minus sign (x_{k} \left( \sum_{p} A_{ip} \right)).
            bracket = not (role == "term" or (role == "arg" and isinstance(parent, M.Neg)))
        else:
            bracket = M.needs_parens(parent, child, role)
        return rf"\left( {text} \right)" if bracket else text

    # -- leaves and calls ---------------------------------------------------

    def _leaf(self, a: M.Leaf) -> str:
        if a.role in ("var", "symmetric"):  # symmetric: a variable declared symmetric
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
            return self._norm(a.name, a.args[0], args[0])
        fn = _CALLS.get(a.name) or _function_latex(a.name)
        if fn == r"\sqrt":
            return rf"\sqrt{{{args[0]}}}"
        return rf"{fn}\left( {', '.join(args)} \right)"

    def _norm(self, name: str, arg: M.Ast, text: str) -> str:
        """Vectors: ``\\lVert x \\rVert_2`` and ``\\lVert x \\rVert_1``. Matrices:
        ``norm2`` is the Frobenius norm, ``\\lVert X \\rVert_F``; ``norm1`` is the
        entry-wise 1-norm (the sum of ``|X_ij|``), written ``\\lVert \\operatorname{vec}(X)
        \\rVert_1`` because ``\\lVert X \\rVert_1`` usually means the induced norm
        (the largest column sum)."""
        if arg.kind != M.MATRIX:
            return rf"\left\lVert {text} \right\rVert_{name[-1]}"
        if name == "norm2":
            return rf"\left\lVert {text} \right\rVert_F"
        return rf"\left\lVert \operatorname{{vec}}\left( {text} \right) \right\rVert_1"

    def _superscript(self, base: M.Ast, sup: str) -> str:
        """``base^{sup}``, bracketing a base that is compound or already has a superscript."""
        text = self.render(base)
        if not _simple_base(base):
            text = rf"\left( {text} \right)"
        elif isinstance(base, M.Leaf) and "^" in text:
            text = "{" + text + "}"  # a name with a superscript of its own (xʰ)
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
        """``\\frac{1}{2} x`` for numeric divisors alone, ``\\frac{3 x}{2 a}`` with symbolic ones.

        The braces of ``\\frac`` group numerator and denominator: a lone sum or
        product there takes no brackets (``\\frac{a}{b c}``, ``\\frac{a + b}{c}``);
        several factors side by side bracket sums as any product does.
        """
        numbers = [d for d in a.divisors if isinstance(d, M.Leaf) and d.role == "number"]
        symbols = [d for d in a.divisors if d not in numbers]
        rest = tuple(a.scalars) + ((a.body,) if a.body is not None else ())
        if not symbols:
            parts = []
            if numbers:
                den = r" \cdot ".join(_number(d.text) for d in numbers)
                parts.append(rf"\frac{{{_number(a.number or '1')}}}{{{den}}}")
            elif a.number is not None or not rest:
                parts.append(_number(a.number or "1"))
            for item in rest:
                parts.append(self._sub(a, item, "rest" if parts else "first"))
            return _juxtapose(parts)
        lead = (M.Leaf(a.number, M.SCALAR, "number"),) if a.number is not None else ()
        numerator = self._fraction_side(a, lead + rest)
        denominator = self._fraction_side(a, tuple(numbers) + tuple(symbols))
        return rf"\frac{{{numerator}}}{{{denominator}}}"

    def _fraction_side(self, a: M.Scaled, items: tuple) -> str:
        """The numerator or denominator of a fraction: ``1`` when empty, a lone item
        bare, several side by side (scalar products among them need no brackets:
        ``\\frac{a}{2 b c}``)."""
        if not items:
            return "1"
        if len(items) == 1:
            return self.render(items[0])
        parts = []
        for k, item in enumerate(items):
            flat = (item.kind == M.SCALAR and isinstance(item, (M.Scaled, M.MatMul))
                    and not getattr(item, "divisors", ()) and id(item) not in self.summed)
            parts.append(self.render(item) if flat else
                         self._sub(a, item, "first" if k == 0 else "rest"))
        return _juxtapose(parts)

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
    """The LaTeX name in the function's row of the table (functions.py)."""
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
