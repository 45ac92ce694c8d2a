"""Numbers from expressions: ``lambdify`` and the lowering of products to numpy.

``lambdify`` compiles an expression once into a straight-line Python function
(the source comes from ``mathcalc.codegen``, the same generator that
``mc.codegen`` prints, so the two cannot drift): each distinct node is
computed once, products become BLAS calls (``A @ x``, ``A.T @ B``,
``np.tensordot``) or broadcast multiplications where their index pattern
allows, identities (``Delta``) and ``Ones`` are never materialised inside a
product, and the contraction order of a product of three or more tensors is
chosen once — at build time when it does not depend on the sizes, otherwise
at the first call for each size signature (opt_einsum, cached).

This module holds the product lowering (``lower_product``), which emits
source lines through a small context object supplied by the generator, and
the runtime helpers the generated code may call.
"""

from __future__ import annotations

import builtins
import keyword
import random
import unicodedata

import numpy as np

from . import expr as E
from .errors import MathcalcError, ShapeError
from .expression import keywords_are_shapes

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def subscripts(*label_lists) -> list:
    """numpy einsum subscripts for the label lists of one call, letters given in order.

    Labels are a product's index numbers, which exceed numpy's 52 letters in
    a deep chain's derivative; one call names only the labels it uses.
    """
    letters: dict = {}
    for labels in label_lists:
        for label in labels:
            if label not in letters:
                if len(letters) == len(_LETTERS):
                    raise ShapeError(f"an einsum over more than {len(_LETTERS)} indices")
                letters[label] = _LETTERS[len(letters)]
    return ["".join(letters[l] for l in labels) for labels in label_lists]


def symbols_spec(operand_labels, out) -> str:
    """opt_einsum subscripts over any number of indices (it renames them for numpy)."""
    import opt_einsum

    sym = opt_einsum.get_symbol
    return ",".join("".join(sym(l) for l in ls) for ls in operand_labels) + "->" + \
        "".join(sym(l) for l in out)


# ---------------------------------------------------------------------------
# Identifier hygiene: nothing reaches generated source unless it is a plain
# Python identifier that means itself (SymPy's lambdify once ran shell
# commands hidden in a symbol name). A variable name the parser accepts but
# that cannot be such a parameter (``lambda``, ``match``, ``__x``, ``ﬁ``,
# ``sum``) is read from the keyword dict instead, written with ``repr``.


def validate_identifier(name, what: str = "function") -> str:
    """``name`` if it can be written in generated source as a name that means itself.

    For names that must be Python names (the function codegen defines). A
    variable needs only ``validate_variable_name``.
    """
    if not is_parameter_name(name):
        raise MathcalcError(f"{what} name {name!r} is not a plain identifier; "
                            "it cannot be used in generated code")
    return name


def validate_variable_name(name) -> str:
    """``name`` if it is a name the parser accepts (SPEC: letters, Greek too, digits
    and ``_``, not starting with a digit), else a MathcalcError.

    Such a name is safe in generated code either as a parameter
    (``is_parameter_name``) or as a ``repr``-written key of the keyword dict.
    """
    if not isinstance(name, str) or not name or not all(
            ch == "_" or "0" <= ch <= "9" or unicodedata.category(ch).startswith("L")
            for ch in name) or "0" <= name[0] <= "9":
        raise MathcalcError(f"variable name {name!r} is not a plain identifier (letters, digits "
                            "and _, not starting with a digit); it cannot be used in generated code")
    return name


def is_parameter_name(name) -> bool:
    """Whether ``name`` can be a parameter of generated code that means itself.

    Not a keyword or soft keyword (``type`` included, a soft keyword since
    Python 3.12), nothing starting with ``__``, not a builtin the generated body
    could need (``sorted``, ``Exception``), unchanged by NFKC (Python
    normalises identifiers: ``ﬁ`` would be the parameter ``fi``), printable.
    """
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name) \
        and not keyword.issoftkeyword(name) and name not in ("type", "_") \
        and not name.startswith("__") and name not in vars(builtins) \
        and unicodedata.normalize("NFKC", name) == name \
        and all(ch.isprintable() for ch in name)


# ---------------------------------------------------------------------------
# Runtime helper: a contraction whose best order depends on the sizes.


class Contraction:
    """``np.einsum(spec, *ops)`` with the contraction order chosen once per size signature."""

    __slots__ = ("spec", "_cache")

    def __init__(self, spec: str):
        self.spec = spec
        self._cache = {}

    def __call__(self, *operands):
        key = tuple(op.shape for op in operands)
        fn = self._cache.get(key)
        if fn is None:
            import opt_einsum

            fn = opt_einsum.contract_expression(self.spec, *key, optimize="auto")
            if len(self._cache) > 64:  # many size signatures: keep memory bounded
                self._cache.clear()
            self._cache[key] = fn
        return fn(*operands)

    def __repr__(self) -> str:
        return f"Contraction({self.spec!r})"


# ---------------------------------------------------------------------------
# Lowering one Product node.
#
# A Product is ``coef * Σ Π factor[labels] -> 0..rank-1``. It is split into
#   - scalar factors (rank 0), multiplied in at the end;
#   - deltas whose two labels are both output axes: the result lives on a
#     diagonal; the other factors are computed with one label per delta group
#     and written into that diagonal of a zero array (a view, no dense δ);
#   - ones factors: a summed label carried by nothing else multiplies by its
#     size, an output label carried by nothing else is a broadcast axis;
#   - dense factors: the "core" contraction, lowered to the cheapest numpy
#     form its index pattern allows.


def lower_product(node: E.Product, ctx) -> str:
    """Emit the lines computing ``node``; return the code of its value (a name)."""
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
            dense.append((ctx.val(factor), list(idx)))
    dense = [(code, [find(l) for l in labels]) for code, labels in dense]
    ones = {find(l) for l in ones}
    reps = [l for l in out if find(l) == l]
    has_delta = len(reps) != rank
    carried = {l for _, labels in dense for l in labels}
    core_out = [l for l in reps if l in carried]
    free = [l for l in reps if l not in carried]

    multipliers = [] if node.coef == 1 else [ctx.lit(node.coef)]
    multipliers += scalars
    for label in sorted(ones):  # Σ_l 1 = size of l
        if label >= rank and label not in carried:
            multipliers.append(ctx.dim(node.dims[label]))
    mult = " * ".join(multipliers)
    if mult and len(dense) >= 2:
        # Scale the smallest operand, not the result: 2*(x*v') scales v, not the outer product.
        k = min(range(len(dense)), key=lambda j: len(set(dense[j][1])))
        if len(set(dense[k][1])) < len(core_out):
            code, labels = dense[k]
            dense[k] = (ctx.assign(f"{mult} * {code}"), labels)
            mult = ""

    core = _core(dense, core_out, node.dims, ctx) if dense else None
    if core is None:
        value = mult or "1.0"
    elif mult:
        value = f"{mult} * {core}" if mult == multipliers[0] and len(multipliers) == 1 \
            and _is_atom(core) else f"({mult}) * ({core})"
    else:
        value = core
    if not has_delta and not free:
        return ctx.assign(value)
    # Place the values on the diagonals / broadcast axes of a fresh array.
    shape = ctx.shape(node.shape)
    target = ctx.tmp()
    if has_delta:
        ctx.emit(f"{target} = {ctx.np}.zeros({shape})")
        view_letters, rep_letters = subscripts([find(l) for l in out], reps)
        spec = f"{view_letters}->{rep_letters}"
        view = f"{ctx.np}.einsum({spec!r}, {target})"  # a writeable diagonal view
    else:
        ctx.emit(f"{target} = {ctx.np}.empty({shape})")
        view = target
    if core is not None:
        value = _aligned(value if _is_atom(value) else f"({value})", core_out, reps)
    ctx.emit(f"{view}[...] = {value}")
    ctx.fresh.add(target)  # a new array: the result needs no defensive copy
    return target


def _is_atom(code: str) -> bool:
    return code.replace("_", "a").replace(".", "a").isalnum()


def _core(dense, out, dims, ctx) -> str:
    """Code of the contraction of dense factors, axes in the order of ``out``."""
    # 1. Factors on the same indices multiply element-wise first (one pass over
    #    their entries): y.^2 .* s .* (1 - s) in X'*diag(…)*X is one vector, so
    #    what is left is a scaled X'X, not a five-operand einsum without BLAS.
    same: dict = {}
    for code, labels in dense:
        same.setdefault(tuple(labels), []).append(code)
    if len(same) < len(dense) > 2:  # two alone are a dot or an element-wise product already
        dense = [(codes[0] if len(codes) == 1 else ctx.assign(" * ".join(codes)), list(key))
                 for key, codes in same.items()]
    # 2. Within each factor: take diagonals of repeated labels, sum labels no one else needs.
    prepared = []
    for k, (code, labels) in enumerate(dense):
        others = {l for j, (_, ls) in enumerate(dense) if j != k for l in ls}
        keep = [l for l in dict.fromkeys(labels) if l in out or l in others]
        if keep != labels:
            code = ctx.assign(_single(code, labels, keep, ctx))
        prepared.append((code, keep))
    summed = {l for _, ls in prepared for l in ls} - set(out)
    if len(prepared) == 1:
        code, labels = prepared[0]
        return _single(code, labels, out, ctx)
    if not summed:
        return _broadcast_product(prepared, out, ctx)
    if len(prepared) == 2:
        (a, la), (b, lb) = prepared
        return _pair(a, la, b, lb, out, ctx)
    return _many(prepared, out, dims, ctx)


def _single(code, labels, keep, ctx) -> str:
    """One factor read with output labels ``keep`` (transpose, diagonal, partial sum)."""
    np_ = ctx.np
    labels = list(labels)
    if labels == keep:
        return code
    if len(set(labels)) == len(labels):
        if sorted(labels) == sorted(keep):  # a permutation
            if len(labels) == 2:
                return f"{code}.T"
            perm = tuple(labels.index(l) for l in keep)
            return f"{np_}.transpose({code}, {perm})"
        if not keep:
            return f"{np_}.sum({code})"
        kept_in_order = [l for l in labels if l in keep]
        if kept_in_order == keep:
            axes = tuple(p for p, l in enumerate(labels) if l not in keep)
            return f"{code}.sum(axis={axes[0] if len(axes) == 1 else axes})"
    elif len(labels) == 2:
        if keep == [labels[0]]:
            return f"{np_}.diagonal({code})"
        if not keep:
            return f"{np_}.trace({code})"
    spec = "->".join(subscripts(labels, keep))
    return f"{np_}.einsum({spec!r}, {code})"


def _aligned(code, labels, out) -> str:
    """``code`` (axes ``labels``, a subsequence of ``out``) indexed to broadcast against ``out``."""
    present = [l in labels for l in out]
    if all(present) or not labels:
        return code
    first = present.index(True)
    if all(present[first:]):
        return code  # numpy aligns trailing axes by itself
    index = ", ".join(":" if p else "None" for p in present[first:])
    return f"{code}[{index}]"


def _broadcast_product(operands, out, ctx) -> str:
    """Element-wise / outer products: no summed index, numpy broadcasting does it all."""
    parts = []
    for code, labels in operands:
        order = sorted(labels, key=out.index)
        code = _single(code, labels, order, ctx) if order != labels else code
        parts.append(_aligned(code, order, out))
    return " * ".join(parts)


def _pair(a, la, b, lb, out, ctx) -> str:
    """Two factors: matrix products and tensordot where no index is batched."""
    np_ = ctx.np
    shared = set(la) & set(lb)
    contracted = shared - set(out)
    batch = shared & set(out)
    if not contracted:
        return _broadcast_product([(a, la), (b, lb)], out, ctx)
    if batch:
        sa, sb, so = subscripts(la, lb, out)
        spec = f"{sa},{sb}->{so}"
        return f"{np_}.einsum({spec!r}, {a}, {b})"
    ka = [l for l in la if l not in contracted]
    kb = [l for l in lb if l not in contracted]
    if len(contracted) == 1 and len(la) <= 2 and len(lb) <= 2:
        (c,) = contracted
        if out == kb + ka and out != ka + kb:
            (a, la, ka), (b, lb, kb) = (b, lb, kb), (a, la, ka)
        left = a if la[-1] == c else f"{a}.T"
        right = b if lb[0] == c else f"{b}.T"
        return f"{left}.dot({right})"  # cheaper than @ on small arrays
    if not out and len(la) == len(lb) == 2:  # Σ_ij A_ij B_ij or Σ_ij A_ij B_ji
        return f"{np_}.vdot({a}, {b})" if la == lb else f"{np_}.vdot({a}, {b}.T)"
    axes = ([la.index(l) for l in sorted(contracted)], [lb.index(l) for l in sorted(contracted)])
    code = f"{np_}.tensordot({a}, {b}, axes=({axes[0]}, {axes[1]}))"
    if ka + kb != out:
        code = _single(ctx.assign(code), ka + kb, out, ctx)
    return code


def _many(operands, out, dims, ctx) -> str:
    """Three or more factors: pairwise in an order fixed now, or chosen per size at run time."""
    sizes = getattr(ctx, "sizes", None)
    # lambdify needs only to know whether the order is fixed: it stops at a second one.
    paths = candidate_paths([ls for _, ls in operands], out, dims, sizes, every=ctx.standalone)
    if paths is not None and len(paths) == 1:
        return _run_path(operands, out, paths[0], ctx)
    if paths is None or not ctx.standalone:
        return ctx.contraction([ls for _, ls in operands], out, [code for code, _ in operands])
    # Standalone source cannot call opt_einsum: each order found at the trial
    # sizes is written out, and the one with the fewest flops for the
    # argument sizes runs (opt_einsum's flop count, computed in the source).
    costs = [ctx.assign(path_cost_code([ls for _, ls in operands], out, path, dims, ctx.dim))
             for path in paths]
    target = ctx.tmp()
    for k, path in enumerate(paths):
        ctx.emit(branch_condition(costs, k, "if" if k == 0 else "elif"))
        ctx.indent += 1
        ctx.emit(f"{target} = {_run_path(operands, out, path, ctx)}")
        ctx.indent -= 1
    return target


def branch_condition(costs, k, keyword) -> str:
    """``if``/``elif``/``else`` line choosing alternative k, the first of the cheapest."""
    rest = costs[k + 1:]
    if not rest:
        return "else:"
    least = rest[0] if len(rest) == 1 else f"min({', '.join(rest)})"
    return f"{keyword} {costs[k]} <= {least}:"


def _run_path(operands, out, path, ctx) -> str:
    """The code of the contraction of ``operands`` done pairwise along ``path``."""
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


def candidate_paths(operand_labels, out, dims, sizes=None, every=True):
    """The distinct pairwise orders opt_einsum picks at very different sizes (or at
    ``sizes``), in the order found; None if one of them is not pairwise. Without
    ``every``, the search stops at the second order found."""
    import opt_einsum

    spec = symbols_spec(operand_labels, out)
    names = sorted({d for d in dims if isinstance(d, str)})
    if sizes is not None:
        trials = [{n: sizes.get(n, 64) for n in names}]
    else:
        rng = random.Random(len(operand_labels) * 7919 + len(names))
        trials = [{n: 64 for n in names}]
        trials += [{n: rng.choice((3, 1000)) for n in names} for _ in range(6 if names else 0)]
    found = []
    for sizes in trials:
        shapes = [tuple(_size(dims[l], sizes) for l in ls) for ls in operand_labels]
        # The exhaustive search is exponential in the factors and dynamic
        # programming nearly so on a deep chain's derivative (dozens of factors
        # sharing each index): 1 s a search at 32 factors. Past a dozen, greedy.
        n = len(operand_labels)
        how = "optimal" if n <= 5 else "dp" if n <= 12 else "greedy"
        path, _ = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=how)
        path = [tuple(p) for p in path]
        if any(len(p) != 2 for p in path):
            return None
        if path not in found:
            found.append(path)
            if len(found) == 2 and not every:
                break
    return found


def path_cost_terms(operand_labels, out, path):
    """opt_einsum's flop count of contracting along ``path``, as (labels, factor) terms:
    each step costs the product of the sizes of the labels it touches, twice that
    when it sums one away."""
    sets = [frozenset(ls) for ls in operand_labels]
    out = frozenset(out)
    terms = []
    for step in path:
        step = tuple(sorted(step, reverse=True))
        touched = frozenset().union(*(sets[i] for i in step))
        sets = [s for k, s in enumerate(sets) if k not in step]
        keep = touched & (out.union(*sets))
        terms.append((tuple(sorted(touched, key=repr)), max(1, len(step) - 1) + (keep != touched)))
        sets.append(keep)
    return terms


def path_cost_code(operand_labels, out, path, dims, dim_code) -> str:
    """``path_cost_terms`` as a Python expression in the dimension sizes."""
    parts = []
    for labels, factor in path_cost_terms(operand_labels, out, path):
        sizes = [dim_code(dims[l]) for l in labels] or ["1"]
        parts.append("*".join(([str(factor)] if factor != 1 else []) + sizes))
    return " + ".join(parts) or "0"


def _size(dim, sizes) -> int:
    return dim if isinstance(dim, int) else sizes[dim]


# ---------------------------------------------------------------------------
# lambdify


_CACHE: dict = {}
_CACHE_LIMIT = 512


@keywords_are_shapes()
def lambdify(expr, **shapes):
    """A fast numpy function of the expression, keyword arguments by variable name.

    ``fn = lambdify(g); fn(W=..., x=..., b=...)`` returns a float64 ndarray of
    shape ``g.shape`` (dimension names bound from the arrays), or a numpy
    float64 scalar (``np.float64``, so ``np.shape(result) == ()``) when g is a
    scalar. Every variable of the Expr must be passed, even one that dropped
    out of a derivative; a missing, extra or wrongly shaped argument is a
    ShapeError naming the variable and both shapes, and so is a value that is
    not an array of real numbers (a ragged list, a string, a complex array:
    complex values are never cast to real). Arrays are read as float64
    (integers and booleans convert); vectors are 1-D arrays, scalars Python
    numbers or 0-d arrays. The result may not share memory with an argument.
    Powers, quotients and functions follow numpy's float64 rules
    (``(-1) .^ 0.5`` is NaN, with numpy's warning).

    The function is built once (and cached per expression): its source is
    ``fn.source``, the same text ``codegen`` returns apart from how
    registered functions and size-dependent contractions are bound, and
    ``fn.expr`` is the expression. Where the cheapest evaluation depends on
    the sizes (``optimize.reassociate``; contraction orders), the function
    compiles one variant per argument-shape signature, on first use:
    ``fn.source`` is then the expression as written, contraction orders
    chosen when it runs (what runs for shapes not seen before is not known
    yet), and ``fn.sources`` maps each shape signature seen so far (the
    variables' shapes, in order) to the source compiled for it.
    """
    from .expression import Expr, as_expr

    e = as_expr(expr, shapes)
    key = (e.node, tuple(e.variables.items()))
    fn = _CACHE.get(key)
    if fn is not None:
        return fn
    variants = reassociation_variants(e.node)
    fn = _compile(Expr(variants[0], e.variables)) if len(variants) == 1 else None
    if fn is None or fn.size_dependent:
        fn = _size_dispatch(e)
    fn.expr = e
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[key] = fn
    return fn


def reassociation_variants(node) -> list:
    """The distinct forms ``optimize.reassociate`` picks at the trial sizes
    (``optimize.size_trials``), in trial order: one form when the choice does
    not depend on the sizes."""
    from .optimize import reassociate, size_trials

    return list(dict.fromkeys(reassociate(node, sizes) for sizes in size_trials(node)))


def _size_dispatch(e):
    """A function that picks, per argument shapes, the cheapest association for those sizes.

    Built only where the choice depends on the sizes (``-2*(X - U*V')*V`` is
    best distributed when U and V are thin, as written when they are square).
    It has the name, docstring and signature of the generated function;
    ``.source`` is the unspecialised source and ``.sources`` the source
    compiled for each shape signature seen.
    """
    import functools

    from .expression import Expr
    from .optimize import reassociate

    variables = e.variables
    ranks = tuple(len(shape) for shape in variables.values())
    by_shapes: dict = {}
    sources: dict = {}
    first = _compile(e)

    names = tuple(variables)

    def slow_key(kwargs):
        try:
            return tuple(np.shape(kwargs.get(name, ())) for name in names)
        except Exception:  # not an array (a ragged list): the checks say what is wrong
            return None

    def dispatch(**kwargs):
        try:  # arrays: a fraction of a microsecond per argument
            key = tuple([kwargs[name].shape for name in names])
        except (KeyError, AttributeError):
            key = slow_key(kwargs)
        fn = by_shapes.get(key)
        if fn is None:
            if key is None or tuple(map(len, key)) != ranks or \
                    any(name not in kwargs for name in variables):
                return first(**kwargs)  # raises the ShapeError naming the argument
            sizes = {}
            for (name, shape), actual in zip(variables.items(), key):
                for dim, n in zip(shape, actual):
                    if isinstance(dim, str):
                        sizes.setdefault(dim, n)
            fn = _compile(Expr(reassociate(e.node, sizes), variables), sizes)
            if len(by_shapes) > 64:
                by_shapes.clear()
                sources.clear()
            by_shapes[key] = fn
            sources[key] = fn.source
        return fn(**kwargs)

    functools.update_wrapper(dispatch, first)  # name, docstring, signature, .source
    dispatch.sources = sources
    dispatch.size_dependent = True
    return dispatch


def _compile(e, sizes=None):
    """The generated function of ``e`` (contraction orders fixed for ``sizes`` if given)."""
    from .codegen import generate

    source, namespace, name = generate(e, "f", standalone=False, sizes=sizes)
    filename = f"<mathcalc-lambdify-{len(_CACHE)}>"
    _register_source(filename, source)
    # Real builtins: numpy's C code imports through the calling frame's builtins.
    namespace["__builtins__"] = builtins
    exec(compile(source, filename, "exec"), namespace)  # our own generated code, identifiers validated
    fn = namespace[name]
    fn.source = source
    fn.size_dependent = any(isinstance(v, Contraction) for v in namespace.values())
    return fn


def _register_source(filename: str, source: str) -> None:
    """Let tracebacks show the generated lines."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
