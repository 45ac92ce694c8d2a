"""Backpropagation, derived symbolically: a two-layer MLP

    prediction = W2*tanh(W1*X + b1*ones(N)') + b2*ones(N)'
    loss       = norm2(prediction - Y)^2          (sum of squared errors)

on a batch X of N samples (one per column). mathcalc gives the gradient for
every weight matrix and bias; each is checked against finite differences and
then used to train the network on a tiny synthetic regression problem.

Run with `.venv/bin/python examples/mlp_backprop.py`.
"""

import numpy as np

import mathcalc as mc

PARAMETERS = ("W1", "b1", "W2", "b2")


def main() -> None:
    # d inputs, h hidden units, o outputs, N samples.
    loss = mc.parse("norm2(W2*tanh(W1*X + b1*ones(N)') + b2*ones(N)' - Y)^2",
                    X=("d", "N"), Y=("o", "N"), W1=("h", "d"), b1=("h",), W2=("o", "h"), b2=("o",))
    print("loss =", loss)
    grads = {}
    for p in PARAMETERS:
        g = mc.grad(loss, p)
        result = mc.check(loss, p)
        print(f"dloss/d{p} = {g}")
        print(f"    shape {g.shape}; finite-difference check {'passed' if result.ok else 'FAILED'} "
              f"(max relative error {result.max_rel_error:.1e})")
        assert result.ok, result
        grads[p] = mc.lambdify(g)
    f_loss = mc.lambdify(loss)

    # Tiny regression problem: learn y = sin(3 x1) + x2^2 / 2 from 64 samples.
    rng = np.random.default_rng(0)
    N, d, h, o = 64, 2, 16, 1
    X = rng.uniform(-1, 1, (d, N))
    Y = (np.sin(3 * X[0]) + 0.5 * X[1] ** 2)[None, :]
    params = dict(W1=rng.standard_normal((h, d)), b1=np.zeros(h),
                  W2=0.1 * rng.standard_normal((o, h)), b2=np.zeros(o))

    rate = 0.05 / N  # the loss is a sum over samples
    losses = []
    print("\ntraining with gradient descent:")
    for step in range(301):
        losses.append(f_loss(X=X, Y=Y, **params) / N)
        if step % 50 == 0:
            print(f"  step {step:3d}: mean squared error {losses[-1]:.5f}")
        update = {p: grads[p](X=X, Y=Y, **params) for p in PARAMETERS}
        params = {p: params[p] - rate * update[p] for p in PARAMETERS}
    decreased = all(b <= a for a, b in zip(losses, losses[1:]))
    print(f"loss decreased from {losses[0]:.5f} to {losses[-1]:.5f}"
          f"{' at every step' if decreased else ''}")


if __name__ == "__main__":
    main()
