"""The numpy emitter: op → numpy call, and how lambdify reads numpy arguments.

In lambdify's source matrix products are ``a.dot(b)`` (cheaper than ``@`` on
small arrays); in pasted source they are ``a @ b``. Placements of a value on
a diagonal (Hessian blocks) and masked fills write into a fresh
``np.zeros`` array: the fastest form in numpy, and numpy arrays are mutable.
"""

from __future__ import annotations

import numpy as np

from .. import functions as F
from ..errors import ShapeError
from .emit import ATOM, MUL, Emitter, sigmoid_tanh
from .lower import subscripts


def _dot(em, x):
    a, b = (em.atom(v) for v in x.args)
    return (f"{a} @ {b}", MUL) if em.standalone else (f"{a}.dot({b})", ATOM)


def fn_call(em, x):
    """A registered function: its numpy implementation (lambdify) or its SymPy form printed."""
    name = x.attrs["name"]
    bound = em.functions.get(name)
    if bound is not None:
        return f"{bound}({em.expr(x.args[0])})", ATOM
    return em.printed(name, x.args[0]), ATOM


class NumpyEmitter(Emitter):
    lib = "np"
    module = "numpy"
    backend = "numpy"

    OPS = {
        **F.spellings("numpy"),  # element-wise functions: their rows (functions.py)
        "dot": _dot,
        "T": "{a0}.T",
        "permute": "{lib}.transpose({0}, {perm})",
        "sum": "{lib}.sum({0})",
        "sum_axis": "{a0}.sum(axis={axes})",
        "max": "{lib}.max({0})",
        "diagonal": "{lib}.diagonal({0})",
        "trace": "{lib}.trace({0})",
        "einsum": lambda em, x: (f"{em.lib}.einsum({x.attrs['spec']!r}, "
                                 f"{', '.join(em.expr(a) for a in x.args)}"
                                 f"{', optimize=True' if x.attrs.get('optimize') else ''})", ATOM),
        "tensordot": "{lib}.tensordot({0}, {1}, axes=({axes_a}, {axes_b}))",
        "vdot": "{lib}.vdot({0}, {1})",
        "index": lambda em, x: (f"{em.atom(x.args[0])}[{em.index(x.attrs['present'])}]", ATOM),
        "zeros": "{lib}.zeros({0}, dtype={dtype})",
        "ones": "{lib}.ones({0}, dtype={dtype})",
        "eye": "{lib}.eye({0}, dtype={dtype})",
        "full": "{lib}.full({0}, {1}, dtype={dtype})",
        "float": "{lib}.float64({0})",
        "sigmoid": sigmoid_tanh,
        "maximum": "{lib}.maximum({0}, {1})",
        "minimum": "{lib}.minimum({0}, {1})",
        "power": "{lib}.power({0}, {1})",
        "inv": "{lib}.linalg.inv({0})",
        "det": "{lib}.linalg.det({0})",
        "norm2": "{lib}.linalg.norm({0})",
        "fn": fn_call,
        "copy": "{lib}.array({0})",
        # a numpy scalar of the result's dtype (a Python float only from constants)
        "scalar": "{0} if type({0}) is not float else {lib}.float64({0})",
    }

    def stmt_logdet(self, targets, x) -> list:
        sign, value = (t.name for t in targets)
        return [f"{sign}, {value} = {self.lib}.linalg.slogdet({self.expr(x.args[0])})",
                f"{value} = {value} if {sign} > 0 else {value} * {self.lib}.nan"]

    def stmt_embed(self, targets, x) -> list:
        """Write the value into the diagonal (a view) of a zero array: no dense δ."""
        (t,) = targets
        value, shape = x.args
        out, labels = x.attrs["out"], x.attrs["labels"]
        reps = list(dict.fromkeys(out))
        code = "1.0" if value is None else self.atom(value)
        if value is not None and labels:
            present = [r in labels for r in reps]
            first = present.index(True)
            if not all(present[first:]):
                code = f"{code}[{self.index(present[first:])}]"
        if len(reps) != len(out):
            view_letters, rep_letters = subscripts(out, reps)
            return [f"{t.name} = {self.lib}.zeros({self.shape(shape)}, dtype={self.dtype})",
                    f"{self.lib}.einsum({view_letters + '->' + rep_letters!r}, {t.name})[...] = {code}"]
        return [f"{t.name} = {self.lib}.empty({self.shape(shape)}, dtype={self.dtype})",
                f"{t.name}[...] = {code}"]

    def stmt_masked(self, targets, x) -> list:
        """``G = zeros; G[u > 0] = rest``: the rows of the mask filled, no 0/1 product."""
        (t,) = targets
        arg, rest, shape = x.args
        return [f"{t.name} = {self.lib}.zeros({self.shape(shape)}, dtype={self.dtype})",
                f"{t.name}[{self.atom(arg)} > 0] = {self.expr(rest)}"]



# ---------------------------------------------------------------------------
# Reading arguments (lambdify): numpy arrays of real numbers, dtype kept when floating.


def as_real_array(value, name):
    """``value`` as a numpy array of real numbers (floating dtype kept, others float64),
    or a ShapeError saying what is wrong with it."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # a ragged nested list, an object numpy cannot read
        what = "is ragged (nested lists of different lengths)" if "inhomogeneous" in str(exc) \
            else "cannot be read as an array"
        raise ShapeError("argument %r %s: %s" % (name, what, exc)) from None
    kind = array.dtype.kind
    if kind == "f":
        return array
    if kind == "c":
        raise ShapeError("argument %r is complex (dtype %s); only real values are accepted"
                         % (name, array.dtype))
    if kind == "O":  # Python objects: real numbers (Fraction, Decimal) only
        for item in array.flat:
            try:
                if isinstance(item, (str, bytes, complex, np.complexfloating)):
                    raise TypeError
                float(item)
            except Exception:
                raise ShapeError("argument %r %s a value of type %s (%.60r), not a real number" % (
                    name, "is" if array.ndim == 0 else "holds", type(item).__name__, item)) from None
    elif kind not in "biu":
        raise ShapeError("argument %r %s (dtype %s), not real numbers" % (
            name, "is a string" if kind in "US" else "has values", array.dtype))
    return array.astype(np.float64)


def python_number(value):
    """A Python int or float as a float (a weak scalar: float32 arrays stay float32)."""
    if type(value) in (int, float):
        return float(value)
    return None


def read(value, name, rank):
    """A numpy argument: an array of a floating dtype, or for a scalar a Python float or
    a numpy floating scalar."""
    if rank == 0:
        number = python_number(value)
        if number is not None:
            return number
    array = as_real_array(value, name)
    return check_scalar(array, name)[()] if rank == 0 else array


def read_native(value, name, rank, native, cast, wrap):
    """The argument reader of an array library: a Python number stays a (weak) float for
    a scalar; an array of the library (``native``) is kept when floating, ``cast`` to
    float64 when integer or boolean; anything else is read by numpy (``as_real_array``)
    and ``wrap(array, rank)``-ped into the library."""
    if rank == 0:
        number = python_number(value)
        if number is not None:
            return number
    if isinstance(value, native):
        kind = np.dtype(value.dtype).kind
        if kind == "c":
            raise ShapeError("argument %r is complex (dtype %s); only real values are accepted"
                             % (name, value.dtype))
        if kind in "biu":
            value = cast(value)
        elif kind != "f":
            raise ShapeError("argument %r has values (dtype %s), not real numbers" % (name, value.dtype))
        if rank == 0 and value.shape:
            raise ShapeError("argument %r must be a scalar (shape ()), got an array of shape %s"
                             % (name, tuple(value.shape)))
        return value
    array = as_real_array(value, name)
    if rank == 0:
        check_scalar(array, name)
    return wrap(array, rank)


def check_scalar(array, name):
    if array.shape:
        raise ShapeError("argument %r must be a scalar (shape ()), got an array of shape %s"
                         % (name, array.shape))
    return array


# The condition under which an argument is taken as it is (a few hundred ns saved
# per argument against ``read``); {v} is the argument, {lib} numpy's alias.
FAST_ARRAY = "type({v}) is {lib}.ndarray and {v}.dtype.kind == 'f'"
FAST_SCALAR = "type({v}) is float"


def modules():
    return {"np": np}


def frame_lines(em, refs) -> list:
    """Lines binding the result dtype (``F``) from the arguments."""
    return [f"{em.dtype} = {em.lib}.result_type({', '.join(refs) or '0.0'})"]


def codegen_frame_lines(em, params) -> list:
    return [f"{em.dtype} = {em.lib}.result_type({', '.join(params)})"]


Emitter = NumpyEmitter
