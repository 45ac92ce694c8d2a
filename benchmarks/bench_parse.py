"""Parsing speed: 10,000-token expressions, deep nesting, and the size limits.

Run from the repository root:  .venv/bin/python benchmarks/bench_parse.py
Prints one line per case: median seconds per parse (wall clock) and the CPU
time of one parse. Nothing is asserted; the limits are tested in
tests/test_parse.py and tests/test_parse_errors.py.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mathcalc  # noqa: E402

P = importlib.import_module("mathcalc.parse")  # the module (mathcalc.parse is also a function)


def cases():
    yield "sum chain x+x+...+x", "+".join(["x"] * 5000), {}
    yield "sum of distinct names", "+".join(f"x{i}" for i in range(5000)), {}
    yield "matrix product chain", "*".join(["A"] * 5000), {}
    yield "quadratic forms", " + ".join(["x'*A*x"] * 1429), {}
    yield "layers", " + ".join(f"sum(max(0, W{i % 9}*x + b))" for i in range(770)), \
        {"x": ("n",), "b": ("m",)}
    yield "10,000 nested parentheses", "(" * 10_000 + "x" + ")" * 10_000, {}
    yield "1 MB (rejected by length)", "x+" * 500_000 + "x", {}


def tokens(text: str) -> int:
    try:
        return sum(1 for _ in P.parser().lex(text))
    except Exception:  # the 1 MB case is never lexed by parse_text
        return -1


def run(text, shapes, repeat=5):
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            P.parse_text(text, shapes)
            outcome = "parsed"
        except mathcalc.MathcalcError as exc:
            outcome = type(exc).__name__
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), outcome


def main():
    P.parser()  # build the grammar once, outside the timings
    print(f"{'case':32s} {'tokens':>8s} {'chars':>9s} {'wall s':>8s} {'cpu s':>8s}  outcome")
    for label, text, shapes in cases():
        n = tokens(text) if len(text) <= P.MAX_LENGTH else -1
        wall, cpu, outcome = run(text, shapes)
        shown = f"{n:8d}" if n >= 0 else f"{'-':>8s}"
        print(f"{label:32s} {shown} {len(text):9d} {wall:8.3f} {cpu:8.3f}  {outcome}")


if __name__ == "__main__":
    main()
