"""Shared helpers for the benchmarks: timing, time limits, building expressions, tables.

Nothing here asserts a time. Timings are medians of repeats of a calibrated
loop (as ``timeit`` does, with the garbage collector off); ratios are taken
between timings measured in the same process, one after the other.

The clock is ``time.process_time`` (CPU time of this process, all its
threads): the machine is shared with other engineers' test runs, and wall
time counts the slices the scheduler gives to them. Every library is pinned
to one thread, so CPU time is the work done.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import re
import signal
import statistics
import time
import traceback

CLOCK = time.process_time

# ---------------------------------------------------------------------------
# Timing


def time_call(fn, target=0.08, repeat=5, max_single=1.0):
    """Median seconds per call of ``fn()``.

    The loop count is calibrated so that one repeat lasts about ``target``
    seconds; a call slower than ``max_single`` seconds is timed with fewer
    repeats (3, or 1 above 5 s) so slow competitors stay inside the budget.
    The first call (warm-up, compilation for jit) is not timed.
    """
    t0 = CLOCK()
    fn()
    first = CLOCK() - t0
    if first > 5 * max_single:
        return first
    number = 1
    if first > 0:
        number = max(1, int(target / max(first, 1e-7)))
    # Re-calibrate on a short loop: the first call is often slower (caches).
    t0 = CLOCK()
    for _ in range(min(number, 10)):
        fn()
    per = (CLOCK() - t0) / min(number, 10)
    number = max(1, int(target / max(per, 1e-7)))
    if per > max_single:
        repeat = min(repeat, 3)
    times = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = CLOCK()
            for _ in range(number):
                fn()
            times.append((CLOCK() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(times)


def _calibrate(fn, target, clock):
    """(loop count for about ``target`` seconds, seconds per call) of ``fn``."""
    t0 = clock()
    fn()
    first = clock() - t0
    if first > 10 * target:  # a slow call: one sample is calibration enough
        return 1, first
    k = max(1, min(10, int(target / max(first, 1e-7))))
    t0 = clock()
    for _ in range(k):
        fn()
    per = (clock() - t0) / k
    return max(1, int(target / max(per, 1e-7))), per


def time_interleaved(fns, target=0.04, repeat=9, budget=None, clock=None):
    """Median seconds per call of each of ``fns``, their timing loops interleaved.

    On a shared machine the load changes from second to second; timing the
    functions in alternation makes each one see the same load, so their
    ratios stay meaningful even when absolute times drift. With ``budget``
    (seconds), fewer repeats (at least 3) are run where ``repeat`` rounds
    would take longer. ``clock`` replaces the CPU-time clock (a GPU run
    needs wall time: the device's work is not this process's CPU time).
    """
    clock = clock or CLOCK
    cal = [_calibrate(fn, target, clock) for fn in fns]
    numbers = [c[0] for c in cal]
    if budget is not None:
        per_round = sum(n * per for n, per in cal)
        repeat = max(3, min(repeat, int(budget / max(per_round, 1e-9))))
    times = [[] for _ in fns]
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for fn, number, out in zip(fns, numbers, times):
                t0 = clock()
                for _ in range(number):
                    fn()
                out.append((clock() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return [statistics.median(t) for t in times]


def load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def time_cold(fn, setup=None, repeat=15, budget=3.0):
    """Median seconds of single calls, each after ``setup()`` (e.g. clearing a cache)."""
    times = []
    start = CLOCK()
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
        if CLOCK() - start > budget and len(times) >= 3:
            break
    return statistics.median(times)


class Timeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    """Raise Timeout in pure-Python code running longer than ``seconds`` (main thread only)."""

    def handler(signum, frame):
        raise Timeout(f"timed out after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def short_error(exc: BaseException) -> str:
    """A one-line ``error: …`` for a table cell."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    text = text.replace("|", "/")
    if len(text) > 110:
        text = text[:107] + "..."
    return "error: " + text


def debug_trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# ---------------------------------------------------------------------------
# What of mathcalc is there


def optional_import(name):
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - anything that stops the import means "not there"
        return None


def find_lambdify():
    """``mc.lambdify`` or ``mathcalc.numeric.lambdify``; None while neither exists."""
    import mathcalc as mc

    fn = getattr(mc, "lambdify", None)
    if fn is not None:
        return fn, "mc.lambdify"
    numeric = optional_import("mathcalc.numeric")
    if numeric is not None and hasattr(numeric, "lambdify"):
        return numeric.lambdify, "mathcalc.numeric.lambdify"
    return None, None


def parser_available() -> bool:
    return optional_import("mathcalc.parse") is not None


def printer_available() -> bool:
    return optional_import("mathcalc.printing.matrix") is not None


# ---------------------------------------------------------------------------
# Building expressions
#
# Cases are written once, as text in the input language. ``build`` uses
# mc.parse when the parser is there; before it lands (or if it fails on a
# case) the same text is read here by Python's ``ast`` after a token-level
# translation (' -> .T, * -> @, .* -> *, ^ -> **), and built from the node
# constructors of mathcalc.expr. Only the fixed benchmark strings go through
# this; nothing is evaluated.

_FUNCS1 = {"exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "sign", "step",
           "sigmoid", "relu", "softplus"}


def _to_python(text: str) -> str:
    t = text.replace(".*", "\0").replace("⊙", "\0").replace("./", "/")
    t = t.replace(".^", "**").replace("^", "**").replace("*", "@").replace("@@", "**")
    t = t.replace("\0", "*").replace("·", "@")
    t = re.sub(r"'", ".T", t)
    return t


class _T:
    """A node with its orientation (row vectors), for the fallback builder."""

    def __init__(self, node, row=False):
        self.node = node
        self.row = row and node.rank == 1


def _fallback_build(text: str, shapes: dict):
    from mathcalc import expr as E

    tree = ast.parse(_to_python(text), mode="eval")

    def scalar_broadcast(a, b):
        return a, b

    def matmul(a: _T, b: _T) -> _T:
        x, y = a.node, b.node
        if x.rank == 0 or y.rank == 0:
            return _T(E.hadamard(x, y), row=a.row or b.row)
        if x.rank == 2 and y.rank == 2:
            return _T(E.einsum("ij,jk->ik", x, y))
        if x.rank == 2 and y.rank == 1:
            return _T(E.einsum("ij,j->i", x, y))
        if x.rank == 1 and y.rank == 2:
            return _T(E.einsum("i,ij->j", x, y), row=True)
        if a.row or not b.row:  # x'*y, or two columns: the inner product
            return _T(E.einsum("i,i->", x, y))
        return _T(E.einsum("i,j->ij", x, y))

    def elementwise(a: _T, b: _T, op) -> _T:
        x, y = a.node, b.node
        row = a.row or b.row
        if op == "add":
            if x.rank == 0 and y.rank:
                x = E.hadamard(x, E.ones(y.shape))
            if y.rank == 0 and x.rank:
                y = E.hadamard(y, E.ones(x.shape))
            return _T(E.add(x, y), row)
        if op == "sub":
            return elementwise(a, _T(E.neg(y), b.row), "add")
        if op == "mul":
            return _T(E.hadamard(x, y), row)
        if op == "div":
            if y.rank == 0:
                return _T(E.divide(x, y), row)
            return _T(E.hadamard(x, E.power(y, E.num(-1))), row)
        if op == "pow":
            return _T(E.power(x, y), row)
        raise ValueError(op)

    def call(name, args):
        if name in _FUNCS1:
            return _T(E.apply(name, args[0].node), args[0].row)
        one = {"sum": E.sum_all, "tr": E.trace, "det": E.det, "logdet": E.logdet, "inv": E.inv,
               "norm1": E.norm1, "norm2": E.norm2, "softmax": E.softmax,
               "logsumexp": E.logsumexp}
        if name in one:
            return _T(one[name](args[0].node))
        if name == "diag":
            n = args[0].node
            return _T(E.diag_matrix(n) if n.rank == 1 else E.diag_vector(n))
        if name in ("max", "min"):
            x, y = args[0].node, args[1].node
            if x.rank == 0 and y.rank:
                x = E.hadamard(x, E.ones(y.shape))
            if y.rank == 0 and x.rank:
                y = E.hadamard(y, E.ones(x.shape))
            return _T((E.maximum if name == "max" else E.minimum)(x, y))
        raise ValueError(f"fallback builder: unknown function {name}")

    ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}

    def ev(n) -> _T:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant):
            return _T(E.num(n.value))
        if isinstance(n, ast.Name):
            return _T(E.var(n.id, tuple(shapes.get(n.id, ()))))
        if isinstance(n, ast.Attribute) and n.attr == "T":
            inner = ev(n.value)
            if inner.node.rank == 2:
                return _T(E.transpose(inner.node))
            return _T(inner.node, row=not inner.row)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            inner = ev(n.operand)
            return _T(E.neg(inner.node), inner.row)
        if isinstance(n, ast.BinOp):
            a, b = ev(n.left), ev(n.right)
            if isinstance(n.op, ast.MatMult):
                return matmul(a, b)
            return elementwise(a, b, ops[type(n.op)])
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            return call(n.func.id, [ev(a) for a in n.args])
        raise ValueError(f"fallback builder: cannot read {ast.dump(n)[:60]}")

    from mathcalc.expression import Expr

    return Expr(ev(tree).node, {k: tuple(v) for k, v in shapes.items()})


def build(text: str, shapes: dict):
    """(Expr, how) for ``text``: through mc.parse when it works, else the fallback."""
    if parser_available():
        try:
            return parse_fn()(text, **shapes), "parse"
        except Exception as exc:  # noqa: BLE001 - reported, then the fallback is tried
            parse_error = short_error(exc)
        expr = _fallback_build(text, shapes)
        return expr, "fallback (mc.parse " + parse_error + ")"
    return _fallback_build(text, shapes), "fallback"


# ---------------------------------------------------------------------------
# Tables


def md_table(headers, rows) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in cells[1:]:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines)


def fmt_time(seconds) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(r) -> str:
    if r is None:
        return "n/a"
    if r >= 100:
        return f"{r:.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


def diff_fn():
    """``mc.diff``; falls back to ``mathcalc.api.diff`` when importing the submodule
    ``mathcalc.diff`` has shadowed the function on the package (a known pitfall:
    ``import mathcalc.diff`` rebinds the attribute ``mathcalc.diff`` to the module)."""
    import mathcalc as mc

    fn = getattr(mc, "diff", None)
    if callable(fn):
        return fn
    from mathcalc import api

    return api.diff


def parse_fn():
    """``mc.parse``, or ``mathcalc.api.parse`` when a submodule import has shadowed it
    (``importlib.import_module("mathcalc.parse")`` rebinds ``mathcalc.parse`` to the module)."""
    import mathcalc as mc

    fn = getattr(mc, "parse", None)
    if callable(fn):
        return fn
    from mathcalc import api

    return api.parse
