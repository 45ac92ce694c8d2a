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

from .. import functions as F
from .emit import MUL, Emitter, sigmoid_tanh
from .ir import Call
from .numpy import NumpyEmitter, read_native


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


class JaxEmitter(Emitter):
    lib = "jnp"
    module = "jax.numpy"
    printer = "JaxPrinter"
    printer_module = "jax.numpy"
    backend = "jax"

    OPS = {
        **NumpyEmitter.OPS,
        **F.spellings("jax"),
        "dot": _matmul,
        "sigmoid": sigmoid_tanh,
        "float": "{lib}.asarray({0})",
        "copy": "{0}",  # immutable: nothing to protect
        "scalar": "{lib}.asarray({0})",
    }


Emitter = JaxEmitter


def read(value, name, rank):
    """A JAX argument: a jax array (a tracer under jit/vmap) of a floating dtype, or a
    Python float for a scalar given as a Python number (weak: float32 stays float32)."""
    return read_native(value, name, rank, jax.Array,
                       lambda v: v.astype(jax.dtypes.canonicalize_dtype(np.float64)),
                       lambda array, rank: jnp.asarray(array))


FAST_ARRAY = None  # every argument goes through read (under jit it runs once, while tracing)
FAST_SCALAR = None


def modules():
    return {"jnp": jnp}


def frame_lines(em, refs) -> list:
    return [f"{em.dtype} = {em.lib}.result_type({', '.join(refs) or '0.0'})"]


codegen_frame_lines = frame_lines
