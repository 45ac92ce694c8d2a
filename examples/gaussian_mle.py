"""The Gaussian negative log-likelihood and its maximum-likelihood estimate.

For one sample x, mean m and covariance S (twice the NLL, constants dropped):

    logdet(S) + (x - m)'*inv(S)*(x - m)

and for N samples, the columns of a data matrix X:

    k*logdet(S) + tr(inv(S)*(X - m*ones(N)')*(X - m*ones(N)')')     (k = N, the count)

mathcalc differentiates both with respect to the mean and the covariance, the
derivatives are checked against finite differences, and the closed-form MLE
(the sample mean and the 1/N sample covariance) is verified: the gradient
vanishes there.

Run with `.venv/bin/python examples/gaussian_mle.py`.
"""

import numpy as np

import mathcalc as mc


def main() -> None:
    one = mc.parse("logdet(S) + (x - m)'*inv(S)*(x - m)", x=("n",), m=("n",), S=("n", "n"))
    print("one sample:", one)
    for wrt in ("m", "S"):
        g = mc.grad(one, wrt)
        result = mc.check(one, wrt)
        print(f"  d/d{wrt} = {g}    check {'passed' if result.ok else 'FAILED'} "
              f"(max relative error {result.max_rel_error:.1e})")
        assert result.ok, result

    nll = mc.parse("k*logdet(S) + tr(inv(S)*(X - m*ones(N)')*(X - m*ones(N)')')",
                   X=("n", "N"), m=("n",), S=("n", "n"), k=())
    print("\nN samples:", nll)
    grads = {}
    for wrt in ("m", "S"):
        g = mc.grad(nll, wrt)
        result = mc.check(nll, wrt)
        print(f"  d/d{wrt} = {g}    check {'passed' if result.ok else 'FAILED'} "
              f"(max relative error {result.max_rel_error:.1e})")
        assert result.ok, result
        grads[wrt] = mc.lambdify(g)

    # 500 samples of a 3-dimensional Gaussian.
    rng = np.random.default_rng(0)
    N = 500
    true_mean = np.array([1.0, -2.0, 0.5])
    L = np.array([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-0.3, 0.2, 0.7]])
    X = true_mean[:, None] + L @ rng.standard_normal((3, N))

    mean = X.mean(axis=1)
    cov = (X - mean[:, None]) @ (X - mean[:, None]).T / N  # the MLE divides by N, not N - 1
    point = dict(X=X, m=mean, S=cov, k=N)
    print("\nat the closed-form MLE (sample mean, 1/N sample covariance):")
    print("  sample mean =", np.round(mean, 3))
    for wrt in ("m", "S"):
        norm = np.linalg.norm(grads[wrt](**point))
        print(f"  |d/d{wrt}| = {norm:.1e}")
        assert norm < 1e-8 * N
    unbiased = dict(point, S=cov * N / (N - 1))
    print("  with the 1/(N-1) covariance instead: "
          f"|d/dS| = {np.linalg.norm(grads['S'](**unbiased)):.1e} (not a stationary point)")
    print("the gradient vanishes at the MLE: verified")


if __name__ == "__main__":
    main()
