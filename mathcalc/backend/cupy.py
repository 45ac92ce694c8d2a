"""The CuPy emitter: op → cupy call (numpy's names on the GPU), and how lambdify reads
cupy arrays: they stay on the GPU; other values are copied there."""

from __future__ import annotations

import cupy as cp

from .. import functions as F
from .emit import Emitter, matmul
from .numpy import NumpyEmitter, read_native


class CupyEmitter(Emitter):
    lib = "cp"
    module = "cupy"
    printer = "CuPyPrinter"
    printer_module = "cupy"
    backend = "cupy"

    OPS = {
        **NumpyEmitter.OPS,
        **F.spellings("cupy"),
        "dot": matmul,
        "float": "{lib}.asarray({0}, dtype={lib}.float64)",
        "copy": "{a0}.copy()",
        "scalar": "{lib}.asarray({0})",
    }


Emitter = CupyEmitter


def read(value, name, rank):
    """A cupy argument: a cupy array (kept on its GPU), other arrays copied to the GPU."""
    return read_native(value, name, rank, cp.ndarray, lambda v: v.astype(cp.float64),
                       lambda array, rank: cp.asarray(array))


FAST_ARRAY = None
FAST_SCALAR = None


def modules():
    return {"cp": cp}


def frame_lines(em, refs) -> list:
    return [f"{em.dtype} = {em.lib}.result_type({', '.join(refs) or '0.0'})"]


codegen_frame_lines = frame_lines
