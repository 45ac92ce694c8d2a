"""The main demo (a placeholder, to be expanded): the gradient of a ReLU layer.

    f(W, x, b) = sum(max(0, W*x + b))

Run with `make run` (or `.venv/bin/python examples/neuron.py`).
"""

import mathcalc as mc


def main() -> None:
    f = mc.parse("sum(max(0, W*x + b))", W=("m", "n"), x=("n",), b=("m",))
    print(f"f = {f}    shape {f.shape}")
    for wrt in ("W", "x", "b"):
        g = mc.diff(f, wrt)
        print(f"df/d{wrt} = {g}    shape {g.shape}")


if __name__ == "__main__":
    main()
