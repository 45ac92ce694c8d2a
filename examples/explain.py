"""Derivations step by step, as Parr & Howard teach them ("The Matrix Calculus You
Need For Deep Learning", 2018): intermediate variables, local derivatives, the
chain rule that combines them, and the simplified result.

    the neuron        max(0, w·x + b)                          with respect to w
    its loss          (max(0, w·x + b) - y)^2                  with respect to w
    a 2-layer MLP     norm2(W2*tanh(W1*x + b1) + b2 - y)^2     with respect to W1

Each explanation's result is composed from its steps' local derivatives; the
script checks it against mc.diff at random points and against finite
differences, then prints the LaTeX of the neuron's derivation (one aligned
display, KaTeX-valid).

Run with `.venv/bin/python examples/explain.py` (or `mathcalc diff ... --steps`).
"""

import mathcalc as mc

NEURON = dict(w=("n",), x=("n",), b=(), y=())
MLP = dict(W1=("h", "d"), x=("d",), b1=("h",), W2=("o", "h"), b2=("o",), y=("o",))

CASES = [
    ("the neuron", "max(0, w·x + b)", "w", NEURON),
    ("the neuron's squared error", "(max(0, w·x + b) - y)^2", "w", NEURON),
    ("a 2-layer MLP's squared error", "norm2(W2*tanh(W1*x + b1) + b2 - y)^2", "W1", MLP),
]


def main() -> None:
    for title, text, wrt, shapes in CASES:
        f = mc.parse(text, **shapes)
        ex = mc.explain(f, wrt)
        print(f"== {title}")
        print(ex)
        same = mc.equivalent(ex.result, mc.diff(f, wrt))
        check = mc.check(f, wrt)
        verdict = "passed" if check.ok else "FAILED"
        print(f"the result equals mc.diff: {same}; finite-difference check: {verdict} "
              f"(max relative error {check.max_rel_error:.1e})")
        print()
    print("== the neuron's derivation in LaTeX")
    print(mc.explain("max(0, w·x + b)", "w", **NEURON).latex)


if __name__ == "__main__":
    main()
