"""latex_derivation writes f as the user wrote it (issue 11.4); the result side is simplified.

The core folds expressions into canonical DAGs (sorted factors and terms),
so the left-hand side is rendered from the syntax tree of the text kept with
the Expr (printing/source.py): no factor or term moves. assert_derivative's
messages echo the user's text too.
"""

from __future__ import annotations

import re

import pytest

import mathcalc as mc
from mathcalc.printing.latex import LatexString, latex_name
from mathcalc.testing import assert_derivative

from identities import IDENTITIES

FIRST_ORDER = [case for case in IDENTITIES if case["order"] == 1]


def lhs(tex: str) -> str:
    """The left-hand side of ``\\frac{\\partial}{\\partial X} F = G``."""
    return tex.split(" = ", 1)[0]


def rhs(tex: str) -> str:
    return tex.split(" = ", 1)[1]


def test_the_issue_examples_keep_their_order():
    tex = mc.latex_derivation("tr(inv(X)*A)", "X", X=("n", "n"), A=("n", "n"))
    assert lhs(tex) == r"\frac{\partial}{\partial X} \operatorname{tr}\left( X^{-1} A \right)"
    assert rhs(tex) == mc.latex(mc.diff("tr(inv(X)*A)", "X", X=("n", "n"), A=("n", "n")))
    tex = mc.latex_derivation("-0.5*logdet(S) - 0.5*q", "S", S=("n", "n"), q=())
    assert lhs(tex) == (r"\frac{\partial}{\partial S} \left( -0.5 \log\det\left( S \right) "
                        r"- 0.5 q \right)")


@pytest.mark.parametrize("text, written", [
    ("b + A*x", r"\left( b + A x \right)"),
    ("y'*B*x", r"\left( y^{\top} B x \right)"),
    ("x'*A*x/2", r"\frac{x^{\top} A x}{2}"),
    ("c*x'*x - 2*a", r"\left( c x^{\top} x - 2 a \right)"),
    ("inv(A*X)'*y", r"\left( \left( A X \right)^{-\top} y \right)"),
    ("norm2(A*x - b)^2", r"\left\lVert A x - b \right\rVert_2^{2}"),
    ("w·x + b", r"\left( w \cdot x + b \right)"),
    ("(A*x) .* y", r"\left( \left( A x \right) \odot y \right)"),
    ("2*x .* y", r"\left( 2 x \odot y \right)"),
    ("x .* y ./ z", r"\left( x \odot y \oslash z \right)"),
    ("exp(-x'*x)", r"\exp\left( -x^{\top} x \right)"),
    ("x", "x"),
])
def test_written_forms(text, written):
    f = mc.parse(text)
    wrt = "x" if "x" in f.variables else sorted(f.variables)[0]
    tex = mc.latex_derivation(f, wrt)
    head = r"\frac{\partial}{\partial " + latex_name(wrt) + "} "
    if written == "x":
        assert lhs(tex) == r"\frac{\partial x}{\partial x}"
    else:
        assert lhs(tex) == head + written
    assert rhs(tex) == mc.latex(mc.diff(f, wrt))  # the result side stays simplified


def test_definitions_are_written_after_the_result():
    for text in ("u = W*x + b; sum(max(0, u))", "sum(max(0, u)) where u = W*x + b"):
        tex = mc.latex_derivation(text, "W", W=("m", "n"), x=("n",), b=("m",))
        assert tex == (r"\frac{\partial}{\partial W} \operatorname{sum}\left( \max\left( 0, u "
                       r"\right) \right) = " + mc.latex(mc.diff(text, "W", W=("m", "n"),
                                                                x=("n",), b=("m",)))
                       + r" \quad \text{where } u = W x + b")


def test_an_expr_without_text_prints_its_canonical_form():
    g = mc.diff("x'*A*x", "x")
    tex = mc.latex_derivation(g, "x")
    assert lhs(tex) == r"\frac{\partial}{\partial x} \left( " + mc.latex(g) + r" \right)"


def test_bold_keeps_scalars_italic():
    tex = mc.latex_derivation("W*x + b", "W", b=("m",))
    bold = mc.latex_derivation("W*x + b", "W", b=("m",), bold=True)
    assert lhs(tex) == r"\frac{\partial}{\partial W} \left( W x + b \right)"
    assert lhs(bold) == r"\frac{\partial}{\partial \mathbf{W}} \left( \mathbf{W} \mathbf{x} " \
                        r"+ \mathbf{b} \right)"
    assert lhs(mc.latex_derivation("a*x", "x", bold=True)).endswith(r"\left( a \mathbf{x} \right)")


def _first_appearances(names, text: str, latex: bool) -> list:
    """The variables in the order they first appear in ``text`` (LaTeX or the language)."""
    found = []
    for name in names:
        token = re.escape(latex_name(name) if latex else name)
        m = re.search(r"(?<![\\A-Za-z_])" + token + r"(?![A-Za-z0-9_])", text)
        assert m, (name, text)
        found.append((m.start(), name))
    return [name for _, name in sorted(found)]


@pytest.mark.parametrize("case", FIRST_ORDER, ids=lambda c: f"{c['f']} d/d{c['wrt']}")
def test_no_variable_moves_on_any_identity(case):
    f = mc.parse(case["f"], **case["shapes"])
    tex = lhs(mc.latex_derivation(f, case["wrt"]))
    tex = tex.split("} ", 1)[1] if tex.startswith(r"\frac{\partial}") else tex  # f alone
    names = [n for n in f.variables if re.search(r"\b" + n + r"\b", case["f"])]
    assert _first_appearances(names, tex, True) == _first_appearances(names, case["f"], False)


def test_every_derivation_renders_in_katex(render_all):
    shown = [mc.latex_derivation(c["f"], c["wrt"], **c["shapes"]) for c in FIRST_ORDER]
    shown += [mc.latex_derivation(t, "x") for t in
              ("x'*A*x/2", "inv(A*X)'*x", "(A*x) .* y", "x .* y ./ z", "a - -b*x", "A''*x",
               "x.^2 + 1 ./ x", "(x'*x)^(a + 1)", "1e-3*x", "vector(2)'*x", "--x")]
    errors = render_all(shown, strict=True)
    assert not errors, "\n".join(map(str, errors[:5]))


def test_the_value_is_the_latex_string_and_renders_in_a_notebook():
    tex = mc.latex_derivation("x'*A*x", "x")
    assert isinstance(tex, str) and isinstance(tex, LatexString)
    assert type(str(tex)) is str and str(tex) == tex
    assert f"{tex}" == str(tex) and repr(tex) == repr(str(tex))
    assert tex._repr_latex_() == "$$" + str(tex) + "$$"


def test_assert_derivative_echoes_the_users_text():
    with pytest.raises(AssertionError) as err:
        assert_derivative("b + inv(X)*A*x", "x", "x'*A*inv(X)", X=("n", "n"), A=("n", "n"),
                          b=("n",))
    first, derived, claimed = str(err.value).splitlines()[:3]
    assert first == "the derivative of b + inv(X)*A*x with respect to x is not the claimed one"
    assert claimed.startswith("  claimed: x'*A*inv(X)    shape")
    assert derived.startswith("  derived: " + str(mc.diff("inv(X)*A*x", "x", X=("n", "n"),
                                                           A=("n", "n"))))
