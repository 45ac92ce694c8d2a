"""Text and LaTeX of a step-by-step derivation (``mathcalc.explain``).

Both printers show the same rows, chosen once in ``_rows``:

1. the intermediate variables, each with its definition and shape;
2. the local derivatives ∂u_k/∂(what u_k is built from), latest first;
3. the chain rule, backwards from f: for each intermediate and then X,
   ∂f/∂u as the contraction of the adjoints with the Jacobians (symbols
   only, where that has a matrix form), then with the local derivatives
   written out, then (for X, and where it is short) in the steps' names;
4. the result in f's own variables, simplified.

A chain rule line that is only one local derivative (the intermediates f is
built from directly) is not repeated. The symbols ∂a/∂b are placeholder
variables of the chain rule's products: the text brackets them,
``(∂u2/∂u1)'*(∂f/∂u2)``; LaTeX writes ``\\frac{\\partial u_{2}}{\\partial u_{1}}``.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import definitions as D
from ..errors import MathcalcError
from ..nodes import add
from ..parse import parse_terms
from . import tree as M
from .latex import _Latex, latex_name
from .layout import render
from .notebook import shape_latex
from .recognise import recognise
from .source import expr_latex

# An intermediate's chain rule value in the steps' names is shown when its text
# is at most this long: on a deep network the values grow with the depth, the
# other forms do not.
SHORT_VALUE = 72
# The shape column starts after the longest row of a section, unless that is longer.
SHAPE_COLUMN_LIMIT = 56


class _Form(NamedTuple):
    """One right-hand side: the node, its text, and whether it needed index notation."""

    node: object
    text: str
    indexed: bool


class _Row(NamedTuple):
    section: str  # "definition", "local", "chain", "result"
    lhs: tuple  # ("name", n) | ("partial", top, bottom)
    forms: tuple  # of _Form
    shape: tuple | None


def explanation_text(ex) -> str:
    lines = [f"f = {_source_text(ex.f)}, differentiated with respect to {ex.wrt} "
             f"{_shape_text(ex.f.variables[ex.wrt])}"]
    titles = {"definition": "intermediate variables", "local": "local derivatives",
              "chain": "chain rule (∂f/∂X has the shape f.shape + X.shape, as jax.jacobian)",
              "result": "result"}
    rows = _rows(ex)
    for section in ("definition", "local", "chain", "result"):
        part = [r for r in rows if r.section == section]
        if not part:
            continue
        lines.append("")
        lines.append(titles[section])
        lines.extend(_text_section(part))
    return "\n".join(lines)


def _text_section(rows: list) -> list:
    out = []
    heads = [f"  {_lhs_text(r.lhs)} = " for r in rows]
    firsts = [h + r.forms[0].text for h, r in zip(heads, rows)]
    width = max(len(t) for t in firsts)
    column = width if width <= SHAPE_COLUMN_LIMIT else None
    for head, first, row in zip(heads, firsts, rows):
        shape = f"    shape {_shape_text(row.shape)}" if row.shape is not None else ""
        if len(row.forms) == 1:
            pad = " " * (column - len(first)) if column is not None else ""
            out.append(first + pad + shape)
            continue
        out.append(first)
        indent = " " * (len(head) - 2)
        for k, form in enumerate(row.forms[1:], 1):
            out.append(f"{indent}= {form.text}" + (shape if k == len(row.forms) - 1 else ""))
    return out


def explanation_latex(ex) -> str:
    """One ``aligned`` display: a row per definition, local derivative, chain rule
    line and the result, each with its shape; the sections are labelled with ``\\text``."""
    printer_names = {name: _partial_latex(p.top, p.bottom) for name, p in ex.placeholders.items()}
    titles = {"definition": "intermediate variables", "local": "local derivatives",
              "chain": "chain rule", "result": "result"}
    wrt_tex = latex_name(ex.wrt)
    rows_tex = [rf"f &= {_source_latex(ex.f)} "
                rf"&& \text{{differentiated with respect to }} {wrt_tex}"]
    rows = _rows(ex)
    for section in ("definition", "local", "chain", "result"):
        part = [r for r in rows if r.section == section]
        if not part:
            continue
        rows_tex.append(rf"& \text{{{titles[section]}}}")
        for row in part:
            rhs = " = ".join(_latex(form.node, printer_names) for form in row.forms)
            shape = shape_latex(row.shape) if row.shape is not None else ""
            rows_tex.append(f"{_lhs_latex(row.lhs)} &= {rhs}{shape}")
    return r"\begin{aligned}" + r" \\ ".join(rows_tex) + r"\end{aligned}"


# ---------------------------------------------------------------------------
# The rows, chosen once for both printers


def _rows(ex) -> list:
    cached = ex.__dict__.get("_rows")
    if cached is not None:
        return cached
    avoid = tuple(ex.f.variables) + tuple(s.name for s in ex.steps)
    form = lambda node: _form(node, avoid)  # noqa: E731
    rows = []
    for step in ex.steps:
        rows.append(_Row("definition", ("name", step.name), (form(step.definition.node),),
                         step.definition.shape))
    for step in reversed(ex.steps):
        for inp, local in step.local.items():
            rows.append(_Row("local", ("partial", step.name, inp), (form(local.node),),
                             local.shape))
    root = ex.root
    shapes = {s.name: s.definition.shape for s in ex.steps}
    shapes[ex.wrt] = ex.f.variables[ex.wrt]
    for line in ex.chain:
        if all(t.consumer == root for t in line.terms) and line.target != ex.wrt:
            continue  # the local derivative ∂f/∂u itself: listed above
        if len(ex.steps) == 1:
            continue  # one step: its local derivative is the result
        forms = []
        for part in ("symbolic", "with_local"):
            nodes = [getattr(t, part) for t in line.terms]
            if all(n is not None for n in nodes):
                shown = form(_sum(nodes))
                if not shown.indexed:
                    forms.append(shown)
        value = form(line.value) if line.value is not None else None
        if value is not None and (line.target == ex.wrt or len(value.text) <= SHORT_VALUE):
            forms.append(value)
        if not forms:
            continue  # only tensors past order 2 here, and its value is long
        shape = ex.f.shape + shapes[line.target]
        rows.append(_Row("chain", ("partial", root, line.target), _distinct(forms), shape))
    rows.append(_Row("result", ("partial", "f", ex.wrt), (form(ex.result.node),),
                     ex.result.shape))
    ex.__dict__["_rows"] = rows
    return rows


def _sum(nodes):
    return add(*nodes)


def _distinct(forms: list) -> tuple:
    out = []
    for f in forms:
        if not out or out[-1].text != f.text:
            out.append(f)
    return tuple(out)


def _form(node, avoid) -> _Form:
    ast = recognise(node, avoid)
    parts = M.postorder(ast)
    for part in parts:  # bottom-up: deep results never recurse deeply
        render(part)
    return _Form(node, render(ast), any(isinstance(p, M.Indexed) for p in parts))


# ---------------------------------------------------------------------------
# Pieces


def _lhs_text(lhs: tuple) -> str:
    if lhs[0] == "name":
        return lhs[1]
    return f"∂{lhs[1]}/∂{lhs[2]}"


def _lhs_latex(lhs: tuple) -> str:
    if lhs[0] == "name":
        return latex_name(lhs[1])
    return _partial_latex(lhs[1], lhs[2])


def _partial_latex(top: str, bottom: str) -> str:
    return rf"\frac{{\partial {latex_name(top)}}}{{\partial {latex_name(bottom)}}}"


def _shape_text(shape) -> str:
    dims = [str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _source_text(f) -> str:
    """f as the user wrote it, on one line; definitions in a where block after it."""
    source = getattr(f, "source", None)
    if not source:
        return str(f)
    try:
        tree = parse_terms(source)
    except MathcalcError:  # it parsed once, when f was made: this does not happen
        tree = None
    if isinstance(tree, D.Program):
        e = tree.expression
        defs = "; ".join(f"{d.name} = {source[d.term.start:d.term.end]}"
                         for d in tree.definitions)
        source = f"{source[e.start:e.end]} where {defs}"
    return " ".join(source.split())


def _source_latex(f) -> str:
    return expr_latex(f)


class _StepsLatex(_Latex):
    """The LaTeX printer, writing the chain rule's placeholders as ∂a/∂b fractions
    (bracketed under a superscript: a fraction would take it on its denominator)."""

    def __init__(self, placeholders: dict):
        super().__init__(bold=False)
        self.placeholders = placeholders

    def name(self, name: str, nonscalar: bool) -> str:
        tex = self.placeholders.get(name)
        return tex if tex is not None else super().name(name, nonscalar)

    def _superscript(self, base, sup: str) -> str:
        if isinstance(base, M.Leaf) and base.text in self.placeholders:
            return rf"\left( {self.render(base)} \right)^{{{sup}}}"
        return super()._superscript(base, sup)


def _latex(node, placeholders: dict) -> str:
    printer = _StepsLatex(placeholders)
    return printer.render_all(printer.recognise(node))
