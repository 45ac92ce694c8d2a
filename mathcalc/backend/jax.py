"""The JAX emitter: op → jax.numpy call, and how lambdify reads JAX arguments.

Every op is pure (JAX arrays are immutable): a Hessian block is the value
times identities (``jnp.eye``) on its tied axes, a masked fill is
``jnp.where``, logdet's NaN for det <= 0 is ``jnp.where``; no Python branch
depends on a value. So ``jax.jit``, ``jax.vmap`` and ``jax.grad`` apply to
the functions. Argument checks read only shapes and dtypes, which are known
while tracing. float64 needs ``jax.config.update("jax_enable_x64", True)``;
without it JAX computes in float32 whatever it is given.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ShapeError
from .emit import MUL, Emitter
from .ir import Call
from .numpy import NumpyEmitter, as_real_array, check_scalar, python_number


def _matmul(em, x):
    """``a @ b``; a transposed matrix times a vector is the vector times the matrix
    (``M.T @ v`` is ``v @ M``): XLA on the CPU copies ``M.T`` before a dot, and
    contracts either axis of M without a copy."""
    a, b = x.args
    ranks = x.attrs.get("ranks", (2, 2))
    if ranks == (2, 1) and isinstance(a, Call) and a.op == "T":
        return f"{em.atom(b)} @ {em.atom(a.args[0])}", MUL
    if ranks == (1, 2) and isinstance(b, Call) and b.op == "T":
        return f"{em.atom(b.args[0])} @ {em.atom(a)}", MUL
    return f"{em.atom(a)} @ {em.atom(b)}", MUL


def _sigmoid(em, x):
    h = em.lit(0.5 * x.attrs["scale"])
    return f"0.5 * ({em.lib}.tanh({h} * {em.atom(x.args[0])}) + 1.0)", MUL


class JaxEmitter(Emitter):
    lib = "jnp"
    module = "jax.numpy"
    printer = "JaxPrinter"
    printer_module = "jax.numpy"

    OPS = {
        **NumpyEmitter.OPS,
        "dot": _matmul,
        "sigmoid": _sigmoid,
        "float": "{lib}.asarray({0})",
        "copy": "{0}",  # immutable: nothing to protect
        "scalar": "{lib}.asarray({0})",
    }

    def stmt_logdet(self, targets, x) -> list:
        sign, value = (t.name for t in targets)
        return [f"{sign}, {value} = {self.lib}.linalg.slogdet({self.expr(x.args[0])})",
                f"{value} = {self.lib}.where({sign} > 0, {value}, {self.lib}.nan)"]


Emitter = JaxEmitter


def read(value, name, rank):
    """A JAX argument: a jax array (a tracer under jit/vmap) of a floating dtype, or a
    Python float for a scalar given as a Python number (weak: float32 stays float32)."""
    if rank == 0:
        number = python_number(value)
        if number is not None:
            return number
    if isinstance(value, jax.Array):
        kind = np.dtype(value.dtype).kind
        if kind == "c":
            raise ShapeError("argument %r is complex (dtype %s); only real values are accepted"
                             % (name, value.dtype))
        if kind in "biu":
            value = value.astype(jax.dtypes.canonicalize_dtype(np.float64))
        elif kind != "f":
            raise ShapeError("argument %r has values (dtype %s), not real numbers" % (name, value.dtype))
        if rank == 0 and value.shape:
            raise ShapeError("argument %r must be a scalar (shape ()), got an array of shape %s"
                             % (name, tuple(value.shape)))
        return value
    array = as_real_array(value, name)
    if rank == 0:
        check_scalar(array, name)
    return jnp.asarray(array)


FAST_ARRAY = None  # every argument goes through read (under jit it runs once, while tracing)
FAST_SCALAR = None


def modules():
    return {"jnp": jnp}


def frame_lines(em, refs) -> list:
    return [f"{em.dtype} = {em.lib}.result_type({', '.join(refs) or '0.0'})"]


codegen_frame_lines = frame_lines
