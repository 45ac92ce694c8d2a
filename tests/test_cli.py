"""The command line (SPEC section 5), run as a real subprocess: the installed
``mathcalc`` console script and ``python -m mathcalc``.

Exit statuses: 0 ok, 1 a check failed, 2 bad input (caret error on stderr, no
traceback). Results are compared with the library in-process (equivalence,
not spelling), so the tests do not depend on the printer's exact choices.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import mathcalc as mc

SQUARE = ["--shape", "x=n", "--shape", "A=n,n"]
LAYER = ["--shape", "W=m,n", "--shape", "x=n", "--shape", "b=m"]


@pytest.fixture(scope="module", params=["script", "python -m"])
def cli_any(request, mathcalc_script):
    """Both ways of running the command line."""
    prefix = [mathcalc_script] if request.param == "script" else [sys.executable, "-m", "mathcalc"]
    return lambda *args, stdin=None: _run(prefix, args, stdin)


@pytest.fixture(scope="module")
def cli(mathcalc_script):
    """The console script (most tests: one way is enough, and it is the one users run)."""
    return lambda *args, stdin=None: _run([mathcalc_script], args, stdin)


def _run(prefix, args, stdin):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env.pop("MATHCALC_DEBUG", None)
    proc = subprocess.run([*prefix, *args], input=stdin, capture_output=True, text=True,
                          encoding="utf-8", env=env, timeout=120)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def _shapes_output(stdout: str) -> dict:
    """``name: (dims)`` lines → {name: tuple of dim strings}."""
    out = {}
    for line in stdout.strip().splitlines():
        name, _, dims = line.partition(": ")
        dims = dims.strip().strip("()")
        out[name] = tuple(d.strip() for d in dims.split(",") if d.strip())
    return out


def _diff_output(stdout: str) -> tuple[str, str]:
    """The default output of ``diff``: the derivative, then ``shape: (...)``."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("shape: "), stdout
    return lines[0], lines[1][len("shape: "):]


def _bad_input(proc, *fragments):
    """Exit 2, the error on stderr with a caret, nothing on stdout."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.strip()
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


# ---------------------------------------------------------------- help and version


@pytest.mark.parametrize("command", [[], ["diff"], ["check"], ["shapes"]])
def test_help_has_examples(cli, command):
    proc = cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "mathcalc" in proc.stdout and "x'*A*x" in proc.stdout
    if command:
        assert "Examples:" in proc.stdout


def test_version(cli_any):
    proc = cli_any("--version")
    assert proc.returncode == 0 and mc.__version__ in proc.stdout


def test_no_arguments_shows_usage(cli):
    proc = cli()
    assert "Usage:" in proc.stdout + proc.stderr
    assert proc.returncode in (0, 2)


# ---------------------------------------------------------------- shapes


def test_shapes_infers_every_variable(cli_any):
    proc = cli_any("shapes", "x'*A*x")
    assert proc.returncode == 0, proc.stderr
    shapes = _shapes_output(proc.stdout)
    assert shapes["(expression)"] == ()
    assert len(shapes["x"]) == 1
    assert shapes["A"] == (shapes["x"][0], shapes["x"][0])  # square, tied to x
    assert proc.stdout.strip().splitlines()[-1] == "(expression): ()"


def test_shapes_format(cli):
    proc = cli("shapes", "W*x + v", "--shape", "W=3,4")
    assert proc.returncode == 0, proc.stderr
    lines = set(proc.stdout.strip().splitlines())
    assert {"W: (3, 4)", "x: (4,)", "v: (3,)", "(expression): (3,)"} <= lines


def test_shapes_declared_scalar_both_spellings_and_unused_name_kept(cli):
    for scalar in ("a=", "a=()"):
        proc = cli("shapes", "a*x", "--shape", scalar, "--shape", "x=n", "--shape", "y=m")
        assert proc.returncode == 0, proc.stderr
        lines = set(proc.stdout.strip().splitlines())
        assert {"a: ()", "x: (n,)", "y: (m,)", "(expression): (n,)"} <= lines


def test_bare_expression_is_shapes(cli_any):
    bare = cli_any("x'*A*x", "--shape", "x=3")
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout == cli_any("shapes", "x'*A*x", "--shape", "x=3").stdout
    assert {"x: (3,)", "A: (3, 3)", "(expression): ()"} <= set(bare.stdout.splitlines())


def test_expression_starting_with_minus(cli):
    for args in (["-x'*x"], ["shapes", "-x'*x"], ["diff", "-x'*x", "--wrt", "x"],
                 ["diff", "--wrt", "x", "-x'*x"], ["diff", "--wrt", "x", "--", "-x'*x"]):
        proc = cli(*args)
        assert proc.returncode == 0, (args, proc.stderr)
    text, shape = _diff_output(cli("diff", "-x'*x", "--wrt", "x", "--shape", "x=n").stdout)
    assert shape == "(n,)" and mc.equivalent(mc.parse(text, x=("n",)), mc.parse("-2*x", x=("n",)))


def test_option_value_starting_with_minus(cli):
    proc = cli("check", "-x'*x", "--wrt", "x", "--claimed", "-2*x")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "correct"
    proc = cli("check", "x'*x", "--wrt", "x", "--claimed", "-2*x")
    assert proc.returncode == 1 and proc.stdout.startswith("incorrect"), proc.stdout + proc.stderr


@pytest.mark.parametrize("args, option", [
    (["shapes", "--verbose"], "--verbose"),                 # was read as the expression "verbose"
    (["shapes", "x'*x", "--verbose"], "--verbose"),
    (["--verbose"], "--verbose"),
    (["diff", "--latx", "--wrt", "latx"], "--latx"),        # was the derivative of latx
    (["diff", "x'*x", "--wrt", "x", "--chek"], "--chek"),
    (["check", "x'*x", "--wrt", "x", "--claimed", "2*x", "--shapes", "x=n"], "--shapes"),
])
def test_unknown_option_is_a_usage_error(cli, args, option):
    proc = cli(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "No such option" in proc.stderr and option in proc.stderr, proc.stderr


def test_expression_from_stdin(cli_any):
    proc = cli_any("shapes", "-", "--shape", "x=n", stdin="x'*A*x\n")
    assert proc.returncode == 0, proc.stderr
    assert {"x: (n,)", "A: (n, n)", "(expression): ()"} <= set(proc.stdout.splitlines())


def test_greek_names(cli):
    proc = cli("shapes", "λ*x", "--shape", "x=n")
    assert proc.returncode == 0, proc.stderr
    assert {"λ: ()", "x: (n,)"} <= set(proc.stdout.splitlines())


# ---------------------------------------------------------------- diff


def test_diff_prints_derivative_and_shape(cli_any):
    proc = cli_any("diff", "x'*A*x", "--wrt", "x", *SQUARE)
    assert proc.returncode == 0, proc.stderr
    text, shape = _diff_output(proc.stdout)
    assert shape == "(n,)"
    assert mc.equivalent(mc.parse(text, x=("n",), A=("n", "n")),
                         mc.parse("(A + A')*x", x=("n",), A=("n", "n")))


def test_diff_inferred_shapes(cli):
    proc = cli("diff", "x'*A*x", "--wrt", "A")
    assert proc.returncode == 0, proc.stderr
    text, shape = _diff_output(proc.stdout)
    n = shape.strip("()").split(",")[0].strip()
    assert shape == f"({n}, {n})"
    assert mc.equivalent(mc.parse(text, x=(n,), A=(n, n)), mc.parse("x*x'", x=(n,), A=(n, n)))


def test_diff_relu_layer_wrt_matrix(cli):
    proc = cli("diff", "sum(max(0, W*x + b))", "--wrt", "W", *LAYER)
    assert proc.returncode == 0, proc.stderr
    text, shape = _diff_output(proc.stdout)
    assert shape == "(m, n)"
    shapes = dict(W=("m", "n"), x=("n",), b=("m",))
    assert mc.equivalent(mc.parse(text, **shapes), mc.parse("step(W*x + b)*x'", **shapes))


def test_diff_jacobian_layout(cli):
    proc = cli("diff", "W*x", "--wrt", "x", "--shape", "W=3,4")
    assert proc.returncode == 0, proc.stderr
    text, shape = _diff_output(proc.stdout)
    assert shape == "(3, 4)"
    assert mc.equivalent(mc.parse(text, W=(3, 4), x=(4,)), mc.parse("W", W=(3, 4), x=(4,)))


def test_diff_order_2_is_the_hessian(cli):
    proc = cli("diff", "x'*A*x", "--wrt", "x", "--order", "2", *SQUARE)
    assert proc.returncode == 0, proc.stderr
    text, shape = _diff_output(proc.stdout)
    assert shape == "(n, n)"
    assert mc.equivalent(mc.parse(text, x=("n",), A=("n", "n")),
                         mc.parse("A + A'", x=("n",), A=("n", "n")))


def test_diff_from_stdin(cli):
    proc = cli("diff", "-", "--wrt", "x", "--shape", "x=n", stdin="x'*x")
    assert proc.returncode == 0, proc.stderr
    text, shape = _diff_output(proc.stdout)
    assert shape == "(n,)"
    assert mc.equivalent(mc.parse(text, x=("n",)), mc.parse("2*x", x=("n",)))


def test_diff_latex(cli):
    proc = cli("diff", "x'*A*x", "--wrt", "x", "--latex", *SQUARE)
    assert proc.returncode == 0, proc.stderr
    g = mc.diff("x'*A*x", "x", x=("n",), A=("n", "n"))
    assert proc.stdout.strip() == mc.latex(g).strip()
    assert "shape:" not in proc.stdout


def test_diff_latex_renders_with_katex(cli, render_all):
    outputs = []
    for args in (["x'*A*x", "--wrt", "x"], ["sum(max(0, W*x + b))", "--wrt", "W"],
                 ["logdet(X)", "--wrt", "X"], ["W*x", "--wrt", "x", "--shape", "W=3,4"]):
        proc = cli("diff", *args, "--latex")
        assert proc.returncode == 0, (args, proc.stderr)
        outputs.append(proc.stdout.strip())
    assert render_all(outputs) == []


def test_diff_numpy_is_a_standalone_function(cli):
    proc = cli("diff", "x'*A*x", "--wrt", "x", "--numpy", *SQUARE)
    assert proc.returncode == 0, proc.stderr
    assert "def df_dx(" in proc.stdout
    namespace: dict = {}
    exec(compile(proc.stdout, "<mathcalc --numpy>", "exec"), namespace)  # noqa: S102 - our own output
    rng = np.random.default_rng(1)
    A, x = rng.standard_normal((3, 3)), rng.standard_normal(3)
    np.testing.assert_allclose(namespace["df_dx"](A=A, x=x), (A + A.T) @ x, rtol=1e-10)


def test_diff_numpy_name_and_order(cli):
    proc = cli("diff", "x'*A*x", "--wrt", "x", "--numpy", "--name", "hess_q", "--order", "2", *SQUARE)
    assert proc.returncode == 0, proc.stderr
    namespace: dict = {}
    exec(compile(proc.stdout, "<mathcalc --numpy>", "exec"), namespace)  # noqa: S102
    A, x = np.arange(9.0).reshape(3, 3), np.ones(3)
    np.testing.assert_allclose(namespace["hess_q"](A=A, x=x), A + A.T, rtol=1e-10)


def test_diff_latex_and_numpy_together(cli):
    proc = cli("diff", "x'*x", "--wrt", "x", "--latex", "--numpy")
    assert proc.returncode == 0, proc.stderr
    assert "def df_dx(" in proc.stdout
    assert proc.stdout.startswith(mc.latex(mc.diff("x'*x", "x")).strip())


def test_diff_check_passes(cli_any):
    proc = cli_any("diff", "sum(max(0, W*x + b))", "--wrt", "W", "--check", *LAYER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check: ok" in proc.stdout
    assert "shape: (m, n)" in proc.stdout


def test_diff_check_with_order_2(cli):
    proc = cli("diff", "norm2(A*x - y)^2", "--wrt", "x", "--order", "2", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check: ok" in proc.stdout


def test_diff_check_failure_exits_1_through_the_console_script(cli):
    """A real failing check: step(sin(1e8 x)) jumps every 3e-8, so its finite
    differences straddle jumps and are huge, while the derivative (0 away from
    the jumps, and at them by the kink convention) is zeros."""
    proc = cli("diff", "sum(step(sin(100000000*x)))", "--wrt", "x", "--check", "--shape", "x=n")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert mc.equivalent(mc.parse(lines[0], x=("n",)), mc.parse("zeros(n)", x=("n",)))
    assert lines[1] == "shape: (n,)"
    assert lines[2].startswith("check: FAILED")
    assert proc.stderr == ""


def test_diff_check_failure_exits_1(tmp_path):
    """A planted failing check (mc.check replaced) runs through the real exit path."""
    code = (
        "import sys, mathcalc as mc, mathcalc.cli as cli\n"
        "class R:\n ok = False\n max_rel_error = 0.5\n message = 'planted failure at entry [0]'\n"
        "mc.check = lambda *a, **k: R()\n"
        "cli.main(['diff', \"x'*x\", '--wrt', 'x', '--check'], prog_name='mathcalc')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "check: FAILED" in proc.stdout and "planted failure" in proc.stdout
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- check


def test_check_correct(cli_any):
    proc = cli_any("check", "x'*A*x", "--wrt", "x", "--claimed", "(A + A')*x")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "correct"


def test_check_correct_with_shapes_and_matrix_wrt(cli):
    proc = cli("check", "sum(max(0, W*x + b))", "--wrt", "W", "--claimed", "step(W*x + b)*x'", *LAYER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "correct"


def test_check_incorrect_shows_both_sides_and_difference(cli_any):
    proc = cli_any("check", "x'*A*x", "--wrt", "x", "--claimed", "2*A*x", *SQUARE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith("incorrect")
    sides = dict(line.strip().split(":", 1) for line in out.splitlines()[1:4])
    shapes = dict(x=("n",), A=("n", "n"))
    assert mc.equivalent(mc.parse(sides["derivative"], **shapes), mc.parse("(A + A')*x", **shapes))
    assert sides["claimed"].strip() == "2*A*x"
    assert sides["shapes"].strip() == "(n,) and (n,)"
    assert "largest difference" in out


def test_check_wrong_layout_says_shapes_differ(cli):
    proc = cli("check", "W*x", "--wrt", "x", "--claimed", "W'", "--shape", "W=3,4")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "shapes differ" in proc.stdout and "(3, 4)" in proc.stdout


def test_check_claimed_from_stdin(cli):
    proc = cli("check", "x'*A*x", "--wrt", "x", "--claimed", "-", stdin="A*x + A'*x\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "correct"


def test_check_bad_claimed_is_bad_input(cli):
    _bad_input(cli("check", "x'*A*x", "--wrt", "x", "--claimed", "(A + A')*"), "^")


@pytest.mark.parametrize("claimed, stdin", [("(A + A')*", None), ("-", "(A + A')*\n")])
def test_check_bad_claimed_says_it_came_from_claimed(cli, claimed, stdin):
    proc = cli("check", "x'*A*x", "--wrt", "x", "--claimed", claimed, stdin=stdin)
    _bad_input(proc, "--claimed", "^")
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: in --claimed: ")
    caret = lines[2]
    assert lines[1][caret.index("^") - 1] == "*"  # the caret just after the dangling '*'
    # an error in EXPR does not blame --claimed
    proc = cli("check", "x'*A*", "--wrt", "x", "--claimed", "(A + A')*x")
    _bad_input(proc, "^")
    assert "--claimed" not in proc.stderr


def _point_arrays(stdout: str) -> dict:
    """The ``name = [...]`` blocks under "at the point": {name: (array, its lines)}."""
    lines = stdout.splitlines()
    blocks: dict = {}
    for line in lines[lines.index("  at the point") + 1:]:
        m = re.match(r"    (\w+) = ", line)
        if m:
            name = m.group(1)
            blocks[name] = [line]
        else:
            blocks[name].append(line)
    number = r"-?\d+(?:\.\d*)?(?:e[-+]?\d+)?"
    out = {}
    for name, block in blocks.items():
        rows = [[float(v) for v in re.findall(number, line.split(" = ", 1)[-1])] for line in block]
        matrix = "[[" in block[0]
        out[name] = (np.array(rows) if matrix else np.array(sum(rows, [])), block)
    return out


def test_check_incorrect_aligns_matrix_rows(cli):
    proc = cli("check", "x'*A*x", "--wrt", "x", "--claimed", "2*A*x", "--shape", "x=4")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    arrays = _point_arrays(proc.stdout)
    A, block = arrays["A"]
    x, _ = arrays["x"]
    assert A.shape == (4, 4) and x.shape == (4,) and len(block) == 4
    column = block[0].index("[[") + 1
    for row in block[1:]:
        assert row.index("[") == column, "\n".join(block)  # each row under the first row's '['
    # The printed point is the one compared: |(A + A')x - 2Ax| = |(A' - A)x| there.
    line = next(l for l in proc.stdout.splitlines() if "largest difference" in l)
    largest = float(line.split("largest difference ")[1].split()[0])
    assert np.max(np.abs((A.T - A) @ x)) == pytest.approx(largest, rel=1e-2, abs=1e-3)


# ---------------------------------------------------------------- bad input: exit 2, caret, no traceback


@pytest.mark.parametrize("args", [
    ["shapes", "2x"],
    ["diff", "2x", "--wrt", "x"],
    ["2x"],
    ["check", "2x", "--wrt", "x", "--claimed", "2"],
])
def test_parse_error_has_caret(cli, args):
    proc = cli(*args)
    _bad_input(proc, "^", "2*x")
    lines = proc.stderr.splitlines()
    caret_line = next(line for line in lines if line.strip() == "^")
    source_line = lines[lines.index(caret_line) - 1]
    assert source_line[caret_line.index("^")] == "x"  # the caret is under the offending character


@pytest.mark.parametrize("args, fragment", [
    (["shapes", "x +* y"], "^"),
    (["shapes", "lgo(x)"], "log"),                                       # did you mean 'log'?
    (["shapes", "x'*y", "--shape", "x=n", "--shape", "y=m"], "x"),       # ShapeError
    (["shapes", "x", "--shape", "x=n", "--shape", "x=m"], "x"),          # two shapes for x
    (["diff", "x'*x", "--wrt", "z"], "z"),                              # DiffError
    (["diff", "x'*x'*x", "--wrt", "x"], ""),
    (["shapes", "__import__('os').system('echo pwned')"], ""),
    (["shapes", ""], ""),
    (["shapes", "(" * 5000 + "x"], ""),
])
def test_bad_input_exits_2(cli, args, fragment):
    _bad_input(cli(*args), fragment)  # stdout is empty: nothing was evaluated


def test_parse_error_python_dash_m():
    proc = _run([sys.executable, "-m", "mathcalc"], ["diff", "x + ", "--wrt", "x"], None)
    _bad_input(proc, "^")


def test_deep_nesting_never_a_traceback(cli):
    proc = cli("shapes", "(" * 5000 + "x" + ")" * 5000, "--shape", "x=n")
    assert proc.returncode in (0, 2), proc.stderr
    if proc.returncode == 0:
        assert proc.stdout.splitlines()[-1] == "(expression): (n,)"


def test_empty_stdin_is_bad_input(cli):
    _bad_input(cli("shapes", "-", stdin=""))


@pytest.mark.parametrize("args, fragment", [
    (["shapes", "x", "--shape", "x"], "NAME=DIMS"),
    (["shapes", "A", "--shape", "A=1,2,3"], "at most 2"),
    (["shapes", "x", "--shape", "x=n+1"], "n+1"),
    (["diff", "x'*x"], "--wrt"),
    (["diff", "x'*x", "--wrt", "x", "--order", "0"], "--order"),
    (["check", "x'*x", "--wrt", "x"], "--claimed"),
    (["check", "-", "--wrt", "x", "--claimed", "-"], "stdin"),
])
def test_usage_errors_exit_2(cli, args, fragment):
    proc = cli(*args, stdin="x'*x")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert fragment in proc.stderr


# ---------------------------------------------------------------- closed stdout, internal errors


def test_closed_stdout_is_quiet_exit_141(mathcalc_script):
    """The reader of stdout is gone before anything is written (its end of the pipe is
    closed before the script starts): exit 128 + SIGPIPE, nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([mathcalc_script, "diff", "x'*x", "--wrt", "x", "--check", "--latex",
                               "--numpy"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""


def test_pipe_into_head(mathcalc_script, tmp_path):
    """`mathcalc ... | head -1`: the first line, and no error whenever head has gone."""
    script = (f"'{mathcalc_script}' diff \"x'*x\" --wrt x --check --latex --numpy 2>'{tmp_path}/err'"
              " | head -1; echo \"status ${PIPESTATUS[0]}\"")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    first, status = proc.stdout.splitlines()
    assert first == mc.latex(mc.diff("x'*x", "x"))
    assert status in ("status 0", "status 141")  # 0 when it all fitted before head left
    assert (tmp_path / "err").read_text() == ""


PLANTED_BUG = """
import mathcalc
def _bug(*args, **kwargs):
    raise RuntimeError("planted bug in parse")
mathcalc.parse = _bug
"""


def test_internal_error_exits_3(mathcalc_script, tmp_path):
    """A bug (mc.parse made to raise, through a sitecustomize module on PYTHONPATH, in
    the real console script): exit 3, a one-line report; MATHCALC_DEBUG=1 shows the traceback."""
    (tmp_path / "sitecustomize.py").write_text(PLANTED_BUG)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("MATHCALC_DEBUG", None)
    args = [mathcalc_script, "diff", "x'*x", "--wrt", "x"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "internal error" in proc.stderr and "RuntimeError: planted bug in parse" in proc.stderr
    assert "MATHCALC_DEBUG=1" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env=dict(env, MATHCALC_DEBUG="1"))
    assert proc.returncode == 3
    assert "Traceback (most recent call last)" in proc.stderr
    assert "RuntimeError: planted bug in parse" in proc.stderr
