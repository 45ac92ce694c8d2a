"""How results show themselves in a notebook: math rendered, the shape shown.

Jupyter asks an object for ``_repr_latex_`` and renders what it returns as
math (MathJax or KaTeX). ``Expr``, the where-form, explanations,
``latex_derivation``'s LatexString and ``CheckResult`` answer with the
helpers here, so they all write a shape the same way: ``x^{\\top} A x \\quad
\\in \\mathbb{R}`` for a scalar, ``\\in \\mathbb{R}^{m \\times n}`` for a matrix.
"""

from __future__ import annotations

import math

from .latex import _number, latex_name, to_latex


def shape_latex(shape) -> str:
    """`` \\quad \\in \\mathbb{R}^{m \\times n}``: the shape after the math (``\\mathbb{R}`` for
    a scalar; a derivative of order 3 is ``\\mathbb{R}^{m \\times m \\times n}``)."""
    dims = r" \times ".join(str(d) if isinstance(d, int) else latex_name(str(d)) for d in shape)
    return r" \quad \in \mathbb{R}" + (f"^{{{dims}}}" if dims else "")


def number_latex(value: float) -> str:
    """A float to three significant digits: ``3.1 \\cdot 10^{-10}``, ``0``, ``\\infty``."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return _number(str(abs(value))) if not math.isnan(value) else _number("nan")
    return _number(f"{value:.2g}" if 1e-3 <= abs(value) < 1e3 else f"{value:.1e}")


def check_latex(result) -> str:
    """A CheckResult as math: the verdict, the largest relative error, the derivative checked."""
    verdict = r"\text{check passed}" if result.ok else r"\text{check FAILED}"
    compared = "every entry" if result.mode == "full" else "random directions"
    parts = [verdict, rf"\text{{largest relative error }} {number_latex(result.max_rel_error)}"
                      rf" \; \text{{({compared}, central differences)}}"]
    if result.derivative is not None:
        parts.append(r"\text{derivative } " + to_latex(result.derivative.node)
                     + shape_latex(result.derivative.shape))
    return "$" + r" \quad ".join(parts) + "$"
