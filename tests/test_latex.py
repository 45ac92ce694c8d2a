"""LaTeX: exact strings for the common forms, names, bold, derivations; every string renders in KaTeX."""

from fractions import Fraction

import pytest

from mathcalc import expr as E
from mathcalc.printing.latex import derivation_latex, latex_name, to_latex

n, m = "n", "m"
A, B = E.var("A", (n, n)), E.var("B", (n, n))
W, X = E.var("W", (m, n)), E.var("X", (m, n))
x, y, z, w = (E.var(name, (n,)) for name in "xyzw")
b = E.var("b", (m,))
a = E.var("a")


def mv(M_, v):
    return E.einsum("ij,j->i", M_, v)


CASES = [
    (lambda: E.einsum("i,ij,j->", x, A, x), r"x^{\top} A x"),
    (lambda: E.einsum("ij,j->i", E.add(A, E.transpose(A)), x), r"\left( A + A^{\top} \right) x"),
    (lambda: E.einsum("i,j->ij", E.apply("step", E.add(mv(W, x), b)), x),
     r"\operatorname{step}\left( W x + b \right) x^{\top}"),
    (lambda: E.einsum("ki,jk->ij", A, B), r"A^{\top} B^{\top}"),
    (lambda: E.transpose(E.inv(A)), r"A^{-\top}"),
    (lambda: E.inv(A), r"A^{-1}"),
    (lambda: E.inv(E.einsum("ij,jk->ik", A, B)), r"\left( A B \right)^{-1}"),
    (lambda: E.hadamard(x, y), r"x \odot y"),
    (lambda: E.hadamard(x, E.power(y, E.num(-1))), r"x \oslash y"),
    (lambda: E.trace(A), r"\operatorname{tr}\left( A \right)"),
    (lambda: E.det(A), r"\det\left( A \right)"),
    (lambda: E.logdet(A), r"\log\det\left( A \right)"),
    (lambda: E.diag_matrix(x), r"\operatorname{diag}\left( x \right)"),
    (lambda: E.apply("sigmoid", x), r"\sigma\left( x \right)"),
    (lambda: E.apply("exp", x), r"\exp\left( x \right)"),
    (lambda: E.apply("log", x), r"\log\left( x \right)"),
    (lambda: E.apply("sqrt", a), r"\sqrt{a}"),
    (lambda: E.norm2(x), r"\left\lVert x \right\rVert_2"),
    (lambda: E.norm1(x), r"\left\lVert x \right\rVert_1"),
    (lambda: E.maximum(E.num(0), E.add(mv(W, x), b)), r"\max\left( 0, W x + b \right)"),
    (lambda: E.eye(n), "I"),
    (lambda: E.ones((n,)), r"\mathbf{1}"),
    (lambda: E.zeros((n,)), r"\mathbf{0}"),
    (lambda: E.einsum("ij->i", W), r"W \mathbf{1}"),
    (lambda: E.scale(Fraction(1, 2), x), r"\frac{1}{2} x"),
    (lambda: E.divide(x, E.norm2(x)), r"\frac{x}{\left\lVert x \right\rVert_2}"),
    (lambda: E.power(a, E.num(2)), "a^{2}"),
    (lambda: E.power(x, E.num(2)), r"x^{\circ 2}"),
    (lambda: E.power(E.transpose(A), E.num(2)), r"\left( A^{\top} \right)^{\circ 2}"),
    (lambda: E.num(Fraction(1, 3)), r"\frac{1}{3}"),
    (lambda: E.num(1e-12), r"10^{-12}"),
    (lambda: E.sub(E.diag_matrix(E.softmax(z)), E.einsum("i,j->ij", E.softmax(z), E.softmax(z))),
     r"\operatorname{diag}\left( \operatorname{softmax}\left( z \right) \right) - "
     r"\operatorname{softmax}\left( z \right) \operatorname{softmax}\left( z \right)^{\top}"),
    (lambda: E.product([(E.eye(m), (0, 1)), (x, (2,))], (0, 1, 2)), r"\delta_{ij} x_{k}"),
    (lambda: E.product([(E.add(mv(W, x), b), (0,)), (A, (2, 1))], (0, 1, 2)),
     r"\left( W x + b \right)_{i} A_{kj}"),
]


@pytest.mark.parametrize("build, expected", CASES, ids=[e for _, e in CASES])
def test_latex(build, expected):
    assert to_latex(build()) == expected


def test_bold_vectors_and_matrices_scalars_italic():
    node = E.einsum(",ij,j->i", a, A, x)
    assert to_latex(node, bold=True) == r"a \mathbf{A} \mathbf{x}"
    alpha = E.var("α", (n,))
    assert to_latex(E.hadamard(W, E.var("Λ", (m, n))), bold=True) == \
        r"\mathbf{W} \odot \boldsymbol{\Lambda}"
    assert to_latex(alpha, bold=True) == r"\boldsymbol{\alpha}"


@pytest.mark.parametrize("name, plain, bold", [
    ("x", "x", r"\mathbf{x}"),
    ("α", r"\alpha", r"\boldsymbol{\alpha}"),
    ("λ", r"\lambda", r"\boldsymbol{\lambda}"),
    ("lambda", r"\lambda", r"\boldsymbol{\lambda}"),
    ("W1", "W_{1}", r"\mathbf{W}_{1}"),
    ("W_2", "W_{2}", r"\mathbf{W}_{2}"),
    ("x_hat", "x_{hat}", r"\mathbf{x}_{hat}"),
    ("Wx", r"\mathit{Wx}", r"\mathbf{Wx}"),
    ("α1", r"\alpha_{1}", r"\boldsymbol{\alpha}_{1}"),
    ("Α", "A", r"\mathbf{A}"),
])
def test_names(name, plain, bold):
    assert latex_name(name) == plain
    assert latex_name(name, bold=True) == bold


def test_derivation_display():
    f = E.einsum("i,ij,j->", x, A, x)
    g = E.einsum("ij,j->i", E.add(A, E.transpose(A)), x)
    assert derivation_latex(f, "x", g, (n,)) == \
        r"\frac{\partial}{\partial x} \left( x^{\top} A x \right) = \left( A + A^{\top} \right) x"
    assert derivation_latex(f, "x", g, (n,), bold=True).startswith(
        r"\frac{\partial}{\partial \mathbf{x}} \left( \mathbf{x}^{\top}")
    assert derivation_latex(a, "a", E.num(1), ()) == r"\frac{\partial a}{\partial a} = 1"


def all_strings():
    from test_printing import DERIVATIVES, PATTERNS, SCALARS_AND_CALLS, one_of_each

    nodes = [build() for build, _ in CASES + PATTERNS + DERIVATIVES + SCALARS_AND_CALLS]
    nodes += one_of_each()
    out = []
    for node in nodes:
        out += [to_latex(node), to_latex(node, bold=True)]
    for name in ("W1", "W_2", "α", "λ1", "x_hat", "theta", "Wx", "Σ", "_x", "a_", "x_1_2", "é"):
        out += [latex_name(name), latex_name(name, bold=True)]
    f = E.einsum("i,ij,j->", x, A, x)
    out.append(derivation_latex(f, "W_1", f, (n, n), bold=True))
    return out


def test_every_string_renders_in_katex(render_all):
    strings = all_strings()
    errors = render_all(strings)
    assert errors == [], errors[:3]
