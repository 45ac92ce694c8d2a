"""Re-association for speed: chosen by a flop count, never changing the value."""

import numpy as np

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc.optimize import dag_cost, reassociate

MF = dict(X=("m", "p"), U=("m", "k"), V=("p", "k"))


def test_thin_factors_distribute_the_residual():
    g = mc.diff("norm2(X - U*V')^2", "U", **MF).node
    thin = {"m": 1000, "p": 800, "k": 10}
    r = reassociate(g, thin)
    assert r != g and dag_cost(r, thin) < dag_cost(g, thin) / 2
    square = {"m": 1000, "p": 1000, "k": 1000}
    assert reassociate(g, square) == g  # as written is cheaper for square factors


def test_sum_of_matrices_is_not_materialised_for_a_matrix_vector_product():
    g = mc.diff("x'*A*x", "x", x=("n",), A=("n", "n"))
    r = reassociate(g.node, {})
    assert not any(isinstance(n, E.Sum) and n.rank == 2 for n in E.walk(r))
    assert "+ v1" not in mc.lambdify(g).source and mc.lambdify(g).source.count(".dot(") == 2


def test_lambdify_picks_the_association_per_size_and_stays_right():
    g = mc.diff("norm2(X - U*V')^2", "U", **MF)
    f = mc.lambdify(g)
    rng = np.random.default_rng(3)
    for m, p, k in [(30, 20, 2), (6, 5, 6), (12, 9, 4)]:
        X, U, V = rng.standard_normal((m, p)), rng.standard_normal((m, k)), rng.standard_normal((p, k))
        np.testing.assert_allclose(f(X=X, U=U, V=V), -2 * (X - U @ V.T) @ V, rtol=1e-10)


def test_reassociated_forms_are_equivalent():
    for text, wrt, shapes in [("norm2(X - U*V')^2", "U", MF),
                              ("x'*A*x", "x", dict(x=("n",), A=("n", "n"))),
                              ("norm2(W2*relu(W1*x + b1) - t)^2", "W1",
                               dict(W2=("k", "m"), W1=("m", "n"), x=("n",), b1=("m",), t=("k",)))]:
        g = mc.diff(text, wrt, **shapes)
        for sizes in ({}, {"k": 3}, {"m": 2, "n": 500}):
            assert mc.equivalent(g, mc.Expr(reassociate(g.node, sizes), g.variables))
