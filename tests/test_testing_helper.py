"""mathcalc.testing: assert_derivative and the pytest fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import mathcalc as mc
from mathcalc.testing import assert_derivative, derivative_checker  # noqa: F401 (fixture)


def test_right_derivations_pass():
    assert_derivative("x'*A*x", "x", "(A + A')*x")
    assert_derivative("sum(max(0, W*x + b))", "W", "step(W*x + b)*x'",
                      W=("m", "n"), x=("n",), b=("m",))
    assert_derivative("logdet(X)", "X", "inv(X)'")
    assert_derivative(mc.parse("norm2(X - U*V')^2", X=("m", "n"), U=("m", "k"), V=("n", "k")),
                      "U", "-2*(X - U*V')*V")


def test_wrong_derivation_message_shows_both_sides_and_where():
    with pytest.raises(AssertionError) as err:
        assert_derivative("x'*A*x", "x", "2*A*x")
    msg = str(err.value)
    assert "derived: " in msg and "claimed: 2*A*x" in msg
    derived = msg.split("derived: ")[1].split("    shape")[0]
    assert "A" in derived and "x" in derived and derived != "2*A*x"
    assert "largest difference" in msg and "at entry [" in msg
    assert "at the point" in msg and "A = [[" in msg and "x = [" in msg


def test_missing_transpose_is_caught():
    with pytest.raises(AssertionError, match="claimed: inv\\(X\\)"):
        assert_derivative("logdet(X)", "X", "inv(X)")


def test_wrong_shape_says_so():
    with pytest.raises(AssertionError) as err:
        assert_derivative("x'*x", "x", "2*x'*x")
    assert "shapes differ" in str(err.value) and "shape (n,)" in str(err.value)


def test_fixture(derivative_checker):
    derivative_checker("sum(exp(x))", "x", "exp(x)")
    with pytest.raises(AssertionError):
        derivative_checker("sum(exp(x))", "x", "x")


def test_plugin_output_in_a_pytest_run(tmp_path):
    """Loaded with -p, the fixture works and a failure prints both sides, not a traceback into mathcalc."""
    test_file = tmp_path / "test_user.py"
    test_file.write_text(textwrap.dedent("""
        def test_ok(derivative_checker):
            derivative_checker("x'*A*x", "x", "(A + A')*x")

        def test_wrong(derivative_checker):
            derivative_checker("x'*A*x", "x", "2*A*x")
    """))
    from importlib.metadata import entry_points

    installed = any(ep.value == "mathcalc.testing" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "mathcalc.testing"]  # the entry point loads it when installed
    proc = subprocess.run([sys.executable, "-m", "pytest", *plugin, "-q",
                           "-p", "no:cacheprovider", str(test_file)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in out, out
    assert "claimed: 2*A*x" in out and "largest difference" in out


def test_importing_mathcalc_testing_does_not_need_pytest():
    code = ("import sys; sys.modules['pytest'] = None\n"
            "import mathcalc.testing as t\n"
            "t.assert_derivative(\"x'*x\", 'x', '2*x')\n"
            "print('fine', hasattr(t, 'derivative_checker'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "fine False", proc.stderr
