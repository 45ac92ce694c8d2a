"""LaTeX: exact strings for the common forms, names, bold, derivations; every string renders in KaTeX."""

from fractions import Fraction

import pytest

import mathcalc as mc
from mathcalc import nodes as E
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
    # A matrix's norm2 is the Frobenius norm; its norm1 the entry-wise 1-norm (not the induced one).
    (lambda: E.norm2(W), r"\left\lVert W \right\rVert_F"),
    (lambda: E.norm1(W), r"\left\lVert \operatorname{vec}\left( W \right) \right\rVert_1"),
    (lambda: E.power(E.norm2(E.sub(W, X)), E.num(2)), r"\left\lVert W - X \right\rVert_F^{2}"),
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


# The braces of \frac group: no brackets around a lone sum or product in it.
FRACTIONS = [
    ("a/(b*c)", r"\frac{a}{b c}"),
    ("x/(a+b)", r"\frac{x}{a + b}"),
    ("(a+b)/c", r"\frac{a + b}{c}"),
    ("(a+b)/(c+d)", r"\frac{a + b}{c + d}"),
    ("1/(a+b)", r"\frac{1}{a + b}"),
    ("a/(-b)", r"\frac{a}{-b}"),
    ("a/2/(b*c)", r"\frac{a}{2 b c}"),
    ("a*(b+c)/(d*(e+f))", r"\frac{a \left( b + c \right)}{d \left( e + f \right)}"),
    ("(a+b)/2", r"\frac{1}{2} \left( a + b \right)"),
]


@pytest.mark.parametrize("text, expected", FRACTIONS)
def test_fraction_brackets_only_where_needed(text, expected):
    assert mc.latex(mc.parse(text)) == expected


# Index notation: the summed indices are written as a sum (X_{pq} alone reads as one entry).
def _rank3():
    """δ_{ij} (A x)_k as one index-notation product: sum over l of δ_{ij} A_{kl} x_{l}."""
    return E.product([(E.eye(n), (0, 1)), (A, (2, 3)), (x, (3,))], (0, 1, 2))


SUMS = [
    (lambda: mc.diff("sum(X)*X", "X").node,
     r"\sum_{p,q} \delta_{ik} \delta_{jl} X_{pq} + X_{ij} \mathbf{1}_{k} \mathbf{1}_{l}"),
    (lambda: mc.diff("tr(X)*X", "X", X=("n", "n")).node,
     r"\delta_{kl} X_{ij} + \sum_{p} \delta_{ik} \delta_{jl} X_{pp}"),
    (_rank3, r"\sum_{l} \delta_{ij} A_{kl} x_{l}"),
    (lambda: E.scale(-1, _rank3()), r"-\sum_{l} \delta_{ij} A_{kl} x_{l}"),
    (lambda: E.power(_rank3(), E.num(2)), r"\left( \sum_{l} \delta_{ij} A_{kl} x_{l} \right)^{2}"),
    (lambda: E.product([(E.apply("tanh", _rank3()), (0, 1, 3)), (y, (2,))], (0, 1, 2)),
     r"\sum_{l} \tanh\left( \sum_{p} \delta_{ij} A_{lp} x_{p} \right) y_{k}"),
    (lambda: E.product([(E.apply("tanh", _rank3()), (0, 1, 2))], (0, 1)),
     r"\sum_{k} \tanh\left( \sum_{l} \delta_{ij} A_{kl} x_{l} \right)"),
    # no summed index: no sum
    (lambda: mc.diff("W*x", "W").node, r"\delta_{ij} x_{k}"),
]


@pytest.mark.parametrize("build, expected", SUMS, ids=[e for _, e in SUMS])
def test_index_notation_writes_its_sums(build, expected):
    assert to_latex(build()) == expected


def test_bold_vectors_and_matrices_scalars_italic():
    node = E.einsum(",ij,j->i", a, A, x)
    assert to_latex(node, bold=True) == r"a \mathbf{A} \mathbf{x}"
    alpha = E.var("α", (n,))
    assert to_latex(E.hadamard(W, E.var("Λ", (m, n))), bold=True) == \
        r"\mathbf{W} \odot \boldsymbol{\Lambda}"
    assert to_latex(alpha, bold=True) == r"\boldsymbol{\alpha}"


# Unicode compatibility forms: read as what they stand for, so that KaTeX's
# strict mode accepts them (\text{µ} and W\text{ᵢ} do not render there).
UNICODE_NAMES = [
    ("µ", r"\mu", r"\boldsymbol{\mu}"),             # MICRO SIGN, NFKC: Greek mu
    ("µ1", r"\mu_{1}", r"\boldsymbol{\mu}_{1}"),
    ("ℓ", r"\ell", r"\boldsymbol{\ell}"),           # NFKC would make it l
    ("Wᵢ", "W_{i}", r"\mathbf{W}_{i}"),             # subscript letter
    ("Wᵢⱼ", "W_{ij}", r"\mathbf{W}_{ij}"),
    ("W1ᵢ", "W_{1,i}", r"\mathbf{W}_{1,i}"),
    ("x_ᵢ", "x_{i}", r"\mathbf{x}_{i}"),
    ("βᵢ", r"\beta_{i}", r"\boldsymbol{\beta}_{i}"),
    ("xʰ", "x^{h}", r"\mathbf{x}^{h}"),             # superscript letter
    ("𝐱", r"\mathbf{x}", r"\mathbf{x}"),             # mathematical bold: keeps its font
    ("ℝ", r"\mathbb{R}", r"\boldsymbol{\mathbb{R}}"),
    ("ｘ", "x", r"\mathbf{x}"),                     # fullwidth
    ("ﬁ", r"\mathit{fi}", r"\mathbf{fi}"),           # ligature
]


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
] + UNICODE_NAMES)
def test_names(name, plain, bold):
    assert latex_name(name) == plain
    assert latex_name(name, bold=True) == bold


def test_unicode_names_render_in_katex_strict_mode(render_all):
    """Each name alone, bold, and in a parsed expression (transposed, indexed, as a power)."""
    strings = []
    for name, _, _ in UNICODE_NAMES:
        strings += [latex_name(name), latex_name(name, bold=True)]
        e = mc.parse(f"{name}'*A*{name} + sum({name})^2", **{name: ("n",)})
        strings += [mc.latex(e), mc.latex(e, bold=True), mc.latex(mc.diff(e, name)),
                    mc.latex(mc.diff(f"{name}*{name}'", name, **{name: ("n",)})),
                    mc.latex_derivation(e, name)]
    errors = render_all(strings, strict=True)
    assert errors == [], errors[:3]


def test_derivation_brackets_only_sums_products_and_minus():
    f = mc.parse("exp(x)")
    assert mc.latex_derivation(f, "x").startswith(
        r"\frac{\partial}{\partial x} \exp\left( x \right) = ")
    assert mc.latex_derivation(mc.parse("norm2(x)^2"), "x").startswith(
        r"\frac{\partial}{\partial x} \left\lVert x \right\rVert_2^{2} = ")
    assert mc.latex_derivation(mc.parse("a*b + a"), "a").startswith(
        r"\frac{\partial}{\partial a} \left( a b + a \right) = ")
    assert mc.latex_derivation(mc.parse("a*b"), "a") == \
        r"\frac{\partial}{\partial a} \left( a b \right) = b"
    assert mc.latex_derivation(mc.parse("-x'*x"), "x") == \
        r"\frac{\partial}{\partial x} \left( -x^{\top} x \right) = -2 x"


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
    for text, _ in FRACTIONS:
        out.append(mc.latex(mc.parse(text)))
    for build, _ in SUMS:
        out += [to_latex(build()), to_latex(build(), bold=True)]
    out.append(mc.latex_derivation(mc.parse("exp(x)"), "x"))
    return out


def test_latex_recognises_as_the_printers_do():
    """latex.py's recogniser (which also notes summed indices) finds the very AST of
    recognise.recognise, so the LaTeX and the matrix notation never disagree."""
    from test_printing import DERIVATIVES, PATTERNS, SCALARS_AND_CALLS, one_of_each

    from mathcalc.printing import latex as L
    from mathcalc.printing.recognise import recognise

    nodes = [build() for build, _ in CASES + PATTERNS + DERIVATIVES + SCALARS_AND_CALLS + SUMS]
    for node in nodes + one_of_each():
        assert L._Latex(False).recognise(node) == recognise(node)


def test_every_string_renders_in_katex(render_all):
    strings = all_strings()
    errors = render_all(strings, strict=True)
    assert errors == [], errors[:3]
