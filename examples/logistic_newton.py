"""Logistic regression by Newton's method, with the gradient and Hessian
derived symbolically, compared with gradient descent.

The loss for labels y in {-1, +1}, a data matrix X (m samples × n features)
and a small ridge penalty c:

    L(w) = sum(softplus(-y .* (X*w))) + c/2*w'*w       (softplus(u) = log(1 + e^u))

Run with `.venv/bin/python examples/logistic_newton.py`.
"""

import numpy as np

import mathcalc as mc

TOL = 1e-8  # stop when the gradient norm is below this


def main() -> None:
    loss = mc.parse("sum(softplus(-y .* (X*w))) + c/2*w'*w",
                    X=("m", "n"), y=("m",), w=("n",), c=())
    gradient = mc.grad(loss, "w")
    hessian = mc.hessian(loss, "w")
    print("loss     L(w) =", loss)
    print("gradient dL/dw =", gradient, "   shape", gradient.shape)
    print("Hessian  d2L/dw2 =", hessian, "   shape", hessian.shape)
    for wrt_check in (mc.check(loss, "w"), mc.check(loss, "w", order=2)):
        assert wrt_check.ok, wrt_check
    print("gradient and Hessian agree with finite differences")

    L, dL, d2L = mc.lambdify(loss), mc.lambdify(gradient), mc.lambdify(hessian)

    # Synthetic data: 200 samples, 5 features, labels from a noisy linear rule.
    rng = np.random.default_rng(1)
    m, n = 200, 5
    X = rng.standard_normal((m, n))
    w_true = rng.standard_normal(n)
    y = np.where(X @ w_true + 0.5 * rng.standard_normal(m) > 0, 1.0, -1.0)
    data = dict(X=X, y=y, c=0.1)

    print("\nNewton's method: w <- w - inv(H)*g")
    w = np.zeros(n)
    newton_steps = 0
    while True:
        g = dL(w=w, **data)
        gnorm = np.linalg.norm(g)
        print(f"  iteration {newton_steps}: loss {L(w=w, **data):.10f}, |gradient| {gnorm:.2e}")
        if gnorm < TOL:
            break
        w = w - np.linalg.solve(d2L(w=w, **data), g)
        newton_steps += 1
    print(f"Newton converged in {newton_steps} iterations (|gradient| < {TOL:g})")

    # Gradient descent with the step 1/Lipschitz (the Hessian is at most X'*X/4 + c*I).
    step = 1.0 / (np.linalg.norm(X, 2) ** 2 / 4 + data["c"])
    v = np.zeros(n)
    gd_steps = 0
    while np.linalg.norm(dL(w=v, **data)) >= TOL and gd_steps < 100_000:
        v = v - step * dL(w=v, **data)
        gd_steps += 1
    print(f"gradient descent (step {step:.2e}) needed {gd_steps} iterations for the same tolerance")
    print("the two solutions agree:", np.allclose(w, v, atol=1e-6))
    print("training accuracy:", np.mean(np.sign(X @ w) == y))


if __name__ == "__main__":
    main()
