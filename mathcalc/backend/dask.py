"""The dask emitter: op → dask.array call; the result stays lazy (a dask array).

Element-wise ops, products, sums and reductions are dask's own, blockwise
and out of core: ``X'*diag(d)*X`` over a tall X chunked by rows is a tree
of per-chunk products. Three ops are computed in memory, each as one task on
one worker over the whole (n × n) matrix, because they are factorisations
with no blockwise form: ``inv`` (``numpy.linalg.inv``), ``det`` and
``logdet`` (``numpy.linalg.det`` / ``slogdet``): that is why the dask
source also imports numpy. Everything else never gathers an array.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from .. import functions as F
from .emit import ATOM, Emitter, matmul, sigmoid_tanh
from .numpy import NumpyEmitter, read_native


def _in_memory(kernel, drop):
    """A kernel over the whole matrix, as one task (``rechunk(-1)``: one chunk)."""
    def call(em, x):
        a = em.atom(x.args[0])
        extra = ", drop_axis=[0, 1]" if drop else ""
        return f"{a}.rechunk(-1).map_blocks({em.np}.linalg.{kernel}{extra}, dtype={a}.dtype)", ATOM
    return call


class DaskEmitter(Emitter):
    lib = "da"
    module = "dask.array"
    printer = "NumPyPrinter"
    printer_module = "numpy"
    backend = "dask"

    def __init__(self, prefix: str = "", standalone: bool = False):
        super().__init__(prefix, standalone)
        self.np = prefix + "np"

    def imports(self) -> list:
        return super().imports() + [f"import numpy as {self.np}"]

    OPS = {
        **NumpyEmitter.OPS,
        **F.spellings("dask"),
        "dot": matmul,
        "einsum": lambda em, x: (f"{em.lib}.einsum({x.attrs['spec']!r}, "
                                 f"{', '.join(em.expr(a) for a in x.args)})", ATOM),
        "vdot": "{lib}.sum({a0} * {a1})",
        "float": "{np}.float64({0})",
        "sigmoid": sigmoid_tanh,
        "inv": _in_memory("inv", False),
        "det": _in_memory("det", True),
        "copy": "{0}",  # dask arrays are immutable
        "scalar": "{lib}.asarray({0})",  # a dask array even when every argument was a number
    }

    def fill(self, template, x):
        return super().fill(template.replace("{np}", self.np), x)

    def stmt_logdet(self, targets, x) -> list:
        sign, value = (t.name for t in targets)
        a = self.atom(x.args[0])
        whole = f"{a}.rechunk(-1)"
        return [f"{sign} = {whole}.map_blocks(lambda b: {self.np}.linalg.slogdet(b)[0], "
                f"drop_axis=[0, 1], dtype={a}.dtype)",
                f"{value} = {whole}.map_blocks(lambda b: {self.np}.linalg.slogdet(b)[1], "
                f"drop_axis=[0, 1], dtype={a}.dtype)",
                f"{value} = {self.lib}.where({sign} > 0, {value}, {self.np}.nan)"]


Emitter = DaskEmitter


def read(value, name, rank):
    """A dask argument: a dask array (kept lazy; integers read as float64), a Python
    float for a Python number, other arrays wrapped as dask arrays."""
    return read_native(value, name, rank, da.Array, lambda v: v.astype(np.float64),
                       lambda array, rank: array[()] if rank == 0 else da.from_array(array))


FAST_ARRAY = None
FAST_SCALAR = None


def modules():
    return {"da": da, "np": np}


def frame_lines(em, refs) -> list:
    return [f"{em.dtype} = {em.np}.result_type("
            f"*[getattr(v, 'dtype', v) for v in ({', '.join(refs)},)])"]


codegen_frame_lines = frame_lines
