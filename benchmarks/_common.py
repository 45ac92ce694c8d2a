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

import contextlib
import gc
import importlib
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
    """(``mc.lambdify``, its name)."""
    import mathcalc as mc

    return mc.lambdify, "mc.lambdify"


def printer_available() -> bool:
    return optional_import("mathcalc.printing.matrix") is not None


# ---------------------------------------------------------------------------
# Building expressions: cases are written once, as text in the input language,
# and read by mc.parse (the one parser; nothing is evaluated).


def build(text: str, shapes: dict):
    """(Expr, how) for ``text``: ``how`` is "parse" (the tables print another way only
    for a case built some other way)."""
    return parse_fn()(text, **shapes), "parse"


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
