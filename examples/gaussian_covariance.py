"""The maximum-likelihood covariance of a Gaussian, by Newton's method on the
symmetric positive definite matrices.

For N samples, the columns of X, with a known mean u, the log-likelihood of a
covariance S (constants dropped) is

    L(S) = -k*logdet(S)/2 - tr(inv(S)*(X - u*ones(N)')*(X - u*ones(N)')')/2     (k = N)

S is declared spd (mc.spd): its derivative lives on the symmetric matrices,
G_s = (G + G')/2, and its Hessian is symmetrised over both pairs of axes.
So the gradient prints without transposes of S or inv(S), a Newton step
solves H*vec(D) = -vec(G_s) among symmetric D (the minimum-norm solution:
H vanishes on antisymmetric directions), and the iterates stay symmetric.
The result is checked against the closed form, the sample covariance
(X - u)(X - u)'/N, where the gradient vanishes.

Run with `.venv/bin/python examples/gaussian_covariance.py`.
"""

import numpy as np

import mathcalc as mc

# Stop when |G| is below this times the size of either of its terms, (k/2)|inv(S)|:
# G is a difference of two terms that cancel at the optimum, to round-off.
TOL = 1e-10


def is_spd(S: np.ndarray) -> bool:
    return bool(np.all(np.linalg.eigvalsh((S + S.T) / 2) > 0))


def main() -> None:
    text = "-k*logdet(S)/2 - tr(inv(S)*(X - u*ones(N)')*(X - u*ones(N)')')/2"
    shapes = dict(S=mc.spd("n"), X=("n", "N"), u=("n",), k=())
    L = mc.parse(text, **shapes)
    G = mc.grad(L, "S")
    H = mc.hessian(L, "S")
    print("log-likelihood L(S) =", L)
    print("structure:", L.structure)
    print("gradient dL/dS =", G, "   shape", G.shape)
    print("Hessian d2L/dS2: shape", H.shape)
    print("with S not declared symmetric: dL/dS =", mc.grad(text, "S", **{**shapes, "S": ("n", "n")}))
    for result in (mc.check(L, "S"), mc.check(L, "S", order=2)):
        assert result.ok, result
    print("gradient and Hessian agree with finite differences along symmetric directions")

    fL, fG, fH = mc.lambdify(L), mc.lambdify(G), mc.lambdify(H)

    # 400 samples of a 3-dimensional Gaussian with a known covariance.
    rng = np.random.default_rng(7)
    n, N = 3, 400
    A = rng.standard_normal((n, n))
    true = A @ A.T + 0.5 * np.eye(n)
    u = np.array([1.0, -2.0, 0.5])
    X = u[:, None] + np.linalg.cholesky(true) @ rng.standard_normal((n, N))
    data = dict(X=X, u=u, k=float(N))

    print("\nNewton's method from S = I: D solves H*vec(D) = -vec(G), then backtracking "
          "keeps S positive definite and L increasing")
    S = np.eye(n)
    for it in range(50):
        g = fG(S=S, **data)
        value = fL(S=S, **data)
        print(f"  iteration {it}: L = {value:.10f}, |G| = {np.linalg.norm(g):.2e}, "
              f"|S - S'| = {np.linalg.norm(S - S.T):.1e}")
        size = N / 2 * np.linalg.norm(np.linalg.inv(S))
        if np.linalg.norm(g) < TOL * size:
            break
        h = fH(S=S, **data).reshape(n * n, n * n)
        d = np.linalg.lstsq(h, -g.ravel(), rcond=None)[0].reshape(n, n)
        d = (d + d.T) / 2  # symmetric up to round-off already: make it exactly so
        if np.sum(d * g) <= 0:  # not an ascent direction far from the optimum: follow G
            d = g
        t = 1.0
        while not (is_spd(S + t * d) and fL(S=S + t * d, **data) >= value) and t > 1e-12:
            t /= 2
        S = S + t * d
    else:
        raise SystemExit("Newton's method did not converge")
    print(f"Newton converged in {it} iterations (|G| < {TOL:g} (k/2)|inv(S)| = {TOL * size:.1e})")

    closed = (X - u[:, None]) @ (X - u[:, None]).T / N
    print("the estimate is symmetric:", np.array_equal(S, S.T))
    print("the estimate equals the sample covariance (X - u)(X - u)'/N:",
          np.allclose(S, closed, rtol=1e-10, atol=1e-12))
    print("largest eigenvalue difference from the true covariance:",
          f"{np.max(np.abs(np.linalg.eigvalsh(S) - np.linalg.eigvalsh(true))):.3f}")
    assert np.allclose(S, closed, rtol=1e-10, atol=1e-12)


if __name__ == "__main__":
    main()
