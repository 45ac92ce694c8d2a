"""Lowering: an Expr DAG as a backend-neutral straight-line program (``ir.Program``).

Each distinct node is computed once, as a named temporary (``shared_nodes``
says which nodes have several users: those are the subexpressions a program
computes once and reuses). Products become matrix products (``dot``),
``tensordot`` or broadcast multiplications where their index pattern allows;
identities (``Delta``) and ``Ones`` are never materialised inside a product;
a product of three or more tensors is contracted pairwise in the order the
cost model (``cost.best_path``) picks for the sizes given (the argument
sizes in lambdify; ``cost.ASSUMED_SIZE`` for every named dimension in
codegen, so pasted code has one order and no size branches).

Two patterns an expert writes by hand are recognised:

- ``X'*diag(d)*X`` with ``d`` provably non-negative (``y .^ 2 .* s .* (1 - s)``,
  s a sigmoid; a square) is ``Xs'*Xs`` with ``Xs = X .* sqrt(d)`` (one
  symmetric product, half the flops: BLAS syrk where the library has it);
- a 0/1 mask times an outer product (``step(W*x + b)*x'``) is a masked fill
  (``where(u > 0, x, 0)``, in numpy ``G = zeros; G[u > 0] = x``).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

from .. import nodes as E
from .. import functions as F
from ..errors import MathcalcError, ShapeError
from ..functions import FUNCTIONS
from . import cost
from .ir import Call, Lit, Program, Ref, Step

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Element-wise functions with an op of their own (their rows have a spelling for every
# emitter: ``op`` in functions.py), as the table ships; lowering reads each row's ``op``.
# Any other function of the table is the op ``fn`` with its name.
BUILTIN_FUNCTIONS = tuple(f.name for f in F.builtin_rows() if f.op)


def subscripts(*label_lists) -> list:
    """einsum subscripts for the label lists of one call, letters given in order.

    Labels are a product's index numbers, which exceed the 52 letters in a
    deep chain's derivative; one call names only the labels it uses.
    """
    letters: dict = {}
    for labels in label_lists:
        for label in labels:
            if label not in letters:
                if len(letters) == len(_LETTERS):
                    raise ShapeError(f"an einsum over more than {len(_LETTERS)} indices")
                letters[label] = _LETTERS[len(letters)]
    return ["".join(letters[l] for l in labels) for labels in label_lists]


def shared_nodes(node: E.Node) -> list:
    """The non-leaf nodes of the DAG with more than one user, in evaluation order:
    what a lowered program computes once and reads again (for where-forms that
    name the same subexpressions as the generated code)."""
    users: dict = {}
    order = E.walk(node)
    for n in order:
        for child in n.children():
            users[child] = users.get(child, 0) + 1
    return [n for n in order if users.get(n, 0) > 1 and not isinstance(n, _LEAVES)]


# ---------------------------------------------------------------------------
# Bounds: which values are provably non-negative (for the syrk form).

def bounds(node: E.Node, memo: dict | None = None):
    """(lo, hi) with every entry of ``node`` in [lo, hi] (None: unbounded), or None."""
    memo = {} if memo is None else memo
    if node in memo:
        return memo[node]
    memo[node] = result = _bounds(node, memo)
    return result


def _bounds(node, memo):
    if isinstance(node, E.Num):
        v = float(node.value)
        return (v, v)
    if isinstance(node, E.Ones):
        return (1.0, 1.0)
    if isinstance(node, E.Zero):
        return (0.0, 0.0)
    if isinstance(node, E.Apply):  # the range in the function's row
        entry = FUNCTIONS.get(node.fn)
        return entry.range if entry is not None else None
    if isinstance(node, E.Pow) and isinstance(node.exponent, E.Num):
        e = node.exponent.value
        if isinstance(e, Fraction) and e.denominator == 1 and e.numerator % 2 == 0:
            return (0.0, None)
        b = bounds(node.base, memo)
        return (0.0, None) if b is not None and b[0] is not None and b[0] >= 0 else None
    if isinstance(node, E.Max):
        a, b = bounds(node.left, memo), bounds(node.right, memo)
        los = [r[0] for r in (a, b) if r is not None and r[0] is not None]
        return (max(los), None) if los else None
    if isinstance(node, E.Sum):
        lo, hi = 0.0, 0.0
        for t in node.terms:
            b = bounds(t, memo)
            if b is None:
                return None
            lo = None if lo is None or b[0] is None else lo + b[0]
            hi = None if hi is None or b[1] is None else hi + b[1]
        return None if lo is None and hi is None else (lo, hi)
    if isinstance(node, E.Product):
        ranges = [bounds(f, memo) for f, _ in node.factors]
        if any(r is None for r in ranges):
            return None
        summed = {l for _, idx in node.factors for l in idx} - set(range(node.rank))
        if summed or any(isinstance(f, E.Delta) for f, _ in node.factors):
            ok = all(r[0] is not None and r[0] >= 0 for r in ranges)
            return (0.0, None) if ok and node.coef >= 0 else None
        lo, hi = float(node.coef), float(node.coef)
        for r in ranges:
            lo, hi = _interval_product((lo, hi), r)
            if lo is None and hi is None:
                return None
        return (lo, hi)
    return None


def _interval_product(a, b):
    inf = float("inf")
    alo, ahi = (-inf if a[0] is None else a[0]), (inf if a[1] is None else a[1])
    blo, bhi = (-inf if b[0] is None else b[0]), (inf if b[1] is None else b[1])
    cands = [x * y for x in (alo, ahi) for y in (blo, bhi) if not (x == 0 or y == 0)] + \
        ([0.0] if 0 in (alo, ahi, blo, bhi) else [])
    lo, hi = min(cands), max(cands)
    return (None if lo == -inf else lo, None if hi == inf else hi)


def nonnegative(node: E.Node) -> bool:
    b = bounds(node)
    return b is not None and b[0] is not None and b[0] >= 0


# ---------------------------------------------------------------------------
# The lowering context


_LEAVES = (E.Var, E.Num, E.Zero, E.Ones, E.Delta)


def _is_operand(x) -> bool:
    return isinstance(x, (Ref, Lit))


def C(op, *args, **attrs) -> Call:
    return Call(op, *args, **attrs)


def mul(*parts):
    parts = [p for p in parts if p is not None]
    return parts[0] if len(parts) == 1 else C("mul", *parts)


class _Lowering:
    def __init__(self, values: dict, dims: dict, temp, sizes):
        self.values = dict(values)  # node -> operand
        self.dims = dims  # dimension name -> Ref of its size
        self.temp = temp  # k -> a temporary's name
        self.sizes = sizes  # dimension name -> size, or None (not known: assumed)
        self.steps: list = []
        self.count = 0
        self.needs: set = set()
        self.dims_used: set = set()
        self.size_dependent = False
        self.fresh: set = set()  # names of arrays made here (never views of an argument)
        self.arguments = {v.name for v in values.values() if isinstance(v, Ref)}
        self.deferred: set = set()

    def tmp(self) -> Ref:
        self.count += 1
        return Ref(self.temp(self.count - 1))

    def assign(self, value):
        if _is_operand(value):
            return value
        ref = self.tmp()
        self.steps.append(Step((ref,), value))
        return ref

    def statement(self, value, n: int = 1):
        refs = tuple(self.tmp() for _ in range(n))
        self.steps.append(Step(refs, value))
        return refs

    def dim(self, d):
        if isinstance(d, int):
            return Lit(d)
        self.dims_used.add(d)
        return self.dims[d]

    def shape(self, shape) -> Call:
        return C("tuple", *[self.dim(d) for d in shape])

    def made(self, op, shape) -> Ref:
        """A new array of the result dtype (zeros, ones, eye)."""
        self.needs.add("dtype")
        ref = self.assign(C(op, self.shape(shape) if op != "eye" else self.dim(shape)))
        self.fresh.add(ref.name)
        return ref

    def val(self, node: E.Node):
        code = self.values.get(node)
        if code is None:
            code = _lower_leaf(node, self)
            self.values[node] = code
        return code


def _lower_leaf(node, ctx: _Lowering):
    if isinstance(node, E.Num):
        return Lit(float(node.value))
    if isinstance(node, E.Zero):
        return ctx.made("zeros", node.shape)
    if isinstance(node, E.Ones):
        return ctx.made("ones", node.shape)
    if isinstance(node, E.Delta):
        return ctx.made("eye", node.dim)
    raise MathcalcError(f"lambdify: node {type(node).__name__} was not computed before use")


# ---------------------------------------------------------------------------
# Lowering one Product node.
#
# A Product is ``coef * Σ Π factor[labels] -> 0..rank-1``. It is split into
#   - scalar factors (rank 0), multiplied in at the end;
#   - deltas whose two labels are both output axes: the result lives on a
#     diagonal; the other factors are computed with one label per delta group
#     and placed on that diagonal (``embed``: no dense δ in a contraction);
#   - ones factors: a summed label carried by nothing else multiplies by its
#     size, an output label carried by nothing else is a broadcast axis;
#   - dense factors: the "core" contraction, lowered to the cheapest form its
#     index pattern allows.


def lower_product(node: E.Product, ctx: _Lowering):
    rank = node.rank
    out = list(range(rank))
    parent = {}

    def find(label):
        while parent.get(label, label) != label:
            label = parent[label]
        return label

    scalars, dense, ones = [], [], []
    for factor, idx in node.factors:
        if isinstance(factor, E.Delta) and idx[0] != idx[1] and idx[0] < rank and idx[1] < rank:
            a, b = find(idx[0]), find(idx[1])
            if a != b:
                parent[max(a, b)] = min(a, b)
        elif isinstance(factor, E.Ones):
            ones.extend(idx)
        elif factor.rank == 0:
            scalars.append(ctx.val(factor))
        else:
            dense.append((factor, list(idx)))
    dense = [(f, [find(l) for l in labels]) for f, labels in dense]
    ones = {find(l) for l in ones}
    reps = [l for l in out if find(l) == l]
    has_delta = len(reps) != rank
    carried = {l for _, labels in dense for l in labels}
    core_out = [l for l in reps if l in carried]
    free = [l for l in reps if l not in carried]

    multipliers = [] if node.coef == 1 else [Lit(float(node.coef))]
    multipliers += scalars
    for label in sorted(ones):  # Σ_l 1 = size of l
        if label >= rank and label not in carried:
            multipliers.append(ctx.dim(node.dims[label]))

    if not has_delta and not free:
        special = _masked_outer(dense, out, multipliers, node, ctx)
        if special is None:
            special = _syrk(dense, out, multipliers, ctx)
        if special is not None:
            return special
    dense = [(ctx.val(f), labels, nonnegative(f)) for f, labels in dense]
    mult = mul(*multipliers) if multipliers else None
    if mult is not None and len(dense) >= 2:
        # Scale the smallest operand, not the result: 2*(x*v') scales v, not the outer product.
        k = min(range(len(dense)), key=lambda j: len(set(dense[j][1])))
        if len(set(dense[k][1])) < len(core_out):
            code, labels, _ = dense[k]
            dense[k] = (ctx.assign(mul(mult, code)), labels, False)
            mult = None

    core = _core(dense, core_out, node.dims, ctx) if dense else None
    if core is None:
        value = mult if mult is not None else Lit(1.0)
    elif isinstance(mult, Lit) and mult.value == -1:
        value = C("neg", core)
    elif mult is not None:
        value = C("mul", mult, core)
    else:
        value = core
    if not has_delta and not free:
        return ctx.assign(value)
    # Place the values on the diagonals / broadcast axes of a fresh array.
    ctx.needs.add("dtype")
    value = None if core is None and mult is None else ctx.assign(value)
    (target,) = ctx.statement(C("embed", value, ctx.shape(node.shape),
                                out=[find(l) for l in out], labels=core_out if core is not None else []))
    ctx.fresh.add(target.name)
    return target


def _masked_outer(dense, out, multipliers, node, ctx):
    """``step(u)[lead axes] * rest[other axes]``: a masked fill, not a product with a 0/1 array."""
    if len(dense) < 2:
        return None
    for k, (f, labels) in enumerate(dense):
        if isinstance(f, E.Apply) and f.fn == "step" and labels == out[:len(labels)] \
                and len(set(labels)) == len(labels):
            rest = [d for j, d in enumerate(dense) if j != k]
            trailing = out[len(labels):]
            if any(set(ls) & set(labels) for _, ls in rest) or \
                    {l for _, ls in rest for l in ls} & set(out) != set(trailing):
                continue
            operands = [(ctx.val(g), ls, False) for g, ls in rest]
            core = _core(operands, trailing, node.dims, ctx)
            value = ctx.assign(mul(*multipliers, core)) if multipliers else ctx.assign(core)
            ctx.needs.add("dtype")
            (target,) = ctx.statement(C("masked", ctx.val(f.arg), value, ctx.shape(node.shape),
                                        lead=len(labels)))
            ctx.fresh.add(target.name)
            return target
    return None


def _syrk(dense, out, multipliers, ctx):
    """``A'*diag(d)*A`` with ``d >= 0`` as ``As'*As``, ``As = A .* sqrt(d)`` (symmetric product)."""
    if len(out) != 2 or len(dense) < 3:
        return None
    mats = [(f, ls) for f, ls in dense if len(ls) == 2]
    vecs = [(f, ls) for f, ls in dense if len(ls) == 1]
    if len(mats) != 2 or len(mats) + len(vecs) != len(dense) or mats[0][0] != mats[1][0]:
        return None
    (a, la), (_, lb) = mats
    shared = set(la) & set(lb)
    if len(shared) != 1:
        return None
    (s,) = shared
    if s in out or la.index(s) != lb.index(s) or \
            sorted([l for l in la if l != s] + [l for l in lb if l != s]) != out:
        return None
    if any(ls != [s] or not nonnegative(f) for f, ls in vecs):
        return None
    scale = []
    if multipliers and len(multipliers) == 1 and isinstance(multipliers[0], Lit) \
            and multipliers[0].value > 0:
        scale, multipliers = [multipliers[0]], []
    d = ctx.assign(mul(*scale, *[ctx.val(f) for f, _ in vecs]))
    root = ctx.assign(C("sqrt", d))
    code = ctx.val(a)
    axis = la.index(s)
    scaled = ctx.assign(C("mul", code, C("index", root, present=(True, False))) if axis == 0
                        else C("mul", code, root))
    core = _pair(scaled, la, scaled, lb, out, ctx)
    return ctx.assign(C("mul", mul(*multipliers), core) if multipliers else core)


def _core(dense, out, dims, ctx):
    """The contraction of dense factors ``(operand, labels, nonneg)``, axes in ``out`` order."""
    # 1. Factors on the same indices multiply element-wise first (one pass over
    #    their entries): y.^2 .* s .* (1 - s) in X'*diag(…)*X is one vector, so
    #    what is left is a scaled X'X, not a five-operand einsum without BLAS.
    same: dict = {}
    for code, labels, _ in dense:
        same.setdefault(tuple(labels), []).append(code)
    if len(same) < len(dense) > 2:  # two alone are a dot or an element-wise product already
        dense = [(codes[0] if len(codes) == 1 else ctx.assign(mul(*codes)), list(key), False)
                 for key, codes in same.items()]
    # 2. Within each factor: take diagonals of repeated labels, sum labels no one else needs.
    prepared = []
    for k, (code, labels, _) in enumerate(dense):
        others = {l for j, (_, ls, _) in enumerate(dense) if j != k for l in ls}
        keep = [l for l in dict.fromkeys(labels) if l in out or l in others]
        if keep != labels:
            code = ctx.assign(_single(code, labels, keep))
        prepared.append((code, keep))
    summed = {l for _, ls in prepared for l in ls} - set(out)
    if len(prepared) == 1:
        code, labels = prepared[0]
        return _single(code, labels, out)
    if not summed:
        return _broadcast_product(prepared, out)
    if len(prepared) == 2:
        (a, la), (b, lb) = prepared
        return _pair(a, la, b, lb, out, ctx)
    return _many(prepared, out, dims, ctx)


def _single(code, labels, keep):
    """One factor read with output labels ``keep`` (transpose, diagonal, partial sum)."""
    labels = list(labels)
    if labels == keep:
        return code
    if len(set(labels)) == len(labels):
        if sorted(labels) == sorted(keep):  # a permutation
            if len(labels) == 2:
                return C("T", code)
            return C("permute", code, perm=tuple(labels.index(l) for l in keep))
        if not keep:
            return C("sum", code)
        kept_in_order = [l for l in labels if l in keep]
        if kept_in_order == keep:
            axes = tuple(p for p, l in enumerate(labels) if l not in keep)
            return C("sum_axis", code, axes=axes[0] if len(axes) == 1 else axes)
    elif len(labels) == 2:
        if keep == [labels[0]]:
            return C("diagonal", code)
        if not keep:
            return C("trace", code)
    spec = "->".join(subscripts(labels, keep))
    return C("einsum", code, spec=spec)


def _aligned(code, labels, out):
    """``code`` (axes ``labels``, a subsequence of ``out``) indexed to broadcast against ``out``."""
    present = [l in labels for l in out]
    if all(present) or not labels:
        return code
    first = present.index(True)
    if all(present[first:]):
        return code  # trailing axes align by themselves
    return C("index", code, present=tuple(present[first:]))


def _broadcast_product(operands, out):
    """Element-wise / outer products: no summed index, broadcasting does it all."""
    parts = []
    for code, labels in operands:
        order = sorted(labels, key=out.index)
        code = _single(code, labels, order) if order != labels else code
        parts.append(_aligned(code, order, out))
    return C("mul", *parts)


def _pair(a, la, b, lb, out, ctx):
    """Two factors: matrix products and tensordot where no index is batched."""
    shared = set(la) & set(lb)
    contracted = shared - set(out)
    batch = shared & set(out)
    if not contracted:
        return _broadcast_product([(a, la), (b, lb)], out)
    if batch:
        sa, sb, so = subscripts(la, lb, out)
        return C("einsum", a, b, spec=f"{sa},{sb}->{so}")
    ka = [l for l in la if l not in contracted]
    kb = [l for l in lb if l not in contracted]
    if len(contracted) == 1 and len(la) <= 2 and len(lb) <= 2:
        (c,) = contracted
        if out == kb + ka and out != ka + kb:
            (a, la, ka), (b, lb, kb) = (b, lb, kb), (a, la, ka)
        left = a if la[-1] == c else C("T", a)
        right = b if lb[0] == c else C("T", b)
        return C("dot", left, right, ranks=(len(la), len(lb)))
    if not out and len(la) == len(lb) == 2:  # Σ_ij A_ij B_ij or Σ_ij A_ij B_ji
        return C("vdot", a, b) if la == lb else C("vdot", a, C("T", b))
    axes = (tuple(la.index(l) for l in sorted(contracted)), tuple(lb.index(l) for l in sorted(contracted)))
    code = C("tensordot", a, b, axes_a=axes[0], axes_b=axes[1])
    if ka + kb != out:
        code = _single(ctx.assign(code), ka + kb, out)
    return code


def _many(operands, out, dims, ctx):
    """Three or more factors: pairwise, in the cost model's order for the sizes."""
    labels = [ls for _, ls in operands]
    if ctx.sizes is None and cost.order_depends_on_sizes(labels, out, dims):
        ctx.size_dependent = True  # lambdify compiles a program per size signature
    path = cost.best_path(labels, out, dims, ctx.sizes or {})
    if path is None:
        subs = subscripts(*labels, out)
        return C("einsum", *[code for code, _ in operands],
                 spec=",".join(subs[:-1]) + "->" + subs[-1], optimize=True)
    ops = list(operands)
    for i, j in path:
        (a, la), (b, lb) = ops[i], ops[j]
        ops = [op for k, op in enumerate(ops) if k not in (i, j)]
        if not ops:
            return _pair(a, la, b, lb, out, ctx)
        needed = set(out) | {l for _, ls in ops for l in ls}
        keep = [l for l in la if l in needed] + [l for l in lb if l in needed and l not in la]
        ops.append((ctx.assign(_pair(a, la, b, lb, keep, ctx)), keep))
    raise AssertionError("contraction path did not end in one operand")  # pragma: no cover


# ---------------------------------------------------------------------------
# The other node types: one function each; an unknown type raises.


def _scaled_terms(order, root) -> set:
    """Products with a coefficient that only sums (or sigmoid) use: the user applies it.

    ``2*A*x - 2*B*y`` is then ``2.0 * (a - b)``: one scaling and one
    subtraction, not a scaling of each term and an addition.
    """
    parents: dict = {}
    for n in order:
        for child in n.children():
            kind = ("apply", n.fn) if isinstance(n, E.Apply) else type(n)
            parents.setdefault(child, set()).add(kind)
    # Functions whose op scales its argument (``scaled`` rows): sigmoid(c*u) costs no
    # pass more than sigmoid(u).
    takers = {E.Sum} | {("apply", f.name) for f in FUNCTIONS.values() if f.scaled}
    return {n for n in order if isinstance(n, E.Product) and n.coef != 1 and n is not root
            and parents.get(n) and parents[n] <= takers}


def _unscaled(term, ctx) -> tuple:
    """(coefficient, operand of the term without it) for a term whose user applies it."""
    coef, unit = E.split_coef(term)
    code = ctx.values.get(unit)
    if code is None:
        code = ctx.val(unit) if isinstance(unit, _LEAVES) or not isinstance(unit, E.Product) \
            else lower_product(unit, ctx)
        ctx.values[unit] = code
    return float(coef), code


def _constant(node):
    """c for a term that is ``c * ones`` or a number, else None (so sums never build ones)."""
    if isinstance(node, E.Num):
        return float(node.value)
    if isinstance(node, E.Ones):
        return 1.0
    if isinstance(node, E.Product) and all(isinstance(f, E.Ones) for f, _ in node.factors) \
            and {l for _, idx in node.factors for l in idx} == set(range(node.rank)):
        return float(node.coef)
    return None


def _sum(node: E.Sum, ctx):
    scaled, const = [], 0.0  # (coefficient, operand of the unscaled term)
    for term in node.terms:
        c = _constant(term)
        if c is not None:
            const += c
        elif term in ctx.deferred:
            scaled.append(_unscaled(term, ctx))
        else:
            scaled.append((1.0, ctx.val(term)))
    if not scaled:
        if node.rank:
            ctx.needs.add("dtype")
            ref = ctx.assign(C("full", ctx.shape(node.shape), Lit(const)))
            ctx.fresh.add(ref.name)
            return ref
        return Lit(const)
    common = abs(scaled[0][0])
    if any(abs(c) != common for c, _ in scaled):
        common = 1.0
    scaled.sort(key=lambda cc: cc[0] < 0)  # the positive terms first: a - b, not -b + a
    expr = Lit(const / common) if const else None  # 1.0 - t, not -t + 1.0 (one pass)
    for c, code in scaled:
        c = c / common
        term = code if abs(c) == 1 else C("mul", Lit(abs(c)), code)
        if expr is None:
            expr = C("neg", term) if c < 0 else term
        else:
            expr = C("sub" if c < 0 else "add", expr, term)
    if common != 1:
        expr = C("mul", Lit(common), expr)
    return ctx.assign(expr)


def _apply(node: E.Apply, ctx):
    if node.arg in ctx.deferred:  # sigmoid(c*u): c joins the op (only scaled rows defer)
        coef, a = _unscaled(node.arg, ctx)
        return ctx.assign(C(node.fn, _array(a, ctx), scale=coef))
    a = _array(ctx.val(node.arg), ctx)
    entry = FUNCTIONS.get(node.fn)
    if entry is None:
        raise MathcalcError(f"unknown element-wise function {node.fn!r}")
    if entry.scaled:
        return ctx.assign(C(node.fn, a, scale=1.0))
    if entry.op:
        return ctx.assign(C(node.fn, a))
    return ctx.assign(C("fn", a, name=node.fn))


def _pow(node: E.Pow, ctx):
    """Powers with numpy's float rules: a Python float base would give a complex
    number for (-1.0) ** 0.5, OverflowError or ZeroDivisionError where numpy
    gives NaN or inf, so a literal base is made a float array first."""
    a = ctx.val(node.base)
    if isinstance(a, Lit):
        a = ctx.assign(C("float", a))
    if isinstance(node.exponent, E.Num):
        e = node.exponent.value
        if e == 2:
            return ctx.assign(C("mul", a, a))
        if e == -1:
            return ctx.assign(C("div", Lit(1.0), a))
        if e == Fraction(1, 2):
            return ctx.assign(C("sqrt", a))
        if e == Fraction(-1, 2):
            return ctx.assign(C("div", Lit(1.0), C("sqrt", a)))
        if isinstance(e, Fraction) and e.denominator == 1:
            return ctx.assign(C("pow", a, Lit(int(e))))
        return ctx.assign(C("pow", a, Lit(float(e))))
    return ctx.assign(C("power", a, ctx.val(node.exponent)))


def _array(code, ctx):
    """A number as a (0-d) array of the library: functions of constants (``exp(2)``,
    ``max(0, -1)``) are library calls too, and torch's take only tensors."""
    return ctx.assign(C("float", code)) if isinstance(code, Lit) else code


def _binary(op):
    def lower(node, ctx):
        a, b = ctx.val(node.left), ctx.val(node.right)
        if isinstance(a, Lit) and isinstance(b, Lit):
            a = _array(a, ctx)
        return ctx.assign(C(op, a, b))
    return lower


def _unary(op):
    def lower(node, ctx):
        return ctx.assign(C(op, ctx.val(node.arg)))
    return lower


def _logdet(node, ctx):
    """log det X, NaN where det X <= 0 (SPEC), through slogdet (no overflow)."""
    _sign, value = ctx.statement(C("logdet", ctx.val(node.arg)), 2)
    return value


def _softmax(node, ctx):
    """exp(v - max v) / Σ exp(v - max v): the shift keeps exp from overflowing."""
    a = _array(ctx.val(node.arg), ctx)
    e = ctx.assign(C("exp", C("sub", a, C("max", a))))
    return ctx.assign(C("div", e, C("sum", e)))


def _logsumexp(node, ctx):
    a = _array(ctx.val(node.arg), ctx)
    m = ctx.assign(C("max", a))
    return ctx.assign(C("add", m, C("log", C("sum", C("exp", C("sub", a, m))))))


def _norm1(node, ctx):
    return ctx.assign(C("sum", C("abs", _array(ctx.val(node.arg), ctx))))


def _norm2(node, ctx):
    """Euclidean norm of the entries (Frobenius for a matrix)."""
    a = _array(ctx.val(node.arg), ctx)
    return ctx.assign(C("abs", a) if node.arg.rank == 0 else C("norm2", a))


_LOWER = {
    E.Sum: _sum, E.Product: lower_product, E.Apply: _apply, E.Pow: _pow,
    E.Max: _binary("maximum"), E.Min: _binary("minimum"), E.Inv: _unary("inv"),
    E.Det: _unary("det"), E.LogDet: _logdet, E.Softmax: _softmax, E.LogSumExp: _logsumexp,
    E.Norm1: _norm1, E.Norm2: _norm2,
}


# ---------------------------------------------------------------------------
# The whole program.


def check_dims(node, dims) -> None:
    """Every dimension the node uses must be an axis of some variable (it is read from it)."""
    for n in E.walk(node):
        if isinstance(n, E.Var):
            continue
        for d in n.shape:
            if isinstance(d, str) and d not in dims:
                raise ShapeError(f"the size of dimension {d!r} is not the size of any "
                                 "variable's axis, so it cannot be read from the arguments")


def lower(root: E.Node, arguments: dict, dims: dict, temp, sizes: dict | None = None) -> Program:
    """The program computing ``root``.

    ``arguments`` maps each variable (``E.Var``) to the operand holding its
    value, ``dims`` each dimension name to the ``Ref`` of its size, ``temp``
    k to the name of the k-th temporary. ``sizes`` (dimension name → size)
    fixes the contraction orders for those sizes; without it they are chosen
    for ``cost.ASSUMED_SIZE`` and ``Program.size_dependent`` says whether
    another size would choose differently.
    """
    check_dims(root, dims)
    # A variable declared symmetric is its plain self here (numbers are numbers).
    arguments = {**{n: arguments[E.Var(n.name, n.shape)] for n in E.walk(root)
                    if isinstance(n, E.Var) and n.structure and E.Var(n.name, n.shape) in arguments},
                 **arguments}
    ctx = _Lowering(arguments, dims, temp, sizes)
    order = E.walk(root)
    ctx.deferred = _scaled_terms(order, root)
    for node in order:
        if isinstance(node, _LEAVES) or node in ctx.values or node in ctx.deferred:
            continue  # leaves are materialised only where something needs them whole
        low = _LOWER.get(type(node))
        if low is None:
            raise MathcalcError(f"lambdify: unknown node type {type(node).__name__}")
        code = _transposed_twin(node, ctx)
        ctx.values[node] = code if code is not None else low(node, ctx)
    result = ctx.val(root)
    ctx.steps = _live(ctx.steps, result)
    fresh = isinstance(result, Ref) and result.name in ctx.fresh
    aliases = isinstance(result, Ref) and (result.name in ctx.arguments or (
        not fresh and _may_alias_argument(root, ctx)))
    return Program(ctx.steps, result, root.rank, ctx.needs, ctx.dims_used, ctx.size_dependent,
                   fresh, aliases)


def _refs(x, into: set) -> set:
    if isinstance(x, Ref):
        into.add(x.name)
    elif isinstance(x, Call):
        for a in x.args:
            _refs(a, into)
        for v in x.attrs.values():
            _refs(v, into)
    return into


def _live(steps, result) -> list:
    """The steps the result depends on (a pattern that took over a node, like the masked
    fill reading ``u > 0`` instead of ``step(u)``, leaves the node's own step unused)."""
    live = _refs(result, set())
    kept = []
    for step in reversed(steps):
        if any(t.name in live for t in step.targets):
            kept.append(step)
            _refs(step.value, live)
    return kept[::-1]


# Products of this rank at most are matched against their transposes.
MAX_TWIN_RANK = 3


def _transposed_twin(node, ctx):
    """The operand of ``node`` as a transpose of an equal product already computed, or None.

    ``inv(M)'`` is rewritten ``inv(M')``, so a derivative can hold both M and
    M' as separate products of the same factors: the second is a transpose of
    the first, not a second contraction.
    """
    if not isinstance(node, E.Product) or not 2 <= node.rank <= MAX_TWIN_RANK or \
            sum(1 for f, _ in node.factors if f.rank and not isinstance(f, (E.Delta, E.Ones))) < 2:
        return None
    axes = tuple(range(node.rank))
    for perm in itertools.permutations(axes):
        if perm == axes:
            continue
        twin = E.product([(node, axes)], perm)  # twin axis k is node axis perm[k]
        code = ctx.values.get(twin)
        if code is not None:
            return ctx.assign(_single(code, list(perm), list(axes)))
    return None


def _may_alias_argument(node, ctx) -> bool:
    """Whether the value of ``node`` may be (a view of) an argument's array."""
    while True:
        if isinstance(node, E.Var):
            return True
        code = ctx.values.get(node)
        if not isinstance(node, E.Product) or (isinstance(code, Ref) and code.name in ctx.fresh):
            return False
        dense = [f for f, _ in node.factors if not isinstance(f, (E.Delta, E.Ones)) and f.rank]
        if len(dense) != 1 or node.coef != 1 or any(f.rank == 0 for f, _ in node.factors):
            return False  # computed: a product, a scaling
        node = dense[0]  # a transpose, diagonal or reduction of one factor: maybe a view
