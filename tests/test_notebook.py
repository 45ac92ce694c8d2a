"""Results display as math in Jupyter (issue 11.5): a real notebook, executed.

A notebook is built with nbformat and executed by nbclient in an IPython
kernel of this very interpreter (a kernel spec written to a temporary
JUPYTER_PATH, so nothing has to be installed for the user first and a fresh
clone works). Its outputs are then read as Jupyter stored them: each rich
result has a ``text/latex`` output, the math renders in KaTeX, the shape is
shown, and ``latex_derivation``'s value prints as the plain LaTeX string.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import mathcalc as mc

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "mathcalc-test-python"

CELLS = [
    "import mathcalc as mc",
    'f = mc.parse("tr(inv(X)*A)", X=("n", "n"), A=("n", "n"))\nf',
    'g = mc.diff("sum(max(0, W*x + b))", "W", W=("m", "n"), x=("n",), b=("m",))\ng',
    'mc.where(mc.diff("sum(tanh(W2*tanh(W1*x)))", "W1", W1=("h", "d"), W2=("o", "h"), '
    'x=("d",)))',
    'mc.explain("max(0, w\'*x + b)", "w")',
    'd = mc.latex_derivation("-0.5*logdet(S) - 0.5*q", "S", S=("n", "n"), q=())\nd',
    "print(d)",
    'mc.check("x\'*A*x", "x")',
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook above, executed; its code cells' outputs."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mathcalc tests", "language": "python"}))
    patch = pytest.MonkeyPatch()
    patch.setenv("JUPYTER_PATH", str(home))
    patch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    try:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
        NotebookClient(nb, kernel_name=KERNEL, timeout=180, startup_timeout=180,
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        patch.undo()
    return [cell.outputs for cell in nb.cells]


def _result(outputs) -> dict:
    (out,) = [o for o in outputs if o.output_type == "execute_result"]
    return out.data


def _math(latex: str) -> str:
    """The math inside ``$…$`` or ``$$…$$``."""
    assert latex.startswith("$") and latex.endswith("$"), latex
    return latex.strip("$")


def test_no_cell_failed(executed):
    for source, outputs in zip(CELLS, executed):
        assert not [o for o in outputs if o.output_type == "error"], (source, outputs)


def test_expr_renders_as_written_with_its_shape(executed):
    data = _result(executed[1])
    assert data["text/latex"] == r"$\operatorname{tr}\left( X^{-1} A \right) \quad \in \mathbb{R}$"
    assert "Expr(" in data["text/plain"]


def test_derivative_shows_its_shape(executed):
    data = _result(executed[2])
    g = mc.diff("sum(max(0, W*x + b))", "W", W=("m", "n"), x=("n",), b=("m",))
    assert data["text/latex"] == "$" + mc.latex(g) + r" \quad \in \mathbb{R}^{m \times n}$"


def test_where_form_and_explanation_are_displays(executed):
    where = _result(executed[3])["text/latex"]
    assert r"\text{where}" in where and where.endswith(r"\in \mathbb{R}^{h \times d}$$")
    steps = _result(executed[4])["text/latex"]
    assert steps == "$$" + mc.explain("max(0, w'*x + b)", "w").latex + "$$"
    assert r"\frac{\partial u_{2}}{\partial u_{1}}" in steps


def test_latex_derivation_renders_and_prints_as_the_string(executed):
    data = _result(executed[5])
    tex = mc.latex_derivation("-0.5*logdet(S) - 0.5*q", "S", S=("n", "n"), q=())
    assert data["text/latex"] == "$$" + tex + "$$"
    assert tex.startswith(r"\frac{\partial}{\partial S} \left( -0.5 \log\det\left( S \right) "
                          r"- 0.5 q \right) = ")
    (printed,) = executed[6]
    assert printed.output_type == "stream" and printed.text == tex + "\n"


def test_check_result_shows_the_verdict(executed):
    data = _result(executed[7])
    assert data["text/latex"].startswith(r"$\text{check passed}")
    assert r"\left( A + A^{\top} \right) x \quad \in \mathbb{R}^{n}$" in data["text/latex"]
    assert data["text/plain"].startswith("CheckResult(ok=True")


def test_every_latex_output_renders_in_katex(executed, render_all):
    shown = [_math(o.data["text/latex"]) for outputs in executed for o in outputs
             if o.output_type == "execute_result" and "text/latex" in o.data]
    assert len(shown) == 6
    errors = render_all(shown, strict=True)
    assert not errors, "\n".join(map(str, errors))
