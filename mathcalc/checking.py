"""Numerical verification: finite-difference checks and equivalence at random points.

Random points are chosen inside the domain by reading the expression:

- a square matrix variable under ``inv``, ``det`` or ``logdet`` is drawn
  symmetric positive definite (``G Gᵀ/n + I``);
- a variable under ``log``, ``sqrt``, a fractional or negative power, or a
  non-constant exponent gets entries in [0.5, 2];
- other entries are standard normal;
- points where an argument of a kink (``max``, ``min``, ``abs``, ``relu``,
  ``step``, ``sign``, ``norm1``) is within a margin of the kink, or where a
  value is not finite, are drawn again (the best point found is used if
  none is clean after many draws, and the result says so).

Dimension names get distinct sizes 2, 3, 4, … in order of first appearance
(skipping sizes used by integer dimensions), so a missing transpose cannot
pass by coincidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import expr as E
from .errors import MathcalcError, ShapeError
from .expression import Expr, as_expr

# Finite-difference step relative to each entry: the cube root of the float64
# epsilon balances truncation (h²) against round-off (ε/h) for central differences.
_EPS = np.finfo(float).eps
_STEP = _EPS ** (1 / 3)
DEFAULT_TOL = 1e-5
_FULL_LIMIT = 128  # compare every entry up to this many entries of the variable
_DIRECTIONS = 8  # otherwise this many random directions
_KINK_MARGIN = 1e-3
_TRIES = 60

_KINKED = {"abs", "relu", "step", "sign"}
_POSITIVE = {"log", "sqrt"}


# ---------------------------------------------------------------------------
# Domain analysis


@dataclass
class Domain:
    """What the random points must respect, read from one or more node trees."""

    spd: set = field(default_factory=set)  # variable names drawn SPD
    positive: set = field(default_factory=set)  # variable names drawn with positive entries
    kinks: list = field(default_factory=list)  # nodes (or (left, right) pairs) to keep away from 0


def analyse(*nodes: E.Node) -> Domain:
    dom = Domain()
    seen_kinks = set()
    for root in nodes:
        for node in E.walk(root):
            if isinstance(node, (E.Inv, E.Det, E.LogDet)):
                dom.spd |= node.arg.free_vars
            elif isinstance(node, E.Apply) and node.fn in _POSITIVE:
                dom.positive |= node.arg.free_vars
            elif isinstance(node, E.Pow):
                e = node.exponent
                if not isinstance(e, E.Num) or _fractional_or_negative(e.value):
                    dom.positive |= node.base.free_vars
            if isinstance(node, (E.Max, E.Min)):
                key = (node.left, node.right)
            elif isinstance(node, E.Apply) and node.fn in _KINKED or isinstance(node, E.Norm1):
                key = node.arg
            else:
                continue
            if key not in seen_kinks:
                seen_kinks.add(key)
                dom.kinks.append(key)
    return dom


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


def random_point(variables: dict, domain: Domain, rng, values=None, sizes=None,
                 evaluate=(), nonzero=None, symmetric: bool = True) -> tuple:
    """(point, note): arrays for every variable, inside the domain where possible.

    ``evaluate`` are functions of the point whose values must be finite;
    ``nonzero`` a function that should not be zero everywhere at the point
    (a check of a derivative that is 0 there proves little: relu's at z < 0).
    """
    values = dict(values or {})
    sizes = sizes if sizes is not None else bind_sizes(variables, values)
    kink_fns = [_kink_function(k, variables) for k in domain.kinks]
    best, best_score = None, -np.inf
    free = [v for v in variables if v not in values]
    for attempt in range(_TRIES if free else 1):
        point = {}
        for name, shape in variables.items():
            if name in values:
                point[name] = np.asarray(values[name], dtype=float)
            else:
                dims = tuple(d if isinstance(d, int) else sizes[d] for d in shape)
                point[name] = _draw(dims, name in domain.spd, name in domain.positive, rng,
                                    symmetric)
        score = _score(point, kink_fns, evaluate)
        if score >= _KINK_MARGIN:
            if nonzero is None or attempt >= _TRIES // 2 or np.any(nonzero(**point) != 0):
                return point, ""
            score = _KINK_MARGIN * (1 - 1e-9)  # clean but all zero: a fallback only
        if score > best_score:
            best, best_score = point, score
    if best_score == -np.inf:
        return best, "no point with finite values was found"
    if best_score >= _KINK_MARGIN * (1 - 1e-6):
        return best, ""
    return best, (f"no point was found with every kink argument at least {_KINK_MARGIN} "
                  f"away from its kink (closest {best_score:.3g}); finite differences "
                  "may straddle a kink")


def _score(point, kink_fns, evaluate) -> float:
    """The smallest distance of a kink argument from its kink; -inf if anything is not finite."""
    try:
        with np.errstate(all="ignore"):
            for fn in evaluate:
                if not np.all(np.isfinite(fn(**point))):
                    return -np.inf
            score = np.inf
            for fn in kink_fns:
                dist = np.abs(fn(point))
                if not np.all(np.isfinite(dist)):
                    return -np.inf
                if np.size(dist):
                    score = min(score, float(np.min(dist)))
            return score
    except (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError):
        return -np.inf


def _kink_function(kink, variables):
    from .numeric import lambdify

    if isinstance(kink, tuple):
        left = lambdify(Expr(kink[0], variables))
        right = lambdify(Expr(kink[1], variables))
        return lambda p: left(**p) - right(**p)
    fn = lambdify(Expr(kink, variables))
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

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __repr__(self) -> str:
        return (f"CheckResult(ok={self.ok}, max_rel_error={self.max_rel_error:.3g}, "
                f"max_abs_error={self.max_abs_error:.3g}, mode={self.mode!r})")

    def __str__(self) -> str:
        return self.message or repr(self)


def check(f, wrt: str, values: dict | None = None, seed: int = 0, order: int = 1,
          tol: float = DEFAULT_TOL, **shapes) -> CheckResult:
    """Compare ``diff(f, wrt, order)`` with central finite differences at a random point.

    order=1 differentiates f; order=k compares the k-th derivative with the
    differences of the (k-1)-th. Every entry of the variable is perturbed
    when it has at most 128 entries, otherwise 8 random directions are
    compared (⟨J, u⟩ against (f(x + hu) - f(x - hu)) / 2h). The step for an
    entry x_i is ε^(1/3)·max(1, |x_i|). ``values`` fixes any subset of the
    variables; the rest are drawn inside the domain (see the module doc).
    When a variable was drawn symmetric positive definite, a second point
    with a non-symmetric positive definite matrix is checked as well (a
    symmetric one hides a missing transpose); the worse result is returned.
    """
    from .api import diff
    from .numeric import lambdify

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
    point, note = random_point(variables, domain, rng, values, evaluate=(fn_base, fn_deriv),
                               nonzero=fn_deriv)
    result = _differences(fn_base, fn_deriv, point, wrt, rng, tol, note, deriv)
    if result.ok and domain.spd - set(values or {}):
        # Symmetric matrices hide a missing transpose (inv(X) = inv(X)'): look
        # again at a positive definite matrix that is not symmetric.
        other, note = random_point(variables, domain, rng, values, evaluate=(fn_base, fn_deriv),
                                   nonzero=fn_deriv, symmetric=False)
        second = _differences(fn_base, fn_deriv, other, wrt, rng, tol, note, deriv)
        if not second.ok:
            return second
    return result


def _differences(fn_base, fn_deriv, point, wrt, rng, tol, note, deriv) -> CheckResult:
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
            xp, xm = x0.copy(), x0.copy()
            xp[k] += h
            xm[k] -= h
            fp, fm = at(xp), at(xm)
            fscale = max(fscale, _maxabs(fp), _maxabs(fm))
            fd[(...,) + k] = (fp - fm) / (xp[k] - xm[k])
        derived, differenced = J, fd
        h_typ = _STEP
    else:
        mode = "directions"
        h = _STEP * max(1.0, float(np.max(np.abs(x0))))
        derived_list, fd_list = [], []
        axes = (list(range(J.ndim - x0.ndim, J.ndim)), list(range(x0.ndim)))
        for _ in range(_DIRECTIONS):
            u = rng.standard_normal(x0.shape)
            u /= np.linalg.norm(u)
            fp, fm = at(x0 + h * u), at(x0 - h * u)
            fscale = max(fscale, _maxabs(fp), _maxabs(fm))
            fd_list.append((fp - fm) / (2 * h))
            derived_list.append(np.tensordot(J, u, axes=axes))
        derived, differenced = np.stack(derived_list), np.stack(fd_list)
        h_typ = h
    return _result(derived, differenced, fscale, h_typ, tol, point, note, deriv, mode, wrt)


def _maxabs(a) -> float:
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def _check_values(values, variables) -> None:
    for name in values or {}:
        if name not in variables:
            raise ShapeError(f"values given for {name!r}, which is not a variable of the "
                             f"expression (variables: {', '.join(variables) or 'none'})")


def _result(derived, differenced, fscale, h, tol, point, note, deriv, mode, wrt) -> CheckResult:
    with np.errstate(all="ignore"):
        err = np.abs(derived - differenced)
        scale = max(_maxabs(derived), _maxabs(differenced))
        noise = 10 * _EPS * (1.0 + fscale) / h  # round-off in a central difference
        floor = max(1e-3 * scale, noise / tol, 1e-300)
        rel = err / np.maximum(np.maximum(np.abs(derived), np.abs(differenced)), floor)
    if err.size == 0:
        return CheckResult(True, 0.0, 0.0, point, "nothing to compare (empty shape)", deriv, mode)
    if not np.all(np.isfinite(rel)):
        bad = np.argwhere(~np.isfinite(rel))[0]
        msg = (f"non-finite values at entry {tuple(int(i) for i in bad)}: derived "
               f"{derived[tuple(bad)]!r}, finite differences {differenced[tuple(bad)]!r}")
        return CheckResult(False, float("inf"), float("inf"), point, _join(msg, note), deriv, mode)
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


RTOL = 1e-7


def pair(a, b, shapes: dict) -> tuple:
    """Two Exprs from Expr-or-text: text is parsed with the other side's variables as shapes."""
    if isinstance(a, str) and not isinstance(b, str):
        b, a = pair(b, a, shapes)
        return a, b
    a = as_expr(a, shapes)
    if isinstance(b, str):
        try:
            b = as_expr(b, {**a.variables, **shapes})
        except ShapeError:
            b = as_expr(b, shapes)  # its own shapes; comparing them then says False
    else:
        b = as_expr(b, shapes)
    return a, b


def compare(a: Expr, b: Expr, values=None, seed: int = 0, points: int = 3,
            rtol: float = RTOL) -> Comparison:
    """Compare two Exprs structurally, then numerically at ``points`` random points."""
    from .numeric import lambdify

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
    rng = np.random.default_rng(seed)
    worst = Comparison(True, "numerically equal")
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
            point, note = random_point(variables, Domain(kinks=domain.kinks), rng, values,
                                       sizes, evaluate=(fa, fb), symmetric=False)
            if note:
                continue
        with np.errstate(all="ignore"):
            va = np.asarray(fa(**point), dtype=float)
            vb = np.asarray(fb(**point), dtype=float)
            same_nan = np.isnan(va) & np.isnan(vb)
            diff = np.where(same_nan, 0.0, np.abs(va - vb))
            scale = max(_maxabs(np.nan_to_num(va)), _maxabs(np.nan_to_num(vb)), 1.0)
        diff = np.where(np.isnan(diff), np.inf, diff)
        if diff.size == 0:
            continue
        idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
        d = float(diff[idx])
        if d > rtol * scale and d >= worst.max_diff:
            worst = Comparison(False, "values differ", d, tuple(int(i) for i in idx), point,
                               float(va[idx]), float(vb[idx]))
        elif worst.equal and d >= worst.max_diff:
            worst.max_diff, worst.point = d, point
    return worst


def equivalent(a, b, values: dict | None = None, seed: int = 0, **shapes) -> bool:
    """True when two expressions (Expr or text) agree.

    Equal after canonicalisation, or equal within a relative tolerance of
    1e-7 (of the largest entry, at least 1) at three random in-domain points
    binding the union of their variables, each point with other sizes for
    the dimension names. Expressions of different shapes, or that give one
    variable different shapes, are not equivalent (False, not an error).
    A string is parsed with the shapes and the other side's variables.
    """
    left, right = pair(a, b, shapes)
    return compare(left, right, values=values, seed=seed).equal
