"""Printed length of the deep chain's gradient, plain and as a where-form (SPEC 7).

f = sum(tanh(W_k*…tanh(W_1*x))), W_j (n, n), x (n,); g = mc.diff(f, "W_1").
For k = 8, 16, 32, 64 this prints len(str(g)), len(str(mc.where(g))), the
number of temporaries, the nodes of g's DAG, and the seconds mc.where takes;
then the log-log slope of each length over k (least squares over the four k,
and between k = 8 and 64). The target: the where-form's slope <= 1.15 (linear
growth; the plain text grows as k²).

Run from the repository root:  .venv/bin/python benchmarks/bench_where.py
Nothing is asserted here; tests/test_where.py asserts the slope over k = 8…32.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mathcalc as mc  # noqa: E402
from mathcalc import nodes as E  # noqa: E402

KS = (8, 16, 32, 64)
TARGET = 1.15


def deep_chain(k: int) -> mc.Expr:
    text = "x"
    for j in range(1, k + 1):
        text = f"tanh(W_{j}*{text})"
    shapes = {f"W_{j}": ("n", "n") for j in range(1, k + 1)}
    return mc.parse(f"sum({text})", x=("n",), **shapes)


def slope(ks, values) -> float:
    """Least-squares slope of log(value) over log(k)."""
    xs = [math.log(k) for k in ks]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> int:
    rows = []
    for k in KS:
        g = mc.diff(deep_chain(k), "W_1")
        start = time.process_time()
        w = mc.where(g)
        text = str(w)
        seconds = time.process_time() - start
        rows.append((k, len(str(g)), len(text), len(w.definitions), len(E.walk(g.node)), seconds))
    print("Deep chain sum(tanh(W_k*…tanh(W_1*x))), gradient by W_1: printed length")
    print()
    print("| k | str(g) | str(mc.where(g)) | temporaries | DAG nodes | mc.where (s) |")
    print("|---|---|---|---|---|---|")
    for k, plain, named, temps, nodes, seconds in rows:
        print(f"| {k} | {plain:,} | {named:,} | {temps} | {nodes} | {seconds:.2f} |")
    print()
    ks = [r[0] for r in rows]
    for label, column in (("str(g)", 1), ("str(mc.where(g))", 2), ("DAG nodes", 4)):
        values = [r[column] for r in rows]
        ends = math.log(values[-1] / values[0]) / math.log(ks[-1] / ks[0])
        print(f"log-log slope of {label} over k = {ks[0]}…{ks[-1]}: {slope(ks, values):.3f} "
              f"(least squares), {ends:.3f} (k = {ks[0]} to {ks[-1]})")
    named_slope = slope(ks, [r[2] for r in rows])
    verdict = "met" if named_slope <= TARGET else "NOT met"
    print(f"target: the where-form's slope <= {TARGET}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
