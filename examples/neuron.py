"""The main demo: the neuron of Parr & Howard, "The Matrix Calculus You Need
For Deep Learning" (2018), and its squared-error loss.

    activation(x) = max(0, w·x + b)
    loss          = (max(0, w·x + b) - y)^2

For each: the gradients with respect to w and b in matrix notation, the
LaTeX of the whole statement, a finite-difference check, and then the
gradients evaluated on random data, once through ``mc.lambdify`` and once
through the standalone source that ``mc.codegen`` writes.

Run with `make run` (or `.venv/bin/python examples/neuron.py`).
"""

import numpy as np

import mathcalc as mc

# w and x are vectors of length n; b (the bias) and y (the target) are scalars.
SHAPES = dict(w=("n",), x=("n",), b=(), y=())


def show(title: str, text: str) -> None:
    f = mc.parse(text, **SHAPES)
    print(f"== {title}: {f}    (shape {f.shape})")
    for wrt in ("w", "b"):
        g = mc.grad(f, wrt)
        result = mc.check(f, wrt)
        print(f"d/d{wrt} = {g}    (shape {g.shape})")
        print(f"  LaTeX: {mc.latex_derivation(f, wrt)}")
        print(f"  check: {'passed' if result.ok else 'FAILED'} "
              f"(max relative error {result.max_rel_error:.1e} against finite differences)")
    print()


def main() -> None:
    show("neuron activation", "max(0, w·x + b)")
    show("loss", "(max(0, w·x + b) - y)^2")

    loss = mc.parse("(max(0, w·x + b) - y)^2", **SHAPES)
    dloss_dw = mc.grad(loss, "w")
    print("== the gradient of the loss as a standalone numpy function (mc.codegen):")
    source = mc.codegen(dloss_dw, name="dloss_dw")
    print(source)

    # Random data: 4 inputs, a bias that keeps the neuron active.
    rng = np.random.default_rng(0)
    data = dict(w=rng.standard_normal(4), x=rng.standard_normal(4), b=1.5, y=0.25)
    print("== evaluated at random data:")
    for name, value in data.items():
        print(f"  {name} = {np.round(value, 3)}")

    namespace: dict = {}
    exec(source, namespace)  # the generated source, as you would paste it into a module
    from_source = namespace["dloss_dw"](**data)
    from_lambdify = mc.lambdify(dloss_dw)(**data)
    by_hand = 2 * (max(0.0, data["w"] @ data["x"] + data["b"]) - data["y"]) * data["x"]
    print("dloss/dw (codegen)  =", np.round(from_source, 6))
    print("dloss/dw (lambdify) =", np.round(from_lambdify, 6))
    print("dloss/dw (by hand)  =", np.round(by_hand, 6))
    print("dloss/db (lambdify) =", round(float(mc.lambdify(mc.grad(loss, "b"))(**data)), 6))

    for wrt in ("w", "b"):
        result = mc.check(loss, wrt, values=data)
        print(f"check at this point, d/d{wrt}: {'passed' if result.ok else 'FAILED'} "
              f"(max relative error {result.max_rel_error:.1e})")
    assert np.allclose(from_source, by_hand) and np.allclose(from_lambdify, by_hand)


if __name__ == "__main__":
    main()
