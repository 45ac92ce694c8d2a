"""Every script in examples/ runs with the venv's python, exits 0 and prints
the facts it is there to show (issue 5, section 6).

Each script runs once per session (a module-scoped fixture caches its output)
and must finish within a few seconds.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mathcalc as mc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIME_LIMIT = 20.0  # seconds: generous for a loaded machine; each takes about 1 s alone

_cache: dict[str, tuple[subprocess.CompletedProcess, float]] = {}


def run(name: str) -> str:
    """stdout of examples/NAME, run as a subprocess; fails the test on a non-zero exit."""
    if name not in _cache:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        _cache[name] = (proc, time.monotonic() - start)
    proc, seconds = _cache[name]
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert seconds < TIME_LIMIT, f"{name} took {seconds:.1f} s"
    return proc.stdout


SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("test_"))


def test_the_expected_examples_exist():
    assert {"neuron.py", "logistic_newton.py", "mlp_backprop.py", "gaussian_mle.py",
            "gaussian_covariance.py"} <= set(SCRIPTS)
    assert (EXAMPLES / "test_my_derivation.py").exists()


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_cleanly(name):
    run(name)
    proc, _ = _cache[name]
    assert "FAILED" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_neuron():
    out = run("neuron.py")
    # The gradients in matrix notation, for the activation and the loss.
    assert "d/dw = step(w'*x + b)*x    (shape ('n',))" in out
    assert "d/db = step(w'*x + b)    (shape ())" in out
    assert "d/dw = 2*step(w'*x + b)*(max(0, w'*x + b) - y)*x    (shape ('n',))" in out
    # LaTeX of the whole statement, the generated function, the checks.
    assert r"\frac{\partial}{\partial w}" in out
    assert "def dloss_dw(w, x, b, y):" in out  # parameters named after the variables (SPEC 9)
    assert out.count("check: passed") == 4
    assert "check at this point, d/dw: passed" in out
    assert "check at this point, d/db: passed" in out
    # codegen, lambdify and the hand formula print the same numbers.
    rows = re.findall(r"dloss/dw \((?:codegen|lambdify|by hand)\)\s*= (.*)", out)
    assert len(rows) == 3 and len(set(rows)) == 1


def test_logistic_newton():
    out = run("logistic_newton.py")
    assert "gradient dL/dw = c*w - X'*(y .* sigmoid(-y .* (X*w)))" in out
    assert "Hessian  d2L/dw2 = c*eye(n) + X'*diag(" in out
    assert "gradient and Hessian agree with finite differences" in out
    newton = int(re.search(r"Newton converged in (\d+) iterations", out).group(1))
    gd = int(re.search(r"gradient descent .* needed (\d+) iterations", out).group(1))
    assert newton <= 15
    assert gd > 10 * newton  # the point of Newton's method
    assert "the two solutions agree: True" in out
    # The gradient norms Newton printed go to below the tolerance.
    norms = [float(v) for v in re.findall(r"\|gradient\| ([0-9.e+-]+)", out)]
    assert norms[-1] < 1e-8 and norms[0] > 1


def test_mlp_backprop():
    out = run("mlp_backprop.py")
    for p, shape in (("W1", "('h', 'd')"), ("b1", "('h',)"), ("W2", "('o', 'h')"), ("b2", "('o',)")):
        assert f"dloss/d{p} = " in out
        assert f"shape {shape}; finite-difference check passed" in out
    first, last = map(float, re.search(r"loss decreased from ([0-9.]+) to ([0-9.]+)", out).groups())
    assert last < first / 2
    assert "at every step" in out


def test_gaussian_mle():
    out = run("gaussian_mle.py")
    assert out.count("check passed") == 4
    # The one-sample gradient w.r.t. S, whatever its spelling: inv(S)' - inv(S)'*(x - m)*(x - m)'*inv(S)'
    printed = re.search(r"^  d/dS = (.+?)    check passed", out, re.M).group(1)
    shapes = dict(x=("n",), m=("n",), S=("n", "n"))
    assert mc.equivalent(mc.parse(printed, **shapes),
                         mc.parse("inv(S)' - inv(S)'*(x - m)*(x - m)'*inv(S)'", **shapes)), printed
    norms = dict(re.findall(r"^  \|d/d(m|S)\| = ([0-9.e+-]+)$", out, re.M))
    assert float(norms["m"]) < 1e-8 and float(norms["S"]) < 1e-8
    assert "not a stationary point" in out
    assert "the gradient vanishes at the MLE: verified" in out


def test_gaussian_covariance():
    """The MLE covariance by Newton's method with S declared spd (SPEC 6)."""
    out = run("gaussian_covariance.py")
    printed = re.search(r"^gradient dL/dS = (.+?)    shape", out, re.M).group(1)
    assert "inv(S)'" not in printed and "S'" not in printed  # symmetric: no transposes of S
    shapes = dict(S=mc.spd("n"), X=("n", "N"), u=("n",), k=())
    closed = "(inv(S)*(X - u*ones(N)')*(X - u*ones(N)')'*inv(S) - k*inv(S))/2"
    assert mc.equivalent(mc.parse(printed, **shapes), mc.parse(closed, **shapes)), printed
    assert "structure: {'S': 'spd'}" in out
    assert "agree with finite differences along symmetric directions" in out
    iterations = int(re.search(r"Newton converged in (\d+) iterations", out).group(1))
    assert iterations <= 15
    norms = [float(v) for v in re.findall(r"\|G\| = ([0-9.e+-]+)", out)]
    assert norms[-1] < 1e-7 and norms[-2] < 1e-2 and norms[0] > 1  # quadratic at the end
    assert "the estimate is symmetric: True" in out
    assert "the estimate equals the sample covariance (X - u)(X - u)'/N: True" in out


def test_my_derivation_example_passes_under_pytest():
    """The pytest example: the right derivations pass, the wrong one is a strict xfail."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(EXAMPLES / "test_my_derivation.py")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b4 passed, 1 xfailed\b", proc.stdout), proc.stdout


def test_explain():
    """The neuron, its loss and a 2-layer MLP explained step by step (SPEC 8)."""
    out = run("explain.py")
    assert out.count("the result equals mc.diff: True; finite-difference check: passed") == 3
    assert "  u2 = max(0, u1)" in out and "∂u2/∂u1 = step(u1)" in out and "∂u1/∂w = x" in out
    assert "  ∂f/∂w = step(w'*x + b)*x    shape (n,)" in out
    assert "  u1 = W1*x + b1" in out and "∂u4/∂u1 = (∂u2/∂u1)'*(∂u4/∂u2)" in out
    assert out.rstrip().endswith(r"\end{aligned}")


def test_dask_logistic_on_a_local_cluster():
    """Newton on the dask backend under a real dask.distributed LocalCluster (2 workers,
    threads: seconds) reaches the optimum numpy's Newton reaches on the same data."""
    pytest.importorskip("dask.distributed")
    import importlib.util

    import dask
    import numpy as np
    from dask.distributed import Client, LocalCluster

    spec = importlib.util.spec_from_file_location("dask_logistic", EXAMPLES / "dask_logistic.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    lines = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster):
        X, y = example.data(6000, 4, 1000)
        assert X.numblocks == (6, 1)
        w, norms = example.newton(X, y, iterations=12, log=lines.append)
        Xv, yv = dask.compute(X, y)
    assert norms[-1] < 1e-8 and norms[0] > 1e2 and len(norms) <= 12
    # the same Newton iterations in memory, with the numpy backend
    f = mc.parse(example.LOSS, **example.SHAPES)
    g, h = mc.lambdify(mc.grad(f, "w")), mc.lambdify(mc.hessian(f, "w"))
    ref = np.zeros(4)
    for _ in range(12):
        ref = ref - np.linalg.solve(h(X=Xv, w=ref, y=yv, c=1.0), g(X=Xv, w=ref, y=yv, c=1.0))
    np.testing.assert_allclose(w, ref, rtol=1e-9, atol=1e-12)
    assert any(line.startswith("iteration 1: |gradient| = ") for line in lines)
    assert "Hessian  d2L/dw2 = c*eye(n) + X'*diag(" in "\n".join(lines)


def test_dask_logistic_script_reports_iterations():
    out = run("dask_logistic.py")
    assert "cluster: 2 workers" in out and "in 5 chunks of 20,000 rows" in out
    assert re.search(r"iteration 1: \|gradient\| = [0-9.e+]+, time [0-9.]+ s", out)
    assert re.search(r"converged: yes after \d+ iterations", out)
