"""Rewrites that make a result read as a careful person writes it.

The constructors in nodes.py already fold numbers, zeros, ones and
identities, contract deltas and collect equal terms. What is left here are
the choices a constructor cannot make locally: named, one-directional
rewrite rules, listed in ``REWRITES`` (at the end of this module) in the
order they are tried. Each is a function ``node -> node or None`` (None: it
does not apply) whose docstring states the rewrite in its first line, its
guard included (``X*inv(X) -> I where X is square``); tests/test_simplify_rules.py
has a test named after each. ``simplify`` applies them bottom-up over the DAG,
each node rewritten until no rule changes it (a fixed point).

A rule that keeps its result only when it is smaller uses ``size``: what
there is to read. Adding a rule: write the function, put it in REWRITES
where it should be tried, and add ``test_<name>`` to test_simplify_rules.py.
"""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np

from . import nodes as E
from .functions import FUNCTIONS


def simplify(node: E.Node) -> E.Node:
    """Apply the rewrite rules bottom-up, each distinct node once (its children
    replaced by their simplified forms through ``with_children``, which raises on a
    node type it does not know)."""
    memo: dict = {}
    for n in E.walk(node):
        memo[n] = _rewrite(n.with_children([memo[k] for k in n.children()]))
    return memo[node]


def _rewrite(n: E.Node) -> E.Node:
    """n rewritten to a fixed point: by the first rule of REWRITES that changes it, repeatedly."""
    for rule in REWRITES:
        m = rule(n)
        if m is not None and m != n:
            return _rewrite(m)
    return n


# ---------------------------------------------------------------------------
# factor_common


def _as_terms(node: E.Node):
    """A product's (coef, factors, dims, rank); other nodes as a one-factor product."""
    if isinstance(node, E.Product):
        return node.coef, [(f, tuple(i)) for f, i in node.factors], list(node.dims), node.rank
    r = node.rank
    return Fraction(1), [(node, tuple(range(r)))], list(node.shape), r


def _match(labels_a, labels_b, rank):
    """The renaming of b's summed indices onto a's that maps labels_b to labels_a, or None."""
    mapping = {}
    for la, lb in zip(labels_a, labels_b):
        if (la < rank) != (lb < rank):
            return None
        if la < rank:
            if la != lb:
                return None
            continue
        if mapping.setdefault(lb, la) != la:
            return None
    if len(set(mapping.values())) != len(mapping):
        return None
    return mapping


def _remainder(coef, factors, rank, skip, keep_labels, rename):
    """The product without factor ``skip``, over the output and ``keep_labels`` it still carries."""
    rest = [(f, tuple(rename.get(i, i) for i in idx)) for k, (f, idx) in enumerate(factors) if k != skip]
    carried = {i for _, idx in rest for i in idx}
    out = tuple(i for i in tuple(range(rank)) + tuple(keep_labels) if i in carried)
    if not rest:
        return out, E.num(coef)
    return out, E.product(rest, out, coef=coef)


def _fresh_rename(factors, rank, start):
    """Rename b's summed indices that clash with a's, so the two can be merged."""
    rename = {}
    nxt = start
    for _, idx in factors:
        for i in idx:
            if i >= rank and i not in rename:
                rename[i] = nxt
                nxt += 1
    return rename


# Factoring compares every pair of terms and every pair of their factors; past
# these sizes (derivatives of long products such as A*A*...*A) it is skipped.
MAX_FACTORED_TERMS = 16
MAX_FACTORS = 24


def factor_common(node: E.Node):
    """Σ c₁·F·R₁ + c₂·F·R₂ → F·(c₁R₁ + c₂R₂) where two terms share a factor F.

    A*x + A'*x → (A + A')*x. F is matched on the same indices first;
    failing that, a matrix F read on an output axis in one term and a summed
    axis in the other is matched through an identity, F(i,k) = Σ_j δ(i,j)·F(j,k), which joins R₁'s sum:
    ``diag(s)*W - s*s'*W → (diag(s) - s*s')*W``.
    """
    if not isinstance(node, E.Sum) or len(node.terms) > MAX_FACTORED_TERMS:
        return None
    terms = list(node.terms)
    for through_identity in (False, True):
        for i in range(len(terms)):
            for j in range(i + 1, len(terms)):
                merged = _factor_pair(terms[i], terms[j], through_identity)
                if merged is not None:
                    rest = [t for k, t in enumerate(terms) if k not in (i, j)]
                    return E.add(merged, *rest)
    return None


def _align(la, lb, rank, f, next_label):
    """Labels for F in both terms with output axes met by summed ones replaced by fresh summed
    labels, and the δ factors each term then needs; None where two output axes differ."""
    la, lb = list(la), list(lb)
    extra_a, extra_b = [], []
    for p, (x, y) in enumerate(zip(la, lb)):
        if x < rank and y < rank:
            if x != y:
                return None
        elif x < rank:
            z = next_label()
            extra_a.append((E.eye(f.shape[p]), (x, z)))
            la[p] = z
        elif y < rank:
            z = next_label()
            extra_b.append((E.eye(f.shape[p]), (y, z)))
            lb[p] = z
    return tuple(la), tuple(lb), extra_a, extra_b


def _factor_pair(a: E.Node, b: E.Node, through_identity: bool = False):
    ca, fa, da, rank = _as_terms(a)
    cb, fb, db, _ = _as_terms(b)
    if len(fa) > MAX_FACTORS or len(fb) > MAX_FACTORS:
        return None
    if len(fa) + len(fb) <= 2 and not through_identity:
        return None  # nothing to gain: x + y stays as it is
    if through_identity and (len(fa) < 2 or len(fb) < 2):
        return None  # F - G*F stays: (I - G)*F reads no easier
    # Give b's summed indices numbers disjoint from a's.
    shift = _fresh_rename(fb, rank, len(da))
    fb = [(f, tuple(shift.get(i, i) for i in idx)) for f, idx in fb]
    counter = [len(da) + len(db)]

    def next_label():
        counter[0] += 1
        return counter[0]

    for ka, (f1, la) in enumerate(fa):
        if f1.rank == 0 and isinstance(f1, E.Num):
            continue
        if through_identity and (f1.rank != 2 or isinstance(f1, E.Delta)):
            continue
        for kb, (f2, lb) in enumerate(fb):
            if f1 != f2:
                continue
            la_k, lb_k, fa_k, fb_k = la, lb, fa, fb
            if through_identity:
                aligned = _align(la, lb, rank, f1, next_label)
                if aligned is None or aligned[:2] == (la, lb):
                    continue  # the plain pass has tried these indices
                la_k, lb_k, extra_a, extra_b = aligned
                fa_k = [(f, la_k if k == ka else idx) for k, (f, idx) in enumerate(fa)] + extra_a
                fb_k = [(f, lb_k if k == kb else idx) for k, (f, idx) in enumerate(fb)] + extra_b
            merged = _factor_out(f1, la_k, lb_k, ka, kb, ca, cb, fa_k, fb_k, rank)
            if merged is not None:
                return merged
    return None


def _factor_out(f1, la, lb, ka, kb, ca, cb, fa, fb, rank):
    """F·(c₁R₁ + c₂R₂) for F = fa[ka] = fb[kb] read at la and lb, or None."""
    rename = _match(la, lb, rank)
    if rename is None or (len(fa) == 1 and len(fb) == 1):
        return None
    keep = tuple(dict.fromkeys(i for i in la if i >= rank))
    labels_a, ra = _remainder(ca, fa, rank, ka, keep, {})
    labels_b, rb = _remainder(cb, fb, rank, kb, keep, rename)
    if labels_a != labels_b:
        return None  # one side would need a broadcast: no simpler
    if len(labels_a) > 2:
        return None  # the sum would be a tensor with no matrix form
    out = tuple(range(rank))
    if not set(out) <= set(labels_a) | set(la):
        return None
    return E.product([(_rewrite(E.add(ra, rb)), labels_a), (f1, la)], out)


# distribute_tensor_sums stops short of this many terms: a residual chain
# would otherwise double them at every layer. Past it, index notation stays.
MAX_DISTRIBUTED_TERMS = 16


def distribute_tensor_sums(node: E.Node):
    """F·(T₁ + T₂) → F·T₁ + F·T₂ where the Tₖ are tensors of order > 2 (no matrix form).

    These are the product rule's terms; multiplied out, the identities in
    them contract away. A sum of more than MAX_DISTRIBUTED_TERMS stays.
    """
    if not isinstance(node, E.Product):
        return None
    for k, (factor, idx) in enumerate(node.factors):
        if not isinstance(factor, E.Sum) or factor.rank <= 2:
            continue
        if len(factor.terms) > MAX_DISTRIBUTED_TERMS:
            continue
        others = [f for j, f in enumerate(node.factors) if j != k]
        out = tuple(range(node.rank))
        terms = [E.product(others + [(t, idx)], out, coef=node.coef) for t in factor.terms]
        return E.add(*[_rewrite(t) for t in terms])
    return None


def transposed(node: E.Node):
    """node' pushed one level inside, or None where that is not possible."""
    if node.rank != 2:
        return None
    if isinstance(node, E.Apply):
        return E.apply(node.fn, E.transpose(node.arg))
    if isinstance(node, E.Inv):
        return E.inv(E.transpose(node.arg))
    if isinstance(node, (E.Pow, E.Max, E.Min)):
        make = {E.Pow: E.power, E.Max: E.maximum, E.Min: E.minimum}[type(node)]
        return make(E.transpose(node.left), E.transpose(node.right))
    if isinstance(node, E.Sum):
        return E.add(*[E.transpose(t) for t in node.terms])
    return None


def _is_plain_transpose(node: E.Node) -> bool:
    return (isinstance(node, E.Product) and len(node.factors) == 1 and node.coef == 1
            and node.n_indices == node.rank == 2 and node.factors[0][1] == (1, 0))


def _preference(node: E.Node) -> tuple:
    """Of F' and the function of the transpose, the one people write: inv(X)', not inv(X')."""
    return (sum(_is_plain_transpose(c) for c in node.children()), node.sort_key())


def canonical_transposes(node: E.Node):
    """F(i,j) → G(j,i) for an order-2 factor F where G = F' pushed inside reads better.

    A transposed element-wise function, inverse, power, max, min or sum is
    the function of the transpose; of the two, the one with fewer plain
    transposes inside and then the smaller key is kept (inv(X)', not
    inv(X')), so exp(B*B') and its transpose are recognised as one node
    (B*B' is symmetric).
    """
    if not isinstance(node, E.Product):
        return None
    changed = False
    factors = []
    for f, idx in node.factors:
        t = transposed(f) if len(set(idx)) == 2 else None
        if t is not None and t.rank == 2:
            t = simplify(t)
            if _preference(t) < _preference(f) or (t == f and idx[0] > idx[1]):
                # (t == f: F is symmetric, so F(j,i) = F(i,j); keep one order)
                f, idx = t, (idx[1], idx[0])
                changed = True
        factors.append((f, idx))
    if not changed:
        return None
    return E.product(factors, tuple(range(node.rank)), coef=node.coef)


# ---------------------------------------------------------------------------
# cancel_inverses


def _as_inverse(f: E.Node, idx: tuple):
    """(X, (a, b)) for a factor reading inv(X)[a, b]; inv(X')[a, b] is inv(X)[b, a]."""
    if not isinstance(f, E.Inv):
        return None
    arg = f.arg
    if _is_plain_transpose(arg):
        return arg.factors[0][0], (idx[1], idx[0])
    return arg, tuple(idx)


def _cancelling(jdx, rs, symmetric: bool, inner):
    """The δ's indices where X[jdx] and inv(X)[rs] cancel, or None; a symmetric X
    (and its inverse) is read either way round, X[p,q] = X[q,p]."""
    for p, q in (jdx, jdx[::-1]) if symmetric else (jdx,):
        for r, s in (rs, rs[::-1]) if symmetric else (rs,):
            if q == r and inner(q) and p != q and s != q:  # X[p,q]·inv(X)[q,s]
                return (p, s)
            if s == p and inner(p) and q != p and r != p:  # inv(X)[r,p]·X[p,q]
                return (r, q)
    return None


def cancel_inverses(node: E.Node):
    """X*inv(X) → I and inv(X)*X → I where their summed index is in these two factors only.

    inv(X')[a,b] is read as inv(X)[b,a], so inv(X')*X' → I too.
    """
    if not isinstance(node, E.Product) or len(node.factors) < 2:
        return None
    count: dict = {}
    for _, idx in node.factors:
        for i in idx:
            count[i] = count.get(i, 0) + 1
    rank = node.rank

    def inner(i):
        return i >= rank and count[i] == 2

    for k, (f, idx) in enumerate(node.factors):
        found = _as_inverse(f, idx)
        if found is None:
            continue
        base, rs = found
        for j, (g, jdx) in enumerate(node.factors):
            if j == k or g != base:
                continue
            delta = _cancelling(jdx, rs, E.is_symmetric(base), inner)
            if delta is None:
                continue
            rest = [fi for m, fi in enumerate(node.factors) if m not in (j, k)]
            rest.append((E.eye(base.shape[0]), delta))
            return E.product(rest, tuple(range(rank)), coef=node.coef)
    return None


# ---------------------------------------------------------------------------
# exp_to_sigmoid


def _one_plus_exp(node: E.Node):
    """u for node = 1 + exp(u) (the 1 a number or a tensor of ones), else None."""
    if not (isinstance(node, E.Sum) and len(node.terms) == 2):
        return None
    a, b = node.terms
    if isinstance(a, E.Apply):
        a, b = b, a
    one = isinstance(a, E.Ones) or (isinstance(a, E.Num) and a.value == 1)
    if one and isinstance(b, E.Apply) and b.fn == "exp":
        return b.arg
    return None


def _negated(u: E.Node) -> bool:
    return E.split_coef(u)[0] < 0


def _reciprocal_one_plus_exp(f: E.Node):
    """(u, b, base) for f = (1 + exp(u)).^-b, or f = sigmoid(-u).^b (the same), else None."""
    base, e = E.power_of(f)
    if e < 0:
        u = _one_plus_exp(base)
        if u is not None:
            return u, -e, base
    elif isinstance(base, E.Apply) and base.fn == "sigmoid":
        return simplify(E.neg(base.arg)), e, None
    return None


def exp_to_sigmoid(node: E.Node):
    """exp(u) ./ (1 + exp(u)) → sigmoid(u) and 1 ./ (1 + exp(-u)) → sigmoid(u).

    Powers are matched too: exp(u).^a .* (1 + exp(u)).^-b keeps sigmoid(u).^min(a, b),
    and exp(u) .* sigmoid(-u) (what the second rule leaves of the first's
    pattern) is sigmoid(u).
    """
    if isinstance(node, E.Pow):
        base, e = E.power_of(node)
        u = _one_plus_exp(base)
        if u is not None and e < 0 and _negated(u):
            return E.power(E.apply("sigmoid", simplify(E.neg(u))), E.num(-e))
        return None
    if not isinstance(node, E.Product):
        return None
    factors = list(node.factors)
    out = tuple(range(node.rank))
    exps = {}
    for j, (g, jdx) in enumerate(factors):
        gbase, a = E.power_of(g)
        if a > 0 and isinstance(gbase, E.Apply) and gbase.fn == "exp":
            exps.setdefault((gbase.arg, tuple(jdx)), (j, a, gbase))
    for k, (f, idx) in enumerate(factors):
        if not (exps or isinstance(f, E.Pow)):
            continue  # without an exp to pair with, only (1 + exp(-u)).^-b is rewritten
        found = _reciprocal_one_plus_exp(f)
        if found is None:
            continue
        u, b, base = found
        hit = exps.get((u, tuple(idx)))
        if hit is not None:
            j, a, gbase = hit
            m = min(a, b)
            rest = [fi for i, fi in enumerate(factors) if i not in (j, k)]
            rest.append((E.power(E.apply("sigmoid", u), E.num(m)), idx))
            if a > m:
                rest.append((E.power(gbase, E.num(a - m)), idx))
            if b > m:
                rest.append((E.power(E.apply("sigmoid", simplify(E.neg(u))), E.num(b - m)), idx))
            return E.product(rest, out, coef=node.coef)
        if base is not None and _negated(u):
            rest = [fi for i, fi in enumerate(factors) if i != k]
            sig = E.apply("sigmoid", simplify(E.neg(u)))
            rest.append((E.power(sig, E.num(b)), idx))
            return E.product(rest, out, coef=node.coef)
    return None


def sigmoid_complement(node: E.Node):
    """sigmoid(u) .* sigmoid(-u) → sigmoid(u) .* (1 - sigmoid(u)), the σ' people write."""
    if not isinstance(node, E.Product):
        return None
    sigmoids = {}
    for k, (f, idx) in enumerate(node.factors):
        base, e = E.power_of(f)
        if isinstance(base, E.Apply) and base.fn == "sigmoid" and e > 0:
            sigmoids[(base.arg, tuple(idx))] = k
    if len(sigmoids) < 2:
        return None
    for (v, idx), k in sigmoids.items():
        if not _negated(v):
            continue
        u = simplify(E.neg(v))
        if (u, idx) not in sigmoids:
            continue
        f = node.factors[k][0]
        complement = E.add(E.ones(f.shape), E.neg(E.apply("sigmoid", u)))
        factors = list(node.factors)
        factors[k] = (E.power(complement, E.num(E.power_of(f)[1])), idx)
        return E.product(factors, tuple(range(node.rank)), coef=node.coef)
    return None


# ---------------------------------------------------------------------------
# size: what "smaller" means for the rules that keep a form only when smaller


_SIZES: dict = {}
_MAX_SIZES = 200_000  # the cache is cleared past this many nodes


def size(node: E.Node) -> int:
    """How much there is to read: occurrences of variables and function applications.

    Numbers, identities, ones and zeros cost nothing (a coefficient or a
    ``diag`` is not what makes a formula long), and shared subexpressions
    count once per occurrence, as they are read.
    """
    got = _SIZES.get(node)
    if got is not None:
        return got
    if len(_SIZES) > _MAX_SIZES:
        _SIZES.clear()
    stack = [node]
    while stack:
        n = stack[-1]
        if n in _SIZES:
            stack.pop()
            continue
        todo = [c for c in n.children() if c not in _SIZES]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        if isinstance(n, E.Var):
            v = 1
        elif isinstance(n, (E.Num, E.Zero, E.Ones, E.Delta)):
            v = 0
        elif isinstance(n, (E.Sum, E.Product, E.Pow)):
            v = sum(_SIZES[c] for c in n.children())
        else:
            v = 1 + sum(_SIZES[c] for c in n.children())
        _SIZES[n] = v
    return _SIZES[node]


# ---------------------------------------------------------------------------
# distribute_if_smaller

# Multiplying out is tried only on sums of at most this many terms, and
# kept to at most this many terms in all: it is a search for cancellation,
# not a normal form.
MAX_EXPANDED_SUM = 4
MAX_EXPANDED_TERMS = 8


def _sum_factors(node: E.Product):
    return [k for k, (f, _) in enumerate(node.factors)
            if isinstance(f, E.Sum) and f.rank <= 2 and len(f.terms) <= MAX_EXPANDED_SUM]


def _bases(node: E.Node) -> set:
    """What a factor can cancel or merge with: its base, and X for inv(X)."""
    out = set()
    for f in (node.children() if isinstance(node, E.Product) else (node,)):
        base = E.power_of(f)[0]
        out.add(base)
        if isinstance(base, E.Inv):
            out.add(base.arg)
    return out


def _may_cancel(node: E.Product, ks: list) -> list:
    """The sum factors k in ks with a term that meets the base of another factor
    (u·u⁻¹, X·inv(X), u·u): the only ones multiplying out can make smaller."""
    owners: dict = {}
    for j, (f, _) in enumerate(node.factors):
        for base in _bases(f):
            owners.setdefault(base, set()).add(j)
    return [k for k in ks
            if any(owners.get(base, set()) - {k}
                   for t in node.factors[k][0].terms for base in _bases(t))]


def _expand(node: E.Node, only=None):
    """The terms of node with its sum factors (or factor ``only``) multiplied out.

    None when that would make more than MAX_EXPANDED_TERMS terms.
    """
    if not isinstance(node, E.Product):
        return [node]
    ks = _sum_factors(node) if only is None else [only]
    if not ks:
        return [node]
    n_terms = 1
    for k in ks:
        n_terms *= len(node.factors[k][0].terms)
    if n_terms > MAX_EXPANDED_TERMS:
        return None
    partial = [[]]
    for k, (f, idx) in enumerate(node.factors):
        choices = [(t, idx) for t in f.terms] if k in ks else [(f, idx)]
        partial = [p + [c] for p in partial for c in choices]
    out = tuple(range(node.rank))
    outer, _STATE.expanding = getattr(_STATE, "expanding", False), True
    try:  # the candidate terms are simplified without multiplying out again
        return [_rewrite(E.product(p, out, coef=node.coef)) for p in partial]
    finally:
        _STATE.expanding = outer


# Whether candidate terms are being simplified (per thread: mc.diff may run in several).
_STATE = threading.local()


def distribute_if_smaller(node: E.Node):
    """F*(A + B) → F*A + F*B, and a Σ of such, where the expanded form is strictly smaller.

    Smaller by ``size``: diag(s)*(t ./ s) → t, y .* (1 - s) - (1 - y) .* s → y - s.
    A product is multiplied out over one of its sum factors at a time (the
    best one is kept: multiplying out the others too could split a factor
    from its reciprocal); a sum has all its terms multiplied out at once
    (y .* (1 - s) - (1 - y) .* s cancels only as a whole).
    """
    if getattr(_STATE, "expanding", False):
        return None
    if isinstance(node, E.Product):
        ks = _sum_factors(node)
        if not ks:
            return None
        candidates = [_expand(node, only=k) for k in _may_cancel(node, ks)]
    elif isinstance(node, E.Sum) and len(node.terms) <= MAX_EXPANDED_SUM:
        if not any(isinstance(t, E.Product) and _sum_factors(t) for t in node.terms):
            return None
        terms = []
        for t in node.terms:
            got = _expand(t)
            if got is None:
                return None
            terms.extend(got)
        candidates = [terms] if len(terms) <= MAX_EXPANDED_TERMS else []
    else:
        return None
    best, best_size = None, size(node)
    for terms in candidates:
        if terms is None:
            continue
        expanded = E.add(*terms)
        if size(expanded) < best_size:
            best, best_size = expanded, size(expanded)
    return best


# ---------------------------------------------------------------------------
# absorb_sign


def _minus_signs(node: E.Sum) -> int:
    return sum(E.split_coef(t)[0] < 0 for t in node.terms)


def absorb_sign(node: E.Node):
    """-c*(a - b)*R → c*(b - a)*R where the sum has as many minus signs as plus signs or more."""
    if not isinstance(node, E.Product) or node.coef >= 0:
        return None
    for k, (f, idx) in enumerate(node.factors):
        if not isinstance(f, E.Sum):
            continue
        k_neg = _minus_signs(f)
        if len(f.terms) - k_neg >= 1 + k_neg:
            continue
        flipped = E.add(*[E.neg(t) for t in f.terms])
        factors = list(node.factors)
        factors[k] = (flipped, idx)
        return E.product(factors, tuple(range(node.rank)), coef=-node.coef)
    return None


def common_coefficient(node: E.Node):
    """(A/2 + B/2)*R → (A + B)*R/2 where the sum factor's terms share one coefficient size.

    Signs stay in the sum (absorb_sign's business).
    """
    if not isinstance(node, E.Product):
        return None
    for k, (f, idx) in enumerate(node.factors):
        if not isinstance(f, E.Sum):
            continue
        coefs = [E.split_coef(t)[0] for t in f.terms]
        c = abs(coefs[0])
        if c in (0, 1) or any(abs(x) != c for x in coefs):
            continue
        factors = list(node.factors)
        factors[k] = (E.add(*[E.scale(1 / c, t) for t in f.terms]), idx)
        return E.product(factors, tuple(range(node.rank)), coef=node.coef * c)
    return None


# ---------------------------------------------------------------------------
# Square-matrix algebra: identities that hold only where the dimensions prove
# that every factor is square (an (n, n) factor: the same dimension twice).


def _square_chain(node: E.Node):
    """The factors of a matrix product M = F₁·F₂·…·Fₖ, each square, as (coef, [F₁, …, Fₖ]).

    None unless node is such a chain: every factor a square matrix read once,
    linked from M's row index to its column index through summed indices met
    by exactly two factors. A factor read as (column, row) is its transpose.
    """
    if not isinstance(node, E.Product) or node.rank != 2 or len(node.factors) < 2:
        return None
    factors = list(node.factors)
    if any(f.rank != 2 or f.shape[0] != f.shape[1] or idx[0] == idx[1] for f, idx in factors):
        return None
    chain, at, used = [], 0, set()
    while at != 1:
        step = [(k, f, idx) for k, (f, idx) in enumerate(factors) if k not in used and at in idx]
        if len(step) != 1:
            return None
        k, f, idx = step[0]
        used.add(k)
        if idx[0] == at:
            chain.append(f)
            at = idx[1]
        else:
            chain.append(E.transpose(f))
            at = idx[0]
        if at == 0:
            return None
    if len(used) != len(factors):
        return None  # a factor off the path: a trace or a scalar times the chain
    return node.coef, chain


def _matrix_chain(mats, coef=1) -> E.Node:
    """coef · M₁·M₂·…·Mₖ as one product."""
    factors = [(m, (("c", k), ("c", k + 1))) for k, m in enumerate(mats)]
    return E.product(factors, (("c", 0), ("c", len(mats))), coef=coef)


def inverse_of_product(node: E.Node):
    """inv(A*B) → inv(B)*inv(A) where A and B are square and the product is then smaller.

    Kept only when something then cancels (``inv(A*X*B)*A → inv(B)*inv(X)``,
    ``X*inv(X'*X) → inv(X')`` for square X); for rectangular factors
    inv(X'*X) is not inv(X)*inv(X') and is never split.
    """
    if not isinstance(node, E.Product):
        return None
    best, best_size = None, size(node)
    for k, (f, idx) in enumerate(node.factors):
        if not isinstance(f, E.Inv):
            continue
        found = _square_chain(f.arg)
        if found is None:
            continue
        coef, chain = found
        split = _matrix_chain([E.inv(m) for m in reversed(chain)], coef=1 / E.as_number(coef))
        factors = list(node.factors)
        factors[k] = (split, idx)
        candidate = _rewrite(E.product(factors, tuple(range(node.rank)), coef=node.coef))
        if size(candidate) < best_size:
            best, best_size = candidate, size(candidate)
    return best


def determinant_rules(node: E.Node):
    """det(X') → det(X), det(inv(X)) → 1/det(X), det(A*B) → det(A)*det(B) for square A, B.

    logdet(X') → logdet(X) and logdet(inv(X)) → -logdet(X) likewise. The
    split of det(A*B) is kept only where it is smaller (det(X*X*X) →
    det(X)^3); a product with rectangular factors (det(X'*X) for X of 4×3)
    is never split: it is not det(X')·det(X).
    """
    if not isinstance(node, (E.Det, E.LogDet)):
        return None
    arg = node.arg
    make = E.det if isinstance(node, E.Det) else E.logdet
    if _is_plain_transpose(arg):
        return make(arg.factors[0][0])
    if isinstance(arg, E.Inv):
        inner = make(arg.arg)
        return E.power(inner, E.num(-1)) if isinstance(node, E.Det) else E.neg(inner)
    if isinstance(node, E.Det):
        found = _square_chain(arg)
        if found is not None and found[0] == 1:
            candidate = _rewrite(E.product([(_rewrite(E.det(m)), ()) for m in found[1]], ()))
            if size(candidate) < size(node):
                return candidate
    return None


# Products past this many factors are not searched for repeated scalar parts.
MAX_COMPONENT_FACTORS = 24


def repeated_scalars(node: E.Node):
    """tr(A)*tr(A) → tr(A)^2: equal scalar parts of a product become one power.

    A scalar part is a group of factors that share summed indices only among
    themselves and carry no output axis.
    """
    if not isinstance(node, E.Product) or not 2 <= len(node.factors) <= MAX_COMPONENT_FACTORS:
        return None
    rank = node.rank
    parent = list(range(len(node.factors)))

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    owner: dict = {}
    for k, (_, idx) in enumerate(node.factors):
        for i in idx:
            j = owner.setdefault(i, k)
            parent[find(j)] = find(k)
    groups: dict = {}
    for k, (_, idx) in enumerate(node.factors):
        groups.setdefault(find(k), []).append(k)
    alike: dict = {}  # the factors' nodes, sorted -> components made of them
    for members in groups.values():
        labels = {i for k in members for i in node.factors[k][1]}
        if not labels or any(i < rank for i in labels):
            continue  # a number-like factor (merged by the constructor) or on an output axis
        key = tuple(sorted(node.factors[k][0].sort_key() for k in members))
        alike.setdefault(key, []).append(members)
    parts: dict = {}  # scalar part -> factor positions of each copy
    for candidates in alike.values():
        if len(candidates) < 2:
            continue  # only components of the same factors can be equal: skip building one
        for members in candidates:
            part = E.product([node.factors[k] for k in members], ())
            parts.setdefault(part, []).append(members)
    repeated = {part: copies for part, copies in parts.items() if len(copies) > 1}
    if not repeated:
        return None
    gone = {k for copies in repeated.values() for members in copies for k in members}
    factors = [f for k, f in enumerate(node.factors) if k not in gone]
    factors += [(E.power(part, E.num(len(copies))), ()) for part, copies in repeated.items()]
    return E.product(factors, tuple(range(rank)), coef=node.coef)


# ---------------------------------------------------------------------------
# Element-wise functions of diagonal matrices and of odd powers


def _vanishes_at_zero(fn: str) -> bool:
    """f(0) = 0 (sign, abs, relu, tanh, sin, …), read from the function's numpy form."""
    entry = FUNCTIONS.get(fn)
    if entry is None:
        return False
    try:
        with np.errstate(all="ignore"):
            return bool(np.asarray(entry.numpy(np.zeros(1))).ravel()[0] == 0)
    except Exception:  # a user function that cannot take an array of zeros
        return False


def _diagonal_of(node: E.Node):
    """v for node = diag(v) (a product of vectors on one index with δ), else None."""
    if not isinstance(node, E.Product) or node.rank != 2 or node.n_indices != 2:
        return None
    deltas = [k for k, (f, idx) in enumerate(node.factors)
              if isinstance(f, E.Delta) and set(idx) == {0, 1}]
    if len(deltas) != 1:
        return None
    rest = [(f, idx) for k, (f, idx) in enumerate(node.factors) if k != deltas[0]]
    if not rest or any(f.rank != 1 for f, _ in rest):
        return None
    return E.product([(f, (0,)) for f, _ in rest], (0,), coef=node.coef)


def elementwise_of_diagonal(node: E.Node):
    """f(diag(v)) → diag(f(v)) where f(0) = 0 (sign, abs, tanh, …; not exp).

    The zeros off the diagonal stay zeros: sign(diag(z .^ 3)) is
    diag(sign(z .^ 3)), no sign of a zero left to read.
    """
    if not isinstance(node, E.Apply):
        return None
    v = _diagonal_of(node.arg)
    if v is None or not _vanishes_at_zero(node.fn):
        return None
    return E.diag_matrix(_rewrite(E.apply(node.fn, v)))


def sign_of_power(node: E.Node):
    """sign(u .^ k) → sign(u) for an odd integer k > 0; sign(c*u) → ±sign(u) for a number c ≠ 0."""
    if not (isinstance(node, E.Apply) and node.fn == "sign"):
        return None
    arg = node.arg
    base, e = E.power_of(arg)
    if base is not arg and isinstance(e, Fraction) and e.denominator == 1 and e > 0 \
            and e.numerator % 2 == 1:
        return E.apply("sign", base)
    c, rest = E.split_coef(arg)
    if c != 1 and c != 0 and rest.shape == arg.shape and not isinstance(rest, E.Num):
        inner = E.apply("sign", rest)
        return inner if c > 0 else E.neg(inner)
    return None


# ---------------------------------------------------------------------------
# The rewrite rules, in the order they are tried on each node (the first that
# changes the node wins, and the result is rewritten again): the local
# rules first; the searches that keep a form only when it is smaller
# (inverse_of_product, distribute_if_smaller, factor_common) late, so they
# see the node already tidied. The order is behaviour: keep it.

REWRITES = [
    distribute_tensor_sums,
    cancel_inverses,
    exp_to_sigmoid,
    sigmoid_complement,
    determinant_rules,
    elementwise_of_diagonal,
    sign_of_power,
    repeated_scalars,
    canonical_transposes,
    inverse_of_product,
    distribute_if_smaller,
    absorb_sign,
    common_coefficient,
    factor_common,
]
