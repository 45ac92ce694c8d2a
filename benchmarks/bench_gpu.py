"""The jax, torch and cupy backends on a GPU (issue 9 §5), float32 and float64, n = 1000, 4000, 8000.

The comparisons of bench_backends.py on the GPU: mathcalc's jax function
(jitted) against jax.jit(jax.grad / jax.hessian), its torch function against
torch.func.grad / torch.func.hessian, its cupy function against the
hand-written code of _cases.py run with cupy. Wall time (time.perf_counter),
each call followed by a device synchronisation; medians of interleaved
repeats after a warm-up call. Every result is checked against the
hand-written numpy reference in float64 (rtol 1e-6 for float64 inputs, 2e-3
for float32), and must keep the input's dtype. f32 matrix products run in
full float32 on every library (jax's default_matmul_precision "highest", torch
with TF32 off), so the libraries do the same arithmetic.

Without a GPU this prints that none was found and exits 0:

    python benchmarks/bench_gpu.py [--output PATH] [--sizes 1000,4000,8000]
                                   [--libs jax,torch,cupy] [--dtypes float32,float64]
                                   [--budget SECONDS] [--cpu-dry-run]

``--cpu-dry-run`` runs the same harness on the CPU at tiny sizes (10, 30):
a test of the harness itself, not a GPU figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SIZES = (1000, 4000, 8000)
GPU_FWD_REV_LIMIT = 40 * 2**30  # bytes a competitor's forward-over-reverse Hessian may take
RTOL = {"float32": 2e-3, "float64": 1e-6}


def probe(cpu_dry_run=False):
    """([(lib, side, device name)], [lines saying what was not found])."""
    from bench_backends import CupySide, JaxSide, TorchSide

    found, absent = [], []
    try:
        import jax

        devs = [jax.devices("cpu")[0]] if cpu_dry_run else jax.devices("gpu")
        found.append(("jax", JaxSide(devs[0]), getattr(devs[0], "device_kind", str(devs[0]))))
    except Exception as exc:  # noqa: BLE001
        absent.append(f"jax: no GPU device ({type(exc).__name__}: {str(exc)[:80]})")
    try:
        import torch

        if cpu_dry_run:
            torch.set_num_threads(1)  # idle OpenMP workers spin, and CPU time counts them
            found.append(("torch", TorchSide("cpu"), "cpu"))
        elif torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            found.append(("torch", TorchSide("cuda"), torch.cuda.get_device_name(0)))
        else:
            absent.append(f"torch {torch.__version__}: torch.cuda.is_available() is False")
    except Exception as exc:  # noqa: BLE001
        absent.append(f"torch: {type(exc).__name__}: {str(exc)[:80]}")
    if not cpu_dry_run:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                props = cupy.cuda.runtime.getDeviceProperties(0)
                found.append(("cupy", CupySide(), props["name"].decode()))
            else:
                absent.append("cupy: no CUDA device")
        except Exception as exc:  # noqa: BLE001
            absent.append(f"cupy: {type(exc).__name__}: {str(exc)[:80]}")
    return found, absent


def _free(lib):
    try:
        if lib == "torch":
            import torch

            torch.cuda.empty_cache()
        elif lib == "cupy":
            import cupy

            cupy.get_default_memory_pool().free_all_blocks()
        elif lib == "jax":
            import jax

            jax.clear_caches()
    except Exception:  # noqa: BLE001
        pass


def report(sizes=SIZES, libs=("jax", "torch", "cupy"), dtypes=("float32", "float64"),
           budget=420.0, cpu_dry_run=False, log=print):
    """(markdown section, list of target lines not met)."""
    import numpy as np

    from _cases import CASES, label
    from _common import md_table
    from bench_backends import build_fns, compare, headers, row, verdict

    start = time.perf_counter()
    found, absent = probe(cpu_dry_run)
    found = [f for f in found if f[0] in libs]
    title = "### GPU (jax, torch, cupy backends)" + (" — CPU DRY RUN, not GPU figures"
                                                     if cpu_dry_run else "")
    if not found:
        return "\n".join([title, "", "**No GPU was available in this run**, so there are no "
                          "GPU figures. Probed: " + "; ".join(absent) + ".", ""]), []
    if not cpu_dry_run:
        try:
            import jax

            jax.config.update("jax_default_matmul_precision", "highest")
        except Exception:  # noqa: BLE001
            pass
    devices = sorted({f"{lib}: {name}" for lib, _, name in found})
    lines = [title, "", "Devices: " + "; ".join(devices) + "." +
             (" Not found: " + "; ".join(absent) + "." if absent else ""), "",
             "Wall time per call with a device synchronisation, median of interleaved repeats "
             "after a warm-up call. Results checked against the float64 hand-written numpy "
             "reference (rtol 1e-6 float64, 2e-3 float32) and required to keep the input dtype. "
             "The targets are those of the CPU tables.", ""]
    missed = []
    tables = {lib: [] for lib, _, _ in found}
    fns = {}
    rng = np.random.default_rng(0)
    for n in sizes:
        for case in CASES:
            dims = case.dims(n)
            vals = case.data(rng, dims)
            ref = None
            for lib, side, _ in found:
                if (lib, case.name) not in fns:
                    fns[(lib, case.name)] = build_fns(side, case)
                for dtype in dtypes:
                    rec = dict(label=f"{label(case, dims)} {dtype}", case=case.name, n=n)
                    if time.perf_counter() - start > budget:
                        rec.update(comp_err="skipped (time budget)",
                                   mc_err="skipped (time budget)")
                    else:
                        if ref is None:
                            ref = case.hand(**vals)
                        clock = None if cpu_dry_run else time.perf_counter  # CPU: CPU time
                        rec.update(compare(side, case, dims, vals, ref, dtype=np.dtype(dtype),
                                           rtol=RTOL[dtype], clock=clock,
                                           mem_limit=GPU_FWD_REV_LIMIT, budget=1.0,
                                           fns=fns[(lib, case.name)]))
                        _free(lib)
                    rec["verdict"] = verdict(lib, case, rec)
                    tables[lib].append(row(lib, case, rec, side.reports_compile))
                    log(f"  gpu {lib} | " + " | ".join(str(c) for c in tables[lib][-1]))
                    if "NOT MET" in rec["verdict"]:
                        missed.append(f"GPU {lib} {rec['label']}: {rec['verdict']}")
    for lib, side, name in found:
        lines += [f"#### {lib} on {name}", "", md_table(headers(side, side.reports_compile),
                                                         tables[lib]), ""]
    lines.append(f"GPU section: {time.perf_counter() - start:.0f} s wall (budget {budget:g} s; "
                 "rows past it are marked skipped).")
    return "\n".join(lines) + "\n", missed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default=None)
    ap.add_argument("--sizes", default=None)
    ap.add_argument("--libs", default="jax,torch,cupy")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--budget", type=float, default=420.0)
    ap.add_argument("--cpu-dry-run", action="store_true")
    args = ap.parse_args(argv)
    # jax takes 75% of the GPU's memory at start-up by default; torch and cupy share it here.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else \
        ((10, 30) if args.cpu_dry_run else SIZES)
    text, missed = report(sizes=sizes, libs=tuple(args.libs.split(",")),
                          dtypes=tuple(args.dtypes.split(",")), budget=args.budget,
                          cpu_dry_run=args.cpu_dry_run,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
    if missed:
        text += "\nGPU targets NOT met:\n\n" + "\n".join(f"- {m}" for m in missed) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
