"""The KaTeX harness itself: good strings render, a broken one is reported."""

GOOD = [
    r"x^{T} A x",
    r"\frac{\partial}{\partial x} x^{T} A x = \left(A + A^{T}\right) x",
    r"\operatorname{tr}\left(X^{-1}\right) + \log\det X",
    r"\sum_{i} \max\left(0, W x + b\right)_{i}",
    r"\mathbf{W} \odot \boldsymbol{\alpha}",
]


def test_good_strings_render(render_all):
    assert render_all(GOOD) == []


def test_broken_string_is_reported(render_all):
    errors = render_all(GOOD[:2] + [r"\frac{"] + GOOD[2:])
    assert len(errors) == 1
    (err,) = errors
    assert err.index == 2 and err.latex == r"\frac{"
    assert "KaTeX parse error" in err.message


def test_unknown_macro_is_reported(render_all):
    errors = render_all([r"\notamacro{x}", "x"])
    assert [e.index for e in errors] == [0]


def test_strict_reports_latex_incompatible_input(render_all):
    assert render_all(["é x"]) == []
    errors = render_all(["é x", r"\acute{e} x"], strict=True)
    assert [e.index for e in errors] == [0]
    assert "LaTeX-incompatible" in errors[0].message


def test_empty_list(render_all):
    assert render_all([]) == []
