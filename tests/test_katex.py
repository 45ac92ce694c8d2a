"""The KaTeX harness itself: good strings render, a broken one is reported; and
`make katex` says what the rendering tests will do (skip without node, fail
without KaTeX)."""

import os
import shutil
import subprocess

import pytest

import katex_render

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


# ---------------------------------------------------------------- `make katex` says what the tests will do

def _make_katex(tmp_path, path_dirs):
    """`make katex` with only ``path_dirs`` on PATH and KaTeX nowhere (an empty KATEX_DIR)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k != "MATHCALC_KATEX_DIR"}
    env["PATH"] = os.pathsep.join(str(d) for d in path_dirs)
    empty = tmp_path / "no-katex"
    empty.mkdir(exist_ok=True)
    proc = subprocess.run([make, "-s", "-C", str(katex_render.ROOT), "katex", f"KATEX_DIR={empty}"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr, env


def test_make_katex_without_node_says_skipped_as_the_tests_do(tmp_path, monkeypatch):
    nothing = tmp_path / "bin-empty"
    nothing.mkdir()
    message, env = _make_katex(tmp_path, [nothing])
    assert "node not found" in message and "skipped" in message
    monkeypatch.setenv("PATH", env["PATH"])
    assert katex_render.node_path() is None  # conftest's render_all fixture skips


def test_make_katex_with_node_but_no_npm_says_the_tests_fail(tmp_path, monkeypatch):
    node = katex_render.node_path()
    if node is None:
        pytest.skip("node is not installed")
    only_node = tmp_path / "bin-node"
    only_node.mkdir()
    (only_node / "node").symlink_to(node)
    message, env = _make_katex(tmp_path, [only_node])
    assert "npm is not" in message and "FAIL" in message
    assert "will be skipped" not in message
    # What the tests see there: node, and no KaTeX (render_all then fails with INSTALL_HINT).
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.delenv("MATHCALC_KATEX_DIR", raising=False)
    monkeypatch.setattr(katex_render, "ROOT", tmp_path)
    assert katex_render.node_path() is not None
    assert katex_render.katex_module() is None
