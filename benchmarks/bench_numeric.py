"""Numeric speed on numpy (issue 4 §6, issue 9 §5): mc.lambdify's numpy functions vs expert numpy.

The references are the hand-written functions of ``_cases.py`` (syrk for Gram
products, the syrk of ``X .* sqrt(d)`` for ``X'*diag(d)*X``, masked row fills,
block fills). mathcalc's result is first checked against the reference
(rtol 1e-6); a wrong result is reported in its cell and never timed. The two
are timed in alternation (same load for both). Run alone with
``python benchmarks/bench_numeric.py`` (BLAS is pinned to one thread only
when run through ``run_all.py``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cases import CASES, check, derivative, label, mc_function, wrong  # noqa: E402
from _common import (Timeout, find_lambdify, fmt_ratio, fmt_time, md_table,  # noqa: E402
                     short_error, time_call, time_interleaved, time_limit)

SIZES = (10, 100, 1000)
GRAD_TARGET = 1.1
HESS_TARGET = 1.2
OVERHEAD_TARGET_US = 5.0


def run(log=print, sizes=SIZES, deadline_s=300.0):
    start = time.process_time()  # a CPU budget: on a loaded machine wall time says little
    lambdify, lambdify_name = find_lambdify()
    rows, records, how = [], [], set()
    rng = np.random.default_rng(0)
    for case in CASES:
        mc_fn = mc_err = None
        if lambdify is None:
            mc_err = "n/a (no lambdify)"
        else:
            try:
                with time_limit(60):
                    mc_fn = mc_function(case, "numpy")
                    how.add(derivative(case)[1])
            except (Exception, Timeout) as exc:  # noqa: BLE001
                mc_err = short_error(exc)
        for n in sizes:
            dims = case.dims(n)
            vals = case.data(rng, dims)
            rec = dict(case=case.name, n=n, order=case.order, label=label(case, dims))
            ref = case.hand(**vals)
            hand_call = lambda: case.hand(**vals)  # noqa: E731
            ok = False
            if mc_fn is not None:
                try:
                    with time_limit(120):
                        check(mc_fn(**vals), ref, "mathcalc")
                        ok = True
                except AssertionError as exc:
                    rec["mc_err"] = wrong(exc)
                except (Exception, Timeout) as exc:  # noqa: BLE001
                    rec["mc_err"] = short_error(exc)
            else:
                rec["mc_err"] = mc_err
            if ok and time.process_time() - start > deadline_s:
                rec["mc_err"], ok = "skipped (time budget)", False
            if ok:
                try:
                    with time_limit(180):
                        rec["hand"], rec["mc"] = time_interleaved(
                            [hand_call, lambda: mc_fn(**vals)], budget=3.0)
                except (Exception, Timeout) as exc:  # noqa: BLE001
                    rec["mc_err"] = short_error(exc)
            if rec.get("hand") is None:
                rec["hand"] = time_call(hand_call)
            rec["verdict"] = verdict(case, n, rec, sizes)
            records.append(rec)
            rows.append(_row(rec))
            log("  numpy | " + " | ".join(str(c) for c in rows[-1]))
    headers = ["case", "hand numpy", "mathcalc numpy", "mc/hand", "target"]
    notes = [f"mathcalc: {lambdify_name}" if lambdify else "mathcalc: n/a (no lambdify)",
             "expressions built with " + (", ".join(sorted(how)) or "n/a")]
    return md_table(headers, rows), records, notes


def _ratio(rec):
    if rec.get("mc") and rec.get("hand"):
        return rec["mc"] / rec["hand"]
    return None


def verdict(case, n: int, rec: dict, sizes) -> str:
    if n == min(sizes) and n == 10:
        if rec.get("mc") is None:
            return f"overhead ≤ {OVERHEAD_TARGET_US:g} µs: n/a"
        over = (rec["mc"] - rec["hand"]) * 1e6
        rec["overhead_us"] = over
        ok = over <= OVERHEAD_TARGET_US
        return f"overhead {over:+.1f} µs ≤ {OVERHEAD_TARGET_US:g}: {'met' if ok else 'NOT MET'}"
    if n == max(sizes):
        target = GRAD_TARGET if case.order == 1 else HESS_TARGET
        r = _ratio(rec)
        if r is None:
            return f"≤ {target}×: NOT MET (no mathcalc figure: see its cell)"
        return f"{fmt_ratio(r)} ≤ {target}×: {'met' if r <= target else 'NOT MET'}"
    return ""


def _row(rec):
    r = _ratio(rec)
    return [rec["label"], fmt_time(rec["hand"]), rec.get("mc_err") or fmt_time(rec.get("mc")),
            fmt_ratio(r) if r is not None else "", rec["verdict"]]


def report(log=print, **kw):
    """(markdown section, list of target lines not met)."""
    table, records, notes = run(log=log, **kw)
    lines = ["### numpy backend vs hand-written numpy", "",
             "Median time per call (CPU time, one BLAS thread); ratio mathcalc / hand, measured "
             "in alternation in this run. The hand code is what an expert writes "
             "(benchmarks/_cases.py): `X.T @ X` of one buffer (syrk); the logistic Hessian "
             "`X'*diag(d)*X`, d = y.^2 .* s .* (1 - s) >= 0, as `Xs = X * np.sqrt(d)[:, None]; "
             "Xs.T @ Xs` (syrk); `step(W*x + b)*x'` as a masked row fill (`G = np.zeros((m, n)); "
             "G[mask] = x`); the matrix-factorisation Hessian I ⊗ 2V'V as a block fill of a zero "
             "array. mathcalc's result is checked against it (rtol 1e-6) before timing. "
             f"Targets: gradients ≤ {GRAD_TARGET}× hand and Hessians ≤ {HESS_TARGET}× at "
             f"n = 1000 (the largest size run); per-call overhead ≤ {OVERHEAD_TARGET_US:g} µs at "
             "n = 10.", "",
             "Sizes: least squares and logistic regression use m = 2n samples; the ReLU layer "
             "is n×n; the MLP has h = o = n; matrix factorisation has m = p = n and rank "
             "k = max(2, n/10), except its Hessian at n = 1000, where k = 2 (the (m,k,m,k) "
             "Hessian has (mk)² entries: 4·10⁶ at k = 2, 10¹⁰ at k = 100). "
             + "; ".join(notes) + ".", "",
             table, ""]
    missed = [f"numpy {r['label']}: {r['verdict']}" for r in records
              if "NOT MET" in r.get("verdict", "")]
    return "\n".join(lines), missed


if __name__ == "__main__":
    print(report()[0])
