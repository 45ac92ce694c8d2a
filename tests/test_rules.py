"""One test per entry of mathcalc/rules.py's RULES (node type → derivative rule), named after it.

Each test cites the rule's identity and asserts it twice (STYLE habit 8):

(a) symbolically: ``mc.diff`` of an expression built on the node type is
    ``mc.equivalent`` to the closed form of the identity, and where noted its
    printed form is that closed form (up to the order of terms);
(b) numerically, at a random point with distinct non-square sizes (2, 3, 4;
    square only where the node needs it): the derivative, the closed form and
    the rule applied alone (forward: to each node of its type in f, with its
    children's derivatives) all equal central finite differences.

The rule applied alone is what makes the test the rule's: it is called on
the node itself, not through reverse mode, so a test here fails for a wrong
rule even where diff never asks the table (see test_rule_var). The last tests
walk RULES: every entry has a docstring naming its identity and a test here.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc import rules as R
from mathcalc.diff import raw_derivative

import test_identities as TI
from evaluate import evaluate, fd_jacobian, rel_error

H, RTOL = 1e-6, 1e-5


def rule_alone(node: E.Node, wrt: str, shape: tuple) -> E.Node:
    """∂node/∂wrt by node's entry of RULES, its children's derivatives given (forward)."""
    rule = R.RULES[type(node)]
    got = rule(node, lambda child: raw_derivative(child, wrt, shape), R.Wrt(wrt, tuple(shape)))
    assert tuple(got.shape) == tuple(node.shape) + tuple(shape), \
        f"{rule.__name__} gave shape {got.shape} for {E.debug_str(node)}"
    return got


def assert_identity(node_type, f: str, wrt: str, closed: str, shapes: dict, domain=None,
                    printed=False):
    """d/d(wrt) f is ``closed``, symbolically and numerically; the rule for node_type alone
    agrees with finite differences on each node of that type in f."""
    fx = mc.parse(f, **shapes)
    nodes = [n for n in E.walk(fx.node) if type(n) is node_type]
    assert nodes, f"{f} has no {node_type.__name__} node: it would not test the rule"
    ident = {"f": f, "wrt": wrt, "shapes": shapes, "domain": domain or {}}
    pt = TI.point(ident)
    fd = fd_jacobian(fx.node, wrt, pt, H)
    g = mc.diff(fx, wrt)
    want = mc.parse(closed, **shapes)
    # (b) numerically
    err = rel_error(evaluate(g.node, pt), fd)
    assert err < RTOL, f"d/d{wrt} {f} differs from finite differences by {err:.2e}"
    err = rel_error(evaluate(want.node, pt), fd)
    assert err < RTOL, f"the closed form {closed} differs from finite differences by {err:.2e}"
    for n in nodes:
        got = rule_alone(n, wrt, shapes[wrt])
        err = rel_error(evaluate(got, pt), fd_jacobian(n, wrt, pt, H))
        assert err < RTOL, f"the rule alone on {E.debug_str(n)} is off by {err:.2e}"
    # (a) symbolically
    assert mc.equivalent(g, want), f"d/d{wrt} {f} is not {closed}: got {g}"
    if printed:
        assert TI.canon(str(g)) == TI.canon(closed), f"d/d{wrt} {f} prints as {g}"


# ---------------------------------------------------------------------------
# One test per rule, in the order of RULES


def test_rule_var():
    """∂X(i,j)/∂X(k,l) = δ(i,k)·δ(j,l); another variable is a constant;
    a symmetric S: ∂S(i,j)/∂S(k,l) = (δ(i,k)δ(j,l) + δ(i,l)δ(j,k))/2."""
    rng = np.random.default_rng(0)
    X, Y = E.var("X", (4, 3)), E.var("Y", (4, 3))
    pt = {"X": rng.standard_normal((4, 3)), "Y": rng.standard_normal((4, 3))}
    got = evaluate(rule_alone(X, "X", (4, 3)), pt)
    np.testing.assert_allclose(got, fd_jacobian(X, "X", pt, H), rtol=RTOL, atol=1e-9)
    np.testing.assert_array_equal(got, np.einsum("ik,jl->ijkl", np.eye(4), np.eye(3)))
    assert E.is_zero(rule_alone(Y, "X", (4, 3)))
    # symmetric S (3×3): the rule alone, and the gradient G_s = (G + G')/2 it gives
    S = E.var("S", (3, 3), "symmetric")
    sym = evaluate(R.RULES[E.Var](S, None, R.Wrt("S", (3, 3))), {})
    d = np.eye(3)
    np.testing.assert_allclose(sym, (np.einsum("ik,jl->ijkl", d, d)
                                     + np.einsum("il,jk->ijkl", d, d)) / 2)
    shapes = dict(A=(3, 3), S=mc.symmetric(3))
    g = mc.diff("tr(A*S)", "S", **shapes)
    assert mc.equivalent(g, mc.parse("(A + A')/2", A=(3, 3)))
    assert mc.check(mc.parse("tr(A*S) + x'*S*y", x=(3,), y=(3,), **shapes), "S").ok
    # the plain variable through diff: d(a'*X*b)/dX = a*b' (X of 4×3)
    assert_identity(E.Var, "a'*X*b", "X", "a*b'", dict(a=(4,), X=(4, 3), b=(3,)), printed=True)


CONSTANTS = [E.num(2), E.zeros((4, 3)), E.ones((4,)), E.eye(3)]


@pytest.mark.parametrize("node", CONSTANTS, ids=lambda n: type(n).__name__)
def test_rule_constant(node):
    """∂c/∂X = 0 for numbers, zeros, ones and identities (X of 2×3)."""
    got = rule_alone(node, "X", (2, 3))
    assert E.is_zero(got)
    pt = {"X": np.random.default_rng(1).standard_normal((2, 3))}
    np.testing.assert_array_equal(evaluate(got, pt), fd_jacobian(node, "X", pt, H))
    np.testing.assert_array_equal(evaluate(got, pt), np.zeros(tuple(node.shape) + (2, 3)))


def test_rule_constant_inside_expressions():
    """The constants of (x + 1)'*y and x'*y + 5 contribute nothing: d/dx = y.

    (Zeros and identities do not survive the constructors: x + zeros(3) is x,
    eye(3)*x is x, so they have no expression to appear in.)
    """
    assert_identity(E.Ones, "(x + 1)'*y", "x", "y", dict(x=(3,), y=(3,)), printed=True)
    assert_identity(E.Num, "x'*y + 5", "x", "y", dict(x=(3,), y=(3,)), printed=True)


def test_rule_sum():
    """Linearity: ∂(Σ t)/∂X = Σ ∂t/∂X."""
    assert_identity(E.Sum, "A*x + B*x", "x", "A + B", dict(A=(4, 3), B=(4, 3), x=(3,)),
                    printed=True)
    assert_identity(E.Sum, "sum(W*x + b)", "b", "ones(4)", dict(W=(4, 3), x=(3,), b=(4,)))


def test_rule_product():
    """Product rule: ∂(c·Π fₖ)/∂X = c·Σₖ (Π_{j≠k} fⱼ)·∂fₖ/∂X (Cookbook eq. 102: ∂tr(AXB)/∂X = AᵀBᵀ)."""
    assert_identity(E.Product, "tr(A*X*B)", "X", "A'*B'",
                    dict(A=(2, 3), X=(3, 4), B=(4, 2)), printed=True)
    assert_identity(E.Product, "x'*A*x", "x", "(A + A')*x", dict(x=(3,), A=(3, 3)),
                    printed=True)
    assert_identity(E.Product, "tr(X'*B*X)", "X", "(B + B')*X", dict(X=(3, 2), B=(3, 3)))
    assert_identity(E.Product, "W*x", "x", "W", dict(W=(4, 3), x=(3,)), printed=True)


def test_rule_apply():
    """Chain rule: ∂f(u)/∂X = f'(u) ⊙ ∂u/∂X, f' from SymPy (tanh' = 1 - tanh², log' = 1/u)."""
    shapes = dict(W=(4, 3), x=(3,), b=(4,))
    assert_identity(E.Apply, "sum(tanh(W*x + b))", "W", "(1 - tanh(W*x + b) .^ 2)*x'", shapes)
    assert_identity(E.Apply, "sum(log(x))", "x", "1 ./ x", dict(x=(3,)),
                    domain={"positive": ["x"]})
    assert_identity(E.Apply, "exp(A*x)", "x", "diag(exp(A*x))*A", dict(A=(4, 3), x=(3,)))


def test_rule_pow():
    """∂(u^e) = e·u^(e-1) ⊙ ∂u + u^e·log(u) ⊙ ∂e (Cookbook eq. 131 for ‖Xw - y‖²)."""
    assert_identity(E.Pow, "norm2(X*w - y)^2", "w", "2*X'*(X*w - y)",
                    dict(X=(4, 3), w=(3,), y=(4,)), printed=True)
    assert_identity(E.Pow, "sum(x .^ 3)", "x", "3*x .^ 2", dict(x=(3,)))
    assert_identity(E.Pow, "sum(x .^ y)", "y", "x .^ y .* log(x)", dict(x=(3,), y=(3,)),
                    domain={"positive": ["x"]})
    assert_identity(E.Pow, "(A*x) .^ 2", "x", "2*diag(A*x)*A", dict(A=(4, 3), x=(3,)))


def test_rule_max():
    """∂max(a,b) = step(a-b) ⊙ ∂a + step(b-a) ⊙ ∂b (0 on ties: the kink convention)."""
    shapes = dict(W=(4, 3), x=(3,), b=(4,))
    assert_identity(E.Max, "sum(max(0, W*x + b))", "W", "step(W*x + b)*x'", shapes,
                    domain={"nonzero": ["W*x + b"]}, printed=True)
    ab = dict(a=(4,), b=(4,))
    assert_identity(E.Max, "sum(max(a, b))", "a", "step(a - b)", ab, domain={"nonzero": ["a - b"]})
    assert_identity(E.Max, "sum(max(a, b))", "b", "step(b - a)", ab, domain={"nonzero": ["a - b"]})


def test_rule_min():
    """∂min(a,b) = step(b-a) ⊙ ∂a + step(a-b) ⊙ ∂b (0 on ties)."""
    ab = dict(a=(4,), b=(4,))
    assert_identity(E.Min, "sum(min(a, b))", "a", "step(b - a)", ab, domain={"nonzero": ["a - b"]})
    assert_identity(E.Min, "sum(min(a, b))", "b", "step(a - b)", ab, domain={"nonzero": ["a - b"]})
    assert_identity(E.Min, "sum(min(W*x, c))", "x", "W'*step(c - W*x)",
                    dict(W=(4, 3), x=(3,), c=(4,)), domain={"nonzero": ["W*x - c"]})


def test_rule_inv():
    """d inv(X) = -inv(X)·dX·inv(X) (Cookbook eq. 59; ∂aᵀX⁻¹b/∂X = -X⁻ᵀabᵀX⁻ᵀ, eq. 61)."""
    assert_identity(E.Inv, "a'*inv(X)*b", "X", "-inv(X)'*a*b'*inv(X)'",
                    dict(a=(3,), X=(3, 3), b=(3,)), domain={"invertible": ["X"]})
    # through a rectangular X (4×3): d inv(M) with M = X'*X, dM = dX'*X + X'*dX
    assert_identity(E.Inv, "u'*inv(X'*X)*v", "X", "-X*inv(X'*X)*(v*u' + u*v')*inv(X'*X)",
                    dict(u=(3,), X=(4, 3), v=(3,)))


def test_rule_det():
    """d det(X) = det(X)·tr(inv(X)·dX) (Jacobi's formula; Cookbook eqs. 46, 49, 51)."""
    assert_identity(E.Det, "det(X)", "X", "det(X)*inv(X)'", dict(X=(3, 3)),
                    domain={"invertible": ["X"]})
    assert_identity(E.Det, "det(X'*X)", "X", "2*det(X'*X)*X*inv(X'*X)", dict(X=(4, 3)))
    assert_identity(E.Det, "det(A*X*B)", "X", "det(A*X*B)*A'*inv(A*X*B)'*B'",
                    dict(A=(2, 3), X=(3, 4), B=(4, 2)), domain={"nonzero": ["det(A*X*B)"]})


def test_rule_logdet():
    """d logdet(X) = tr(inv(X)·dX) (Cookbook eqs. 57, 55)."""
    assert_identity(E.LogDet, "logdet(X)", "X", "inv(X)'", dict(X=(3, 3)),
                    domain={"invertible": ["X"]}, printed=True)
    assert_identity(E.LogDet, "logdet(X'*X)", "X", "2*X*inv(X'*X)", dict(X=(4, 3)))


def test_rule_softmax():
    """∂softmax(v) = (diag(s) - s·s')·∂v with s = softmax(v)."""
    assert_identity(E.Softmax, "softmax(z)", "z", "diag(softmax(z)) - softmax(z)*softmax(z)'",
                    dict(z=(4,)), printed=True)
    assert_identity(E.Softmax, "softmax(W*x)", "x",
                    "(diag(softmax(W*x)) - softmax(W*x)*softmax(W*x)')*W",
                    dict(W=(4, 3), x=(3,)), printed=True)


def test_rule_logsumexp():
    """∂logsumexp(v) = softmax(v)'·∂v."""
    assert_identity(E.LogSumExp, "logsumexp(z)", "z", "softmax(z)", dict(z=(4,)), printed=True)
    assert_identity(E.LogSumExp, "logsumexp(A*x)", "x", "A'*softmax(A*x)",
                    dict(A=(4, 3), x=(3,)), printed=True)


def test_rule_norm1():
    """∂‖X‖₁ = Σ sign(X(i,j))·∂X(i,j) (sign(0) = 0: the kink convention)."""
    assert_identity(E.Norm1, "norm1(x - a)", "x", "sign(x - a)", dict(x=(3,), a=(3,)),
                    domain={"nonzero": ["x - a"]}, printed=True)
    assert_identity(E.Norm1, "norm1(W*x)", "W", "sign(W*x)*x'", dict(W=(4, 3), x=(3,)),
                    domain={"nonzero": ["W*x"]})


def test_rule_norm2():
    """∂‖X‖₂ = Σ X(i,j)·∂X(i,j) / ‖X‖₂ (Euclidean, Cookbook eq. 129; Frobenius)."""
    assert_identity(E.Norm2, "norm2(x - a)", "x", "(x - a)/norm2(x - a)", dict(x=(3,), a=(3,)))
    assert_identity(E.Norm2, "norm2(X)", "X", "X/norm2(X)", dict(X=(4, 3)))


# ---------------------------------------------------------------------------
# The table itself


def test_every_rule_names_its_identity():
    for node_type, rule in R.RULES.items():
        doc = (rule.__doc__ or "").strip()
        assert doc, f"the rule for {node_type.__name__} ({rule.__name__}) has no docstring"
        assert "=" in doc.splitlines()[0], \
            f"the first line of {rule.__name__}'s docstring names no identity: {doc!r}"


def test_every_rule_has_a_test_named_after_it():
    here = vars(sys.modules[__name__])
    for node_type, rule in R.RULES.items():
        assert f"test_{rule.__name__}" in here, \
            f"the rule for {node_type.__name__} ({rule.__name__}) has no test here"
    # a rule shared by several node types is tested on each of them
    shared = {t for t, r in R.RULES.items() if r is R.rule_constant}
    assert shared == {type(n) for n in CONSTANTS}
