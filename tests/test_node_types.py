"""Every node type through every pass, and a planted unknown type through each
(STYLE: "A closed set of node types", "Unknown nodes raise", "Frozen, hashable
nodes"; issue 13.4).

``CASES`` holds a small instance of each type of ``nodes.NODE_TYPES``, written as
text: it is parsed, differentiated (and checked against central finite
differences), simplified, printed (matrix notation, read back; LaTeX), compiled
(lambdify with numpy, and codegen's standalone source) and taken to SymPy and
back, and its values are compared with numpy's at sizes m=2, n=3. A new node
type fails ``test_every_node_type_has_a_case`` until it has a case here.

A planted node type, unknown to every pass, must make each pass raise (the
passes are called one by one, each on its own, so one pass raising cannot hide
another's silent fallback).
"""

from __future__ import annotations

import copy
import importlib
import pickle

import numpy as np
import pytest

import mathcalc as mc
from mathcalc import checking, optimize, sympy_interop
from mathcalc import nodes as E
from mathcalc import simplify as S
from mathcalc.backend import cost
from mathcalc.backend import lower as L
from mathcalc.backend.ir import Ref
from mathcalc.expression import Expr

D = importlib.import_module("mathcalc.diff")  # (mc.diff is the API function)

SIZES = {"m": 2, "n": 3}
X, Y, A, B, a, b = ("n",), ("n",), ("n", "n"), ("m", "n"), (), ()


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


# type -> (text, shapes, with respect to, numpy reference over the values)
CASES = {
    E.Var: ("x", {"x": X}, "x", lambda v: v["x"]),
    E.Num: ("3", {"x": X}, "x", lambda v: 3.0),
    E.Zero: ("zeros(n)", {"x": X}, "x", lambda v: np.zeros(3)),
    E.Ones: ("ones(n)", {"x": X}, "x", lambda v: np.ones(3)),
    E.Delta: ("eye(n)", {"A": A}, "A", lambda v: np.eye(3)),
    E.Sum: ("x + y", {"x": X, "y": Y}, "x", lambda v: v["x"] + v["y"]),
    E.Product: ("B*x", {"B": B, "x": X}, "x", lambda v: v["B"] @ v["x"]),
    E.Apply: ("exp(x)", {"x": X}, "x", lambda v: np.exp(v["x"])),
    E.Pow: ("x.^3", {"x": X}, "x", lambda v: v["x"] ** 3),
    E.Max: ("max(a, b)", {"a": a, "b": b}, "a", lambda v: max(v["a"], v["b"])),
    E.Min: ("min(a, b)", {"a": a, "b": b}, "a", lambda v: min(v["a"], v["b"])),
    E.Inv: ("inv(A)", {"A": A}, "A", lambda v: np.linalg.inv(v["A"])),
    E.Det: ("det(A)", {"A": A}, "A", lambda v: np.linalg.det(v["A"])),
    E.LogDet: ("logdet(A)", {"A": A}, "A", lambda v: np.log(np.linalg.det(v["A"]))),
    E.Softmax: ("softmax(x)", {"x": X}, "x", lambda v: _softmax(v["x"])),
    E.LogSumExp: ("logsumexp(x)", {"x": X}, "x", lambda v: np.log(np.exp(v["x"]).sum())),
    E.Norm1: ("norm1(x)", {"x": X}, "x", lambda v: np.abs(v["x"]).sum()),
    E.Norm2: ("norm2(x)", {"x": X}, "x", lambda v: np.sqrt(v["x"] @ v["x"])),
}
IDS = [t.__name__ for t in CASES]


def _values(shapes, seed=0):
    rng = np.random.default_rng(seed)
    vals = {}
    for name, shape in shapes.items():
        dims = tuple(SIZES[d] for d in shape)
        if name == "A":  # well conditioned, det > 0 (inv, det, logdet)
            g = rng.standard_normal(dims)
            vals[name] = g @ g.T / dims[0] + np.eye(dims[0])
        elif name == "x":  # away from 0: x.^3, norm1's kink
            vals[name] = rng.uniform(0.5, 2.0, dims) * rng.choice((-1.0, 1.0), dims)
        elif not dims:  # scalars a, b apart: max and min have no tie
            vals[name] = float(rng.uniform(0.5, 1.5) + (1.0 if name == "a" else -1.0))
        else:
            vals[name] = rng.standard_normal(dims)
    return vals


def _case(node_type):
    text, shapes, wrt, ref = CASES[node_type]
    return mc.parse(text, **shapes), shapes, wrt, ref


def test_every_node_type_has_a_case():
    assert set(CASES) == set(E.NODE_TYPES)
    assert len(E.NODE_TYPES) == len(set(E.NODE_TYPES))


@pytest.mark.parametrize("node_type", CASES, ids=IDS)
def test_parse_gives_the_type(node_type):
    f, *_ = _case(node_type)
    assert type(f.node) is node_type


@pytest.mark.parametrize("node_type", CASES, ids=IDS)
def test_values_lambdify_and_codegen(node_type):
    f, shapes, _, ref = _case(node_type)
    for seed in (0, 1):
        vals = _values(shapes, seed)
        want = ref(vals)
        np.testing.assert_allclose(mc.lambdify(f)(**vals), want, rtol=1e-12, atol=1e-12)
        namespace: dict = {}
        exec(compile(mc.codegen(f), "<codegen>", "exec"), namespace)  # our own source
        np.testing.assert_allclose(namespace["f"](**vals), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("node_type", CASES, ids=IDS)
def test_simplify_keeps_the_value(node_type):
    f, shapes, _, ref = _case(node_type)
    once = S.simplify(f.node)
    assert S.simplify(once) == once  # a fixed point
    vals = _values(shapes)
    np.testing.assert_allclose(mc.lambdify(Expr(once, f.variables))(**vals), ref(vals),
                               rtol=1e-12, atol=1e-12)
    fast = optimize.reassociate(f.node, SIZES)
    np.testing.assert_allclose(mc.lambdify(Expr(fast, f.variables))(**vals), ref(vals),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("node_type", CASES, ids=IDS)
def test_derivative_against_finite_differences(node_type):
    f, shapes, wrt, _ = _case(node_type)
    d = mc.diff(f, wrt)
    assert d.shape == f.shape + shapes[wrt]
    result = mc.check(f, wrt, values=_values(shapes))
    assert result.ok, result.max_rel_error
    # the raw reverse-mode pass on its own, before simplification
    raw = D.raw_derivative(f.node, wrt, shapes[wrt])
    assert mc.equivalent(Expr(raw, f.variables), d)


@pytest.mark.parametrize("node_type", CASES, ids=IDS)
def test_printers_and_sympy(node_type):
    f, shapes, *_ = _case(node_type)
    text = str(f)
    assert mc.equivalent(mc.parse(text, **shapes), f), text
    assert mc.latex(f).strip()
    assert str(mc.where(f)).strip()
    back = mc.from_sympy(f.to_sympy())
    assert mc.equivalent(back, f), (f.to_sympy(), str(back))
    assert checking.analyse(f.node) is not None


@pytest.mark.parametrize("node_type", CASES, ids=IDS)
def test_with_children_rebuilds_through_the_constructors(node_type):
    f, *_ = _case(node_type)
    node = f.node
    kids = node.children()
    assert node.with_children(kids) is node
    assert node.with_children(list(kids)) is node
    # equal children that are other objects go through the constructor: an equal node
    copies = [copy.deepcopy(k) for k in kids]
    assert all(c == k and c is not k for c, k in zip(copies, kids))
    rebuilt = node.with_children(copies)
    assert rebuilt == node and type(rebuilt) is node_type
    with pytest.raises(TypeError, match="children"):
        node.with_children(kids + (E.var("z"),))


def test_with_children_folds():
    x, y = E.var("x", X), E.var("y", Y)
    M = E.var("M", A)
    assert E.add(x, y).with_children([x, E.zeros(X)]) is x
    assert E.inv(M).with_children([E.inv(M)]) is M
    assert E.power(x, E.num(3)).with_children([x, E.num(1)]) is x
    assert E.maximum(x, y).with_children([x, x]) is x
    p = E.einsum("ij,j->i", M, x)
    assert p.with_children([E.eye("n") if c is M else c for c in p.children()]) is x
    assert E.apply("exp", x).with_children([y]) == E.apply("exp", y)
    assert E.det(M).with_children([E.var("N", A)]) == E.det(E.var("N", A))


def _slots(node):
    return [s for cls in type(node).__mro__ for s in getattr(cls, "__slots__", ())]


@pytest.mark.parametrize("node_type", CASES, ids=IDS)
def test_nodes_are_frozen(node_type):
    f, *_ = _case(node_type)
    node = f.node
    before, digest = hash(node), node.sort_key()
    for name in _slots(node) + ["new_attribute"]:
        old = getattr(node, name, None)
        with pytest.raises(AttributeError, match="frozen"):
            setattr(node, name, None)
        if hasattr(node, name):
            with pytest.raises(AttributeError, match="frozen"):
                delattr(node, name)
        assert getattr(node, name, None) is old
    assert hash(node) == before and node.sort_key() == digest
    # pickle and copy restore a frozen node, equal and with its caches
    for other in (pickle.loads(pickle.dumps(node)), copy.copy(node), copy.deepcopy(node)):
        assert other == node and hash(other) == before
        assert other.free_vars == node.free_vars and E.is_symmetric(other) == E.is_symmetric(node)
        with pytest.raises(AttributeError):
            other.shape = (7,)


def test_var_name_cannot_be_set():
    v = E.var("x", X)
    with pytest.raises(AttributeError):
        v.name = "y"
    assert v.name == "x" and v.free_vars == {"x"}


def test_caches_filled_at_construction():
    s = E.var("S", A, "symmetric")
    assert E.is_symmetric(s) and E.is_symmetric(E.inv(s)) and not E.is_symmetric(E.var("M", A))
    assert E.add(E.var("x", X), E.var("y", Y)).free_vars == {"x", "y"}


# ---------------------------------------------------------------------------
# A planted node type: every pass raises on it


class _Planted(E.Node):
    """A node type no pass knows: one child, element-wise-looking."""

    __slots__ = ("arg",)

    def __init__(self, arg):
        self._set(arg=arg)
        self._init(arg.shape, arg)

    def children(self):
        return (self.arg,)


class _PlantedLeaf(E.Node):
    """A childless node type no pass knows (and on which nothing depends)."""

    __slots__ = ()

    def __init__(self, shape):
        self._init(shape)


_x = E.var("x", X)


def _planted():
    inner = _Planted(_x)
    return [inner, E.add(inner, _x), E.apply("exp", E.sum_all(inner)),
            _PlantedLeaf(X), E.add(_PlantedLeaf(X), _x)]


def _lower(node):
    return L.lower(node, {_x: Ref("x")}, {"n": Ref("n")}, lambda k: f"t{k}")


def _as_expr(node):
    return Expr(node, {"x": X})


def _scalar(node):
    return _as_expr(E.sum_all(node) if node.rank else node)


PASSES = {
    "with_children": lambda n: [m.with_children(m.children()) for m in E.walk(n)],
    "debug_str": E.debug_str,
    "simplify": S.simplify,
    "optimize": lambda n: optimize.reassociate(n, SIZES),
    "cost": lambda n: cost.dag_cost(n, SIZES),
    "print": lambda n: str(_as_expr(n)),
    "latex": lambda n: mc.latex(_as_expr(n)),
    "where": lambda n: mc.where(_as_expr(n)),
    "lower": _lower,
    "lambdify": lambda n: mc.lambdify(_as_expr(n)),
    "codegen": lambda n: mc.codegen(_as_expr(n)),
    "rules": lambda n: D.raw_derivative(n, "x", X),
    "diff": lambda n: mc.diff(_as_expr(n), "x"),
    "to_sympy": sympy_interop.to_sympy,
    "check_domain": checking.analyse,
    "check": lambda n: mc.check(_scalar(n), "x"),
    "equivalent": lambda n: mc.equivalent(_as_expr(n), _as_expr(E.add(_x, _x))
                                          if n.shape == X else _as_expr(E.num(1))),
    "explain": lambda n: mc.explain(_scalar(n), "x"),
}


@pytest.mark.parametrize("name", PASSES)
@pytest.mark.parametrize("k", range(len(_planted())))
def test_a_planted_node_type_makes_every_pass_raise(name, k):
    node = _planted()[k]
    # each pass names the type it does not know; no silent fallback, no result
    with pytest.raises((E.UnknownNodeError, mc.MathcalcError), match="_Planted"):
        PASSES[name](node)


def test_unknown_node_error_is_an_internal_error():
    err = E.unknown_node("latex", _PlantedLeaf(X))
    assert isinstance(err, TypeError) and not isinstance(err, mc.MathcalcError)
    assert "_PlantedLeaf" in str(err) and "NODE_TYPES" in str(err)
    with pytest.raises(E.UnknownNodeError):
        E.known("a pass", _PlantedLeaf(X))
    assert E.known("a pass", _x) is _x
