"""Property tests: random well-shaped expressions, derivatives against finite differences.

Hypothesis builds expressions from every node type with the constructors of
mathcalc/nodes.py (not from text, so this file does not depend on the parser)
over a few variables of fixed, distinct sizes:

    scalars a, b;  vectors x (3), y (3), z (2);  matrices A (3×3), B (2×3),
    S (3×3, drawn symmetric positive definite).

Denominators are kept away from 0 (division by 1 + u.^2), logs see positive
arguments, inv/det/logdet see 5·I + tanh(M) (well conditioned, det > 0), exp
and tan see bounded arguments (tanh(u), inside (-1, 1) ⊂ (-π/2, π/2)).
Every function of the element-wise table appears, and one registered with
``register_function`` (swish, registered for this module only). Non-smooth
nodes (max, min, abs, relu, sign, step, norm1) are included; sign and step
multiply another subexpression, so their zero derivative meets the product
rule; the random point is redrawn until every kink argument is away from
0. First derivatives (``diff_node``) are compared with central finite
differences of f, and second derivatives (``diff_node`` twice) with finite
differences of the first, all evaluated by the independent tests/evaluate.py.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mathcalc import nodes as E
from mathcalc.diff import diff_node
from mathcalc.functions import FUNCTIONS, register_function

from evaluate import evaluate, fd_jacobian, rel_error

H = 1e-6
RTOL = 1e-5
KINK_MARGIN = 1e-3

VARS = {"a": (), "b": (), "x": (3,), "y": (3,), "z": (2,), "A": (3, 3), "B": (2, 3),
        "S": (3, 3)}
V = {name: E.var(name, shape) for name, shape in VARS.items()}
SHAPES = [(), (2,), (3,), (2, 2), (3, 3), (2, 3), (3, 2)]

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


# ---------------------------------------------------------------------------
# Expressions


def _leaf(draw, shape):
    options = [V[n] for n, s in VARS.items() if s == shape]
    if shape == ():
        options.append(E.num(draw(st.sampled_from([2, -3, Fraction(1, 2), Fraction(-3, 4)]))))
    if shape == (3, 2):
        options.append(E.transpose(V["B"]))
    if shape == (2, 2):
        options.append(E.einsum("ij,kj->ik", V["B"], V["B"]))  # B*B'
    if len(shape) == 2 and shape[0] == shape[1]:
        options.append(E.eye(shape[0]))
    if shape and draw(st.integers(0, 9)) == 0:
        options.append(E.ones(shape))
    return draw(st.sampled_from(options))


def _positive(u):
    """1 + u.^2, entries >= 1."""
    return E.add(E.ones(u.shape), E.power(u, E.num(2)))


def _well_conditioned(m):
    """5·I + tanh(M): ‖tanh(M)‖₂ < n <= 3 < 5, so invertible with det > 0."""
    return E.add(E.scale(5, E.eye(m.shape[0])), E.apply("tanh", m))


# A user's function through register_function: swish u·σ(u), written with tanh
# (σ(u) = (1 + tanh(u/2))/2) so that it and its derivatives are finite everywhere.
REGISTERED = "swish_property_test"
_U = sympy.Symbol("u", real=True)
SWISH = _U * (1 + sympy.tanh(_U / 2)) / 2


@pytest.fixture(scope="module", autouse=True)
def registered_function():
    """Registers REGISTERED for this module; removes it afterwards, with any table
    entry its derivatives added (none expected: swish' is spelled with tanh)."""
    before = set(FUNCTIONS)
    register_function(REGISTERED, SWISH, latex=r"\operatorname{swish}")
    yield REGISTERED
    for name in set(FUNCTIONS) - before:
        if name == REGISTERED or getattr(FUNCTIONS[name], "origin", None) == REGISTERED:
            del FUNCTIONS[name]


# Every function the table ships with (not those registered or derived by tests),
# and the registered one.
TABLE_FUNCTIONS = sorted(name for name, entry in FUNCTIONS.items()
                         if entry.builtin or getattr(entry, "kind", None) == "builtin")
ALL_FUNCTIONS = TABLE_FUNCTIONS + [REGISTERED]

# Functions with a restricted domain or kinks have operations of their own (below);
# every other function of the table is taken to be smooth on the whole real line
# (a new entry that is not fails here until it gets its own operation).
_DOMAIN_OPS = {"exp", "log", "sqrt", "tan", "abs", "relu", "sign", "step"}
_SMOOTH = ["tanh", "sigmoid", "sin", "cos", "softplus"]
_SMOOTH += [n for n in TABLE_FUNCTIONS if n not in _DOMAIN_OPS and n not in _SMOOTH]
_SMOOTH += [REGISTERED]


def _apply(name, sub, shape):
    """``name`` applied element-wise to a random argument kept inside its domain."""
    if name in ("exp", "tan"):  # bounded argument: tanh(u) in (-1, 1), inside (-π/2, π/2)
        return E.apply(name, E.apply("tanh", sub(shape)))
    if name in ("log", "sqrt"):
        return E.apply(name, _positive(sub(shape)))
    if name in ("sign", "step"):  # derivative 0 away from the kink: times a live factor
        return E.hadamard(E.apply(name, sub(shape)), sub(shape))
    return E.apply(name, sub(shape))


ANY_SHAPE_OPS = ["add", "sub", "neg", "scale", "hadamard", "divide", "pow", "fn", "exp",
                 "log", "sqrt", "max", "min", "abs", "relu", "powvar", "tan", "sign", "step"]
OPS_BY_RANK = {
    0: ANY_SHAPE_OPS + ["inner", "sum", "trace", "logsumexp", "norm2", "norm1", "det",
                        "logdet", "quad"],
    1: ANY_SHAPE_OPS + ["smul", "matvec", "softmax", "diagv"],
    2: ANY_SHAPE_OPS + ["smul", "matmul", "outer", "transpose", "inv", "diagm"],
}
ALL_OPS = sorted(set().union(*OPS_BY_RANK.values()))


@st.composite
def node(draw, shape, depth, op=None):
    """A random expression of the given shape; ``op`` fixes the operation at the root."""
    shape = tuple(shape)
    if op is None and (depth <= 0 or draw(st.integers(0, 7)) == 5):  # not 0: hypothesis favours 0
        return _leaf(draw, shape)
    sub = lambda s: draw(node(s, depth - 1))  # noqa: E731
    if op is None:
        op = draw(st.sampled_from(OPS_BY_RANK[len(shape)]))
    k = draw(st.sampled_from([2, 3]))
    if op == "add":
        return E.add(sub(shape), sub(shape))
    if op == "sub":
        return E.sub(sub(shape), sub(shape))
    if op == "neg":
        return E.neg(sub(shape))
    if op == "scale":
        return E.scale(draw(st.sampled_from([2, -1, Fraction(1, 3)])), sub(shape))
    if op == "smul":
        return E.hadamard(sub(()), sub(shape))
    if op == "hadamard":
        return E.hadamard(sub(shape), sub(shape))
    if op == "divide":
        return E.hadamard(sub(shape), E.power(_positive(sub(shape)), E.num(-1)))
    if op == "pow":
        return E.power(sub(shape), E.num(draw(st.sampled_from([2, 3]))))
    if op == "powvar":  # positive base, variable exponent: both branches of the Pow rule
        return E.power(_positive(sub(shape)), E.apply("tanh", sub(())))
    if op == "fn":
        return E.apply(draw(st.sampled_from(_SMOOTH)), sub(shape))
    if op == "exp":
        return E.apply("exp", E.apply("tanh", sub(shape)))
    if op == "log":
        return E.apply("log", _positive(sub(shape)))
    if op == "sqrt":
        return E.apply("sqrt", _positive(sub(shape)))
    if op == "max":
        left = sub(shape) if draw(st.booleans()) else E.num(0)
        return E.maximum(left, sub(shape))
    if op == "min":
        return E.minimum(sub(shape), sub(shape) if draw(st.booleans()) else sub(()))
    if op == "abs":
        return E.apply("abs", sub(shape))
    if op == "relu":
        return E.apply("relu", sub(shape))
    if op in ("tan", "sign", "step"):
        return _apply(op, sub, shape)
    if op.startswith("apply:"):  # one given function of the table at the root
        return _apply(op[len("apply:"):], sub, shape)
    if op == "inner":
        return E.einsum("i,i->", sub((k,)), sub((k,)))
    if op == "quad":  # a'*M*b
        m = draw(st.sampled_from([2, 3]))
        return E.einsum("i,ij,j->", sub((m,)), sub((m, k)), sub((k,)))
    if op == "sum":
        return E.sum_all(sub(draw(st.sampled_from(SHAPES[1:]))))
    if op == "trace":
        return E.trace(sub((k, k)))
    if op == "logsumexp":
        return E.logsumexp(sub((k,)))
    if op == "norm2":
        return E.norm2(sub(draw(st.sampled_from(SHAPES[1:]))))
    if op == "norm1":
        return E.norm1(sub(draw(st.sampled_from(SHAPES[1:]))))
    if op == "det":
        return E.det(_well_conditioned(sub((k, k))))
    if op == "logdet":
        return E.logdet(_well_conditioned(sub((k, k))))
    if op == "matvec":
        return E.einsum("ij,j->i", sub((shape[0], k)), sub((k,)))
    if op == "softmax":
        return E.softmax(sub(shape))
    if op == "diagv":
        return E.diag_vector(sub((shape[0], shape[0])))
    if op == "matmul":
        return E.einsum("ik,kj->ij", sub((shape[0], k)), sub((k, shape[1])))
    if op == "outer":
        return E.einsum("i,j->ij", sub((shape[0],)), sub((shape[1],)))
    if op == "transpose":
        return E.transpose(sub((shape[1], shape[0])))
    if op == "inv":
        if shape[0] != shape[1]:
            return E.transpose(sub((shape[1], shape[0])))
        return E.inv(_well_conditioned(sub(shape)))
    if op == "diagm":
        if shape[0] != shape[1]:
            return E.einsum("i,j->ij", sub((shape[0],)), sub((shape[1],)))
        return E.diag_matrix(sub((shape[0],)))
    raise AssertionError(op)  # pragma: no cover


def expressions(shapes=SHAPES, depth=3):
    return st.sampled_from(shapes).flatmap(lambda s: node(s, depth))


def rooted(op, depth=2):
    """Expressions whose root operation is ``op`` (any shape that op can produce)."""
    shapes = [s for s in SHAPES if op in OPS_BY_RANK[len(s)]]
    return st.sampled_from(shapes).flatmap(lambda s: node(s, depth, op=op))


def wrt_for(f):
    """A variable f depends on (most of the time), else any variable."""
    names = sorted(f.free_vars)
    if not names:
        return st.sampled_from(sorted(VARS))
    return st.one_of(st.sampled_from(names), st.sampled_from(names), st.sampled_from(sorted(VARS)))


def with_wrt(exprs):
    return exprs.flatmap(lambda f: st.tuples(st.just(f), wrt_for(f)))


# ---------------------------------------------------------------------------
# Points away from kinks


def _values(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    vals = {name: rng.standard_normal(shape) for name, shape in VARS.items()}
    m = rng.standard_normal((3, 3))
    vals["S"] = m @ m.T + np.eye(3)
    return vals


def _kink_arguments(nodes):
    """Expressions that must be away from 0 for the derivative to exist (and FD to see it)."""
    args = []
    for root in nodes:
        for n in E.walk(root):
            if isinstance(n, (E.Max, E.Min)):
                args.append((n.left, n.right))
            elif isinstance(n, E.Apply) and n.fn in ("abs", "sign", "step", "relu"):
                args.append((n.arg, None))
            elif isinstance(n, E.Norm1):
                args.append((n.arg, None))
    return args


def _away_from_kinks(vals, kinks, norms) -> bool:
    for left, right in kinks:
        v = evaluate(left, vals)
        if right is not None:
            v = v - evaluate(right, vals)
        if not np.all(np.abs(v) > KINK_MARGIN):
            return False
    for n in norms:
        if not np.sqrt(np.sum(evaluate(n, vals) ** 2)) > 1e-2:
            return False
    return True


def point_for(roots, seed: int) -> dict:
    """A random point where every kink argument of ``roots`` is away from 0."""
    kinks = _kink_arguments(roots)
    norms = [n.arg for root in roots for n in E.walk(root) if isinstance(n, E.Norm2)]
    for attempt in range(30):
        vals = _values(seed + 1000 * attempt)
        if _away_from_kinks(vals, kinks, norms):
            return vals
    assume(False)


# ---------------------------------------------------------------------------
# Properties


def fd_reference(f, wrt, vals):
    """Central differences of f, or an unsatisfied assumption where they cannot be trusted.

    Points are discarded (never the tolerance loosened) where the rounding error
    ε·|f|/h or the truncation error (seen as the change from h to 2h) would
    exceed a tenth of the tolerance: huge values or violent curvature, which
    random expressions sometimes build.
    """
    fx = evaluate(f, vals)
    assume(np.all(np.isfinite(fx)))
    fd = fd_jacobian(f, wrt, vals, H)
    fd2 = fd_jacobian(f, wrt, vals, 2 * H)
    assume(np.all(np.isfinite(fd)) and np.all(np.isfinite(fd2)))
    scale = max(np.max(np.abs(fd), initial=0), 1e-3)
    assume(2.3e-16 * np.max(np.abs(fx), initial=0) / H < 0.1 * RTOL * scale)
    assume(np.max(np.abs(fd2 - fd), initial=0) < 0.1 * RTOL * scale)
    return fd


def check_first(f, wrt, seed):
    g = diff_node(f, wrt, VARS[wrt])
    assert g.shape == f.shape + VARS[wrt]
    vals = point_for([f, g], seed)
    fd = fd_reference(f, wrt, vals)
    got = evaluate(g, vals)
    err = rel_error(got, fd)
    assert err < RTOL, f"d/d{wrt} {f!r}\n= {g!r}\nrel error {err:.2e}\ngot {got}\nfd  {fd}"


def check_second(f, wrt, seed):
    shape = VARS[wrt]
    g1 = diff_node(f, wrt, shape)
    g2 = diff_node(g1, wrt, shape)
    assert g2.shape == f.shape + shape + shape
    vals = point_for([f, g1, g2], seed)
    fd = fd_reference(g1, wrt, vals)
    got = evaluate(g2, vals)
    err = rel_error(got, fd)
    assert err < RTOL, f"d²/d{wrt}² {f!r}\n= {g2!r}\nrel error {err:.2e}"


@SETTINGS
@given(fw=with_wrt(expressions()), seed=st.integers(0, 2**16))
def test_first_derivative_matches_finite_differences(fw, seed):
    check_first(*fw, seed)


@SETTINGS
@given(fw=with_wrt(expressions(shapes=[(), (), (2,), (3,)])), seed=st.integers(0, 2**16))
def test_second_derivative_matches_finite_differences(fw, seed):
    check_second(*fw, seed)


@pytest.mark.parametrize("op", ALL_OPS)
@settings(SETTINGS, max_examples=6)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_every_operation_first_and_second_derivative(op, data, seed):
    """Each operation at the root of a random expression: every node type is exercised."""
    f, wrt = data.draw(with_wrt(rooted(op)))
    check_first(f, wrt, seed)
    if f.rank <= 1:
        check_second(f, wrt, seed)


@SETTINGS
@given(fw=with_wrt(expressions(shapes=[()])), seed=st.integers(0, 2**16))
def test_hessian_of_a_scalar_is_symmetric(fw, seed):
    """∂²f/∂X∂X is symmetric under swapping the two copies of X's axes (Schwarz)."""
    f, wrt = fw
    shape = VARS[wrt]
    h = diff_node(diff_node(f, wrt, shape), wrt, shape)
    vals = point_for([f, h], seed)
    hv = evaluate(h, vals)
    r = len(shape)
    swapped = np.transpose(hv, tuple(range(r, 2 * r)) + tuple(range(r)))
    assert rel_error(hv, swapped) < 1e-9, f"{f!r}: Hessian in {wrt} is not symmetric"


def test_every_node_type_is_generated():
    """The operations above build every node type of mathcalc/nodes.py (with their derivatives)."""
    seen = set()

    def collect(f):
        for n in E.walk(f):
            seen.add(type(n))
        for name in f.free_vars:
            for n in E.walk(diff_node(f, name, VARS[name])):
                seen.add(type(n))

    for op in ALL_OPS:
        settings(max_examples=5, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))(given(f=rooted(op))(collect))()
    missing = {t.__name__ for t in E.NODE_TYPES} - {t.__name__ for t in seen}
    assert not missing, f"node types never generated: {missing}"


def test_every_table_function_is_generated():
    """The operations of the generator (not only the per-function test below) apply
    every function of the element-wise table, and the registered one."""
    assert {"tan", "sign", "step", "exp", "abs", "relu"} <= set(TABLE_FUNCTIONS)
    seen = set()

    def collect(f):
        seen.update(n.fn for n in E.walk(f) if isinstance(n, E.Apply))

    for op in ["fn"] + sorted(_DOMAIN_OPS):
        settings(max_examples=10 * len(_SMOOTH) if op == "fn" else 3, deadline=None,
                 derandomize=True, database=None, suppress_health_check=list(HealthCheck))(
            given(f=rooted(op, depth=0))(collect))()
    missing = set(ALL_FUNCTIONS) - seen
    assert not missing, f"functions never generated: {sorted(missing)}"


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
@settings(SETTINGS, max_examples=4)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_every_function_first_and_second_derivative(fn, data, seed):
    """Each function of the table (and a registered one) at the root of a random expression."""
    shape = data.draw(st.sampled_from(SHAPES))
    f, wrt = data.draw(with_wrt(node(shape, 2, op="apply:" + fn)))
    assert any(isinstance(n, E.Apply) and n.fn == fn for n in E.walk(f))
    check_first(f, wrt, seed)
    if f.rank <= 1:
        check_second(f, wrt, seed)


# ---------------------------------------------------------------------------
# Printing round trip: str(expr) parses back to an equivalent expression

HAVE_ROUND_TRIP = (importlib.util.find_spec("mathcalc.parse") is not None
                   and importlib.util.find_spec("mathcalc.printing.matrix") is not None)


@pytest.mark.skipif(not HAVE_ROUND_TRIP,
                    reason="mathcalc.parse or mathcalc.printing.matrix has not landed yet")
@SETTINGS
@given(fw=with_wrt(expressions(depth=3)), seed=st.integers(0, 2**16), derivative=st.booleans())
def test_printed_text_parses_back_to_an_equivalent_expression(fw, seed, derivative):
    import mathcalc as mc

    f, wrt = fw
    if derivative:
        if f.rank + len(VARS[wrt]) > 2:
            f = E.sum_all(f) if f.rank else f
            if len(VARS[wrt]) > 2:  # pragma: no cover
                return
        f = diff_node(f, wrt, VARS[wrt])
    expr = mc.Expr(f, dict(VARS))
    text = str(expr)
    back = mc.parse(text, **VARS)
    assert back.shape == f.shape, f"{text!r} parses to shape {back.shape}, not {f.shape}"
    vals = point_for([f, back.node], seed)
    a, b = evaluate(f, vals), evaluate(back.node, vals)
    assume(np.all(np.isfinite(a)))
    assert rel_error(a, b) < 1e-9, f"{f!r} prints as {text!r}, which reads back differently"


def test_gradient_through_an_elementwise_function_of_a_gram_matrix_parses_back():
    """Found by the round-trip property: both factors of B*B' depend on B."""
    import mathcalc as mc

    shapes = {"B": (2, 3)}
    g = mc.diff("sum(exp(B*B'))", "B", **shapes)
    vals = {"B": np.random.default_rng(0).standard_normal((2, 3))}
    expected = mc.parse("(exp(B*B') + exp(B*B')')*B", **shapes)
    assert rel_error(evaluate(g.node, vals), evaluate(expected.node, vals)) < 1e-12
    back = mc.parse(str(g), **shapes)
    assert mc.equivalent(back, g)
