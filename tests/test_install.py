"""The built wheel, installed into a fresh venv, works outside the source tree.

The grammar lives at the top level (grammar/mathcalc.lark) and must ship in
the wheel as mathcalc.grammar. One wheel is built (from a copy of the tree, so
concurrent runs do not share build/ folders) and installed with its
dependencies into a fresh venv without access to this environment's packages;
then that venv's python and console script run from a directory outside the
source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", ".venv", ".katex", "node_modules", "build", "dist",
                              "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache")


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, (f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
                                  f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, fresh venv's bin dir, a working directory outside the source tree)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP, symlinks=True)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
          "-q", "-w", dist, src], timeout=300)
    (wheel,) = dist.glob("mathcalc-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], timeout=120)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    # This environment's pip installs into the fresh venv (no ensurepip: faster);
    # the dependencies come from the registry (or pip's cache), as for a user.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--disable-pip-version-check",
          "-q", wheel], timeout=300, env=_clean_env())
    outside = tmp / "elsewhere"
    outside.mkdir()
    return wheel, bindir, outside


def _py(installed, code: str):
    _, bindir, outside = installed
    return _run([bindir / "python", "-c", code], cwd=outside, env=_clean_env(), timeout=120)


def test_wheel_ships_the_grammar_inside_the_package(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mathcalc/grammar/mathcalc.lark" in names, sorted(names)
    assert "mathcalc/grammar/__init__.py" in names, sorted(names)
    assert "mathcalc/cli.py" in names and "mathcalc/__main__.py" in names
    assert not any(n.startswith(("grammar/", "tests/", "examples/")) for n in names), sorted(names)


def test_imports_from_the_venv_not_the_source_tree(installed):
    _, bindir, _ = installed
    out = _py(installed, "import mathcalc, sys; print(mathcalc.__file__); print(sys.prefix)").stdout
    location, prefix = out.split("\n")[:2]
    assert Path(location).resolve().is_relative_to(bindir.parent.resolve()), out
    assert not Path(location).resolve().is_relative_to(ROOT), out


def test_grammar_is_a_package_resource(installed):
    out = _py(installed, "from importlib.resources import files; "
                         "print(files('mathcalc.grammar').joinpath('mathcalc.lark').is_file())").stdout
    assert out.strip() == "True"


def test_parse_works_outside_the_source_tree(installed):
    out = _py(installed, "import mathcalc; print(mathcalc.parse(\"x'*A*x\").shape)").stdout
    assert out.strip() == "()"


def test_console_script(installed):
    _, bindir, outside = installed
    script = bindir / "mathcalc"
    assert script.exists()
    out = _run([script, "--help"], cwd=outside, env=_clean_env(), timeout=120).stdout
    assert "diff" in out and "check" in out and "shapes" in out
    out = _run([script, "shapes", "x'*A*x"], cwd=outside, env=_clean_env(), timeout=120).stdout
    assert "x: (n,)" in out and "(expression): ()" in out


def test_python_dash_m(installed):
    _, bindir, outside = installed
    out = _run([bindir / "python", "-m", "mathcalc", "--version"], cwd=outside,
               env=_clean_env(), timeout=120).stdout
    assert "0.1.0" in out


def test_grammar_resource_in_this_environment():
    """The same mapping in the environment running the tests (an editable install under `make`)."""
    from importlib.resources import files

    assert files("mathcalc.grammar").joinpath("mathcalc.lark").is_file()
