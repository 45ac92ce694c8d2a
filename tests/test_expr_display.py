"""How an Expr shows itself: repr in matrix notation with its shape, LaTeX for notebooks."""

import mathcalc as mc


def test_repr_shows_matrix_notation_and_shape():
    g = mc.diff("x'*A*x", "x", x=("n",), A=("n", "n"))
    assert repr(g) == "Expr(\"(A + A')*x\", shape=('n',))"


def test_repr_latex_is_the_latex_in_dollars(render_all):
    g = mc.diff("sum(max(0, W*x + b))", "W", W=("m", "n"), x=("n",), b=("m",))
    shown = g._repr_latex_()
    assert shown == "$" + mc.latex(g) + r" \quad \in \mathbb{R}^{m \times n}$"  # and the shape
    assert not render_all([shown.strip("$")], strict=True)


def test_variables_are_kept_by_derivatives():
    g = mc.diff("a'*x", "x", a=("n",), x=("n",))
    assert str(g) == "a" and g.variables == {"a": ("n",), "x": ("n",)}
