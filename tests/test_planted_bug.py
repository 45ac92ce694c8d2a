"""Test the tests: plant a wrong derivative rule and see every checker catch it.

Each case replaces one entry of ``mathcalc.rules.RULES`` (monkeypatch restores
it afterwards) with a plausible mistake — a dropped transpose, a lost minus
sign, a product rule that reads a factor the wrong way round — and asserts that

1. the finite-difference comparison of tests/evaluate.py (the one the identity
   and property tests use) rejects the derivative of an expression that uses
   the rule,
2. ``mc.check`` rejects it, at points of its own choosing and at ours,
3. ``mc.equivalent`` no longer finds the derivative equal to the closed form of
   the identity table, and the identity test itself fails;
4. the rule's own test in tests/test_rules.py (named after it) fails;

for every entry of RULES (``test_every_entry_of_rules_has_a_planted_bug``).
Two kinds of entry are not asked by diff, so only their own test can see a
plant there: the constants (reverse mode never asks for the derivative of
what does not depend on X: it is a symbolic zero, skipped), and the variable
(diff's ``var_adjoint`` calls ``rules.rule_var`` by name, not through the
table: that plant is marked as a known gap). And, as a control, that with the correct rule in place all of them pass (so
a rejection is due to the plant, not to a harness that rejects everything).
"""

from __future__ import annotations

import numpy as np
import pytest

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc import rules as R
from mathcalc.diff import diff_node

from evaluate import evaluate, fd_jacobian, rel_error
from identities import IDENTITIES

import test_identities as TI
import test_rules as TR

H, RTOL = 1e-6, 1e-5


# ---------------------------------------------------------------------------
# The planted mistakes, each a rule in the style of mathcalc/rules.py


def logdet_no_transpose(node, d, wrt):
    """d logdet(X) = tr(inv(X)ᵀ·dX) — the transpose of the inverse read the wrong way."""
    x = wrt.labels
    return E.product([(E.inv(node.arg), ("a", "b")), (d(node.arg), ("a", "b") + x)], x)


def inv_no_minus(node, d, wrt):
    """d inv(X) = +inv(X)·dX·inv(X) — the minus sign lost."""
    x = wrt.labels
    return E.product([(node, ("o0", "a")), (d(node.arg), ("a", "b") + x), (node, ("b", "o1"))],
                     ("o0", "o1") + x)


def inv_swapped(node, d, wrt):
    """d inv(X) = -inv(X)ᵀ·dX·inv(X)ᵀ — both inverses transposed."""
    x = wrt.labels
    return E.product([(node, ("a", "o0")), (d(node.arg), ("a", "b") + x), (node, ("o1", "b"))],
                     ("o0", "o1") + x, coef=-1)


def product_transposed(node, d, wrt):
    """The product rule, but a matrix factor's derivative attached with its axes swapped."""
    x = wrt.labels
    out = tuple(range(node.rank)) + x
    terms = []
    for k, (factor, idx) in enumerate(node.factors):
        if not R.depends(factor, wrt):
            continue
        factors = [(f, i) for j, (f, i) in enumerate(node.factors) if j != k]
        idx = tuple(reversed(idx)) if len(idx) == 2 else tuple(idx)
        factors.append((d(factor), idx + x))
        terms.append(E.product(factors, out, coef=node.coef))
    return E.add(*terms) if terms else R.zero_derivative(node, wrt)


def product_first_factor_only(node, d, wrt):
    """The product rule that forgets every term but the first (d(uv) = u'v)."""
    x = wrt.labels
    out = tuple(range(node.rank)) + x
    for k, (factor, idx) in enumerate(node.factors):
        if R.depends(factor, wrt):
            factors = [(f, i) for j, (f, i) in enumerate(node.factors) if j != k]
            factors.append((d(factor), tuple(idx) + x))
            return E.product(factors, out, coef=node.coef)
    return R.zero_derivative(node, wrt)


def det_without_det(node, d, wrt):
    """d det(X) = tr(inv(X)·dX) — the factor det(X) of Jacobi's formula forgotten."""
    return R.rule_logdet(E.LogDet(node.arg), d, wrt)


def softmax_diagonal_only(node, d, wrt):
    """∂softmax(v) = diag(s)·∂v — the -s·sᵀ term forgotten."""
    x = wrt.labels
    return E.product([(node, ("o0",)), (d(node.arg), ("o0",) + x)], ("o0",) + x)


def pow_exponent_unchanged(node, d, wrt):
    """∂(u^e) = e·u^e ⊙ ∂u — the exponent not lowered by one."""
    u, e = node.base, node.exponent
    if not R.depends(u, wrt):
        return R.zero_derivative(node, wrt)
    return R.elementwise_chain(node, E.hadamard(e, node), u, d, wrt)


def max_swapped(node, d, wrt):
    """∂max(a, b) = step(b - a)·∂a + step(a - b)·∂b — the branches swapped."""
    a, b = node.left, node.right
    return E.add(R.elementwise_chain(node, E.apply("step", R._bsub(b, a)), a, d, wrt),
                 R.elementwise_chain(node, E.apply("step", R._bsub(a, b)), b, d, wrt))


def apply_value_not_derivative(node, d, wrt):
    """∂f(u) = f(u) ⊙ ∂u — the function used where its derivative belongs (right only for exp)."""
    return R.elementwise_chain(node, node, node.arg, d, wrt)


def norm2_squared_rule(node, d, wrt):
    """∂‖X‖ = Σ X·∂X — the division by ‖X‖ forgotten."""
    x, a = wrt.labels, R._all_axes(node.arg)
    return E.product([(node.arg, a), (d(node.arg), a + x)], x)


def logsumexp_exp(node, d, wrt):
    """∂logsumexp(v) = exp(v)ᵀ·∂v — the normalisation of the softmax forgotten."""
    x = wrt.labels
    return E.product([(E.apply("exp", node.arg), ("a",)), (d(node.arg), ("a",) + x)], x)


def sum_first_term_only(node, d, wrt):
    """∂(Σ t)/∂X = ∂t₁/∂X — linearity applied to the first dependent term only."""
    first = next(t for t in node.terms if R.depends(t, wrt))
    return d(first)


def min_as_max(node, d, wrt):
    """∂min(a, b) = step(a - b)·∂a + step(b - a)·∂b — the rule of max used for min."""
    return R.rule_max(node, d, wrt)


def norm1_without_sign(node, d, wrt):
    """∂‖X‖₁ = Σ ∂X(i,j) — the sign of each entry forgotten (right only where X > 0)."""
    x, a = wrt.labels, R._all_axes(node.arg)
    return E.product([(E.ones(node.arg.shape), a), (d(node.arg), a + x)], x)


def var_not_symmetrised(node, d, wrt):
    """∂S(i,j)/∂S(k,l) = δ(i,k)·δ(j,l) for a symmetric S too — the swapped term forgotten."""
    return R.rule_var(E.var(node.name, node.shape), d, wrt)


def constant_ones(node, d, wrt):
    """∂c/∂X = 1 — a constant given the derivative of a sum of X's entries."""
    return E.ones(tuple(node.shape) + tuple(wrt.shape))


# (node type, planted rule, f, wrt, shapes, domain kind of the square matrices)
CASES = [
    (E.LogDet, logdet_no_transpose, "logdet(X)", "X", dict(X=(3, 3))),
    (E.LogDet, logdet_no_transpose, "logdet(S) + (x - m)'*inv(S)*(x - m)", "S",
     dict(S=(3, 3), x=(3,), m=(3,))),
    (E.Inv, inv_no_minus, "a'*inv(X)*b", "X", dict(a=(3,), X=(3, 3), b=(3,))),
    (E.Inv, inv_swapped, "a'*inv(X)*b", "X", dict(a=(3,), X=(3, 3), b=(3,))),
    (E.Product, product_transposed, "tr(A*X)", "X", dict(A=(3, 3), X=(3, 3))),
    (E.Product, product_transposed, "a'*X*b", "X", dict(a=(3,), X=(3, 3), b=(3,))),
    (E.Product, product_first_factor_only, "x'*A*x", "x", dict(x=(3,), A=(3, 3))),
    (E.Product, product_first_factor_only, "tr(X'*B*X)", "X", dict(X=(3, 2), B=(3, 3))),
    (E.Det, det_without_det, "det(X)", "X", dict(X=(3, 3))),
    (E.Softmax, softmax_diagonal_only, "-y'*log(softmax(W*x))", "W",
     dict(y=(4,), W=(4, 3), x=(3,))),
    (E.Pow, pow_exponent_unchanged, "norm2(X*w - y)^2", "w", dict(X=(4, 3), w=(3,), y=(4,))),
    (E.Max, max_swapped, "sum(max(0, W*x + b))", "W", dict(W=(4, 3), x=(3,), b=(4,))),
    (E.Apply, apply_value_not_derivative, "sum(tanh(W*x + b))", "W",
     dict(W=(4, 3), x=(3,), b=(4,))),
    (E.Norm2, norm2_squared_rule, "norm2(x - a)", "x", dict(x=(3,), a=(3,))),
    (E.LogSumExp, logsumexp_exp, "logsumexp(z)", "z", dict(z=(4,))),
    (E.Sum, sum_first_term_only, "A*x + B*x", "x", dict(A=(4, 3), B=(4, 3), x=(3,))),
    (E.Sum, sum_first_term_only, "a'*x + x'*A*x", "x", dict(a=(3,), A=(3, 3), x=(3,))),
    (E.Min, min_as_max, "sum(min(W*x, c))", "x", dict(W=(4, 3), x=(3,), c=(4,))),
    (E.Norm1, norm1_without_sign, "norm1(W*x - y)", "W", dict(W=(4, 3), x=(3,), y=(4,))),
]

# The entries diff never asks (see the module docstring): a plant there is
# caught by the rule's own test in test_rules.py only.
CONSTANT_CASES = [(type(node), constant_ones, node) for node in TR.CONSTANTS]
VAR_CASE = (E.Var, var_not_symmetrised, "tr(A*S) + x'*S*y", "S",
            dict(A=(3, 3), S=mc.symmetric(3), x=(3,), y=(3,)))


def _own_test(node_type, node=None):
    """The test of test_rules.py named after the shipped rule for node_type."""
    name = R.RULES[node_type].__name__
    test = getattr(TR, f"test_{name}")
    return (lambda: test(node)) if node is not None else test


def _case_id(case):
    return f"{case[1].__name__}:{case[2]}".encode("ascii", "backslashreplace").decode()


def _point(f_node, shapes, seed=0):
    """A point for our own FD comparison: invertible non-symmetric matrices, away from kinks."""
    rng = np.random.default_rng(seed)
    under_inverse = set()
    for n in E.walk(f_node):
        if isinstance(n, (E.Inv, E.Det, E.LogDet)):
            under_inverse |= n.arg.free_vars
    kinks = [n for n in E.walk(f_node) if isinstance(n, (E.Max, E.Min))]
    for _ in range(100):
        vals = {}
        for name, shape in shapes.items():
            if name in under_inverse:
                vals[name] = 2.0 * np.eye(shape[0]) + 0.4 * rng.standard_normal(shape)
            else:
                vals[name] = rng.standard_normal(shape)
        if all(np.linalg.det(vals[n]) > 0.05 for n in under_inverse) and all(
                np.all(np.abs(evaluate(k.left, vals) - evaluate(k.right, vals)) > 0.05)
                for k in kinks):
            return vals
    raise AssertionError("no point found")


def _fd_error(f_node, wrt, shapes, vals):
    g = diff_node(f_node, wrt, shapes[wrt])
    return rel_error(evaluate(g, vals), fd_jacobian(f_node, wrt, vals, H))


def _table_entries(f, wrt):
    return [i for i in IDENTITIES if i["f"] == f and i["wrt"] == wrt and i["order"] == 1]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_correct_rule_passes_every_checker(case):
    """The control: with the rule as shipped, nothing complains."""
    _, _, f, wrt, shapes = case
    fx = mc.parse(f, **shapes)
    vals = _point(fx.node, shapes)
    assert _fd_error(fx.node, wrt, shapes, vals) < RTOL
    assert mc.check(fx, wrt).ok
    assert mc.check(fx, wrt, values=vals).ok
    for ident in _table_entries(f, wrt):
        TI.test_identity(ident)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_planted_bug_is_caught(case, monkeypatch):
    node_type, planted, f, wrt, shapes = case
    fx = mc.parse(f, **shapes)
    vals = _point(fx.node, shapes)
    own_test = _own_test(node_type)
    monkeypatch.setitem(R.RULES, node_type, planted)

    # 1. our finite-difference comparison
    err = _fd_error(fx.node, wrt, shapes, vals)
    assert err > 100 * RTOL, f"{planted.__name__} on {f}: relative error only {err:.2e}"

    # 2. the shipped checker, at its own points and at ours
    own = mc.check(fx, wrt)
    assert not own.ok, (f"mc.check accepts the planted {planted.__name__} on d/d{wrt} {f} "
                        f"(max_rel_error {own.max_rel_error:.2e})")
    ours = mc.check(fx, wrt, values=vals)
    assert not ours.ok

    # 3. the identity table and its test
    # (with the table's non-square sizes a dropped transpose may not even build:
    # a ShapeError is a catch as good as a wrong value)
    for ident in _table_entries(f, wrt):
        try:
            got = mc.diff(mc.parse(ident["f"], **ident["shapes"]), wrt)
        except mc.ShapeError:
            pass
        else:
            assert not mc.equivalent(got, mc.parse(ident["expected"], **ident["shapes"]))
        with pytest.raises((AssertionError, mc.ShapeError)):
            TI.test_identity(ident)

    # 4. the rule's own test
    with pytest.raises((AssertionError, mc.ShapeError)):
        own_test()


@pytest.mark.parametrize("case", CONSTANT_CASES, ids=lambda c: c[0].__name__)
def test_planted_constant_rule_is_caught_by_its_own_test(case, monkeypatch):
    """A wrong rule for a constant fails test_rule_constant; no derivative changes,
    because reverse mode never asks a constant (the zero is skipped, not multiplied out)."""
    node_type, planted, node = case
    own_test = _own_test(node_type, node)
    own_test()  # the control
    fx = mc.parse("(x + 1)'*W*y + 5", x=(4,), W=(4, 3), y=(3,))
    before = mc.diff(fx, "W")
    monkeypatch.setitem(R.RULES, node_type, planted)
    with pytest.raises(AssertionError):
        own_test()
    assert mc.diff(fx, "W").node == before.node
    assert mc.check(fx, "W").ok


def test_planted_var_rule_is_caught_by_its_own_test(monkeypatch):
    own_test = _own_test(E.Var)
    own_test()  # the control
    monkeypatch.setitem(R.RULES, E.Var, VAR_CASE[1])
    with pytest.raises(AssertionError):
        own_test()


def test_planted_var_rule_is_caught_by_check(monkeypatch):
    _, planted, f, wrt, shapes = VAR_CASE
    fx = mc.parse(f, **shapes)
    assert mc.check(fx, wrt).ok  # the control
    monkeypatch.setitem(R.RULES, E.Var, planted)
    assert not mc.check(fx, wrt).ok


def test_non_square_sizes_turn_a_dropped_transpose_into_an_error(monkeypatch):
    """With X of 3×4 the transposed product rule cannot even build the derivative.

    This is why the identity table uses distinct, non-square sizes: a missing
    transpose fails loudly instead of passing by coincidence.
    """
    fx = mc.parse("tr(A*X*B)", A=(2, 3), X=(3, 4), B=(4, 2))
    monkeypatch.setitem(R.RULES, E.Product, product_transposed)
    with pytest.raises(mc.ShapeError):
        mc.diff(fx, "X")
    with pytest.raises(Exception):
        assert not mc.check(fx, "X").ok


def test_every_rule_is_restored_afterwards():
    """monkeypatch put every rule back: the shipped table is intact."""
    for node_type, rule in R.RULES.items():
        assert rule.__module__ == R.__name__ and getattr(R, rule.__name__) is rule, \
            f"RULES[{node_type.__name__}] is {rule.__qualname__}, not the rule of rules.py"
    g = mc.diff("logdet(X)", "X", X=(3, 3))
    assert mc.equivalent(g, mc.parse("inv(X)'", X=(3, 3)))


def test_every_entry_of_rules_has_a_planted_bug():
    planted_types = {case[0] for case in CASES + CONSTANT_CASES + [VAR_CASE]}
    missing = [t.__name__ for t in R.RULES if t not in planted_types]
    assert not missing, f"entries of RULES with no planted bug: {missing}"
    # the entries diff asks are planted where diff, check and the identities see them
    asked = set(R.RULES) - {c[0] for c in CONSTANT_CASES} - {E.Var}
    assert asked <= {case[0] for case in CASES}


def test_equivalent_does_not_restrict_the_domain_more_than_needed():
    x = np.array([-1.0, 2.0, 3.0])
    f = mc.parse("sqrt(x .^ 2)", x=(3,))
    assert rel_error(evaluate(f.node, {"x": x}), x) > 0.1  # they differ at this point
    assert not mc.equivalent("sqrt(x .^ 2)", "x", x=(3,))
