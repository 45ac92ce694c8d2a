"""Every code block in README.md is executed, so the README cannot drift.

Conventions (the README follows them; a block in any other form fails here):

- ```python blocks are doctest-style sessions. They run in README order in
  one shared namespace. A line starting with ``>>> `` starts a statement
  (continued by ``... `` lines); the lines after it, up to the next ``>>> ``
  or the end of the block, are exactly what it prints: ``print`` output and,
  as in the interactive interpreter, the ``repr`` of an expression statement.
  Trailing spaces and trailing blank lines are ignored; blank lines inside the
  output count. An expected exception is written as the interpreter shows it:
  ``Traceback (most recent call last):``, then a line ``...``, then what
  ``traceback.format_exception_only`` prints (``module.Class: message``).
- A ```python block whose first line is ``# test_NAME.py`` is a test file: it
  is written to a temporary folder and run with pytest, which must pass.
- ```console blocks are shell sessions: a line starting with ``$ `` is a
  command, which must call ``mathcalc``; it runs in bash in the repository
  root with the venv's scripts first on PATH, and the lines below it, up to
  the next ``$ `` line, are exactly its standard output and standard error
  together. A command that exits non-zero must show it explicitly
  (``...; echo "exit status $?"``); otherwise a non-zero exit fails.
- ```sh blocks contain only ``make`` commands, which are not run (they set up
  the environment this test runs in).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the first line of content
    lines: list


def blocks() -> list[Block]:
    out, current = [], None
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^```(\S*)\s*$", line)
        if current is None and fence:
            current = Block(fence.group(1), number + 1, [])
        elif current is not None and line.rstrip() == "```":
            out.append(current)
            current = None
        elif current is not None:
            current.lines.append(line)
    assert current is None, f"README.md: unclosed code block at line {current.line - 1}"
    return out


def _clean(lines) -> str:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# python sessions


@dataclass
class Example:
    source: str
    expected: str
    line: int


def examples(block: Block) -> list[Example]:
    out = []
    k = 0
    lines = block.lines
    while k < len(lines):
        if not lines[k].startswith(">>>"):
            raise AssertionError(f"README.md line {block.line + k}: expected '>>> ', got {lines[k]!r}")
        start = k
        source = [lines[k][4:]]
        k += 1
        # "... " continues the statement; "..." alone is the elision of an expected traceback
        while k < len(lines) and lines[k].startswith("... "):
            source.append(lines[k][4:])
            k += 1
        expected = []
        while k < len(lines) and not lines[k].startswith(">>>"):
            expected.append(lines[k])
            k += 1
        out.append(Example("\n".join(source) + "\n", _clean(expected), block.line + start))
    return out


def run_example(example: Example, namespace: dict) -> str:
    buffer = io.StringIO()
    code = compile(example.source, f"README.md:{example.line}", "single")
    with contextlib.redirect_stdout(buffer):
        saved, sys.displayhook = sys.displayhook, sys.__displayhook__
        try:
            exec(code, namespace)
        except Exception as exc:  # compared with the README's expected traceback
            shown = "".join(traceback.format_exception_only(type(exc), exc))
            buffer.write("Traceback (most recent call last):\n...\n" + shown)
        finally:
            sys.displayhook = saved
    return _clean(buffer.getvalue().splitlines())


_RESULTS: list | None = None


def session_results() -> list[tuple[Example, str]]:
    """Every python example of the README with what it printed (run once, in order)."""
    global _RESULTS
    if _RESULTS is None:
        namespace: dict = {"__name__": "__readme__"}
        _RESULTS = []
        for block in blocks():
            if block.lang == "python" and not _is_test_file(block):
                for example in examples(block):
                    _RESULTS.append((example, run_example(example, namespace)))
    return _RESULTS


def test_python_sessions_print_what_the_readme_shows():
    results = session_results()
    assert results, "README.md has no python examples"
    failures = [f"README.md line {example.line}:\n>>> {example.source.rstrip()}\n"
                f"--- README shows:\n{example.expected}\n--- it prints:\n{got}\n"
                for example, got in results if got != example.expected]
    assert not failures, "\n".join(failures)


def test_displayed_math_is_printed_by_an_example():
    """A $$ ... $$ display (rendered LaTeX) must be the output of a python example."""
    text = README.read_text(encoding="utf-8")
    displays = [d.strip() for d in re.findall(r"^\$\$\n(.*?)\n\$\$$", text, re.S | re.M)]
    assert displays, "README.md shows no rendered LaTeX display"
    printed = {got.strip() for _, got in session_results()}
    for display in displays:
        assert display in printed, f"README.md: this display is printed by no example:\n{display}"


def test_the_runner_sees_a_wrong_output():
    """The comparison is real: a session with a wrong expected output does not match."""
    block = Block("python", 1, [">>> print(1 + 1)", "3", ">>> for k in range(2):",
                                "...     print(k)", "0", "1", ">>> 1/0",
                                "Traceback (most recent call last):", "...",
                                "ZeroDivisionError: division by zero"])
    found = examples(block)
    assert [e.expected for e in found] == ["3", "0\n1", "Traceback (most recent call last):\n"
                                           "...\nZeroDivisionError: division by zero"]
    results = [run_example(e, {}) for e in found]
    assert results[0] == "2" != found[0].expected
    assert results[1:] == [e.expected for e in found[1:]]


# ---------------------------------------------------------------------------
# test files


def _is_test_file(block: Block) -> bool:
    return bool(block.lines) and re.match(r"^# (test_\w+\.py)\s*$", block.lines[0]) is not None


def test_readme_test_files_pass_under_pytest(tmp_path):
    files = [b for b in blocks() if b.lang == "python" and _is_test_file(b)]
    assert files, "README.md shows no pytest file"
    for block in files:
        name = block.lines[0][2:].strip()
        (tmp_path / name).write_text("\n".join(block.lines) + "\n", encoding="utf-8")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"README.md line {block.line}: {name}\n{proc.stdout}{proc.stderr}"


# ---------------------------------------------------------------------------
# shell sessions


def commands(block: Block) -> list[tuple[str, str, int]]:
    out = []
    for k, line in enumerate(block.lines):
        if line.startswith("$ "):
            out.append([line[2:], [], block.line + k])
        elif not out:
            raise AssertionError(f"README.md line {block.line + k}: a console block starts with '$ '")
        else:
            out[-1][1].append(line)
    return [(cmd, _clean(expected), line) for cmd, expected, line in out]


def test_console_sessions_print_what_the_readme_shows():
    sessions = [b for b in blocks() if b.lang == "console"]
    assert sessions, "README.md has no command-line examples"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("MATHCALC_DEBUG", None)
    failures = []
    for block in sessions:
        for command, expected, line in commands(block):
            assert re.search(r"\bmathcalc\b", command), f"README.md line {line}: not a mathcalc command"
            proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            got = _clean(proc.stdout.splitlines())
            if proc.returncode != 0:
                failures.append(f"README.md line {line}: $ {command}\nexit status {proc.returncode}\n{got}")
            elif got != expected:
                failures.append(f"README.md line {line}: $ {command}\n--- README shows:\n{expected}\n"
                                f"--- it prints:\n{got}\n")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# every block is one of the above


def test_every_block_is_executed():
    for block in blocks():
        if block.lang == "python" or block.lang == "console":
            continue
        assert block.lang == "sh", (f"README.md line {block.line - 1}: a ```{block.lang} block "
                                    "is not executed by this test (use python, console or sh)")
        for line in block.lines:
            assert line.startswith("make ") or not line.strip(), \
                f"README.md line {block.line}: sh blocks hold only make commands, got {line!r}"


def test_make_targets_in_the_readme_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for block in blocks():
        if block.lang != "sh":
            continue
        for line in block.lines:
            if line.strip():
                target = line.split()[1]
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make target {target}"


# ---------------------------------------------------------------------------
# benchmark figures


def _table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|") and not line.startswith("|--")]


def test_benchmark_figures_are_copied_from_results():
    """Each row of the README's benchmark tables matches its row in benchmarks/RESULTS.md.

    When `make bench` regenerates RESULTS.md, copy the new figures (and its
    date) into the README's Benchmarks section.
    """
    results_path = ROOT / "benchmarks" / "RESULTS.md"
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Benchmarks"):text.index("\n## ", text.index("## Benchmarks") + 1)]
    if not results_path.exists():
        assert "|" not in section, "README shows benchmark figures but benchmarks/RESULTS.md is missing"
        return
    results = results_path.read_text(encoding="utf-8")
    date = re.search(r"on (\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC)", results).group(1)
    assert f"the run of {date}" in section, f"README: the benchmark excerpt is not from the run of {date}"
    # A case's name repeats across RESULTS.md's tables (numpy, jax, torch):
    # every figure of a README row must come from one and the same row there.
    by_name: dict = {}
    for row in _table_rows(results):
        by_name.setdefault(row[0], []).append(row)
    rows = [row for row in _table_rows(section) if row[0] not in ("identity", "case")]
    assert rows, "README: no benchmark rows"
    for row in rows:
        name, figures = row[0], row[1:]
        assert name in by_name, f"README benchmark row {name!r} is not in RESULTS.md"
        assert any(all(figure in source for figure in figures) for source in by_name[name]), \
            f"README benchmark row {name!r}: {figures} are not all in one of RESULTS.md's rows " \
            f"{by_name[name]}"
