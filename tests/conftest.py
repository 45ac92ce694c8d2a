"""Shared fixtures: the console script, and KaTeX rendering for LaTeX tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import katex_render


@pytest.fixture(scope="session")
def render_all():
    """``render_all(strings) -> list of KatexError`` (empty when every string renders).

    Skips when node is absent; fails when node is present but KaTeX is not installed.
    """
    if katex_render.node_path() is None:
        pytest.skip("node is not installed: the KaTeX rendering tests are skipped")
    if katex_render.katex_module() is None:
        pytest.fail(katex_render.INSTALL_HINT, pytrace=False)
    return katex_render.render_all


@pytest.fixture(scope="session")
def mathcalc_script() -> str:
    """The installed ``mathcalc`` console script of the running interpreter's environment."""
    script = Path(sys.executable).parent / "mathcalc"
    if script.exists():
        return str(script)
    found = shutil.which("mathcalc")
    if found is None:
        pytest.fail("the mathcalc console script is not installed: run `make test` "
                    "(pip install -e '.[test]')", pytrace=False)
    return found
