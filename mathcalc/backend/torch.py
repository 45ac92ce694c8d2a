"""The PyTorch emitter: op → torch call, and how lambdify reads tensors.

Tensors stay on their device (new arrays are made with the arguments'
dtype and device) and every op is one autograd records: placements are
products with ``torch.eye``, masked fills ``torch.where``, no in-place
writes, so ``torch.autograd`` differentiates through the functions.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import functions as F
from ..errors import ShapeError
from .emit import ATOM, Emitter, matmul
from .ir import Lit
from .numpy import NumpyEmitter, as_real_array, check_scalar, python_number


def _sigmoid(em, x):
    scale = x.attrs["scale"]
    a = em.atom(x.args[0]) if scale != 1 else em.expr(x.args[0])
    return (f"{em.lib}.sigmoid({a})" if scale == 1 else
            f"{em.lib}.sigmoid({em.lit(scale)} * {a})"), ATOM


def _extremum(which, bound):
    def call(em, x):
        a, b = x.args
        if isinstance(a, Lit) or isinstance(b, Lit):  # a number: clamp (a tensor op)
            lit, t = (a, b) if isinstance(a, Lit) else (b, a)
            return f"{em.lib}.clamp({em.expr(t)}, {bound}={em.expr(lit)})", ATOM
        return f"{em.lib}.{which}({em.expr(a)}, {em.expr(b)})", ATOM
    return call


def _scalar(em, x):
    (a,) = x.args
    if isinstance(a, Lit):
        return f"{em.lib}.tensor({em.expr(a)}, dtype={em.lib}.float64)", ATOM
    return em.expr(a), ATOM


class TorchEmitter(Emitter):
    lib = "torch"
    module = "torch"
    printer = "TorchPrinter"
    printer_module = "torch"
    backend = "torch"

    OPS = {
        **NumpyEmitter.OPS,
        **F.spellings("torch"),
        "dot": matmul,
        "permute": "{a0}.permute{perm}",
        "sum_axis": "{a0}.sum(dim={axes})",
        "einsum": lambda em, x: (f"{em.lib}.einsum({x.attrs['spec']!r}, "
                                 f"{', '.join(em.expr(a) for a in x.args)})", ATOM),
        "tensordot": "{lib}.tensordot({0}, {1}, dims=({axes_a}, {axes_b}))",
        "vdot": "{lib}.sum({a0} * {a1})",
        "zeros": "{lib}.zeros({0}, dtype={dtype}, device={device})",
        "ones": "{lib}.ones({0}, dtype={dtype}, device={device})",
        "eye": "{lib}.eye({0}, dtype={dtype}, device={device})",
        "full": "{lib}.full({0}, {1}, dtype={dtype}, device={device})",
        "float": "{lib}.tensor({0}, dtype={lib}.float64)",
        "sigmoid": _sigmoid,
        "maximum": _extremum("maximum", "min"),
        "minimum": _extremum("minimum", "max"),
        "power": "{lib}.pow({0}, {1})",
        "copy": "{a0}.clone()",
        "scalar": _scalar,
    }

    def __init__(self, prefix: str = "", standalone: bool = False):
        super().__init__(prefix, standalone)
        self.device_arg = f", device={self.device}"

    def eye_call(self, n: str) -> str:
        return f"{self.lib}.eye({n}, dtype={self.dtype}, device={self.device})"


Emitter = TorchEmitter


def read(value, name, rank):
    """A torch argument: a tensor of a floating dtype (kept, on its device), or a 0-d
    float64 tensor for a Python number (0-d tensors do not promote float32 tensors)."""
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise ShapeError("argument %r is complex (dtype %s); only real values are accepted"
                             % (name, value.dtype))
        if not value.is_floating_point():
            value = value.to(torch.float64)
        if rank == 0 and value.dim():
            raise ShapeError("argument %r must be a scalar (shape ()), got an array of shape %s"
                             % (name, tuple(value.shape)))
        return value
    number = python_number(value) if rank == 0 else None
    if number is not None:
        return torch.tensor(number, dtype=torch.float64)
    array = as_real_array(value, name)
    if rank == 0:
        check_scalar(array, name)
    return torch.from_numpy(np.array(array, dtype=array.dtype.newbyteorder("=")))


def frame(*values):
    """(dtype, device) of the result: the arrays' promoted dtype and the first one's device."""
    arrays = [v for v in values if v.dim()] or list(values)
    dtype = arrays[0].dtype
    for v in arrays[1:]:
        dtype = torch.promote_types(dtype, v.dtype)
    return dtype, arrays[0].device


FAST_ARRAY = None
FAST_SCALAR = None


def modules():
    return {"torch": torch, "frame": frame}


def frame_lines(em, refs) -> list:
    return [f"{em.dtype}, {em.device} = {em.prefix}frame({', '.join(refs)})"]


def codegen_frame_lines(em, params) -> list:
    first = params[0]
    return [f"{em.dtype}, {em.device} = {first}.dtype, {first}.device"]
