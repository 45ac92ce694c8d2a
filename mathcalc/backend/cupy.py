"""The CuPy emitter: op → cupy call (numpy's names on the GPU), and how lambdify reads
cupy arrays: they stay on the GPU; other values are copied there."""

from __future__ import annotations

import cupy as cp

from ..errors import ShapeError
from .emit import MUL, Emitter
from .numpy import NumpyEmitter, as_real_array, check_scalar, python_number


def _matmul(em, x):
    return f"{em.atom(x.args[0])} @ {em.atom(x.args[1])}", MUL


class CupyEmitter(Emitter):
    lib = "cp"
    module = "cupy"
    printer = "CuPyPrinter"
    printer_module = "cupy"

    OPS = {
        **NumpyEmitter.OPS,
        "dot": _matmul,
        "step": "({a0} > 0).astype({a0}.dtype)",
        "float": "{lib}.asarray({0}, dtype={lib}.float64)",
        "copy": "{a0}.copy()",
        "scalar": "{lib}.asarray({0})",
    }

    def stmt_logdet(self, targets, x) -> list:
        sign, value = (t.name for t in targets)
        return [f"{sign}, {value} = {self.lib}.linalg.slogdet({self.expr(x.args[0])})",
                f"{value} = {self.lib}.where({sign} > 0, {value}, {self.lib}.nan)"]


Emitter = CupyEmitter


def read(value, name, rank):
    if rank == 0:
        number = python_number(value)
        if number is not None:
            return number
    if isinstance(value, cp.ndarray):
        kind = value.dtype.kind
        if kind == "c":
            raise ShapeError("argument %r is complex (dtype %s); only real values are accepted"
                             % (name, value.dtype))
        if kind != "f":
            value = value.astype(cp.float64)
        if rank == 0 and value.shape:
            raise ShapeError("argument %r must be a scalar (shape ()), got an array of shape %s"
                             % (name, tuple(value.shape)))
        return value
    array = as_real_array(value, name)
    if rank == 0:
        check_scalar(array, name)
    return cp.asarray(array)


FAST_ARRAY = None
FAST_SCALAR = None


def modules():
    return {"cp": cp}


def frame_lines(em, refs) -> list:
    return [f"{em.dtype} = {em.lib}.result_type({', '.join(refs) or '0.0'})"]


codegen_frame_lines = frame_lines
