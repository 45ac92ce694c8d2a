"""Moving between mathcalc and SymPy's matrix expressions.

``from_sympy`` reads a SymPy matrix expression (MatrixSymbol, MatMul, MatAdd,
Transpose, Inverse, Determinant, Trace, HadamardProduct, HadamardPower,
ElementwiseApplyFunction, Identity, ZeroMatrix, OneMatrix, DiagMatrix,
DiagonalOf, scalar Symbols and arithmetic) into an Expr. SymPy has no
vectors: an n×1 MatrixSymbol is a column vector, 1×n a row vector, and a 1×1
product such as ``x.T*A*x`` is a scalar. ``to_sympy`` goes the other way for
results that have a matrix form. Only SymPy objects are read, never text.
"""

from __future__ import annotations

from fractions import Fraction

import sympy
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

from . import expr as E
from . import functions as F
from .errors import MathcalcError, ShapeError
from .expression import Expr

SCALAR, COLUMN, ROW, MATRIX = "scalar", "column", "row", "matrix"


def _dim(d):
    if isinstance(d, (int, sympy.Integer)):
        return int(d)
    if isinstance(d, sympy.Symbol):
        return d.name
    raise MathcalcError(f"dimension {d} is neither an integer nor a symbol")


def _kind_of_shape(rows, cols):
    if rows == 1 and cols == 1:
        return SCALAR
    if cols == 1:
        return COLUMN
    if rows == 1:
        return ROW
    return MATRIX


def from_sympy(obj) -> Expr:
    """An Expr equal to a SymPy matrix (or scalar) expression."""
    if not isinstance(obj, sympy.Basic):
        raise MathcalcError(f"from_sympy expects a SymPy expression, got {type(obj).__name__}")
    node, _ = _read(obj)
    return Expr(node)


def _read(s):
    """(node, kind) for a SymPy object."""
    if isinstance(s, sympy.MatrixSymbol):
        rows, cols = s.shape
        kind = _kind_of_shape(rows, cols)
        name = s.name
        if kind == SCALAR:
            return E.var(name), SCALAR
        if kind == COLUMN:
            return E.var(name, (_dim(rows),)), COLUMN
        if kind == ROW:
            return E.var(name, (_dim(cols),)), ROW
        return E.var(name, (_dim(rows), _dim(cols))), MATRIX
    if isinstance(s, sympy.Identity):
        return E.eye(_dim(s.shape[0])), MATRIX
    if isinstance(s, (sympy.ZeroMatrix, sympy.OneMatrix)):
        rows, cols = s.shape
        kind = _kind_of_shape(rows, cols)
        shape = {SCALAR: (), COLUMN: (_dim(rows),), ROW: (_dim(cols),),
                 MATRIX: (_dim(rows), _dim(cols))}[kind]
        make = E.zeros if isinstance(s, sympy.ZeroMatrix) else E.ones
        return make(shape), kind
    if isinstance(s, sympy.Transpose):
        node, kind = _read(s.arg)
        flipped = {COLUMN: ROW, ROW: COLUMN}.get(kind, kind)
        return (E.transpose(node) if kind == MATRIX else node), flipped
    if isinstance(s, sympy.Inverse):
        node, _ = _read(s.arg)
        return E.inv(node), MATRIX
    if isinstance(s, sympy.Determinant):
        return E.det(_read(s.arg)[0]), SCALAR
    if isinstance(s, sympy.Trace):
        node, kind = _read(s.arg)
        return (E.trace(node) if kind == MATRIX else node), SCALAR
    if isinstance(s, DiagMatrix):
        node, _ = _read(s.args[0])
        return E.diag_matrix(node), MATRIX
    if isinstance(s, DiagonalOf):
        node, _ = _read(s.arg)
        return E.diag_vector(node), COLUMN
    if isinstance(s, sympy.MatAdd) or (isinstance(s, sympy.Add) and not s.is_commutative):
        parts = [_read(a) for a in s.args]
        return _add(parts)
    if isinstance(s, sympy.MatMul):
        parts = [_read(a) for a in s.args]
        node, kind = parts[0]
        for right in parts[1:]:
            node, kind = _multiply((node, kind), right)
        return node, kind
    if isinstance(s, sympy.HadamardProduct):
        parts = [_read(a) for a in s.args]
        node, kind = parts[0]
        for other, _ in parts[1:]:
            node = E.hadamard(node, other)
        return node, kind
    if isinstance(s, sympy.HadamardPower):
        base, kind = _read(s.base)
        exponent, _ = _read(s.exp)
        return E.power(base, exponent), kind
    if isinstance(s, sympy.MatPow):
        base, kind = _read(s.base)
        k = s.exp
        if not (k.is_Integer and k != 0):
            raise MathcalcError(f"matrix power {k} has no mathcalc form")
        result = base
        for _ in range(abs(int(k)) - 1):
            result = E.einsum("ij,jk->ik", result, base)
        return (E.inv(result) if k < 0 else result), kind
    if isinstance(s, ElementwiseApplyFunction):
        node, kind = _read(s.expr)
        lam = s.function
        if isinstance(lam, sympy.Lambda):
            (u,) = lam.variables
            return F.from_scalar_sympy(lam.expr.subs(u, F.U), node), kind
        return F.from_scalar_sympy(lam(F.U), node), kind
    if getattr(s, "is_Matrix", False) or isinstance(s, sympy.MatrixExpr):
        raise MathcalcError(f"no mathcalc form for SymPy's {type(s).__name__}")
    return _read_scalar(s), SCALAR


def _read_scalar(s):
    if s.is_Rational:
        return E.num(Fraction(int(s.p), int(s.q)))
    if s.is_Number:
        return E.num(float(s))
    if isinstance(s, sympy.Symbol):
        return E.var(s.name)
    if isinstance(s, sympy.Add):
        return E.add(*[_read(a)[0] for a in s.args])
    if isinstance(s, sympy.Mul):
        return E.product([(_read(a)[0], ()) for a in s.args], ())
    if isinstance(s, sympy.Pow):
        return E.power(_read(s.base)[0], _read(s.exp)[0])
    if isinstance(s, sympy.log) and isinstance(s.args[0], sympy.Determinant):
        return E.logdet(_read(s.args[0].arg)[0])
    if isinstance(s, sympy.Function) and len(s.args) == 1:
        name = F._SYMPY_HEADS.get(s.func) or s.func.__name__
        if name in F.FUNCTIONS:
            return E.apply(name, _read(s.args[0])[0])
    raise MathcalcError(f"no mathcalc form for SymPy's {type(s).__name__}: {s}")


def _add(parts):
    kinds = {k for _, k in parts}
    if len(kinds) > 1:
        raise ShapeError(f"SymPy sum mixes {', '.join(sorted(kinds))}")
    return E.add(*[n for n, _ in parts]), parts[0][1]


def _multiply(left, right):
    (a, ka), (b, kb) = left, right
    if ka == SCALAR or kb == SCALAR:
        scalar, other, kind = (a, b, kb) if ka == SCALAR else (b, a, ka)
        return E.hadamard(scalar, other), kind
    table = {
        (MATRIX, MATRIX): ("ij,jk->ik", MATRIX),
        (MATRIX, COLUMN): ("ij,j->i", COLUMN),
        (ROW, MATRIX): ("i,ij->j", ROW),
        (ROW, COLUMN): ("i,i->", SCALAR),
        (COLUMN, ROW): ("i,j->ij", MATRIX),
    }
    if (ka, kb) not in table:
        raise ShapeError(f"cannot multiply a {ka} by a {kb}")
    spec, kind = table[(ka, kb)]
    return E.einsum(spec, a, b), kind


# ---------------------------------------------------------------------------
# to_sympy: through the printer's matrix-notation recognition, so both agree.


def to_sympy(node: E.Node):
    """A SymPy matrix expression equal to ``node`` (vectors become n×1 matrices)."""
    from .printing import recognise

    return recognise.to_sympy(node)
