"""The command line when a check finds no point with finite values: a failed
check (exit status 1) with the reason, not an internal error (exit status 3)."""

from __future__ import annotations

import os
import subprocess
import sys


def _mathcalc(*args):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env.pop("MATHCALC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "mathcalc", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_diff_check_without_a_finite_point_is_a_failed_check():
    proc = _mathcalc("diff", "sum(log(x - 3))", "--wrt", "x", "--check")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "check: FAILED" in proc.stdout
    assert "no point was found where f and its derivative are finite" in proc.stdout
    assert "internal error" not in out and "Traceback" not in out


def test_check_command_without_a_finite_point_is_undecided_with_the_reason():
    """No verdict from points that cannot decide: not "incorrect", not "correct"."""
    proc = _mathcalc("check", "sum(sqrt(x - 100))", "--wrt", "x",
                     "--claimed", "1 ./ sqrt(x - 100)")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert proc.stdout.startswith("undecided")
    assert "incorrect" not in proc.stdout
    assert "no point was found where both expressions are finite" in proc.stdout
    assert "internal error" not in out and "Traceback" not in out
