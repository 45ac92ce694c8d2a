"""Symmetric and positive definite variables (SPEC 6; issue 10.1).

The derivative with respect to a symmetric S lives on the symmetric
matrices: G_s = (G + G')/2, G the derivative with S's entries independent
(Srinivasan & Panda 2019). Every formula here is asserted three ways: equal
to its cited closed form, equal to central differences taken along
symmetric directions by this file's own code (not mc.check), and different
from the unsymmetrised G wherever G is not symmetric. Sizes are 2 and 3.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc.testing import assert_derivative

SYM, SPD = mc.symmetric("n"), mc.spd("n")
GAUSS = "-logdet(S)/2 - (x - u)'*inv(S)*(x - u)/2"
GAUSS_SHAPES = dict(S=SPD, x=("n",), u=("n",))


def rng_point(n=3, m=2, seed=0):
    """A symmetric positive definite S (n×n) and other arrays, for n ≠ m."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, n))
    return {"S": g @ g.T / n + np.eye(n), "x": rng.standard_normal(n), "y": rng.standard_normal(n),
            "u": rng.standard_normal(n), "A": rng.standard_normal((n, n)),
            "B": rng.standard_normal((n, n)), "W": rng.standard_normal((m, n))}


def symmetric_differences(expr, point, name="S", h=1e-6):
    """Central differences of expr's values along the symmetric directions of S:
    entry (i, j) is <G, E_ij + E_ji>/2 off the diagonal, <G, E_ii> on it,
    which is G_s(i, j) for G_s = (G + G')/2. Any output shape."""
    fn = mc.lambdify(expr)
    point = {k: point[k] for k in expr.variables}
    s0 = np.asarray(point[name], dtype=float)
    out = None
    n = s0.shape[0]
    for i in range(n):
        for j in range(n):
            d = np.zeros_like(s0)
            d[i, j] += 1.0
            d[j, i] += 1.0
            fp = np.asarray(fn(**{**point, name: s0 + h * d}))
            fm = np.asarray(fn(**{**point, name: s0 - h * d}))
            entry = 0.5 * (fp - fm) / (2 * h)  # d is E_ij + E_ji, or 2 E_ii: halved
            if out is None:
                out = np.zeros(entry.shape + s0.shape)
            out[(...,) + (i, j)] = entry
    return out


def values_of(expr, point):
    fn = mc.lambdify(expr)
    return np.asarray(fn(**{k: point[k] for k in expr.variables}))


# ---------------------------------------------------------------------------
# The structure in the IR: S' is S, and the folding goes on


def test_transposes_of_symmetric_variables_fold():
    S = E.var("S", ("n", "n"), "symmetric")
    assert E.transpose(S) is S
    assert E.transpose(E.inv(S)) == E.inv(S)
    x = E.var("x", ("n",))
    assert E.add(E.einsum("ij,j->i", S, x), E.einsum("ji,j->i", S, x)) == E.scale(2, E.einsum("ij,j->i", S, x))
    assert E.sub(S, E.transpose(S)) == E.zeros(("n", "n"))
    y = E.var("y", ("n",))
    assert E.einsum("i,ij,j->", x, S, y) == E.einsum("i,ji,j->", x, S, y)  # x'*S*y = y'*S*x


def test_structure_is_part_of_the_node():
    plain, sym = E.var("S", ("n", "n")), E.var("S", ("n", "n"), "symmetric")
    spd = E.var("S", ("n", "n"), "spd")
    assert len({plain, sym, spd}) == 3 and hash(sym) == hash(E.var("S", ("n", "n"), "symmetric"))
    assert E.transpose(plain) != plain  # plain variables keep their transposes
    with pytest.raises(mc.ShapeError):
        E.var("S", ("m", "n"), "symmetric")
    with pytest.raises(mc.ShapeError):
        E.var("S", ("n", "n"), "hermitian")


def test_parse_folds_with_structure():
    assert str(mc.parse("S'", S=SYM)) == "S"
    assert str(mc.parse("inv(S)'", S=SPD)) == "inv(S)"
    assert str(mc.parse("S*x + S'*x", S=SYM)) == "2*S*x"
    assert mc.parse("S - S'", S=SYM).node == E.zeros(("n", "n"))
    assert str(mc.parse("exp(S)'", S=SYM)) == "exp(S)"
    assert str(mc.parse("S'", S=("n", "n"))) == "S'"


def test_inverses_cancel_whichever_way_a_symmetric_factor_is_read():
    from mathcalc.simplify import simplify

    for text, want in [("S*inv(S)", "eye(n)"), ("x'*S*inv(S)*y", "x'*y"), ("inv(S)*S*x", "x"),
                       ("x'*inv(S)*S", "x"), ("A*S*inv(S)*B", "A*B")]:
        f = mc.parse(text, S=SPD, A=("n", "n"), B=("n", "n"), x=("n",), y=("n",))
        assert str(mc.Expr(simplify(f.node), f.variables)) == want, text
    assert str(mc.grad("logdet(S*B)", "B", S=SPD, B=("n", "n"))) == "inv(B')"


# ---------------------------------------------------------------------------
# SPEC 6: the API


def test_variables_and_structure():
    f = mc.parse(GAUSS, **GAUSS_SHAPES)
    assert f.variables == {"S": ("n", "n"), "x": ("n",), "u": ("n",)}
    assert all(type(s) is tuple for s in f.variables.values())
    assert f.structure == {"S": "spd"}
    assert mc.parse("x'*S*x", S=SYM).structure == {"S": "symmetric"}
    assert mc.parse("x'*A*x").structure == {}
    g = mc.diff(f, "S")
    assert g.structure == {"S": "spd"}
    # kept where S dropped out of the result
    assert mc.diff("tr(S)", "S", S=SYM).structure == {"S": "symmetric"}


def test_shapes_of_structures():
    assert mc.symmetric("n") == ("n", "n") and mc.spd(3) == (3, 3)
    assert mc.symmetric(("m", "m")) == ("m", "m")
    assert repr(mc.spd("n")) == "spd('n')"
    assert pickle.loads(pickle.dumps(mc.spd("n"))).structure == "spd"
    for bad in [("m", "n"), 0, -1, None, 1.5, "n m", b"n", (1, 2, 3)]:
        with pytest.raises(mc.MathcalcError):
            mc.symmetric(bad)


def test_gaussian_gradient_prints_without_transposes():
    g = mc.diff(GAUSS, "S", **GAUSS_SHAPES)
    assert str(g) == "(inv(S)*(x - u)*(x - u)'*inv(S) - inv(S))/2"
    assert "^{\\top}" not in mc.latex(g).replace(r"\left( x - u \right)^{\top}", "")
    # without the structure, the unsymmetrised G carries the transposes of issue 10
    plain = mc.diff(GAUSS, "S", S=("n", "n"), x=("n",), u=("n",))
    assert "inv(S)'" in str(plain)


def test_quadratic_form_in_a_symmetric_matrix():
    assert str(mc.diff("x'*S*x", "x", S=SYM)) == "2*S*x"
    assert str(mc.hessian("x'*S*x", "x", S=SYM)) == "2*S"
    assert str(mc.diff("x'*S*x", "x", S=("n", "n"))) == "(S + S')*x"


def test_a_structured_keyword_applies_to_an_expression_too():
    f = mc.parse("x'*S*y", x=("n",), y=("n",), S=("n", "n"))
    g = mc.diff(f, "S", S=SYM)
    assert g.structure == {"S": "symmetric"}
    assert mc.equivalent(g, "(x*y' + y*x')/2")
    with pytest.raises(mc.ShapeError):
        mc.diff(f, "S", S=mc.symmetric("m"))


def test_structure_of_a_name_absent_from_the_text_is_kept():
    f = mc.parse("x'*x", S=SPD)
    assert f.structure == {"S": "spd"}
    assert mc.diff(f, "S").shape == ("n", "n")


# ---------------------------------------------------------------------------
# Formulas: the closed form, symmetric differences, and not the unsymmetrised G.
# Each row: f, its shapes, G_s in matrix notation (cited), G with S's entries
# independent (the Matrix Cookbook's forms), numpy for G_s at a point.

FORMULAS = [
    # tr(A S): G = A' (Cookbook eq. 100), G_s = (A + A')/2
    ("tr(A*S)", dict(S=SYM, A=("n", "n")), "(A + A')/2", "A'",
     lambda p: (p["A"] + p["A"].T) / 2),
    # x'Sy: G = x y' (eq. 70)
    ("x'*S*y", dict(S=SYM, x=("n",), y=("n",)), "(x*y' + y*x')/2", "x*y'",
     lambda p: (np.outer(p["x"], p["y"]) + np.outer(p["y"], p["x"])) / 2),
    # tr(A S B): G = A'B' (eq. 101)
    ("tr(A*S*B)", dict(S=SYM, A=("n", "n"), B=("n", "n")), "(A'*B' + B*A)/2", "A'*B'",
     lambda p: (p["A"].T @ p["B"].T + p["B"] @ p["A"]) / 2),
    # logdet S: G = inv(S)' (eq. 57), symmetric already
    ("logdet(S)", dict(S=SPD), "inv(S)", "inv(S)'", lambda p: np.linalg.inv(p["S"])),
    # det S: G = det(S) inv(S)' (eq. 49)
    ("det(S)", dict(S=SPD), "det(S)*inv(S)", "det(S)*inv(S)'",
     lambda p: np.linalg.det(p["S"]) * np.linalg.inv(p["S"])),
    # x' inv(S) y: G = -inv(S)' x y' inv(S)' (eq. 61)
    ("x'*inv(S)*y", dict(S=SPD, x=("n",), y=("n",)), "-inv(S)*(x*y' + y*x')*inv(S)/2",
     "-inv(S)'*x*y'*inv(S)'",
     lambda p: -np.linalg.inv(p["S"]) @ (np.outer(p["x"], p["y"]) + np.outer(p["y"], p["x"]))
     @ np.linalg.inv(p["S"]) / 2),
    # tr(S A S): G = A'S' + S'A' (eq. 107 with B = S)
    ("tr(S*A*S)", dict(S=SYM, A=("n", "n")), "((A + A')*S + S*(A + A'))/2", "A'*S' + S'*A'",
     lambda p: ((p["A"] + p["A"].T) @ p["S"] + p["S"] @ (p["A"] + p["A"].T)) / 2),
    # ||S - A||²: G = 2(S - A)
    ("norm2(S - A)^2", dict(S=SYM, A=("n", "n")), "2*S - A - A'", "2*(S - A)",
     lambda p: 2 * p["S"] - p["A"] - p["A"].T),
    # the Gaussian log-likelihood of one sample (SPEC 6)
    (GAUSS, GAUSS_SHAPES, "(inv(S)*(x - u)*(x - u)'*inv(S) - inv(S))/2",
     "inv(S)'*(x - u)*(x - u)'*inv(S)'/2 - inv(S)'/2",
     lambda p: (np.linalg.inv(p["S"]) @ np.outer(p["x"] - p["u"], p["x"] - p["u"])
                @ np.linalg.inv(p["S"]) - np.linalg.inv(p["S"])) / 2),
    # sum(W S x) with a rectangular W (m = 2, n = 3): G = W'1 x'
    ("sum(W*S*x)", dict(S=SYM, W=("m", "n"), x=("n",)), "(W'*ones(m)*x' + x*ones(m)'*W)/2",
     "W'*ones(m)*x'",
     lambda p: (np.outer(p["W"].T @ np.ones(2), p["x"]) + np.outer(p["x"], p["W"].T @ np.ones(2))) / 2),
]


@pytest.mark.parametrize("text, shapes, closed, plain, numeric", FORMULAS,
                         ids=[row[0] for row in FORMULAS])
def test_symmetric_gradient(text, shapes, closed, plain, numeric):
    g = mc.diff(text, "S", **shapes)
    assert mc.equivalent(g, closed)
    assert_derivative(text, "S", closed, **shapes)
    p = rng_point(seed=1)
    got = values_of(g, p)
    f = mc.parse(text, **shapes)
    np.testing.assert_allclose(got, numeric(p), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got, symmetric_differences(f, p), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got, got.T, rtol=1e-12, atol=1e-14)
    assert mc.check(text, "S", **shapes).ok
    # The unsymmetrised rule: G (entries independent) is the Cookbook's form; it is
    # not symmetric here, so G_s differs from it, and a claim of G is rejected.
    plain_shapes = {k: (tuple(v) if k == "S" else v) for k, v in shapes.items()}
    G = mc.diff(text, "S", **plain_shapes)
    assert mc.equivalent(G, plain)
    g_plain = values_of(G, p)
    if np.allclose(g_plain, g_plain.T):
        np.testing.assert_allclose(got, g_plain, rtol=1e-9)
    else:
        assert np.max(np.abs(got - g_plain)) > 1e-3 * np.max(np.abs(got))
        assert not mc.equivalent(g, plain.replace("inv(S)'", "inv(S)"))
        with pytest.raises(AssertionError):
            assert_derivative(text, "S", plain, **shapes)


def test_the_other_convention_is_not_the_derivative():
    """2G - G∘I (partials by the n(n+1)/2 free entries) is not what mathcalc returns:
    for logdet(S) it is 2 inv(S) - diag(diag(inv(S)))."""
    other = "2*inv(S) - diag(diag(inv(S)))"
    assert not mc.equivalent(mc.diff("logdet(S)", "S", S=SPD), other)
    with pytest.raises(AssertionError):
        assert_derivative("logdet(S)", "S", other, S=SPD)
    # and it is G_s's off-diagonal doubled: the free-entry partials
    p = rng_point(seed=2)
    gs = np.linalg.inv(p["S"])
    fn = mc.lambdify(mc.parse("logdet(S)", S=SPD))
    h, (i, j) = 1e-6, (0, 2)
    d = np.zeros((3, 3))
    d[i, j] = d[j, i] = 1.0
    partial = (fn(S=p["S"] + h * d) - fn(S=p["S"] - h * d)) / (2 * h)
    assert partial == pytest.approx(2 * gs[i, j], rel=1e-6)


def test_the_textbook_answer_passes_and_a_wrong_one_fails():
    # issue 10: the user's answer failed at a point with det(S) < 0; now it passes
    assert_derivative(GAUSS, "S", "inv(S)*(x - u)*(x - u)'*inv(S)/2 - inv(S)/2", **GAUSS_SHAPES)
    with pytest.raises(AssertionError):
        assert_derivative(GAUSS, "S", "inv(S)*(x - u)*(x - u)'*inv(S)/2", **GAUSS_SHAPES)


# ---------------------------------------------------------------------------
# Jacobians and Hessians of any order follow from the one rule


def test_jacobian_of_a_matrix_function_is_symmetrised_over_s():
    J = mc.jacobian("inv(S)", "S", S=SPD)
    p = rng_point(seed=3)
    got = values_of(J, p)
    Si = np.linalg.inv(p["S"])
    plain = -np.einsum("ik,lj->ijkl", Si, Si)
    np.testing.assert_allclose(got, (plain + plain.transpose(0, 1, 3, 2)) / 2, rtol=1e-9)
    np.testing.assert_allclose(got, symmetric_differences(mc.parse("inv(S)", S=SPD), p),
                               rtol=1e-6, atol=1e-8)
    assert mc.check("inv(S)", "S", S=SPD).ok


def test_jacobian_with_respect_to_a_vector_of_a_symmetric_product():
    J = mc.jacobian("S*x", "x", S=SYM)
    assert str(J) == "S"


def test_hessian_of_logdet():
    """∂²logdet(S)/∂S² = -inv(S)⊗inv(S) symmetrised over both pairs of axes."""
    H = mc.hessian("logdet(S)", "S", S=SPD)
    p = rng_point(seed=4)
    Si = np.linalg.inv(p["S"])
    plain = -np.einsum("ki,jl->ijkl", Si, Si)
    both = (plain + plain.transpose(1, 0, 2, 3) + plain.transpose(0, 1, 3, 2)
            + plain.transpose(1, 0, 3, 2)) / 4
    got = values_of(H, p)
    np.testing.assert_allclose(got, both, rtol=1e-9)
    grad = mc.diff("logdet(S)", "S", S=SPD)
    np.testing.assert_allclose(got, symmetric_differences(grad, p), rtol=1e-6, atol=1e-8)
    assert mc.check("logdet(S)", "S", order=2, S=SPD).ok


@pytest.mark.parametrize("text, shapes", [
    (GAUSS, GAUSS_SHAPES), ("x'*inv(S)*x", dict(S=SPD, x=("n",))),
    ("tr(S*S*S)", dict(S=SYM)), ("sum(exp(S))", dict(S=SYM)), ("tr(A*S*S)", dict(S=SYM, A=("n", "n")))])
def test_hessians_against_symmetric_differences_of_the_gradient(text, shapes):
    H = mc.hessian(text, "S", **shapes)
    p = rng_point(seed=5)
    got = values_of(H, p)
    grad = mc.diff(text, "S", **shapes)
    np.testing.assert_allclose(got, symmetric_differences(grad, p), rtol=1e-5, atol=1e-7)
    for perm in [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)]:
        np.testing.assert_allclose(got, got.transpose(perm), rtol=1e-9, atol=1e-12)
    assert mc.check(text, "S", order=2, **shapes).ok


def test_third_order():
    d3 = mc.diff("logdet(S)", "S", order=3, S=SPD)
    p = rng_point(seed=6)
    hess = mc.hessian("logdet(S)", "S", S=SPD)
    np.testing.assert_allclose(values_of(d3, p), symmetric_differences(hess, p), rtol=1e-5,
                               atol=1e-7)


# ---------------------------------------------------------------------------
# check, equivalent, assert_derivative: symmetric points, symmetric directions


def test_check_draws_symmetric_and_positive_definite_points():
    r = mc.check("x'*S*y", "S", S=SYM, x=("n",), y=("n",))
    s = r.point["S"]
    assert r.ok and np.allclose(s, s.T)
    r = mc.check(GAUSS, "S", **GAUSS_SHAPES)
    s = r.point["S"]
    assert r.ok and np.allclose(s, s.T) and np.all(np.linalg.eigvalsh(s) > 0)


def test_check_along_random_symmetric_directions_for_large_variables():
    r = mc.check("x'*S*y + tr(S*S)", "S", S=mc.symmetric(13), x=(13,), y=(13,))
    assert r.ok and r.mode == "directions"


def test_a_planted_unsymmetrised_gradient_is_caught():
    """check compares G_s with symmetric differences: the planted G = x*y' fails."""
    from mathcalc import checking

    f = mc.parse("x'*S*y", S=SYM, x=("n",), y=("n",))
    wrong = mc.parse("x*y'", S=SYM, x=("n",), y=("n",))
    fn_f, fn_wrong = mc.lambdify(f), mc.lambdify(wrong)
    p = rng_point(seed=7)
    res = checking._differences(fn_f, fn_wrong, {k: p[k] for k in ("S", "x", "y")}, "S",
                                np.random.default_rng(0), checking.DEFAULT_TOL, "", wrong)
    assert not res.ok


def test_equivalent_compares_only_at_symmetric_points():
    g = mc.diff("x'*S*y", "S", S=SYM, x=("n",), y=("n",))
    # equal on symmetric S although the texts differ
    assert mc.equivalent("S*x", "S'*x", S=SYM)
    assert mc.equivalent(g, "(y*x' + x*y')/2")
    assert not mc.equivalent("S*x", "S'*x", S=("n", "n"))


def test_given_values_must_fit_the_structure():
    p = rng_point(seed=8)
    assert mc.check(GAUSS, "S", values={"S": p["S"]}, **GAUSS_SHAPES).ok
    with pytest.raises(mc.ShapeError, match="not symmetric"):
        mc.check(GAUSS, "S", values={"S": p["A"]}, **GAUSS_SHAPES)
    with pytest.raises(mc.ShapeError, match="positive definite"):
        mc.check(GAUSS, "S", values={"S": -p["S"]}, **GAUSS_SHAPES)


def test_lambdify_and_codegen_take_the_full_array():
    g = mc.diff(GAUSS, "S", **GAUSS_SHAPES)
    p = rng_point(seed=9)
    expected = FORMULAS[8][4](p)
    np.testing.assert_allclose(mc.lambdify(g)(S=p["S"], x=p["x"], u=p["u"]), expected, rtol=1e-9)
    namespace = {}
    exec(mc.codegen(g, name="grad_S"), namespace)
    np.testing.assert_allclose(namespace["grad_S"](S=p["S"], x=p["x"], u=p["u"]), expected,
                               rtol=1e-9)


def test_printed_results_read_back_with_their_structure():
    for text, shapes, *_ in FORMULAS:
        g = mc.diff(text, "S", **shapes)
        back = mc.parse(str(g), **g.declared())
        assert back.structure == g.structure
        assert mc.equivalent(g, back)


def test_cli_structure_options():
    run = [sys.executable, "-m", "mathcalc"]
    out = subprocess.run(run + ["diff", GAUSS, "--wrt", "S", "--spd", "S", "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "(inv(S)*(x - u)*(x - u)'*inv(S) - inv(S))/2"
    out = subprocess.run(run + ["check", "x'*S*x", "--wrt", "x", "--claimed", "2*S*x",
                                "--symmetric", "S"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "correct"
    out = subprocess.run(run + ["shapes", "x'*S*x", "--symmetric", "S"], capture_output=True,
                         text=True)
    assert "S: (n, n) symmetric" in out.stdout
    out = subprocess.run(run + ["shapes", "x'*W", "--spd", "W"], capture_output=True, text=True)
    assert out.returncode == 2 and "square" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------------------
# Property: random expressions in a symmetric S, checked along symmetric directions

MATRICES = ["S", "A", "inv(S)", "exp(S)", "S*A*S", "(S + I)"]
SCALARS = ["tr({m})", "x'*({m})*x", "x'*({m})*y", "sum({m})", "logdet(({m})*({m})' + I)",
           "norm2({m})^2"]


@st.composite
def symmetric_expressions(draw):
    def matrix(depth):
        if depth == 0 or draw(st.booleans()):
            return draw(st.sampled_from(MATRICES))
        a, b = matrix(depth - 1), matrix(depth - 1)
        op = draw(st.sampled_from(["({a})*({b})", "{a} + {b}", "({a})'", "tanh({a})",
                                   "({a}) .* ({b})"]))
        return op.format(a=a, b=b)

    terms = []
    for _ in range(draw(st.integers(1, 2))):
        m = matrix(2)
        terms.append(draw(st.sampled_from(SCALARS)).format(m=m))
    return " + ".join(terms)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(symmetric_expressions(), st.integers(0, 2**16))
def test_property_symmetric_gradients(text, seed):
    shapes = dict(S=SPD, A=("n", "n"), x=("n",), y=("n",))
    g = mc.diff(text, "S", **shapes)
    result = mc.check(text, "S", seed=seed, **shapes)
    assert result.ok, (text, str(g), result.message)
    p = rng_point(seed=seed)
    got = values_of(g, p)
    np.testing.assert_allclose(got, got.T, rtol=1e-9, atol=1e-9 * max(1.0, np.max(np.abs(got))))
    # the same as the unsymmetrised G made symmetric by hand
    plain = values_of(mc.diff(text, "S", **{**shapes, "S": ("n", "n")}), p)
    np.testing.assert_allclose(got, (plain + plain.T) / 2, rtol=1e-8,
                               atol=1e-9 * max(1.0, np.max(np.abs(got))))
