"""Round trip: parse_text(to_str(node)) evaluates to the same numbers as node (SPEC 3).

Uses a tiny test-local numpy evaluator over the core node types (einsum over
Product.factors with einsum_spec), distinct sizes (m=2, n=3, p=4) so a missing
transpose cannot pass, and random points. Covers the hand-built patterns of
test_printing.py, the engine's derivatives, and random einsum products.
"""

import itertools
import random

import numpy as np
import pytest

from mathcalc import nodes as E
from mathcalc.functions import FUNCTIONS
from mathcalc.printing.matrix import to_str

parse_text = pytest.importorskip("mathcalc.parse").parse_text

SIZES = {"m": 2, "n": 3, "p": 4}


def evaluate(node, values):
    """The value of ``node`` with variables bound by name in ``values``."""
    cache = {}
    for nd in E.walk(node):
        cache[nd] = _eval_one(nd, cache, values)
    return cache[node]


def _size(d):
    return d if isinstance(d, int) else SIZES[d]


def _eval_one(nd, cache, values):
    shape = tuple(_size(d) for d in nd.shape)
    kids = [cache[k] for k in nd.children()]
    if isinstance(nd, E.Var):
        return np.asarray(values[nd.name], dtype=float)
    if isinstance(nd, E.Num):
        return np.asarray(float(nd.value))
    if isinstance(nd, E.Zero):
        return np.zeros(shape)
    if isinstance(nd, E.Ones):
        return np.ones(shape)
    if isinstance(nd, E.Delta):
        return np.eye(shape[0])
    if isinstance(nd, E.Sum):
        return sum(kids)
    if isinstance(nd, E.Product):
        operands = [cache[f] for f, _ in nd.factors]
        # an index only on ones factors still needs its size: einsum reads it from them
        return float(nd.coef) * np.einsum(nd.einsum_spec(), *operands) if operands else \
            float(nd.coef) * np.ones(shape)
    if isinstance(nd, E.Apply):
        return FUNCTIONS[nd.fn].numpy(kids[0])
    if isinstance(nd, E.Pow):
        return np.power(kids[0], kids[1])
    if isinstance(nd, E.Max):
        return np.maximum(*kids)
    if isinstance(nd, E.Min):
        return np.minimum(*kids)
    if isinstance(nd, E.Inv):
        return np.linalg.inv(kids[0])
    if isinstance(nd, E.Det):
        return np.asarray(np.linalg.det(kids[0]))
    if isinstance(nd, E.LogDet):
        return np.asarray(np.log(np.linalg.det(kids[0])))
    if isinstance(nd, E.Softmax):
        e = np.exp(kids[0] - kids[0].max())
        return e / e.sum()
    if isinstance(nd, E.LogSumExp):
        return np.asarray(np.log(np.exp(kids[0]).sum()))
    if isinstance(nd, E.Norm1):
        return np.asarray(np.abs(kids[0]).sum())
    if isinstance(nd, E.Norm2):
        return np.asarray(np.sqrt((kids[0] ** 2).sum()))
    raise TypeError(type(nd).__name__)


def variables(node):
    return {v.name: v.shape for v in E.walk(node) if isinstance(v, E.Var)}


def random_values(shapes, rng):
    """Positive entries (log, sqrt stay defined); square matrices diagonally dominant
    with a positive diagonal, so inv/det/logdet are defined, yet not symmetric."""
    out = {}
    for name, shape in shapes.items():
        dims = tuple(_size(d) for d in shape)
        value = rng.uniform(0.1, 1.0, size=dims)
        if len(dims) == 2 and dims[0] == dims[1]:
            value = value * 0.3 + 2 * np.eye(dims[0])
        out[name] = value
    return out


def assert_round_trip(node, seed=0):
    text = to_str(node)
    shapes = variables(node)
    parsed, _ = parse_text(text, shapes)
    assert parsed.shape == node.shape, text
    rng = np.random.default_rng(seed)
    for _ in range(2):
        values = random_values(shapes, rng)
        expected, got = evaluate(node, values), evaluate(parsed, values)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=text)


def _hand_built():
    from test_printing import DERIVATIVES, PATTERNS, SCALARS_AND_CALLS

    return [(expected, build) for build, expected in PATTERNS + DERIVATIVES + SCALARS_AND_CALLS]


@pytest.mark.parametrize("expected, build", _hand_built(), ids=[e for e, _ in _hand_built()])
def test_hand_built_forms_round_trip(expected, build):
    assert_round_trip(build())


# ---------------------------------------------------------------------------
# The engine's derivatives print back to themselves


def _derivative_cases():
    n, m = "n", "m"
    A, W, X = E.var("A", (n, n)), E.var("W", (m, n)), E.var("X", (m, n))
    x, w, z, b, y = E.var("x", (n,)), E.var("w", (n,)), E.var("z", (n,)), E.var("b", (m,)), \
        E.var("y", (m,))

    def mv(M_, v):
        return E.einsum("ij,j->i", M_, v)

    return [
        (E.einsum("i,ij,j->", x, A, x), "x", (n,)),
        (E.sum_all(E.maximum(E.num(0), E.add(mv(W, x), b))), "W", (m, n)),
        (E.sum_all(E.maximum(E.num(0), E.add(mv(W, x), b))), "x", (n,)),
        (E.logdet(A), "A", (n, n)),
        (E.det(A), "A", (n, n)),
        (E.trace(E.inv(A)), "A", (n, n)),
        (E.power(E.norm2(E.sub(mv(X, w), y)), E.num(2)), "w", (n,)),
        (E.sum_all(E.sub(E.apply("softplus", mv(X, w)), E.hadamard(y, mv(X, w)))), "w", (n,)),
        (E.logsumexp(z), "z", (n,)),
        (E.softmax(z), "z", (n,)),
        (E.apply("tanh", mv(W, x)), "x", (n,)),
        (E.norm2(x), "x", (n,)),
        (E.einsum("ij,jk->ik", A, A), "A", (n, n)),
        (E.trace(E.einsum("ij,jk,kl->il", A, A, A)), "A", (n, n)),
        (E.sum_all(E.apply("sigmoid", E.einsum("ij,jk->ik", W, A))), "A", (n, n)),
    ]


@pytest.mark.parametrize("case", range(len(_derivative_cases())))
def test_engine_derivatives_round_trip(case):
    diff_node = pytest.importorskip("mathcalc.diff").diff_node
    f, wrt, shape = _derivative_cases()[case]
    g = diff_node(f, wrt, shape)
    if g.rank <= 2:
        assert_round_trip(g)
    if f.rank == 0:
        h = diff_node(g, wrt, shape)  # Hessians too, where of order <= 2
        if h.rank <= 2:
            assert_round_trip(h)


# ---------------------------------------------------------------------------
# Random einsum products: the solver's every move, checked numerically


def _random_products(count, seed):
    rnd = random.Random(seed)
    pool = {
        ("m",): [E.var("u", ("m",)), E.var("v", ("m",))],
        ("n",): [E.var("x", ("n",)), E.var("y", ("n",))],
        ("p",): [E.var("q", ("p",))],
        ("m", "n"): [E.var("W", ("m", "n")), E.var("X", ("m", "n"))],
        ("n", "n"): [E.var("A", ("n", "n")), E.var("B", ("n", "n"))],
        ("n", "p"): [E.var("P", ("n", "p"))],
        ("p", "m"): [E.var("Q", ("p", "m"))],
    }
    dims = ["m", "n", "p"]
    made = []
    while len(made) < count:
        n_labels = rnd.randint(1, 4)
        label_dims = [rnd.choice(dims) for _ in range(n_labels)]
        factors = []
        for _ in range(rnd.randint(1, 4)):
            rank = rnd.choice([1, 1, 2, 2, 2])
            labels = tuple(rnd.randrange(n_labels) for _ in range(rank))
            shape = tuple(label_dims[k] for k in labels)
            if shape not in pool:
                continue
            factors.append((rnd.choice(pool[shape]), labels))
        if not factors:
            continue
        used = sorted({lab for _, labels in factors for lab in labels})
        out = tuple(rnd.sample(used, k=min(len(used), rnd.randint(0, 2))))
        made.append(E.product(factors, out, coef=rnd.choice([1, 1, 2, -1])))
    return made


@pytest.mark.parametrize("k", range(200))
def test_random_products_round_trip(k):
    node = _random_products(200, seed=1234)[k]
    assert_round_trip(node, seed=k)


def test_random_sums_of_products_round_trip():
    nodes = _random_products(300, seed=99)
    by_shape = {}
    for nd in nodes:
        by_shape.setdefault(nd.shape, []).append(nd)
    for shape, group in by_shape.items():
        for first, second in itertools.islice(zip(group, group[1:]), 10):
            assert_round_trip(E.add(first, E.neg(second)))


# ---------------------------------------------------------------------------
# Whiteboard forms of the engine's derivatives (issue 3 §3): the printed form
# a careful person writes, and it parses back to an equivalent expression.

WHITEBOARD = [
    # inner products inside bigger products are x'*y, not sum(x .* y)
    ("diff", "x'*y*x'*y", "x", {}, "2*(x'*y)*y"),
    ("hessian", "x'*x*x'*x", "x", {}, "4*(x'*x)*eye(n) + 8*x*x'"),
    ("diff", "(a'*x)/(b'*x)", "x", dict(a=("n",), b=("n",), x=("n",)),
     "a/(b'*x) - (a'*x)*b/(b'*x)^2"),
    # a gradient is a column vector
    ("diff", "y'*B*A*x", "x", {}, "A'*B'*y"),
    ("diff", "y'*A*B*C*x", "x", {}, "(A*B*C)'*y"),
    ("hessian", "logdet(S) + (x - m)'*inv(S)*(x - m)", "m", dict(m=("n",)), "inv(S) + inv(S)'"),
    # a factor of a reciprocal goes into it; diag(v)*u is v .* u
    ("diff", "sum(sqrt(x))", "x", {}, "0.5 ./ sqrt(x)"),
    ("jacobian", "sqrt(x)", "x", {}, "diag(0.5 ./ sqrt(x))"),
    ("diff", "norm2(max(0, X*w + b) - y)^2/4", "w",
     dict(X=("m", "n"), w=("n",), b=("m",), y=("m",)),
     "X'*(step(X*w + b) .* (max(0, X*w + b) - y))/2"),
]

# Signs (the exact form depends on the simplifier's choice of x - m or m - x):
# no double negation, no bracketed sum that starts with a minus, fewer
# transposes first in a sum.
SIGNS = [
    ("hessian", "logdet(S) + (x - m)'*inv(S)*(x - m)", "m", dict(m=("n",)),
     ("inv(S) + inv(S)'",)),
    ("diff", "logdet(S) + (x - m)'*inv(S)*(x - m)", "m", dict(m=("n",)),
     ("-(inv(S) + inv(S)')*(x - m)", "(inv(S) + inv(S)')*(m - x)")),
    ("diff", "(x - A*s)'*W*(x - A*s)", "s", dict(x=("n",), A=("n", "k"), s=("k",), W=("n", "n")),
     ("-A'*(W + W')*(x - A*s)", "A'*(W + W')*(A*s - x)")),
    ("diff", "-(x - m)'*(x - m)/2", "m", dict(m=("n",)), ("x - m",)),
    ("hessian", "-(x - m)'*A*(x - m)", "m", dict(m=("n",)), ("-A - A'", "-(A + A')")),
]


@pytest.mark.parametrize("fn, text, wrt, shapes, forms", SIGNS,
                         ids=[f"{fn} {text} by {wrt}" for fn, text, wrt, _, _ in SIGNS])
def test_signs_of_derivatives(fn, text, wrt, shapes, forms):
    mc = pytest.importorskip("mathcalc")
    g = getattr(mc, fn)(text, wrt, **shapes)
    printed = str(g)
    assert printed in forms
    assert "(-" not in printed and "--" not in printed.replace(" ", "")
    assert mc.equivalent(mc.parse(printed, **g.variables), g)


@pytest.mark.parametrize("fn, text, wrt, shapes, expected", WHITEBOARD,
                         ids=[f"{fn} {text} by {wrt}" for fn, text, wrt, _, _ in WHITEBOARD])
def test_whiteboard_forms_of_derivatives(fn, text, wrt, shapes, expected):
    mc = pytest.importorskip("mathcalc")
    g = getattr(mc, fn)(text, wrt, **shapes)
    assert str(g) == expected
    back = mc.parse(str(g), **g.variables)
    assert back.shape == g.shape
    assert mc.equivalent(back, g)


def test_a_printed_gradient_is_a_column_that_composes():
    """x'*(g) parses for a gradient g (it did not while g printed as the row y'*B*A)."""
    mc = pytest.importorskip("mathcalc")
    g = mc.diff("y'*B*A*x", "x")
    inner = mc.parse(f"x'*({g})", **g.variables)
    assert inner.shape == ()
    assert mc.equivalent(inner, mc.parse("y'*B*A*x", **g.variables))


@pytest.mark.parametrize("text, wrt, shapes, expected", [
    ("W*k", "W", dict(k=("n",)), "δ(i,j)*k(l)"),
    ("δ*W*x", "W", dict(δ=()), "I(i,j)*δ*x(k)"),
    ("W*x", "W", {}, "δ(i,j)*x(k)"),
])
def test_index_notation_of_derivatives_names_no_index_like_a_variable(text, wrt, shapes, expected):
    mc = pytest.importorskip("mathcalc")
    assert str(mc.diff(text, wrt, **shapes)) == expected
