"""One test per rewrite rule of mathcalc/simplify.py (``REWRITES``), named after it.

Each test applies the rule itself (one step, not the whole of ``simplify``)
to an input and asserts twice: the output's form (its printed form, and the
node the constructors build from that text where they build the same one),
and its value at random points against the input's, with distinct sizes
(m = 4, n = 3, p = 2; a square matrix only where the rewrite needs one).
Where a rule has a guard, the test also shows it not firing where the
rewrite would be false or no simpler (rectangular factors, an index read
by a third factor, f(0) ≠ 0, …). The last tests walk REWRITES: every entry
has a docstring stating its rewrite and a test here named after it.
"""

from __future__ import annotations

import sys

import numpy as np

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc import simplify as S

from evaluate import evaluate

M, N, P = 4, 3, 2  # distinct sizes: a swapped axis cannot go unnoticed
SQ, V = (N, N), (N,)


def _values(variables: dict, invertible, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in variables.items():
        if name in invertible:  # 2I + noise: invertible, det > 0, not symmetric
            out[name] = 2.0 * np.eye(shape[0]) + 0.4 * rng.standard_normal(shape)
        else:
            out[name] = rng.standard_normal(shape)
    return out


def assert_same_values(a: E.Node, b: E.Node, variables: dict, invertible=()):
    for seed in range(3):
        pt = _values(variables, invertible, seed)
        np.testing.assert_allclose(evaluate(a, pt), evaluate(b, pt), rtol=1e-9, atol=1e-12)


def fires(rule, text: str, expected: str, invertible=(), **shapes) -> E.Node:
    """rule rewrites parse(text) to the form ``expected``, with the same value."""
    f = mc.parse(text, **shapes)
    out = rule(f.node)
    assert out is not None and out != f.node, f"{rule.__name__} does not rewrite {text}"
    assert str(mc.Expr(out, f.variables)) == expected
    want = mc.parse(expected, **shapes).node
    assert_same_values(out, want, f.variables, invertible)
    assert_same_values(out, f.node, f.variables, invertible)
    return out


def does_not_fire(rule, text: str, **shapes):
    f = mc.parse(text, **shapes)
    out = rule(f.node)
    assert out is None or out == f.node, \
        f"{rule.__name__} rewrites {text} to {mc.Expr(out, f.variables)}"


# ---------------------------------------------------------------------------
# One test per rule, in the order of REWRITES


def test_distribute_tensor_sums():
    # (a∘b∘c + a∘b∘d)·c over the third axis: a sum of order-3 tensors has no
    # matrix form, so the product is multiplied out
    a, b, c, d = E.var("a", (M,)), E.var("b", (N,)), E.var("c", (P,)), E.var("d", (P,))
    tensor = E.add(E.einsum("i,j,k->ijk", a, b, c), E.einsum("i,j,k->ijk", a, b, d))
    node = E.einsum("ijk,k->ij", tensor, c)
    out = S.distribute_tensor_sums(node)
    assert isinstance(out, E.Sum) and len(out.terms) == 2
    assert out == E.add(E.einsum("i,j,k,k->ij", a, b, c, c), E.einsum("i,j,k,k->ij", a, b, d, c))
    variables = {"a": (M,), "b": (N,), "c": (P,), "d": (P,)}
    assert_same_values(out, node, variables)
    # guard: a sum of matrices has a matrix form, (A + B)*x, and stays
    does_not_fire(S.distribute_tensor_sums, "(A + B)*x", A=(M, N), B=(M, N), x=V)


def test_cancel_inverses():
    out = fires(S.cancel_inverses, "inv(X)*X*y", "y", invertible="X", X=SQ, y=V)
    assert out == E.var("y", V)
    fires(S.cancel_inverses, "A*X*inv(X)", "A", invertible="X", A=(M, N), X=SQ)
    fires(S.cancel_inverses, "inv(X')*X'*y", "y", invertible="X", X=SQ, y=V)
    assert S.cancel_inverses(mc.parse("X*inv(X)", X=SQ).node) == E.eye(N)
    # a symmetric S is read either way round (its values: tests/test_structure.py)
    assert S.cancel_inverses(mc.parse("inv(S)*S", S=mc.symmetric(N)).node) == E.eye(N)
    # guard: the summed index j of X(i,j)·inv(X)(j,k)·y(j) is read by y too
    X, y = E.var("X", SQ), E.var("y", V)
    assert S.cancel_inverses(E.einsum("ij,jk,j->ik", X, E.inv(X), y)) is None
    # guard: inv(X)*Y is no identity for another matrix Y
    does_not_fire(S.cancel_inverses, "inv(X)*Y*y", X=SQ, Y=SQ, y=V)


def test_exp_to_sigmoid():
    fires(S.exp_to_sigmoid, "exp(u) ./ (1 + exp(u))", "sigmoid(u)", u=(M,))
    fires(S.exp_to_sigmoid, "1 ./ (1 + exp(-u))", "sigmoid(u)", u=(M,))
    fires(S.exp_to_sigmoid, "exp(u) .^ 2 ./ (1 + exp(u)) .^ 3", "sigmoid(-u) .* sigmoid(u) .^ 2",
          u=(M,))
    # guard: only 1 + exp(u) is sigmoid's denominator, and only with the same u
    does_not_fire(S.exp_to_sigmoid, "exp(u) ./ (2 + exp(u))", u=(M,))
    does_not_fire(S.exp_to_sigmoid, "exp(u) ./ (1 + exp(v))", u=(M,), v=(M,))


def test_sigmoid_complement():
    fires(S.sigmoid_complement, "sigmoid(u) .* sigmoid(-u)", "sigmoid(u) .* (1 - sigmoid(u))",
          u=(M,))
    # guard: sigmoid(-v) is the complement of sigmoid(v) only
    does_not_fire(S.sigmoid_complement, "sigmoid(u) .* sigmoid(-v)", u=(M,), v=(M,))
    does_not_fire(S.sigmoid_complement, "sigmoid(-u)", u=(M,))


def test_determinant_rules():
    sq = dict(invertible="X", X=SQ)
    fires(S.determinant_rules, "det(X')", "det(X)", **sq)
    fires(S.determinant_rules, "det(inv(X))", "1/det(X)", **sq)
    fires(S.determinant_rules, "logdet(X')", "logdet(X)", **sq)
    fires(S.determinant_rules, "logdet(inv(X))", "-logdet(X)", **sq)
    fires(S.determinant_rules, "det(X*X*X)", "det(X)^3", **sq)
    # guard: det(A*B) of square A, B is split only where smaller; for
    # rectangular factors it would be false (neither has a determinant)
    does_not_fire(S.determinant_rules, "det(A*B)", A=SQ, B=SQ)
    does_not_fire(S.determinant_rules, "det(A*B)", A=(N, M), B=(M, N))
    does_not_fire(S.determinant_rules, "det(X'*X)", X=(M, N))


def test_elementwise_of_diagonal():
    fires(S.elementwise_of_diagonal, "tanh(diag(v))", "diag(tanh(v))", v=V)
    fires(S.elementwise_of_diagonal, "sign(diag(v))", "diag(sign(v))", v=V)
    # guard: exp(0) = 1, so exp(diag(v)) has ones off the diagonal
    does_not_fire(S.elementwise_of_diagonal, "exp(diag(v))", v=V)
    does_not_fire(S.elementwise_of_diagonal, "tanh(X)", X=SQ)


def test_sign_of_power():
    fires(S.sign_of_power, "sign(u .^ 3)", "sign(u)", u=(M,))
    fires(S.sign_of_power, "sign(-2*u)", "-sign(u)", u=(M,))
    fires(S.sign_of_power, "sign(3*A)", "sign(A)", A=(M, N))
    # guard: an even power loses the sign, a fractional one is not odd
    does_not_fire(S.sign_of_power, "sign(u .^ 2)", u=(M,))
    does_not_fire(S.sign_of_power, "sign(u .^ 0.5)", u=(M,))


def test_repeated_scalars():
    fires(S.repeated_scalars, "tr(A)*tr(A)*B", "tr(A)^2*B", A=SQ, B=(M, P))
    fires(S.repeated_scalars, "(x'*y)*(x'*y)*z", "(x'*y)^2*z", x=V, y=V, z=(M,))
    # guard: different scalar parts stay apart
    does_not_fire(S.repeated_scalars, "tr(A)*tr(C)", A=SQ, C=SQ)


def test_canonical_transposes():
    # exp(X')(i,j) is exp(X)(j,i): the transpose outside, with the function of X
    fires(S.canonical_transposes, "exp(X')*y", "exp(X)'*y", X=SQ, y=V)
    fires(S.canonical_transposes, "inv(X')*A", "inv(X)'*A", invertible="X", X=SQ, A=(N, M))
    # guard: inv(X)' is already the preferred reading; a plain variable has none
    does_not_fire(S.canonical_transposes, "inv(X)'*y", X=SQ, y=V)
    does_not_fire(S.canonical_transposes, "W'*y", W=(M, N), y=(M,))


def test_inverse_of_product():
    sq = dict(invertible="AB", A=SQ, B=SQ)
    fires(S.inverse_of_product, "inv(A*B)*A", "inv(B)", **sq)
    fires(S.inverse_of_product, "B*inv(A*B)", "inv(A)", **sq)
    fires(S.inverse_of_product, "X*inv(X'*X)", "inv(X')", invertible="X", X=SQ)
    # guard: kept only where something cancels
    does_not_fire(S.inverse_of_product, "inv(A*B)", A=SQ, B=SQ)
    # guard: for rectangular X, inv(X'*X) is not inv(X)*inv(X') (neither exists)
    does_not_fire(S.inverse_of_product, "X*inv(X'*X)", X=(M, N))


def test_distribute_if_smaller():
    # a sum: the terms cancel only as a whole
    fires(S.distribute_if_smaller, "y .* (1 - s) - (1 - y) .* s", "y - s", s=V, y=V)
    # a product over one sum factor: diag(s)*(t ./ s) is t
    fires(S.distribute_if_smaller, "diag(s)*(t ./ s + r)", "r .* s + t", s=V, t=V, r=V)
    # guard: kept only when smaller; (A + A')*x is smaller than A*x + A'*x
    does_not_fire(S.distribute_if_smaller, "(A + A')*x", A=SQ, x=V)
    does_not_fire(S.distribute_if_smaller, "y .* (1 - s)", s=V, y=V)
    does_not_fire(S.distribute_if_smaller, "W*(x + y)", W=(M, N), x=V, y=V)


def test_absorb_sign():
    fires(S.absorb_sign, "-X'*(y - s)", "X'*(s - y)", X=(M, N), y=(M,), s=(M,))
    fires(S.absorb_sign, "-(A - B)*C", "(B - A)*C", A=(M, N), B=(M, N), C=(N, P))
    # guard: -(y + s) would gain a sign by flipping, not lose one
    does_not_fire(S.absorb_sign, "-X'*(y + s)", X=(M, N), y=(M,), s=(M,))
    does_not_fire(S.absorb_sign, "X'*(y - s)", X=(M, N), y=(M,), s=(M,))


def test_common_coefficient():
    fires(S.common_coefficient, "(A/2 + B/2)*C", "(A + B)*C/2", A=(M, N), B=(M, N), C=(N, P))
    fires(S.common_coefficient, "(3*A - 3*B)*C", "3*(A - B)*C", A=(M, N), B=(M, N), C=(N, P))
    # guard: the coefficients differ
    does_not_fire(S.common_coefficient, "(A/2 + B/3)*C", A=(M, N), B=(M, N), C=(N, P))


def test_factor_common():
    fires(S.factor_common, "A*x + B*x", "(A + B)*x", A=(M, N), B=(M, N), x=V)
    fires(S.factor_common, "A*x + A'*x", "(A + A')*x", A=SQ, x=V)
    fires(S.factor_common, "diag(s)*W - s*s'*W", "(diag(s) - s*s')*W", s=(M,), W=(M, N))
    # guard: no shared factor, or nothing to gain from x + y
    does_not_fire(S.factor_common, "A*x + B*y", A=(M, N), B=(M, N), x=V, y=V)
    does_not_fire(S.factor_common, "x + y", x=V, y=V)


# ---------------------------------------------------------------------------
# The list itself


def test_every_rewrite_has_a_one_line_docstring_stating_it():
    assert len(S.REWRITES) == len(set(S.REWRITES))
    for rule in S.REWRITES:
        doc = (rule.__doc__ or "").strip()
        assert doc, f"{rule.__name__} has no docstring"
        first = doc.splitlines()[0]
        assert "→" in first or "->" in first, \
            f"the first line of {rule.__name__}'s docstring does not state a rewrite: {first!r}"


def test_every_rewrite_has_a_test_named_after_it():
    tests = {name for name in vars(sys.modules[__name__]) if name.startswith("test_")}
    names = [rule.__name__ for rule in S.REWRITES]
    missing = [name for name in names if f"test_{name}" not in tests]
    assert not missing, f"rewrites without a test here: {missing}"
    # and no test here is named after a rule that is no longer in the list
    listed = {f"test_{name}" for name in names}
    per_rule = tests - listed - _ABOUT_THE_LIST
    assert not per_rule, f"tests named after no rewrite of REWRITES: {sorted(per_rule)}"


_ABOUT_THE_LIST = {"test_every_rewrite_has_a_one_line_docstring_stating_it",
                   "test_every_rewrite_has_a_test_named_after_it",
                   "test_simplify_iterates_the_list_to_a_fixed_point"}


def test_simplify_iterates_the_list_to_a_fixed_point(monkeypatch):
    """The driver reads REWRITES as it stands: without cancel_inverses, inv(X)*X*y stays."""
    f = mc.parse("inv(X)*X*y", X=SQ, y=V)
    assert S.simplify(f.node) == E.var("y", V)
    monkeypatch.setattr(S, "REWRITES", [r for r in S.REWRITES if r is not S.cancel_inverses])
    assert S.simplify(f.node) == f.node
