"""Moving between mathcalc and SymPy's matrix expressions.

``from_sympy`` reads a SymPy matrix expression (MatrixSymbol, MatMul, MatAdd,
Transpose, Inverse, Determinant, Trace, HadamardProduct, HadamardPower,
ElementwiseApplyFunction, Identity, ZeroMatrix, OneMatrix, DiagMatrix,
DiagonalOf, scalar Symbols and arithmetic) into an Expr. SymPy has no
vectors: an n×1 MatrixSymbol is a column vector, 1×n a row vector, and a 1×1
product such as ``x.T*A*x`` is a scalar. ``to_sympy`` goes the other way for
results that have a matrix form. Only SymPy objects are read, never text.

Element-wise functions go over as SymPy's own, so SymPy can evaluate,
simplify and lambdify them: ``abs`` is ``Abs``, ``sign`` is ``sign``,
``step`` is ``Heaviside(u, 0)`` (the kink convention: step(0) = 0), ``relu``
is ``Max(0, u)``, ``sigmoid`` is ``1/(1 + exp(-u))`` and ``softplus`` is
``log(1 + exp(u))``. ``from_sympy`` reads them back: ``Abs``, ``sign``, those
two forms of sigmoid and softplus, and ``Heaviside(u, H0)``, which is
``step(u)`` for H0 = 0 and otherwise the exact expression with value H0 at
0: ``(1 + sign(u))/2`` for H0 = 1/2 (SymPy's default, ``Heaviside(u)``),
``1 - step(-u)`` for 1, ``(1 - H0)*step(u) + H0*(1 - step(-u))`` for other
numbers; a symbolic H0 is a MathcalcError. ``Max(0, u)`` reads back as
``max(0, u)`` (the same values and derivative as ``relu(u)``).
"""

from __future__ import annotations

from fractions import Fraction

import sympy
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.matexpr import MatrixElement

from . import nodes as E
from . import functions as F
from .calls import KIND_NAMES, MATMUL, TRANSPOSED
from .calls import C as COLUMN, M as MATRIX, R as ROW, S as SCALAR
from .errors import MathcalcError, ShapeError
from .printing import tree as M
from .printing.recognise import recognise


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


def node_from_sympy(obj) -> E.Node:
    """A node equal to a SymPy matrix (or scalar) expression (``mc.from_sympy`` wraps it in
    an Expr: this module sits below the public Expr, whose ``to_sympy`` reads it)."""
    if not isinstance(obj, sympy.Basic):
        raise MathcalcError(f"from_sympy expects a SymPy expression, got {type(obj).__name__}")
    # Element-wise functions: each row of the table (functions.py) says its form in
    # SymPy's own functions (``sympy_own``) and how that form reads back (``read_own``).
    node, _ = _read(F.table_heads(obj))
    return node


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
        return (E.transpose(node) if kind == MATRIX else node), TRANSPOSED[kind]
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
    if isinstance(s, MatrixElement):
        if tuple(s.parent.shape) != (1, 1):
            raise MathcalcError(f"no mathcalc form for the matrix entry {s}")
        node, _ = _read(s.parent)
        return node, SCALAR
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
    if isinstance(s, (sympy.Max, sympy.Min)):
        make = E.maximum if isinstance(s, sympy.Max) else E.minimum
        args = [_read(a)[0] for a in s.args]
        node = args[0]
        for other in args[1:]:
            node = make(node, other)
        return node
    if isinstance(s, sympy.Function) and len(s.args) == 1:
        name = F.sympy_head(s.func) or s.func.__name__
        if name in F.FUNCTIONS:
            return E.apply(name, _read(s.args[0])[0])
    raise MathcalcError(f"no mathcalc form for SymPy's {type(s).__name__}: {s}")


def _add(parts):
    kinds = {k for _, k in parts}
    if len(kinds) > 1:
        raise ShapeError(f"SymPy sum mixes {', '.join(sorted(KIND_NAMES[k] for k in kinds))}")
    return E.add(*[n for n, _ in parts]), parts[0][1]


def _multiply(left, right):
    (a, ka), (b, kb) = left, right
    if ka == SCALAR or kb == SCALAR:
        scalar, other, kind = (a, b, kb) if ka == SCALAR else (b, a, ka)
        return E.hadamard(scalar, other), kind
    if (ka, kb) not in MATMUL:  # matrix algebra: no column·column
        raise ShapeError(f"cannot multiply a {KIND_NAMES[ka]} by a {KIND_NAMES[kb]}")
    kind, spec = MATMUL[(ka, kb)]
    return E.einsum(spec, a, b), kind


# ---------------------------------------------------------------------------
# to_sympy: over the printer's matrix-notation AST, so the two always agree on
# the form; vectors become n×1 MatrixSymbols and scalar-valued products their
# single entry.


def to_sympy(node: E.Node):
    """A SymPy matrix (or scalar) expression equal to ``node``."""
    shapes = {n.name: n.shape for n in E.walk(node) if isinstance(n, E.Var)}
    return _SympyBuilder(shapes, M).build(recognise(node))


def _entry(m):
    """The scalar in a 1×1 matrix expression, kept symbolic (indexing it would expand sums)."""
    return sympy.Trace(m)


def _sym_dim(d):
    return sympy.Integer(d) if isinstance(d, int) else sympy.Symbol(d, integer=True, positive=True)


class _SympyBuilder:
    def __init__(self, shapes, tree):
        self.shapes = shapes
        self.M = tree

    def build(self, ast):
        M = self.M
        method = getattr(self, "_" + type(ast).__name__, None)
        if method is None:
            raise MathcalcError(f"no SymPy form for {type(ast).__name__}")
        out = method(ast)
        if ast.kind == M.SCALAR and isinstance(out, sympy.MatrixExpr):
            return _entry(out)
        return out

    def _Leaf(self, ast):
        role = ast.role
        if role == "number":
            return sympy.Rational(ast.text) if "/" in ast.text or "." in ast.text or \
                ast.text.isdigit() else sympy.Float(ast.text)
        if role in ("var", "symmetric"):  # symmetric: declared so (SPEC 6)
            shape = self.shapes[ast.text]
            if len(shape) == 0:
                return sympy.Symbol(ast.text)
            rows, cols = (shape[0], 1) if len(shape) == 1 else shape
            return sympy.MatrixSymbol(ast.text, _sym_dim(rows), _sym_dim(cols))
        dims = [_sym_dim(d) for d in ast.dims]
        if role == "eye":
            return sympy.Identity(dims[0])
        rows, cols = (dims[0], sympy.Integer(1)) if len(dims) == 1 else dims
        return (sympy.OneMatrix if role == "ones" else sympy.ZeroMatrix)(rows, cols)

    def _Transpose(self, ast):
        inner = self.build(ast.arg)
        return inner if not isinstance(inner, sympy.MatrixExpr) else sympy.Transpose(inner).doit()

    def _Neg(self, ast):
        return -self.build(ast.arg)

    def _Power(self, ast):
        base, exponent = self.build(ast.base), self.build(ast.exponent)
        if isinstance(base, sympy.MatrixExpr):
            return sympy.HadamardPower(base, exponent)
        return base ** exponent

    def _MatMul(self, ast):
        return sympy.MatMul(*[self.build(f) for f in ast.factors]).doit()

    def _Hadamard(self, ast):
        parts = [self.build(f) for f in ast.factors]
        parts += [sympy.HadamardPower(self.build(d), -1) for d in ast.divisors]
        mats = [p for p in parts if isinstance(p, sympy.MatrixExpr)]
        scalars = [p for p in parts if not isinstance(p, sympy.MatrixExpr)]
        body = sympy.HadamardProduct(*mats) if len(mats) > 1 else mats[0]
        return sympy.Mul(*scalars) * body if scalars else body

    def _Scaled(self, ast):
        result = sympy.Integer(1)
        if ast.number is not None:
            result = sympy.Rational(ast.number)
        for s in ast.scalars:
            result = result * self.build(s)
        for d in ast.divisors:
            result = result / self.build(d)
        return result * self.build(ast.body) if ast.body is not None else result

    def _Add(self, ast):
        values = []
        for sign, term in ast.terms:
            value = self.build(term)
            values.append(-value if sign == "-" else value)
        shape = next((v.shape for v in values if isinstance(v, sympy.MatrixExpr)), None)
        if shape is not None:  # a scalar term broadcasts over the others
            values = [v if isinstance(v, sympy.MatrixExpr) else v * sympy.OneMatrix(*shape)
                      for v in values]
            return sympy.MatAdd(*values).doit()
        return sympy.Add(*values)

    def _Call(self, ast):
        name = ast.name
        args = [self.build(a) for a in ast.args]
        x = args[0]
        matrix = isinstance(x, sympy.MatrixExpr)
        if name in F.FUNCTIONS:
            scalar = F.own_form(F.FUNCTIONS[name].scalar)
            if not matrix:
                return scalar.subs(F.U, x)
            d = sympy.Dummy("d")
            return ElementwiseApplyFunction(sympy.Lambda(d, scalar.subs(F.U, d)), x)
        if name in ("max", "min"):
            head = sympy.Max if name == "max" else sympy.Min
            mats = [a for a in args if isinstance(a, sympy.MatrixExpr)]
            if not mats:
                return head(*args)
            if len(mats) == 2:
                raise MathcalcError(f"{name} of two matrices has no SymPy matrix-expression form")
            d = sympy.Dummy("d")
            inner = head(*[d if isinstance(a, sympy.MatrixExpr) else a for a in args])
            return ElementwiseApplyFunction(sympy.Lambda(d, inner), mats[0])
        if name == "tr":
            return sympy.Trace(x)
        if name == "det":
            return sympy.Determinant(x)
        if name == "logdet":
            return sympy.log(sympy.Determinant(x))
        if name == "inv":
            return sympy.Inverse(x)
        if name == "sum":
            if not matrix:
                return x
            rows, cols = x.shape
            return _entry(sympy.OneMatrix(1, rows) * x * sympy.OneMatrix(cols, 1))
        if name == "diag":
            return DiagonalOf(x) if x.shape[1] != 1 else DiagMatrix(x)
        if name == "norm2":
            return sympy.sqrt(_entry(sympy.Transpose(x) * x) if x.shape[1] == 1
                              else sympy.Trace(sympy.Transpose(x) * x))
        if name in ("softmax", "logsumexp", "norm1"):
            d = sympy.Dummy("d")
            inner = {"norm1": sympy.Abs(d)}.get(name, sympy.exp(d))
            mapped = ElementwiseApplyFunction(sympy.Lambda(d, inner), x)
            total = _entry(sympy.OneMatrix(1, x.shape[0]) * mapped * sympy.OneMatrix(x.shape[1], 1))
            if name == "softmax":
                return mapped / total
            return sympy.log(total) if name == "logsumexp" else total
        raise MathcalcError(f"{name}(...) has no SymPy matrix-expression form")

    def _Indexed(self, ast):
        raise MathcalcError("a result in index notation has no SymPy matrix form")
