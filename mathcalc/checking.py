"""Numerical verification: finite-difference checks and equivalence at random points.

Random points are chosen inside the domain by reading the expression:

- a square matrix variable under ``inv``, ``det`` or ``logdet`` is drawn
  symmetric positive definite (``G Gᵀ/n + I``);
- a variable under a function defined for positive arguments only (``log``,
  ``sqrt``: the ``positive`` field of its row in functions.py), a fractional
  or negative power, or a non-constant exponent gets entries in [0.5, 2];
- other entries are standard normal;
- points where an argument of a kink (``max``, ``min``, ``norm1``, and the
  functions whose row has ``kink``: ``abs``, ``relu``, ``step``, ``sign``) is
  within a margin of the kink are drawn again (entries that are exactly
  zero and stay zero when the point moves, such as the zeros off the
  diagonal of ``diag(v)``, are no kink); the best point found is used if
  none is clean after many draws, and the result says so;
- a point is used only where the values are finite and every argument of
  ``inv``, ``det`` and ``logdet`` that depends on a drawn variable has a
  condition number below ``COND_LIMIT``; where the sizes first given to the
  dimension names make that impossible (``X'*X`` with X wider than tall),
  other bindings of the same sizes are tried.

No verdict comes from a point that cannot decide: where no usable point is
found, ``check`` is not ok and says why, and ``equivalent`` raises a
MathcalcError saying so. A check at a point where the round-off of the
difference quotients is more than 1% of the derivative's entries is not
usable either (a wrong derivative would pass there as well).

``equivalent`` compares values relatively at every scale (``1e-9*x`` is not
``2e-9*x``); where the two sides cancel to round-off, the difference is
measured against the round-off their intermediate values can carry, entry
by entry.

Dimension names get distinct sizes 2, 3, 4, … in order of first appearance
(skipping sizes used by integer dimensions), so a missing transpose cannot
pass by coincidence.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import opt_einsum

from . import nodes as E
from .api import diff
from .backend.cost import symbols_spec
from .errors import MathcalcError, ShapeError
from .declared import shapes_named_like_options
from .expression import Expr, as_expr, keywords_are_shapes
from .lambdify import lambdify
from .printing.notebook import check_latex
from .functions import FUNCTIONS

# Finite-difference step relative to each entry: the cube root of the float64
# epsilon balances truncation (h²) against round-off (ε/h) for central differences.
_EPS = np.finfo(float).eps
_STEP = _EPS ** (1 / 3)
DEFAULT_TOL = 1e-5
_FULL_LIMIT = 128  # compare every entry up to this many entries of the variable
_DIRECTIONS = 8  # otherwise this many random directions
_KINK_MARGIN = 1e-3
_TRIES = 60


# ---------------------------------------------------------------------------
# Domain analysis


@dataclass
class Domain:
    """What the random points must respect, read from one or more node trees."""

    spd: set = field(default_factory=set)  # variable names drawn SPD
    positive: set = field(default_factory=set)  # variable names drawn with positive entries
    kinks: list = field(default_factory=list)  # nodes (or (left, right) pairs) to keep away from 0
    conditioned: list = field(default_factory=list)  # arguments of inv/det/logdet, kept invertible
    structure: dict = field(default_factory=dict)  # name -> "symmetric"/"spd" (SPEC 6)


def analyse(*nodes: E.Node) -> Domain:
    dom = Domain()
    seen_kinks = set()
    seen_args = set()
    for root in nodes:
        for node in E.walk(root):
            E.known("check (domain analysis)", node)  # a new type may bring a domain
            if isinstance(node, E.Var) and node.structure:
                dom.structure[node.name] = node.structure
            if isinstance(node, (E.Inv, E.Det, E.LogDet)):
                dom.spd |= node.arg.free_vars
                if node.arg not in seen_args and node.arg.free_vars:
                    seen_args.add(node.arg)
                    dom.conditioned.append(node.arg)
            elif isinstance(node, E.Apply) and _row(node.fn, "positive"):
                dom.positive |= node.arg.free_vars
            elif isinstance(node, E.Pow):
                e = node.exponent
                if not isinstance(e, E.Num) or _fractional_or_negative(e.value):
                    dom.positive |= node.base.free_vars
            if isinstance(node, (E.Max, E.Min)):
                key = (node.left, node.right)
            elif isinstance(node, E.Apply) and _row(node.fn, "kink") or isinstance(node, E.Norm1):
                key = node.arg
            else:
                continue
            if key not in seen_kinks:
                seen_kinks.add(key)
                dom.kinks.append(key)
    return dom


def _row(fn: str, field: str) -> bool:
    """The domain field (``positive``, ``kink``) of the function's row in the table."""
    entry = FUNCTIONS.get(fn)
    return entry is not None and getattr(entry, field)


def _fractional_or_negative(value) -> bool:
    return value < 0 or float(value) != int(value)


# ---------------------------------------------------------------------------
# Sizes and points


def bind_sizes(variables: dict, values: dict | None = None, offset: int = 0) -> dict:
    """Distinct sizes for the dimension names, taking given arrays' sizes first."""
    sizes = {}
    for name, arr in (values or {}).items():
        shape = variables.get(name)
        if shape is None:
            continue
        got = np.shape(arr)
        if len(got) != len(shape):
            raise ShapeError(f"value for {name!r} has shape {got}, declared {shape}")
        for d, n in zip(shape, got):
            if isinstance(d, str):
                sizes.setdefault(d, n)
    used = {d for shape in variables.values() for d in shape if isinstance(d, int)}
    used |= set(sizes.values())
    candidate = 2 + offset
    for shape in variables.values():
        for d in shape:
            if isinstance(d, str) and d not in sizes:
                while candidate in used:
                    candidate += 1
                sizes[d] = candidate
                used.add(candidate)
    return sizes


# Other bindings tried when one gives no usable point: the same sizes given to
# the dimension names in other orders (X'*X under logdet needs X's rows >= its
# columns, which the first order may not give).
_MAX_BINDINGS = 6


def bindings(variables: dict, values: dict | None, sizes: dict) -> list:
    """``sizes`` first, then the same sizes permuted over the names no given value fixes."""
    fixed = set()
    for name in values or {}:
        fixed |= {d for d in variables.get(name, ()) if isinstance(d, str)}
    free = [d for d in sizes if d not in fixed]
    out = [sizes]
    for perm in itertools.permutations([sizes[d] for d in free]):
        if len(out) > _MAX_BINDINGS:
            break
        other = {**sizes, **dict(zip(free, perm))}
        if other not in out:
            out.append(other)
    return out


def _draw(shape, spd: bool, positive: bool, rng, symmetric: bool = True) -> np.ndarray:
    if spd and len(shape) == 2 and shape[0] == shape[1]:
        n = shape[0]
        g = rng.uniform(0.1, 1.0, (n, n)) if positive else rng.standard_normal((n, n))
        a = g @ g.T / n + np.eye(n)
        if not symmetric:
            # S + K with K antisymmetric: x'(S+K)x = x'Sx > 0, so det > 0 and the
            # inverse exists, but a missing transpose no longer cancels out.
            # (With positive entries: a small positive upper part, whose symmetric
            # part has norm below 1/2 <= the smallest eigenvalue of S.)
            if positive:
                a = a + np.triu(rng.uniform(0.0, 1.0 / n, (n, n)), 1)
            else:
                k = 0.5 * rng.standard_normal((n, n))
                a = a + (k - k.T)
        return a
    if positive:
        return rng.uniform(0.5, 2.0, shape)
    return rng.standard_normal(shape)


NO_FINITE_POINT = f"no point with finite values was found in {_TRIES} draws"
# A drawn point is used only where every argument of inv, det and logdet has a
# condition number below this: near-singular arguments give values that are
# huge or all round-off, and agreement there proves nothing (2*X*inv(X'*X) and
# the same plus 1 agree to 1e-15 relatively where X'*X is singular).
COND_LIMIT = 1e6
# Draws at one binding of the sizes that give no finite, well-conditioned
# values before the next binding is tried.
_BAD_PER_BINDING = 8


def random_point(variables: dict, domain: Domain, rng, values=None, sizes=None,
                 evaluate=(), nonzero=None, symmetric: bool = True) -> tuple:
    """(point, note): arrays for every variable, inside the domain where possible.

    ``evaluate`` are functions of the point whose values must be finite;
    ``nonzero`` a function that should not be zero everywhere at the point
    (a check of a derivative that is 0 there proves little: relu's at z < 0).
    Every argument of inv/det/logdet that depends on a drawn variable must
    be well conditioned (``COND_LIMIT``); where draws at the first binding of
    the sizes keep failing that or finiteness, the sizes are given to the
    dimension names in other orders (``bindings``).
    The point is None (and the note ``NO_FINITE_POINT``) when no draw gave
    finite values of every ``evaluate`` function: log(x - 100) at points
    drawn in [0.5, 2], or c ./ 0 anywhere.
    """
    values = dict(values or {})
    sizes = sizes if sizes is not None else bind_sizes(variables, values)
    kink_fns = [_kink_function(k, variables) for k in domain.kinks]
    cond_fns = [_lambdify_node(a, variables) for a in domain.conditioned
                if a.free_vars - set(values)]  # given values are the caller's choice
    best, best_score = None, -np.inf
    free = [v for v in variables if v not in values]
    tries = _TRIES if free else 1
    candidates = bindings(variables, values, sizes) if free else [sizes]
    for b, binding in enumerate(candidates):
        bad = 0
        for attempt in range(tries):
            point = _draw_point(variables, domain, rng, values, binding, symmetric)
            score = _score(point, kink_fns, evaluate, cond_fns)
            if score == -np.inf:
                bad += 1
                if bad >= _BAD_PER_BINDING and b + 1 < len(candidates) and best is None:
                    break  # this binding may make an argument singular: try the next
                continue
            if score >= _KINK_MARGIN:
                if nonzero is None or attempt >= tries // 2 or _any_nonzero(nonzero, point):
                    return point, ""
                score = _KINK_MARGIN * (1 - 1e-9)  # clean but all zero: a fallback only
            if score > best_score:
                best, best_score = point, score
        if best is not None:
            break
    if best_score == -np.inf:
        return None, NO_FINITE_POINT
    if best_score >= _KINK_MARGIN * (1 - 1e-6):
        return best, ""
    return best, (f"no point was found with every kink argument at least {_KINK_MARGIN} "
                  f"away from its kink (closest {best_score:.3g}); finite differences "
                  "may straddle a kink")


def _draw_point(variables, domain, rng, values, sizes, symmetric) -> dict:
    point = {}
    for name, shape in variables.items():
        if name in values:
            point[name] = np.asarray(values[name], dtype=float)
            if name in domain.structure:
                check_structured_value(name, point[name], domain.structure[name])
        else:
            dims = tuple(d if isinstance(d, int) else sizes[d] for d in shape)
            if name in domain.structure:
                point[name] = draw_structured(dims, domain.structure[name], name in domain.spd,
                                              name in domain.positive, rng)
                continue
            point[name] = _draw(dims, name in domain.spd, name in domain.positive, rng,
                                symmetric)
    return point


# ---------------------------------------------------------------------------
# Structure (SPEC 6): a variable declared symmetric (or spd) is drawn symmetric
# (positive definite) and moved along symmetric directions only; elsewhere it
# is outside its domain, where its simplified derivative need not hold.


def draw_structured(shape, structure: str, spd: bool, positive: bool, rng) -> np.ndarray:
    """A value of a variable declared ``structure``: symmetric, whatever kind of point
    is asked for; positive definite for "spd" or under inv/det/logdet (``spd``)."""
    if structure == "spd" or spd:
        return _draw(shape, True, positive, rng, symmetric=True)
    g = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return (g + g.T) / 2


def check_structured_value(name: str, value: np.ndarray, structure: str) -> None:
    """A ShapeError unless a given value fits the declared structure."""
    if value.ndim != 2 or value.shape[0] != value.shape[1]:
        return  # the shape is checked where the point is evaluated
    if not np.allclose(value, value.T, rtol=1e-10, atol=1e-12 * _maxabs(value)):
        raise ShapeError(f"the value given for {name!r} is not symmetric, but {name} is "
                         f"declared {structure}")
    if structure == "spd" and not np.all(np.linalg.eigvalsh(value) > 0):
        raise ShapeError(f"the value given for {name!r} is not positive definite, but {name} "
                         "is declared spd")


def symmetric_step(x0: np.ndarray, k: tuple, h: float) -> tuple:
    """(x0 + h·D, x0 - h·D, c) for the symmetric direction D of entry k = (i, j):
    E_ij + E_ji off the diagonal, E_ii on it; then c·(f(x0 + hD) - f(x0 - hD)) / 2h
    is entry k of the symmetric derivative, (G(i,j) + G(j,i))/2 (c is 1/2 off the
    diagonal, where both entries move)."""
    mirror = k[::-1]
    xp, xm = x0.copy(), x0.copy()
    for at in dict.fromkeys((k, mirror)):
        xp[at] += h
        xm[at] -= h
    return xp, xm, (1.0 if mirror == k else 0.5)


def _any_nonzero(fn, point) -> bool:
    try:
        with np.errstate(all="ignore"):
            return bool(np.any(np.asarray(fn(**point)) != 0))
    except (ArithmeticError, ValueError):  # LinAlgError is a ValueError
        return False


def _searched(values, variables) -> str:
    """Where random_point looked, for a message saying it found nothing."""
    fixed = [name for name in variables if name in (values or {})]
    if len(fixed) == len(variables):
        return "only the given values were tried"
    given = f", with the given values of {', '.join(fixed)}" if fixed else ""
    return (f"up to {_TRIES} random draws inside the domain at each of several bindings of "
            f"the dimensions{given}, keeping inv/det/logdet arguments' condition numbers "
            f"below {COND_LIMIT:g}")


def _score(point, kink_fns, evaluate, cond_fns=()) -> float:
    """The smallest distance of a kink argument from its kink; -inf if anything is not finite
    or an inv/det/logdet argument is ill conditioned."""
    try:
        with np.errstate(all="ignore"):
            for fn in evaluate:
                if not np.all(np.isfinite(fn(**point))):
                    return -np.inf
            for fn in cond_fns:
                arg = np.asarray(fn(**point), dtype=float)
                if not np.all(np.isfinite(arg)) or not np.linalg.cond(arg) < COND_LIMIT:
                    return -np.inf
            score = np.inf
            for fn in kink_fns:
                dist = np.abs(fn(point))
                if not np.all(np.isfinite(dist)):
                    return -np.inf
                dist = dist[_moves(fn, point, dist)]
                if np.size(dist):
                    score = min(score, float(np.min(dist)))
            return score
    except (ArithmeticError, ValueError):  # LinAlgError is a ValueError
        return -np.inf


def _moves(fn, point, dist) -> np.ndarray:
    """The entries of a kink argument that move with the point.

    An entry that is exactly 0 and stays 0 when every variable moves a
    little (the zeros off the diagonal of diag(v), relu(u) where u < 0) is
    no kink to keep away from: nothing a finite difference does crosses it.
    """
    still = dist == 0
    if not np.any(still):
        return np.ones(np.shape(dist), dtype=bool)
    rng = np.random.default_rng(1)
    for _ in range(2):
        moved = {k: v * (1 + 1e-4 * rng.standard_normal(np.shape(v))) + 1e-4 *
                 rng.standard_normal(np.shape(v)) for k, v in point.items()}
        still &= np.abs(fn(moved)) == 0
    return ~still


def _lambdify_node(node, variables):
    return lambdify(Expr(node, variables))


def _kink_function(kink, variables):
    if isinstance(kink, tuple):
        left = _lambdify_node(kink[0], variables)
        right = _lambdify_node(kink[1], variables)
        return lambda p: left(**p) - right(**p)
    fn = _lambdify_node(kink, variables)
    return lambda p: fn(**p)


# ---------------------------------------------------------------------------
# check: derivative against central differences


@dataclass
class CheckResult:
    """The outcome of ``check``; true in a boolean context when the derivative is right.

    ``max_rel_error`` is the largest of ``|J - FD| / max(|J|, |FD|, floor)``
    over the compared entries, where J is the symbolic derivative, FD the
    central difference and ``floor`` the larger of 1e-3 × the largest entry
    and the round-off level of the differences divided by the tolerance (so
    entries that are zero up to round-off do not count as errors).
    ``ok`` is ``max_rel_error < tol`` (default 1e-5).
    """

    ok: bool
    max_rel_error: float
    max_abs_error: float
    point: dict
    message: str = ""
    derivative: Expr | None = None
    mode: str = "full"  # "full" (every entry) or "directions" (random directional derivatives)
    # False where the point could not decide (values not finite, or round-off as large as
    # what is compared): such a result is never ok, and check tries other points first.
    usable: bool = True

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __repr__(self) -> str:
        return (f"CheckResult(ok={self.ok}, max_rel_error={self.max_rel_error:.3g}, "
                f"max_abs_error={self.max_abs_error:.3g}, mode={self.mode!r})")

    def __str__(self) -> str:
        return self.message or repr(self)

    def _repr_latex_(self) -> str:
        """A notebook shows the verdict, the error and the derivative checked, as math."""
        return check_latex(self)


@keywords_are_shapes()
def check(f, wrt: str, /, values: dict | None = None, seed: int = 0, order: int = 1,
          tol: float = DEFAULT_TOL, **shapes) -> CheckResult:
    """Compare ``diff(f, wrt, order)`` with central finite differences at a random point.

    order=1 differentiates f; order=k compares the k-th derivative with the
    differences of the (k-1)-th. Every entry of the variable is perturbed
    when it has at most 128 entries, otherwise 8 random unit directions u
    are compared (⟨J, v⟩ against (f(x + tv) - f(x - tv)) / 2t with
    v = max(1, |x|) ⊙ u and t = ε^(1/3)). Either way the step for an entry
    x_i is ε^(1/3)·max(1, |x_i|) (times u_i). ``values`` fixes any subset of the
    variables; the rest are drawn inside the domain (see the module doc).
    When a variable was drawn symmetric positive definite, a second point
    with a non-symmetric positive definite matrix is checked as well (a
    symmetric one hides a missing transpose); the worse result is returned.
    Where no draw makes f and the derivative finite (``sum(log(x - 3))``),
    the result is not ok, its errors are infinite and its message says so.
    """
    values, seed, order, tol = shapes_named_like_options(
        shapes, values=(values, None), seed=(seed, 0), order=(order, 1), tol=(tol, DEFAULT_TOL))
    f = as_expr(f, shapes)
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise MathcalcError(f"order must be a positive integer, not {order!r}")
    base = diff(f, wrt, order=order - 1) if order > 1 else f
    deriv = diff(f, wrt, order=order)
    variables = dict(f.variables)
    _check_values(values, variables)
    fn_base = lambdify(Expr(base.node, variables))
    fn_deriv = lambdify(Expr(deriv.node, variables))
    domain = analyse(f.node, base.node, deriv.node)
    rng = np.random.default_rng(seed)
    what = ("f and its derivative" if order == 1 else
            f"f's derivatives of order {order - 1} and {order}")
    result = _usable_result(fn_base, fn_deriv, variables, domain, rng, values, wrt, tol, deriv,
                            what, symmetric=True)
    if result.ok and domain.spd - set(values or {}) - set(domain.structure):
        # Symmetric matrices hide a missing transpose (inv(X) = inv(X)'): look
        # again at a positive definite matrix that is not symmetric.
        second = _usable_result(fn_base, fn_deriv, variables, domain, rng, values, wrt, tol,
                                deriv, what, symmetric=False)
        if not second.usable:
            result.message = _join(result.message, "no non-symmetric positive definite point "
                                   "with usable values was found, so only a symmetric one "
                                   "was checked")
            return result
        if not second.ok:
            return second
    return result


# Points tried by check when one is not usable (non-finite differences, or
# round-off larger than what is compared) before it says that none was.
_CHECK_POINTS = 4


def _usable_result(fn_base, fn_deriv, variables, domain, rng, values, wrt, tol, deriv, what,
                   symmetric) -> CheckResult:
    """The comparison at the first usable point; not ok, saying why, where none is."""
    reasons = []
    for _ in range(_CHECK_POINTS if len(values or {}) < len(variables) else 1):
        point, note = random_point(variables, domain, rng, values, evaluate=(fn_base, fn_deriv),
                                   nonzero=fn_deriv, symmetric=symmetric)
        if point is None:
            msg = (f"d/d{wrt}: no point was found where {what} are finite and every "
                   f"inv/det/logdet argument is well conditioned "
                   f"({_searched(values, variables)}), so nothing was compared")
            return CheckResult(False, float("inf"), float("inf"), {}, msg, deriv, usable=False)
        try:
            result = _differences(fn_base, fn_deriv, point, wrt, rng, tol, note, deriv)
        except (ArithmeticError, ValueError) as err:  # LinAlgError is a ValueError
            result = CheckResult(False, float("inf"), float("inf"), point,
                                 f"d/d{wrt}: evaluation failed at the point ({err})", deriv,
                                 usable=False)
        if result.usable:
            return result
        reasons.append(result.message)
    msg = (f"d/d{wrt}: no usable point was found in {len(reasons)} tried, so the derivative "
           f"was not verified; at the last: {reasons[-1]}")
    return CheckResult(False, float("inf"), float("inf"), result.point, msg, deriv,
                       result.mode, usable=False)


def _differences(fn_base, fn_deriv, point, wrt, rng, tol, note, deriv) -> CheckResult:
    sym = deriv is not None and wrt in deriv.structure  # move along symmetric directions
    J = np.asarray(fn_deriv(**point), dtype=float)
    x0 = np.array(point[wrt], dtype=float)
    f0 = np.asarray(fn_base(**point), dtype=float)
    out_shape = f0.shape

    def at(x):
        return np.asarray(fn_base(**{**point, wrt: x}), dtype=float)

    fscale = _maxabs(f0)
    if x0.size <= _FULL_LIMIT:
        mode = "full"
        fd = np.empty(out_shape + x0.shape)
        for k in np.ndindex(*x0.shape):
            h = _STEP * max(1.0, abs(float(x0[k])))
            if sym:
                xp, xm, c = symmetric_step(x0, k, h)
            else:
                xp, xm, c = x0.copy(), x0.copy(), 1.0
                xp[k] += h
                xm[k] -= h
            fp, fm = at(xp), at(xm)
            fscale = max(fscale, _maxabs(fp), _maxabs(fm))
            fd[(...,) + k] = c * (fp - fm) / (xp[k] - xm[k])
        derived, differenced = J, fd
        h_typ = _STEP
    else:
        mode = "directions"
        # Entry i moves by h_i u_i with h_i = ε^(1/3) max(1, |x_i|), as in the
        # full mode: the direction v = max(1, |x|) ⊙ u, stepped by t = ε^(1/3),
        # so (f(x + t v) - f(x - t v)) / 2t is compared with ⟨J, v⟩. (One step
        # scaled by max|x| would move the small entries by the largest one's step.)
        t = _STEP
        derived_list, fd_list = [], []
        axes = (list(range(J.ndim - x0.ndim, J.ndim)), list(range(x0.ndim)))
        for _ in range(_DIRECTIONS):
            u = rng.standard_normal(x0.shape)
            u = u + u.T if sym else u
            v = np.maximum(1.0, np.abs(x0)) * (u / np.linalg.norm(u))
            xp, xm = x0 + t * v, x0 - t * v
            fp, fm = at(xp), at(xm)
            fscale = max(fscale, _maxabs(fp), _maxabs(fm))
            # J is applied to the steps as represented (xp - xm), not the intended 2 t v.
            fd_list.append((fp - fm) / (2 * t))
            derived_list.append(np.tensordot(J, (xp - xm) / (2 * t), axes=axes))
        derived, differenced = np.stack(derived_list), np.stack(fd_list)
        h_typ = t
    return _result(derived, differenced, fscale, h_typ, tol, point, note, deriv, mode, wrt)


def _maxabs(a) -> float:
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def _check_values(values, variables) -> None:
    for name in values or {}:
        if name not in variables:
            raise ShapeError(f"values given for {name!r}, which is not a variable of the "
                             f"expression (variables: {', '.join(variables) or 'none'})")


# A point decides a check only where the round-off of a difference quotient is
# below this fraction of the largest entry compared (else 0, J and 2J all pass).
_RESOLVE = 1e-2


def _result(derived, differenced, fscale, h, tol, point, note, deriv, mode, wrt) -> CheckResult:
    with np.errstate(all="ignore"):
        err = np.abs(derived - differenced)
        scale = max(_maxabs(derived), _maxabs(differenced))
        noise = 10 * _EPS * (1.0 + fscale) / h  # round-off in a central difference
        if noise > _RESOLVE * scale > 0:
            # Values far below 1 (1e-9*x'*x): their own size bounds their round-off.
            noise = 10 * _EPS * fscale / h
        floor = max(1e-3 * scale, noise / tol, 1e-300)
        rel = err / np.maximum(np.maximum(np.abs(derived), np.abs(differenced)), floor)
    if err.size == 0:
        return CheckResult(True, 0.0, 0.0, point, "nothing to compare (empty shape)", deriv, mode)
    if not np.all(np.isfinite(rel)):
        bad = np.argwhere(~np.isfinite(rel))[0]
        msg = (f"non-finite values at entry {tuple(int(i) for i in bad)}: derived "
               f"{derived[tuple(bad)]!r}, finite differences {differenced[tuple(bad)]!r}")
        return CheckResult(False, float("inf"), float("inf"), point, _join(msg, note), deriv, mode,
                           usable=False)
    if noise > _RESOLVE * scale > 0:
        msg = (f"round-off in the values (about {noise:.3g} in a difference quotient) is more "
               f"than {_RESOLVE:g} of the largest entry compared ({scale:.3g}): a wrong "
               "derivative would pass as well as a right one")
        return CheckResult(False, float("inf"), float("inf"), point, _join(msg, note), deriv, mode,
                           usable=False)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    max_rel, max_abs = float(rel[worst]), float(np.max(err))
    ok = max_rel < tol
    where = (f"entry {tuple(int(i) for i in worst)}" if mode == "full" else
             f"direction {int(worst[0])}, entry {tuple(int(i) for i in worst[1:])}")
    msg = (f"d/d{wrt}: {'OK' if ok else 'MISMATCH'} — max relative error {max_rel:.3g} "
           f"(tolerance {tol:g}) at {where}: derived {float(derived[worst]):.10g}, "
           f"finite differences {float(differenced[worst]):.10g}")
    return CheckResult(ok, max_rel, max_abs, point, _join(msg, note), deriv, mode)


def _join(msg, note) -> str:
    return f"{msg}; {note}" if note else msg


# ---------------------------------------------------------------------------
# equivalent: two expressions agree at random points


@dataclass
class Comparison:
    """Where two expressions differ most at the points tried."""

    equal: bool
    reason: str = ""
    max_diff: float = 0.0
    index: tuple = ()
    point: dict | None = None
    left: float = 0.0
    right: float = 0.0
    usable: bool = True  # False where no point could decide (then ``equal`` is False too)


RTOL = 1e-7
# Where two values cancel (x'*(A - A')*x is about 1e-16, not 0), a difference
# up to this many times the estimated round-off (_RoundOff) is round-off. Over
# the comparisons of tests/test_check.py, test_identities.py, test_planted_bug.py
# and test_testing_helper.py, and a set of cancelling identities (inv(X)*X - I
# with cond(X) up to 1e8, sin² + cos² - 1, logdet(X*X) - 2 logdet(X), with
# coefficients from 1e-9 to 1e8), equal sides measured at most 0.4 of it and
# unequal ones at least 1e12 (1e-12*(A + I)*x against 1e-12*(A + A')*x).
ROUNDOFF_MARGIN = 1e3


def pair(a, b, shapes: dict) -> tuple:
    """Two Exprs from Expr-or-text: text is parsed with the other side's variables as shapes."""
    if isinstance(a, str) and not isinstance(b, str):
        b, a = pair(b, a, shapes)
        return a, b
    a = as_expr(a, shapes)
    if isinstance(b, str):
        try:
            b = as_expr(b, {**a.declared(), **shapes})  # structured variables stay so
        except ShapeError:
            b = as_expr(b, shapes)  # its own shapes; comparing them then says False
    else:
        b = as_expr(b, shapes)
    return a, b


def compare(a: Expr, b: Expr, values=None, seed: int = 0, points: int = 3,
            rtol: float = RTOL) -> Comparison:
    """Compare two Exprs structurally, then numerically at ``points`` random points.

    At each point the largest entry of ``|a - b|`` must be at most ``rtol``
    times the largest entry of a and b there, or, where they cancel, at
    most ``ROUNDOFF_MARGIN`` times the round-off their evaluation can carry
    (``_RoundOff``). Without a single point where both sides are finite the
    Comparison is not equal and its reason says so.
    """
    if a.shape != b.shape:
        return Comparison(False, f"shapes differ: {a.shape} and {b.shape}")
    variables = dict(a.variables)
    for name, shape in b.variables.items():
        if variables.setdefault(name, shape) != shape:
            return Comparison(False, f"{name!r} has shape {variables[name]} in one "
                                     f"expression and {shape} in the other")
    _check_values(values, variables)
    if a.node == b.node:
        return Comparison(True, "structurally equal")
    fa = lambdify(Expr(a.node, variables))
    fb = lambdify(Expr(b.node, variables))
    domain = analyse(a.node, b.node)
    roundoff = _RoundOff((a.node, b.node), variables)
    rng = np.random.default_rng(seed)
    worst = Comparison(True, "numerically equal")
    compared = 0
    free = len(values or {}) < len(variables)
    for k in range(points + 1 if free else 1):
        sizes = bind_sizes(variables, values, offset=k % points)
        if k < points:
            # The first point follows the spec (symmetric positive definite under
            # inv/det/logdet); the others are positive definite but not symmetric,
            # so inv(X) and inv(X)' are told apart.
            point, _ = random_point(variables, domain, rng, values, sizes, evaluate=(fa, fb),
                                    symmetric=(k == 0))
        else:
            # A last point with no sign restriction, used where both sides are
            # finite there: sqrt(x .^ 2) and x agree only for positive x.
            point, note = random_point(variables, Domain(kinks=domain.kinks,
                                                         conditioned=domain.conditioned,
                                                         structure=domain.structure),
                                       rng, values, sizes, evaluate=(fa, fb), symmetric=False)
            if note:
                continue
        if point is None:
            continue  # none at these sizes; with none at all, see below
        compared += 1
        with np.errstate(all="ignore"):
            va = np.asarray(fa(**point), dtype=float)
            vb = np.asarray(fb(**point), dtype=float)
            same_nan = np.isnan(va) & np.isnan(vb)
            diff = np.where(same_nan, 0.0, np.abs(va - vb))
            scale = max(_maxabs(np.nan_to_num(va)), _maxabs(np.nan_to_num(vb)))
        diff = np.where(np.isnan(diff), np.inf, diff)
        if diff.size == 0:
            continue
        idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
        d = float(diff[idx])
        differ = d > rtol * scale and (d == np.inf or d > ROUNDOFF_MARGIN * roundoff.level(point))
        if differ:
            if worst.equal or d >= worst.max_diff:
                worst = Comparison(False, "values differ", d, tuple(int(i) for i in idx),
                                   point, float(va[idx]), float(vb[idx]))
        elif worst.equal and d >= worst.max_diff:
            worst.max_diff, worst.point = d, point
    if not compared:
        return Comparison(False, f"no point was found where both expressions are finite and "
                                 f"every inv/det/logdet argument is well conditioned "
                                 f"({_searched(values, variables)}), so they were not "
                                 "compared", usable=False)
    return worst


class _RoundOff:
    """An estimate of the round-off in two expressions' values at a point.

    A running error analysis over the nodes of both, children first, each
    node evaluated on its own from its children's values:

    - the variables' values are exact (the point is what it is);
    - a sum or product rounds by about ε × the size of what it adds up:
      Σ|tᵢ| for a sum, ``|c|`` Σ Π |fᵢ| for a product ``c Σ Π fᵢ``;
    - any other node (inv, det, exp, …) is taken to be backward stable: its
      rounding is that of moving each input by ε relative, which
      ``inv(X)`` turns into about cond(X) ε;
    - the children's errors are carried through each node by evaluating it
      again with every child moved by its error (random signs), so a
      coefficient of 1e-9 scales them down, 1e6 up, inv and exp by their
      slopes, and tanh of a saturated unit damps them, as the arithmetic
      itself does.

    Where the values cancel (``x'*(A - A')*x`` is about 1e-16, not 0) the
    difference is round-off of about this size; a small difference next to
    large intermediates that do not cancel (``1e-9*(A + I)*x`` against
    ``1e-9*(A + A')*x``) is not. Arrays are summarised by their largest
    finite entry. Nodes are compiled, with placeholder variables for their
    children, the first time a point needs them: only where two values
    differ by more than the relative tolerance.
    """

    def __init__(self, roots, variables):
        self.roots = roots
        self.nodes = list(_union_walk(roots))
        self.variables = variables
        self.compiled = {}  # node -> (function of its children, {child: placeholder})
        self.paths = {}  # (product, operand shapes) -> einsum contraction path

    def level(self, point) -> float:
        """The estimated round-off of the roots, added up (0 where it cannot be estimated)."""
        try:
            return self._level(point)
        except (ArithmeticError, ValueError):  # a node that cannot be evaluated on its own
            return 0.0

    def _level(self, point) -> float:
        rng = np.random.default_rng(0)
        value, err = {}, {}
        for node in self.nodes:
            if isinstance(node, _LEAVES):
                value[node] = self._evaluate(node, point, value)
                err[node] = 0.0
                continue
            value[node] = v = self._evaluate(node, point, value)
            # A sum's or product's own rounding is ε × its operands' size; any
            # other node's is that of its inputs moved by ε relative.
            # Entry by entry: an entry that is exactly zero by structure (off the
            # diagonal of diag(v)) carries no rounding, so sign() of it does not
            # jump in the estimate.
            linear = isinstance(node, (E.Sum, E.Product))
            own = 0.0
            if linear:
                own = _EPS * self._operands_size(node, value)
            moved = {}
            for c in node.children():
                step = err[c]
                if not linear and not isinstance(c, _CONSTANTS):
                    step = step + _EPS * np.abs(value[c])
                if np.any(step):
                    moved[c] = value[c] + step * rng.choice((-1.0, 1.0), np.shape(value[c]))
            carried = 0.0
            if moved:
                with np.errstate(all="ignore"):
                    carried = _finite_abs(self._evaluate(node, point, {**value, **moved}) - v)
            err[node] = own + carried
        return float(sum(_finite_max(err[root]) for root in set(self.roots)))

    def _evaluate(self, node, point, value) -> np.ndarray:
        """The node's value at the point, from the given values of its children."""
        if isinstance(node, E.Var):
            return np.asarray(point[node.name], dtype=float)
        # Sums and products, most of the nodes, by their definitions; only the
        # other nodes are compiled (what lambdify builds for them is small).
        with np.errstate(all="ignore"):
            if isinstance(node, E.Sum):
                return sum(value[t] for t in node.terms)
            if isinstance(node, E.Product):
                return self._contract(node, [value[f] for f, _ in node.factors], node.coef)
        got = self.compiled.get(node)
        if got is None:
            got = self.compiled[node] = self._shallow(node)
        fn, holders = got
        args = {name: point[name] for name in fn.expr.variables if name in point}
        args.update((c.name, value[c]) for c in node.children() if isinstance(c, E.Var))
        args.update((h.name, value[child]) for child, h in holders.items())
        try:
            with np.errstate(all="ignore"):
                return np.asarray(fn(**args), dtype=float)
        except (ArithmeticError, ValueError):  # LinAlgError is a ValueError
            return np.asarray(np.nan)

    def _shallow(self, node):
        """(function, {child: placeholder}): the node over placeholders for its children."""
        taken = set(self.variables)
        holders = {}
        for child in node.children():
            if not isinstance(child, _LEAVES) and child not in holders:
                name = f"mc_child{len(holders)}"
                while name in taken:
                    name += "_"
                taken.add(name)
                holders[child] = E.var(name, child.shape)
        shallow = node.with_children([holders.get(k, k) for k in node.children()])
        # The variables it uses, and one for each dimension they leave unbound
        # (ones(n) or eye(n) with no variable of size n among them).
        env = {n.name: n.shape for n in E.walk(shallow) if isinstance(n, E.Var)}
        bound = {d for shape in env.values() for d in shape}
        for n in E.walk(shallow):
            for d in n.shape:
                if d not in bound and isinstance(d, str):
                    name = next((v for v, shape in self.variables.items() if d in shape), None)
                    if name is not None:
                        env[name] = self.variables[name]
                        bound |= set(self.variables[name])
        return lambdify(Expr(shallow, env)), holders

    def _operands_size(self, node, value) -> float:
        """What a sum or product adds up, entry by entry: Σ|tᵢ|, or ``|c|`` Σ Π |fᵢ|."""
        with np.errstate(all="ignore"):
            if isinstance(node, E.Sum):
                return _finite_abs(sum(np.abs(value[t]) for t in node.terms))
            operands = [np.abs(value[f]) for f, _ in node.factors]
            return _finite_abs(self._contract(node, operands, abs(float(node.coef))))

    def _contract(self, node: E.Product, operands, coef) -> np.ndarray:
        """``coef Σ Π operands`` with the product's indices (any number of them)."""
        # a contraction found once per product and shapes: finding its path is slow
        key = (node, tuple(np.shape(o) for o in operands))
        fn = self.paths.get(key)
        if fn is None:
            spec = symbols_spec([idx for _, idx in node.factors], range(node.rank))
            fn = self.paths[key] = opt_einsum.contract_expression(spec, *key[1], optimize="greedy")
        return float(coef) * np.asarray(fn(*operands), dtype=float)


_CONSTANTS = (E.Num, E.Zero, E.Ones, E.Delta)
_LEAVES = (E.Var,) + _CONSTANTS


def _finite_abs(value) -> np.ndarray:
    """|value| entry by entry, with 0 where it is not finite (as _finite_max leaves those out)."""
    value = np.abs(np.asarray(value, dtype=float))
    return np.where(np.isfinite(value), value, 0.0)


def _finite_max(value) -> float:
    value = np.asarray(value)
    finite = np.abs(value[np.isfinite(value)])
    return float(np.max(finite)) if finite.size else 0.0


def _union_walk(roots):
    """Every distinct node under any of the roots once, children before parents."""
    seen = set()
    for root in roots:
        for node in E.walk(root):
            if node not in seen:
                seen.add(node)
                yield node


@keywords_are_shapes()
def equivalent(a, b, /, values: dict | None = None, seed: int = 0, **shapes) -> bool:
    """True when two expressions (Expr or text) agree.

    Equal after canonicalisation, or equal at three random in-domain points
    binding the union of their variables, each point with other sizes for
    the dimension names: the largest difference is at most 1e-7 times the
    largest entry of the two values there (relative at every scale:
    ``1e-9*x`` is not ``2e-9*x``), or, where the values cancel to round-off
    (``x'*(A - A')*x`` and 0), within the round-off that their intermediate
    values can carry. Where no point has both sides finite and every
    inv/det/logdet argument well conditioned, a MathcalcError says so: neither
    answer would be a finding.
    Expressions of different shapes, or that give one variable different
    shapes, are not equivalent (False, not an error). A string is parsed
    with the shapes and the other side's variables.
    """
    values, seed = shapes_named_like_options(shapes, values=(values, None), seed=(seed, 0))
    left, right = pair(a, b, shapes)
    result = compare(left, right, values=values, seed=seed)
    if not result.usable:
        # Neither True nor False would be a finding: say so (SPEC 2, issue 10).
        raise MathcalcError(f"cannot decide whether the expressions are equivalent: "
                            f"{result.reason}")
    return result.equal
