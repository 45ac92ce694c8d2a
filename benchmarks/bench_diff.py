"""Derivation speed (issue 3 §5): mc.diff on representative identities, SymPy, deep chains.

Run alone with ``python benchmarks/bench_diff.py`` or through ``run_all.py``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (Timeout, build, diff_fn, find_lambdify, fmt_ratio, fmt_time,  # noqa: E402
                     md_table, printer_available, short_error, time_cold, time_limit)

LAMBDIFY_LIMIT_S = 10.0

TARGET_MS = 20.0

V = ("n",)
M = ("n", "n")

# (name, text, shapes, wrt, order)
IDENTITIES = [
    ("quadratic form x'*A*x", "x'*A*x", dict(x=V, A=M), "x", 1),
    ("linear form a'*x", "a'*x", dict(a=V, x=V), "x", 1),
    ("least squares", "norm2(X*w - y)^2", dict(X=("m", "n"), w=V, y=("m",)), "w", 1),
    ("ridge regression", "norm2(X*w - y)^2 + c*norm2(w)^2",
     dict(X=("m", "n"), w=V, y=("m",), c=()), "w", 1),
    ("matrix factorisation", "norm2(X - U*V')^2",
     dict(X=("m", "p"), U=("m", "k"), V=("p", "k")), "U", 1),
    ("logdet", "logdet(X)", dict(X=M), "X", 1),
    ("det", "det(X)", dict(X=M), "X", 1),
    ("tr(A*X*B)", "tr(A*X*B)", dict(A=("p", "m"), X=("m", "n"), B=("n", "p")), "X", 1),
    ("tr(X'*A*X)", "tr(X'*A*X)", dict(X=("m", "n"), A=("m", "m")), "X", 1),
    ("tr(A*inv(X)*B)", "tr(A*inv(X)*B)", dict(A=("p", "n"), X=M, B=("n", "p")), "X", 1),
    ("neuron max(0, w'*x + b)", "max(0, w'*x + b)", dict(w=V, x=V, b=()), "w", 1),
    ("neuron loss (relu(w'*x + b) - t)^2", "(relu(w'*x + b) - t)^2",
     dict(w=V, x=V, b=(), t=()), "w", 1),
    ("ReLU layer sum(relu(W*x + b))", "sum(relu(W*x + b))",
     dict(W=("m", "n"), x=V, b=("m",)), "W", 1),
    ("tanh layer", "sum(tanh(W*x + b))", dict(W=("m", "n"), x=V, b=("m",)), "W", 1),
    ("sigmoid layer, squared loss", "norm2(sigmoid(W*x + b) - t)^2",
     dict(W=("m", "n"), x=V, b=("m",), t=("m",)), "W", 1),
    ("logistic regression", "sum(log(1 + exp(-y .* (X*w))))",
     dict(X=("m", "n"), w=V, y=("m",)), "w", 1),
    ("softmax cross-entropy", "-t'*log(softmax(W*x))", dict(W=("m", "n"), x=V, t=("m",)), "W", 1),
    ("logsumexp", "logsumexp(z)", dict(z=V), "z", 1),
    ("two-layer MLP", "norm2(W2*relu(W1*x + b1) - t)^2",
     dict(W1=("h", "n"), x=V, b1=("h",), W2=("o", "h"), t=("o",)), "W1", 1),
    ("Gaussian log-likelihood (mean)", "-0.5*logdet(S) - 0.5*(x - u)'*inv(S)*(x - u)",
     dict(S=M, x=V, u=V), "u", 1),
    ("Gaussian log-likelihood (covariance)", "-0.5*logdet(S) - 0.5*(x - u)'*inv(S)*(x - u)",
     dict(S=M, x=V, u=V), "S", 1),
    ("logdet(X) + tr(S*inv(X))", "logdet(X) + tr(S*inv(X))", dict(X=M, S=M), "X", 1),
    ("Jacobian of W*x w.r.t. W (3rd order)", "W*x", dict(W=("m", "n"), x=V), "W", 1),
    ("Hessian of x'*A*x", "x'*A*x", dict(x=V, A=M), "x", 2),
    ("Hessian of logistic regression", "sum(log(1 + exp(-y .* (X*w))))",
     dict(X=("m", "n"), w=V, y=("m",)), "w", 2),
    ("Hessian of matrix factorisation (4th order)", "norm2(X - U*V')^2",
     dict(X=("m", "p"), U=("m", "k"), V=("p", "k")), "U", 2),
]


# ---------------------------------------------------------------------------
# SymPy on the cases it can do


def _sympy_cases():
    import sympy as sp

    n, m, p, k = sp.symbols("n m p k", integer=True, positive=True)
    x = sp.MatrixSymbol("x", n, 1)
    A = sp.MatrixSymbol("A", n, n)
    X = sp.MatrixSymbol("X", m, n)
    w = sp.MatrixSymbol("w", n, 1)
    y = sp.MatrixSymbol("y", m, 1)
    Xf = sp.MatrixSymbol("X", m, p)
    U = sp.MatrixSymbol("U", m, k)
    Vv = sp.MatrixSymbol("V", p, k)
    Xs = sp.MatrixSymbol("X", n, n)
    a = sp.MatrixSymbol("a", n, 1)
    c = sp.Symbol("c")
    Am, Bm = sp.MatrixSymbol("A", p, m), sp.MatrixSymbol("B", n, p)
    Ak, Bk = sp.MatrixSymbol("A", p, n), sp.MatrixSymbol("B", n, p)
    Amm = sp.MatrixSymbol("A", m, m)
    S = sp.MatrixSymbol("S", n, n)
    r = X * w - y
    R = Xf - U * Vv.T
    # name -> (the call, what a right answer is, for a note when SymPy's is not)
    return {
        "quadratic form x'*A*x": (lambda: (x.T * A * x).diff(x), None),
        "linear form a'*x": (lambda: (a.T * x).diff(x), None),
        "least squares": (lambda: (r.T * r).diff(w), None),
        "ridge regression": (lambda: (r.T * r + c * w.T * w).diff(w), None),
        "matrix factorisation": (lambda: sp.Trace(R.T * R).diff(U), None),
        "logdet": (lambda: sp.log(sp.Determinant(Xs)).diff(Xs), "inv(X)'"),
        "det": (lambda: sp.Determinant(Xs).diff(Xs), "det(X)*inv(X)'"),
        "tr(A*X*B)": (lambda: sp.Trace(Am * X * Bm).diff(X), None),
        "tr(X'*A*X)": (lambda: sp.Trace(X.T * Amm * X).diff(X), None),
        "tr(A*inv(X)*B)": (lambda: sp.Trace(Ak * sp.Inverse(Xs) * Bk).diff(Xs), None),
        "logdet(X) + tr(S*inv(X))":
            (lambda: (sp.log(sp.Determinant(Xs)) + sp.Trace(S * sp.Inverse(Xs))).diff(Xs),
             "inv(X)' - (inv(X)*S*inv(X))'"),
    }


def bench_identities(log=print):
    diff = diff_fn()
    rows = []
    results = []
    sympy_cases = {}
    try:
        sympy_cases = _sympy_cases()
        from sympy.core.cache import clear_cache
    except Exception as exc:  # noqa: BLE001
        log(f"sympy unavailable: {short_error(exc)}")
        clear_cache = None
    for name, text, shapes, wrt, order in IDENTITIES:
        label = f"{name}: d{'²' if order == 2 else ''}/d{wrt}{'²' if order == 2 else ''} {text}"
        row = {"name": label, "mc": None, "cold": None, "met": "n/a", "sympy": None,
               "ratio": None, "note": ""}
        try:
            with time_limit(60):
                expr, how = build(text, shapes)
                row["how"] = how
                t0 = time.perf_counter()
                diff(expr, wrt, order=order)
                row["cold"] = time.perf_counter() - t0
                row["mc"] = time_cold(lambda: diff(expr, wrt, order=order), repeat=15, budget=2.0)
            row["met"] = "met" if row["mc"] * 1e3 < TARGET_MS else "NOT MET"
        except (Exception, Timeout) as exc:  # noqa: BLE001 - a failing case is a row
            row["mc_error"] = short_error(exc)
        if name in sympy_cases and order == 1 and clear_cache is not None:
            fn, right = sympy_cases[name]
            try:
                with time_limit(60):
                    out = fn()
                    row["sympy"] = time_cold(fn, setup=clear_cache, repeat=10, budget=3.0)
                if row["mc"]:
                    row["ratio"] = row["sympy"] / row["mc"]
                text_out = str(out)
                said = ("returns 0" if text_out == "0" else
                        "returns it unevaluated" if "Derivative(" in text_out else None)
                if said and right:
                    row["note"] = (row["note"] + "; " if row["note"] else "") + \
                        f"SymPy {said} (the answer is {right})"
                row["sympy_result"] = text_out
            except (Exception, Timeout) as exc:  # noqa: BLE001
                row["sympy_error"] = short_error(exc)
        rows.append([
            label,
            row.get("mc_error") or fmt_time(row["mc"]),
            fmt_time(row["cold"]) if row["cold"] is not None else "",
            row["met"],
            row.get("sympy_error") or (fmt_time(row["sympy"]) if row["sympy"] else ""),
            fmt_ratio(row["ratio"]) if row["ratio"] else "",
            row["note"],
        ])
        results.append(row)
        log(f"  {label}: {rows[-1][1]}")
    hows = sorted({r.get("how") for r in results if r.get("how")})
    headers = ["identity", "mc.diff (median)", "first call", f"< {TARGET_MS:g} ms",
               "SymPy MatrixSymbol.diff", "SymPy / mathcalc", "note"]
    table = md_table(headers, rows)
    if hows:
        table += "\n\nExpressions built with: " + "; ".join(hows) + "."
    return table, results


# ---------------------------------------------------------------------------
# Deep chains


def chain_text(k: int) -> str:
    inner = "x"
    for i in range(1, k + 1):
        inner = f"tanh(W{i}*{inner})"
    return f"sum({inner})"


def bench_chain(ks=(1, 2, 4, 8, 16, 32, 64), log=print):
    from mathcalc.nodes import walk

    diff = diff_fn()
    printer = printer_available()
    lambdify, _ = find_lambdify()
    lam_skip = None if lambdify else "n/a (no lambdify)"
    rows = []
    series = []
    skip_rest = None
    for k in ks:
        if skip_rest:
            rows.append([k, skip_rest, "", "", "", ""])
            continue
        shapes = {f"W{i}": ("n", "n") for i in range(1, k + 1)}
        shapes["x"] = ("n",)
        try:
            with time_limit(120):
                expr, how = build(chain_text(k), shapes)
                t0 = time.perf_counter()
                g = diff(expr, "W1")
                first = time.perf_counter() - t0
                t = first if first > 1.0 else time_cold(lambda: diff(expr, "W1"), repeat=7,
                                                        budget=3.0)
                nodes = len(walk(g.node))
                slen = None
                if printer:
                    try:
                        slen = len(str(g))
                    except Exception as exc:  # noqa: BLE001
                        slen = short_error(exc)
            series.append((k, t, nodes, slen if isinstance(slen, int) else None))
            lam_cell = lam_skip
            if lam_cell is None:
                try:
                    t0 = time.perf_counter()
                    with time_limit(LAMBDIFY_LIMIT_S):
                        lambdify(g)
                    lam_cell = fmt_time(time.perf_counter() - t0)
                except Timeout:
                    lam_cell = f"NOT DONE in {LAMBDIFY_LIMIT_S:g} s (interrupted)"
                    lam_skip = "skipped (a smaller k did not finish)"
                except Exception as exc:  # noqa: BLE001
                    lam_cell = short_error(exc)
            rows.append([k, fmt_time(t), nodes, slen if slen is not None else "n/a (no printer)",
                         lam_cell, "" if how == "parse" else "built with " + how])
            if t > 10:
                skip_rest = f"skipped (k={k} took {t:.1f} s)"
        except (Exception, Timeout) as exc:  # noqa: BLE001
            rows.append([k, short_error(exc), "", "", "", ""])
            skip_rest = "skipped (previous k failed)"
        log(f"  chain k={k}: {rows[-1][1]}")
    table = md_table(["k", "mc.diff w.r.t. W1", "distinct nodes (walk)", "len(str(result))",
                      "lambdify(result), first build", "note"], rows)
    return table, series, growth_verdict(series)


def _slope(a, b):
    (k1, v1), (k2, v2) = a, b
    if not v1 or not v2 or v1 <= 0 or v2 <= 0:
        return None
    return math.log(v2 / v1) / math.log(k2 / k1)


def growth_verdict(series) -> str:
    """Log-log slopes over the upper half of k: ~1 is linear, ~2 quadratic, large is worse."""
    if len(series) < 3:
        return "too few points to judge growth"
    lines = []
    for col, what in ((1, "derivation time"), (2, "distinct nodes"), (3, "len(str)")):
        pts = [(s[0], s[col]) for s in series if s[col] is not None and s[0] >= 8]
        if len(pts) < 2:
            continue
        slope = _slope(pts[0], pts[-1])
        if slope is None:
            continue
        if slope < 1.25:
            verdict = "linear"
        elif slope < 1.75:
            verdict = "super-linear (between linear and quadratic)"
        elif slope < 2.3:
            verdict = "quadratic — NOT linear"
        else:
            verdict = "faster than quadratic — NOT linear"
        lines.append(f"- {what}: log-log slope {slope:.2f} over k = {pts[0][0]}…{pts[-1][0]} "
                     f"→ {verdict}")
    return "\n".join(lines)


def bench_identity_table(log=print):
    """Every identity of the test suite's table (tests/identities.py), timed the same way."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from identities import IDENTITIES as TABLE

    diff = diff_fn()
    times = []
    for entry in TABLE:
        expr, _ = build(entry["f"], entry["shapes"])
        order = entry["order"]
        t = time_cold(lambda: diff(expr, entry["wrt"], order=order), repeat=5, budget=0.5)
        times.append((t, f"d{'²' if order == 2 else ''}/d{entry['wrt']} {entry['f']}"))
    times.sort()
    over = [(t, name) for t, name in times if t * 1e3 >= TARGET_MS]
    median = times[len(times) // 2][0]
    lines = [f"- {len(times)} identities: median {fmt_time(median)}, slowest "
             f"{fmt_time(times[-1][0])} ({times[-1][1]}); "
             + (f"{len(over)} at or over {TARGET_MS:g} ms: NOT MET" if over
                else f"all under {TARGET_MS:g} ms: met"),
             "- the five slowest: " + "; ".join(f"`{name}` {fmt_time(t)}"
                                                for t, name in reversed(times[-5:]))]
    log("  identity table: " + lines[0])
    return "\n".join(lines)


def run(log=print) -> str:
    out = []
    table, _ = bench_identities(log=log)
    out += ["### Derivation time per identity (issue 3 §5)", "",
            f"Median of single calls of `mc.diff(expr, wrt)` on an already-parsed expression "
            f"(target < {TARGET_MS:g} ms). SymPy is timed on `MatrixSymbol` expressions with "
            "its cache cleared before every call (otherwise it returns a memoised result).",
            "", table, "",
            "Every identity of the test suite's table (tests/identities.py), median of 5 calls "
            "each:", "", bench_identity_table(log=log), ""]
    table, _, verdict = bench_chain(log=log)
    out += ["### Deep chain sum(tanh(W_k*…tanh(W_1*x))), derivative w.r.t. W_1", "", table, "",
            verdict, ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(run())
