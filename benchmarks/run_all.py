"""``make bench``: every benchmark in one process; writes benchmarks/RESULTS.md and prints it.

BLAS is pinned to one thread with threadpoolctl (``threadpool_limits(1)``) for
the whole run and the setting is printed; torch runs on one thread, XLA with
its multi-threaded Eigen off. If OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE are set
in the environment, the runner re-executes itself without them (so OpenBLAS
picks its kernel for the real processor) and records which kernel
threadpoolctl reports.

Usage: python benchmarks/run_all.py [--quick] [--no-jax] [--no-torch] [--no-gpu] [--output PATH]
  --quick   n = 10, 100 only and chains up to k = 16 (a smoke test, a few minutes);
            the results go to stdout only unless --output is given.
  --refresh-notes  copy benchmarks/NOTES.md (the hand-written analysis) into
            RESULTS.md again, leaving the measured figures as they are.

Sections: parsing, derivation speed, the numpy backend against hand-written
numpy (bench_numeric.py), the jax and torch backends against jax.grad /
jax.hessian and torch.func (bench_backends.py), and the GPU comparisons
(bench_gpu.py, run in a process of its own, only where a GPU exists). Every
target is marked met or NOT MET on its row, and the misses are listed at the
top of RESULTS.md.

Times are never asserted: the report gives ratios measured in this one run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import io
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REEXEC_MARK = "MATHCALC_BENCH_REEXEC"
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# OMP_NUM_THREADS is deliberately not set: OpenBLAS would read it and start on one
# thread, hiding whether threadpool_limits(1) works; torch is pinned by
# torch.set_num_threads(1) instead.
SINGLE_THREAD_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def _reexec_if_needed():
    """Re-run this script with OPENBLAS_CORETYPE/L2_SIZE removed and threads pinned."""
    if os.environ.get(REEXEC_MARK):
        return
    env = dict(os.environ)
    removed = {k: env.pop(k) for k in UNSET if k in env}
    for k, v in SINGLE_THREAD_ENV.items():
        env.setdefault(k, v)
    env[REEXEC_MARK] = ";".join(f"{k}={v}" for k, v in removed.items()) or "none"
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve())] + sys.argv[1:], env)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _uname() -> str:
    try:
        return subprocess.run(["uname", "-a"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return " ".join(platform.uname())


def _blas_lines(info) -> list:
    lines = []
    for lib in info:
        parts = [f"{lib.get('user_api')}/{lib.get('internal_api')}",
                 f"version {lib.get('version')}", f"threads {lib.get('num_threads')}"]
        if lib.get("architecture"):
            parts.append(f"kernel (architecture) {lib.get('architecture')}")
        if lib.get("threading_layer"):
            parts.append(f"threading layer {lib.get('threading_layer')}")
        parts.append(Path(lib.get("filepath", "?")).name)
        lines.append("  - " + ", ".join(parts))
    return lines


def _versions() -> str:
    out = [f"python {platform.python_version()}"]
    for mod in ("numpy", "sympy", "opt_einsum", "jax", "jaxlib", "torch", "threadpoolctl"):
        try:
            out.append(f"{mod} {importlib.import_module(mod).__version__}")
        except Exception:  # noqa: BLE001
            out.append(f"{mod} n/a")
    return ", ".join(out)


def _takes_no_arguments(fn) -> bool:
    import inspect

    if not callable(fn):
        return False
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)


def _run_script(name, log) -> str:
    """A stand-alone benchmark script (bench_parse.py, bench_where.py: each written by the
    owner of what it measures): what its entry point printed or returned, or n/a."""
    path = HERE / name
    if not path.exists():
        return f"n/a — benchmarks/{name} does not exist."
    buf = io.StringIO()
    try:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        with contextlib.redirect_stdout(buf):
            spec.loader.exec_module(mod)
            entry = next((getattr(mod, n) for n in ("main", "bench", "run") if
                          _takes_no_arguments(getattr(mod, n, None))), None)
            result = entry() if entry is not None else None
    except SystemExit:
        result = None
    except Exception as exc:  # noqa: BLE001
        from _common import short_error

        return short_error(exc) + ("\n\n```\n" + buf.getvalue().strip() + "\n```"
                                   if buf.getvalue().strip() else "")
    parts = []
    if isinstance(result, str):
        parts.append(result.strip())
    elif isinstance(result, dict):
        parts += [f"- {k}: {v}" for k, v in result.items()]
    elif isinstance(result, (list, tuple)):
        parts += [f"- {item}" for item in result]
    elif result is not None and not isinstance(result, int):  # an int is an exit status
        parts.append(str(result))
    printed = buf.getvalue().strip()
    if printed and printed not in parts:
        parts.append("```\n" + printed + "\n```")
    return "\n".join(parts) or f"{name} ran and reported nothing."


NOTES_BEGIN = "<!-- benchmarks/NOTES.md, copied by run_all.py: hand-written, not measured -->"
NOTES_END = "<!-- end of benchmarks/NOTES.md -->"


def _refresh_notes(path: Path) -> int:
    """Replace the copy of NOTES.md in an existing RESULTS.md; nothing is re-measured."""
    text = path.read_text()
    if NOTES_BEGIN not in text or NOTES_END not in text:
        print(f"{path} has no marked copy of NOTES.md: run the benchmarks", file=sys.stderr)
        return 1
    head, rest = text.split(NOTES_BEGIN, 1)
    tail = rest.split(NOTES_END, 1)[1]
    notes = (HERE / "NOTES.md").read_text().strip()
    path.write_text(head + NOTES_BEGIN + "\n" + notes + "\n" + NOTES_END + tail)
    print(f"NOTES.md copied into {path} again", file=sys.stderr)
    return 0


def _gpu_present() -> bool:
    if Path("/dev/nvidia0").exists() or Path("/dev/kfd").exists():
        return True
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def _gpu_section(args, log):
    """benchmarks/bench_gpu.py in a process of its own (no CPU thread pinning there)."""
    import bench_gpu

    if args.no_gpu or not _gpu_present():
        why = "--no-gpu given" if args.no_gpu else "no GPU device on this machine"
        return ("### GPU (jax, torch, cupy backends)\n\n**No GPU was available in this "
                f"run** ({why}), so there are no GPU figures; "
                "`python benchmarks/bench_gpu.py` runs them where one is (float32 and "
                "float64, n = 1000, 4000, 8000).\n"), []
    import tempfile

    env = {k: v for k, v in os.environ.items() if k not in SINGLE_THREAD_ENV}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gpu.md"
        cmd = [sys.executable, str(HERE / "bench_gpu.py"), "--output", str(out),
               "--budget", "120" if args.quick else "420"]
        if args.quick:
            cmd += ["--sizes", "1000"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        log(proc.stderr[-4000:])
        if not out.exists():
            return (f"### GPU\n\nbench_gpu.py failed (exit {proc.returncode}):\n\n```\n"
                    + proc.stderr[-2000:] + "\n```\n"), []
        text = out.read_text()
    missed = []
    if "GPU targets NOT met:" in text:
        tail = text.split("GPU targets NOT met:", 1)[1]
        missed = [ln[2:] for ln in tail.splitlines() if ln.startswith("- ")]
    return text, missed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-gpu", action="store_true")
    ap.add_argument("--output", default=None)
    ap.add_argument("--refresh-notes", action="store_true",
                    help="only copy NOTES.md into RESULTS.md again (the figures stay as measured)")
    args = ap.parse_args(argv)
    if args.refresh_notes:
        return _refresh_notes(Path(args.output or HERE / "RESULTS.md"))

    t_start = time.perf_counter()
    sys.path.insert(0, str(HERE))
    removed = os.environ.get(REEXEC_MARK, "not re-executed")

    import numpy  # noqa: F401  (load BLAS before inspecting it)
    from threadpoolctl import threadpool_info, threadpool_limits

    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(1)
            torch.set_num_interop_threads(1)
        except Exception:  # noqa: BLE001 - reported by the numeric benchmark
            pass
    before = threadpool_info()
    from _common import load_average

    load_start = load_average()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    with threadpool_limits(limits=1):
        after = threadpool_info()
        header = [
            "# mathcalc benchmarks", "",
            f"Generated by `benchmarks/run_all.py{' --quick' if args.quick else ''}` (what "
            "`make bench` runs after installing the bench extra)"
            f" on {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
            "Times are medians of repeated timing loops in one process, in CPU time of the "
            "process (`time.process_time`: the machine is shared, and wall time would count "
            "other processes); ratios compare "
            "timings from this same run. Nothing here is asserted.", "",
            "## Machine", "",
            f"- `uname -a`: {_uname()}",
            f"- CPU: {_cpu_model()}; {os.cpu_count()} logical cores "
            f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} "
            "usable by this process)",
            f"- versions: {_versions()}",
            f"- BLAS: `threadpool_limits(1)` in force for the whole run "
            f"(threads before → after: "
            f"{', '.join(str(b.get('num_threads')) for b in before) or 'no BLAS found'} → "
            f"{', '.join(str(a.get('num_threads')) for a in after) or 'no BLAS found'}):",
            *_blas_lines(after),
            f"- environment: removed before the run: {removed}; "
            + "; ".join(f"{k}={os.environ.get(k)}" for k in SINGLE_THREAD_ENV), "",
        ]
        for line in header:
            print(line, flush=True)

        sections = []
        log("== parsing (benchmarks/bench_parse.py)")
        sections += ["## Parsing", "", _run_script("bench_parse.py", log), ""]
        print("\n".join(sections[-4:]), flush=True)

        log("== derivation speed")
        import bench_diff

        try:
            if args.quick:
                t1, _ = bench_diff.bench_identities(log=log)
                t2, _, verdict = bench_diff.bench_chain(ks=(1, 2, 4, 8, 16), log=log)
                diff_text = "\n".join(["### Derivation time per identity", "", t1, "",
                                       "### Deep chain (derivative w.r.t. W_1)", "", t2, "",
                                       verdict, ""])
            else:
                diff_text = bench_diff.run(log=log)
        except Exception as exc:  # noqa: BLE001
            from _common import debug_trace, short_error

            log(debug_trace(exc))
            diff_text = short_error(exc)
        sections += ["## Derivation speed (issue 3 §5)", "", diff_text, ""]
        print("\n".join(sections[-4:]), flush=True)

        log("== where-form length (benchmarks/bench_where.py)")
        where_text = _run_script("bench_where.py", log)
        sections += ["## Printed length as a where-form (SPEC 7)", "", where_text, ""]
        print("\n".join(sections[-4:]), flush=True)

        # A derivation row that misses its target says NOT on its line.
        missed = [("derivation: " + ln.split("|")[1].strip() + ": "
                   + "; ".join(c.strip() for c in ln.split("|")[2:] if "NOT" in c))
                  if ln.lstrip().startswith("|") else "derivation: " + ln.strip("- ").strip()
                  for ln in (diff_text + "\n" + where_text).splitlines() if "NOT" in ln]
        log("== numeric speed: numpy")
        import bench_numeric

        try:
            num_text, miss = bench_numeric.report(
                log=log, sizes=(10, 100) if args.quick else bench_numeric.SIZES)
            missed += miss
        except Exception as exc:  # noqa: BLE001
            from _common import debug_trace, short_error

            log(debug_trace(exc))
            num_text = short_error(exc)
        sections += ["## Numeric speed (issue 4 §6, issue 9 §5)", "", num_text, ""]
        print("\n".join(sections[-4:]), flush=True)

        log("== numeric speed: jax and torch backends")
        import bench_backends

        try:
            be_text, miss = bench_backends.report(
                log=log, sizes=(10, 100) if args.quick else bench_backends.SIZES,
                with_jax=not args.no_jax, with_torch=not args.no_torch)
            missed += miss
        except Exception as exc:  # noqa: BLE001
            from _common import debug_trace, short_error

            log(debug_trace(exc))
            be_text = short_error(exc)
        sections += [be_text, ""]
        print("\n".join(sections[-2:]), flush=True)

        log("== GPU")
        gpu_text, miss = _gpu_section(args, log)
        missed += miss
        sections += [gpu_text, ""]
        print("\n".join(sections[-2:]), flush=True)

    summary = ["## Targets not met in this run", ""]
    summary += [f"- {m}" for m in missed] or ["None: every target measured in this run is met."]
    summary.append("")
    print("\n".join(summary), flush=True)
    sections = summary + sections

    notes = HERE / "NOTES.md"
    if notes.exists():
        sections += [NOTES_BEGIN, notes.read_text().strip(), NOTES_END, ""]
        print(sections[-3], flush=True)

    total = time.perf_counter() - t_start
    cpu = time.process_time()
    footer = [f"Total benchmark time: {total:.0f} s wall, {cpu:.0f} s CPU of this process. "
              f"Load average (1, 5, 15 min) at the start: {load_start}; at the end: "
              f"{load_average()} (on {os.cpu_count()} cores: a load above 1 means other "
              "processes shared the machine, which inflates absolute times; the mathcalc and "
              "hand-numpy loops are interleaved so their ratios see the same load).", ""]
    print("\n".join(footer), flush=True)
    text = "\n".join(header + sections + footer)
    output = args.output or (None if args.quick else str(HERE / "RESULTS.md"))
    if output:
        Path(output).write_text(text)
        log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    _reexec_if_needed()
    sys.exit(main())
