"""lambdify: values against the independent reference evaluator, argument checks, fast paths."""

from __future__ import annotations

import re
import timeit

import numpy as np
import pytest
import sympy

from evaluate import evaluate
from mathcalc import nodes as E
from mathcalc.errors import MathcalcError, ShapeError
from mathcalc.expression import Expr
from mathcalc.functions import FUNCTIONS, register_function
from mathcalc.lambdify import lambdify

# Distinct sizes so that a missing transpose cannot pass.
SIZES = {"m": 2, "n": 3, "k": 4, "p": 5}

x = E.var("x", ("n",))
y = E.var("y", ("n",))
u = E.var("u", ("m",))
b = E.var("b", ("m",))
A = E.var("A", ("n", "n"))
W = E.var("W", ("m", "n"))
B = E.var("B", ("n", "k"))
C = E.var("C", ("k", "p"))
U = E.var("U", ("m", "k"))
V = E.var("V", ("n", "k"))
X = E.var("X", ("m", "n"))
a = E.var("a", ())
s = E.var("s", ())


def _catalogue():
    """One node per pattern the lowering distinguishes; every node type occurs."""
    z = E.add(E.einsum("ij,j->i", W, x), b)
    r = E.sub(X, E.einsum("ik,jk->ij", U, V))
    cases = {
        "matvec": E.einsum("ij,j->i", W, x),
        "transposed matvec": E.einsum("ij,i->j", W, u),
        "row vector times matrix": E.einsum("i,ij->j", u, W),
        "inner": E.einsum("i,i->", x, y),
        "outer": E.einsum("i,j->ij", u, x),
        "matmul": E.einsum("ij,jk->ik", W, B),
        "A' B": E.einsum("ji,jk->ik", X, W),
        "A B'": E.einsum("ij,kj->ik", W, X),
        "B' A' as (A B)'": E.einsum("ij,jk->ki", W, B),
        "frobenius inner": E.einsum("ij,ij->", W, X),
        "frobenius inner transposed": E.einsum("ij,ji->", A, A),
        "trace": E.trace(A),
        "diag of matrix": E.diag_vector(A),
        "diag(v) * A": E.einsum("ij,jk->ik", E.diag_matrix(x), B),
        "A * diag(v)": E.einsum("ij,jk->ik", W, E.diag_matrix(x)),
        "diag(v) alone": E.diag_matrix(u),
        "hadamard": E.hadamard(W, X),
        "scalar times matrix": E.hadamard(a, W),
        "sum all": E.sum_all(W),
        "row sums": E.einsum("ij,j->i", W, E.ones(("n",))),
        "broadcast ones": E.einsum("i,j->ij", u, E.ones(("n",))),
        "sum of ones": E.sum_all(E.ones(("n",))),
        "quadratic form": E.product([(x, "i"), (A, "ij"), (x, "j")], ""),
        "matrix chain": E.product([(W, "ij"), (B, "jk"), (C, "kl")], "il"),
        "chain with vector": E.product([(W, "ij"), (B, "jk"), (C, "kl"), (E.var("w", ("p",)), "l")], "i"),
        "batched rows": E.einsum("ij,ij->i", W, X),
        "tensordot": E.einsum("ijk,jk->i", E.product([(W, "ij"), (V, "jk")], "ijk"), V),
        "identity": E.eye("n"),
        "eye plus A": E.add(A, E.eye("n")),
        "kronecker delta order 4": E.product([(E.Delta("m"), "ik"), (V, "pj"), (V, "pl")], "ijkl"),
        "delta times outer": E.product([(E.Delta("n"), "ij"), (x, "k")], "ijk"),
        "zeros": E.zeros(("m", "n")),
        "ones": E.ones(("n",)),
        "constant plus": E.add(x, E.ones(("n",))),
        "scaled": E.scale(3, W),
        "sum": E.add(W, X, E.neg(E.einsum("ik,jk->ij", U, V))),
        "residual": r,
        "square": E.power(x, E.num(2)),
        "cube": E.power(x, E.num(3)),
        "reciprocal": E.power(x, E.num(-1)),
        "root": E.power(x, E.num(E.as_number("0.5"))),
        "inverse root": E.power(x, E.num(E.as_number("-0.5"))),
        "fractional power": E.power(x, E.num(E.as_number("1.5"))),
        "scalar power of scalar": E.power(a, s),
        "elementwise power": E.power(x, y),
        "max": E.maximum(E.num(0), z),
        "min": E.minimum(W, X),
        "inv": E.inv(A),
        "det": E.det(A),
        "logdet": E.logdet(A),
        "softmax": E.softmax(x),
        "logsumexp": E.logsumexp(x),
        "norm1": E.norm1(W),
        "norm2 matrix": E.norm2(W),
        "norm2 vector": E.norm2(x),
        "norm2 scalar": E.norm2(a),
        "number": E.num(E.as_number("2.5")),
        "variable": W,
        "scalar variable": a,
        "transpose": E.transpose(W),
    }
    for name in ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "sign", "step",
                 "sigmoid", "relu", "softplus"):
        cases[f"apply {name}"] = E.apply(name, x)
    return cases


CASES = _catalogue()


# Declared with every case so that dimensions only constants use are bound too.
ENV = {"x": ("n",), "u": ("m",)}


def _values(node, rng, sizes=SIZES):
    vals = {}
    for name, shape in Expr(node, ENV).variables.items():
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in shape)
        if name == "A":
            g = rng.standard_normal(shape)
            vals[name] = g @ g.T / shape[0] + np.eye(shape[0])  # det > 0 for logdet
        elif name in ("x", "a"):
            vals[name] = rng.uniform(0.5, 2.0, shape)  # log, sqrt, powers
        else:
            vals[name] = rng.standard_normal(shape)
    return vals


def test_catalogue_covers_every_node_type():
    seen = {type(n) for node in CASES.values() for n in E.walk(node)}
    assert set(E.NODE_TYPES) <= seen, set(E.NODE_TYPES) - seen


@pytest.mark.parametrize("name", sorted(CASES))
def test_lambdify_matches_reference(name):
    node = CASES[name]
    rng = np.random.default_rng(1)
    vals = _values(node, rng)
    fn = lambdify(Expr(node, ENV))
    got = fn(**vals)
    want = evaluate(node, vals, sizes=SIZES)
    sizes = SIZES
    assert np.shape(got) == tuple(sizes[d] if isinstance(d, str) else d for d in node.shape)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["matrix chain", "chain with vector", "quadratic form"])
def test_products_of_many_factors_for_other_sizes(name):
    """The contraction order may be chosen per size signature: new sizes, same function."""
    node = CASES[name]
    fn = lambdify(Expr(node, ENV))
    for sizes in ({"m": 2, "n": 3, "k": 4, "p": 5}, {"m": 7, "n": 1, "k": 30, "p": 2}):
        vals = _values(node, np.random.default_rng(2), sizes)
        np.testing.assert_allclose(fn(**vals), evaluate(node, vals, sizes=sizes), rtol=1e-10)


def test_builtin_templates_match_the_function_table():
    from mathcalc.backend.lower import BUILTIN_FUNCTIONS
    from mathcalc.backend.numpy import NumpyEmitter

    rng = np.random.default_rng(3)
    v = np.concatenate([rng.uniform(0.1, 3, 5), -rng.uniform(0.1, 3, 5), [0.0, 40.0, -40.0]])
    for name, entry in FUNCTIONS.items():
        if not entry.builtin:
            continue
        assert name in BUILTIN_FUNCTIONS and name in NumpyEmitter.OPS, f"{name} has no numpy op"
        fn = lambdify(Expr(E.apply(name, E.var("v", (len(v),)))))
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(fn(v=v), entry.numpy(v), rtol=1e-12, equal_nan=True)


def test_scalar_result_is_a_float64_scalar():
    fn = lambdify(Expr(CASES["quadratic form"]))
    out = fn(x=np.ones(3), A=np.eye(3))
    assert isinstance(out, np.floating) and np.asarray(out).shape == ()
    assert out == 3.0
    assert lambdify(Expr(E.hadamard(a, s)))(a=2.0, s=np.array(3.0)) == 6.0


def test_scalars_accept_python_numbers_and_0d_arrays():
    fn = lambdify(Expr(E.hadamard(a, x)))
    np.testing.assert_allclose(fn(a=2, x=[1.0, 2.0, 3.0]), [2, 4, 6])
    np.testing.assert_allclose(fn(a=np.float32(2), x=np.arange(3)), [0, 2, 4])


def test_result_never_shares_memory_with_an_argument():
    w = np.arange(6.0).reshape(2, 3)
    for node in (W, E.transpose(W)):
        out = lambdify(Expr(node))(W=w)
        assert not np.shares_memory(out, w)


def test_dropped_variable_is_accepted_and_shape_checked():
    # d(u'*W*x)/dx = W'*u: x no longer occurs, but the function takes it.
    node = E.einsum("ij,i->j", W, u)
    fn = lambdify(Expr(node, {"x": ("n",)}))
    w, uv = np.ones((2, 3)), np.array([1.0, 2.0])
    np.testing.assert_allclose(fn(W=w, u=uv, x=np.zeros(3)), [3.0, 3.0, 3.0])
    with pytest.raises(ShapeError) as err:
        fn(W=w, u=uv, x=np.zeros(4))
    msg = str(err.value)  # whichever of W and x is read second is blamed; both are named
    assert "'x'" in msg and "'W'" in msg and "(2, 3)" in msg and "(m, n)" in msg
    with pytest.raises(ShapeError, match="missing argument 'x'"):
        fn(W=w, u=uv)


# ---------------------------------------------------------------------------
# Argument errors


@pytest.fixture
def matvec():
    return lambdify(Expr(E.add(E.einsum("ij,j->i", W, x), b)))


def test_wrong_size_names_variable_and_both_shapes(matvec):
    with pytest.raises(ShapeError) as err:
        matvec(W=np.ones((2, 3)), x=np.ones(4), b=np.ones(2))
    msg = str(err.value)
    assert "'x'" in msg and "(4,)" in msg and "(n,)" in msg and "(3,)" in msg


def test_wrong_number_of_axes(matvec):
    with pytest.raises(ShapeError, match=r"'x' must have shape \(n,\).*got shape \(3, 1\)"):
        matvec(W=np.ones((2, 3)), x=np.ones((3, 1)), b=np.ones(2))


def test_never_broadcasts_a_scalar_for_a_vector(matvec):
    with pytest.raises(ShapeError, match="'b'"):
        matvec(W=np.ones((2, 3)), x=np.ones(3), b=1.0)


def test_scalar_variable_rejects_an_array():
    fn = lambdify(Expr(E.hadamard(a, x)))
    with pytest.raises(ShapeError, match=r"'a' must be a scalar.*\(1,\)"):
        fn(a=np.ones(1), x=np.ones(3))


def test_missing_and_extra_arguments(matvec):
    with pytest.raises(ShapeError, match=r"missing argument 'b' of shape \(m,\)"):
        matvec(W=np.ones((2, 3)), x=np.ones(3))
    with pytest.raises(ShapeError, match="unexpected argument.*'z'"):
        matvec(W=np.ones((2, 3)), x=np.ones(3), b=np.ones(2), z=1.0)


def test_a_dimension_gets_one_size_across_arguments():
    fn = lambdify(Expr(E.einsum("i,i->", x, y)))
    assert fn(x=np.ones(3), y=np.ones(3)) == 3.0
    assert fn(x=np.ones(5), y=np.ones(5)) == 5.0  # another size, the same function
    with pytest.raises(ShapeError) as err:
        fn(x=np.ones(3), y=np.ones(4))
    msg = str(err.value)
    assert "'x'" in msg and "'y'" in msg and "(3,)" in msg and "(4,)" in msg and "(n,)" in msg


def test_integer_dimensions_must_match_exactly():
    z3 = E.var("z", (3,))
    fn = lambdify(Expr(E.einsum("ij,j->i", E.var("M", (2, 3)), z3)))
    assert fn(M=np.ones((2, 3)), z=np.ones(3)).shape == (2,)
    with pytest.raises(ShapeError, match=r"'M' has shape \(3, 3\).*\(2, 3\)"):
        fn(M=np.ones((3, 3)), z=np.ones(3))


def test_dimension_bound_by_no_variable_is_an_error_at_build_time():
    with pytest.raises(ShapeError, match="dimension 'q'"):
        lambdify(Expr(E.sum_all(E.ones(("q",)))))


# ---------------------------------------------------------------------------
# Safety: no user text in generated source


@pytest.mark.parametrize("hostile", [
    "__import__('os').system('echo pwned')",
    "x=1):\n    import os\n#",
    "x y",
    "a.b",
    "1x",
    "x\u200b",  # a zero-width space: not a letter
    "",
])
def test_hostile_variable_names_are_rejected_before_any_code_is_built(hostile, monkeypatch):
    import builtins

    calls = []
    real_exec = builtins.exec
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: calls.append(a) or real_exec(*a, **k))
    node = E.hadamard(E.var(hostile, ()), x)
    with pytest.raises(MathcalcError, match="not a plain identifier"):
        lambdify(Expr(node))
    assert calls == []


# Names the parser accepts that are no Python parameter meaning itself: keywords,
# soft keywords, dunder names, NFKC-unstable letters, builtins the body could use.
ODD_NAMES = ["lambda", "match", "case", "_", "__x", "class", "type", "__class__",
             "__builtins__", "ﬁ", "ℌ", "sorted", "Exception", "α", "λ", "np", "MISSING"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_every_name_the_parser_accepts_lambdifies(name):
    import ast

    import mathcalc as mc

    e = mc.parse(f"{name} * y + x", **{name: (), "x": ("n",), "y": ("n",)})
    assert name in e.variables
    fn = lambdify(e)
    got = fn(**{name: 2.0, "x": np.array([1.0, 2.0]), "y": np.array([3.0, 4.0])})
    np.testing.assert_allclose(got, [7.0, 10.0])
    with pytest.raises(ShapeError, match=f"missing argument {re.escape(repr(name))}"):
        fn(x=np.ones(2), y=np.ones(2))
    with pytest.raises(ShapeError, match="unexpected argument.*'zz'"):
        fn(**{name: 2.0, "x": np.ones(2), "y": np.ones(2), "zz": 1.0})
    # In the source the name is a parameter that means itself, or only a string literal.
    from mathcalc.backend.names import is_parameter_name

    tree = ast.parse(fn.source)
    params = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.kwonlyargs}
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert (name in params) == is_parameter_name(name)
    assert name not in assigned  # never rebound: a builtin of that name keeps meaning itself
    assert all(i.isascii() for i in params | assigned if i != name)
    if not is_parameter_name(name):
        assert repr(name) in fn.source  # read from the ** dict by its repr


def test_a_name_and_its_nfkc_form_stay_two_variables():
    import mathcalc as mc

    e = mc.parse("ﬁ - fi", **{"ﬁ": (), "fi": ()})  # ﬁ=() in source would be fi=()
    assert set(e.variables) == {"ﬁ", "fi"}
    assert lambdify(e)(**{"ﬁ": 5.0, "fi": 2.0}) == 3.0


def test_check_with_a_keyword_as_a_variable_name():
    import mathcalc as mc

    result = mc.check("norm2(X*w - y)^2 + lambda*w'*w", "w")
    assert result.ok, result.message


def test_names_that_look_internal_do_not_collide():
    np_, v0, t0 = E.var("np", ("n",)), E.var("v0", ("n",)), E.var("t0", ())
    node = E.add(E.hadamard(t0, np_), v0, E.hadamard(E.einsum("i,i->", np_, v0), v0))
    fn = lambdify(Expr(node))
    vals = {"np": np.array([1.0, 2.0]), "v0": np.array([3.0, 4.0]), "t0": 2.0}
    np.testing.assert_allclose(fn(**vals), evaluate(node, vals))


# ---------------------------------------------------------------------------
# Fast paths: shared work, BLAS calls, no dense identities


def _source(node):
    return lambdify(Expr(node, ENV)).source


def test_shared_subexpression_is_computed_once():
    z = E.add(E.einsum("ij,j->i", W, x), b)
    node = E.add(E.product([(E.apply("step", z), "i"), (x, "j")], "ij"),
                 E.product([(E.apply("relu", z), "i"), (x, "j")], "ij"))
    src = _source(node)
    assert src.count(".dot(") == 1  # W*x once


def test_common_products_are_blas_calls_not_einsum():
    for name in ("matvec", "transposed matvec", "matmul", "A' B", "A B'", "quadratic form",
                 "outer", "inner", "diag(v) * A", "A * diag(v)", "hadamard"):
        assert "einsum" not in _source(CASES[name]), name


def test_diag_inside_a_product_is_a_scaling():
    src = _source(CASES["diag(v) * A"])
    assert "eye" not in src and "zeros" not in src and "[:, None]" in src


def test_hessian_like_delta_products_fill_blocks_without_a_dense_identity():
    src = _source(CASES["kronecker delta order 4"])
    assert "eye" not in src
    # a diagonal view of a zero array (axes 0 and 2 tied), filled
    assert "np.zeros(" in src and re.search(r"np\.einsum\('(\w)(\w)\1(\w)->\1\2\3', ", src)
    # Reference: δ_ik (V'V)_jl
    rng = np.random.default_rng(4)
    vv = rng.standard_normal((3, 4))
    got = lambdify(Expr(CASES["kronecker delta order 4"], ENV))(V=vv, x=np.ones(3), u=np.ones(2))
    want = np.einsum("ik,jl->ijkl", np.eye(2), vv.T @ vv)
    np.testing.assert_allclose(got, want)


def test_tiny_inputs_cost_microseconds():
    fn = lambdify(Expr(CASES["quadratic form"]))
    xv, av = np.ones(3), np.eye(3)
    per_call = min(timeit.repeat(lambda: fn(x=xv, A=av), number=2000, repeat=5)) / 2000
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} µs per call"


def test_lambdify_is_cached_per_expression():
    e = Expr(CASES["matvec"])
    assert lambdify(e) is lambdify(Expr(CASES["matvec"]))


def test_registered_function_uses_its_numpy_implementation():
    t = sympy.Symbol("t")
    register_function("cubic_numeric_test", t ** 3 + t)
    fn = lambdify(Expr(E.apply("cubic_numeric_test", x)))
    np.testing.assert_allclose(fn(x=np.array([1.0, 2.0])), [2.0, 10.0])


def test_logdet_is_nan_where_det_is_not_positive():
    fn = lambdify(Expr(E.logdet(A)))
    assert np.isnan(fn(A=-np.eye(3)))
    assert fn(A=2 * np.eye(3)) == pytest.approx(3 * np.log(2))


def test_softmax_and_logsumexp_do_not_overflow():
    v = np.array([1000.0, 1000.0, 0.0])
    np.testing.assert_allclose(lambdify(Expr(E.softmax(x)))(x=v), [0.5, 0.5, 0.0], atol=1e-300)
    assert lambdify(Expr(E.logsumexp(x)))(x=v) == pytest.approx(1000 + np.log(2))


# ---------------------------------------------------------------------------
# Argument values that are not arrays of real numbers


BAD_VALUES = [
    ([[1.0, 2.0], [3.0]], r"'x' is ragged"),
    ("abc", r"'x' is a string"),
    ("1.5", r"'x' is a string"),
    (object(), r"'x' is a value of type object"),
    (np.array([1 + 5j, 2.0]), r"'x' is complex \(dtype complex128\)"),
    ([1 + 5j, 2], r"'x' is complex"),
    (np.array([1.0, 2j], dtype=object), r"'x' holds a value of type complex"),
    (np.array(["1", "2"]), r"'x' is a string"),
    (np.array([1, 2], dtype="datetime64[s]"), r"'x' has values \(dtype datetime64"),
]


@pytest.mark.parametrize("value, message", BAD_VALUES, ids=lambda v: type(v).__name__)
def test_values_that_are_not_real_arrays_are_shape_errors(value, message):
    import warnings

    fn = lambdify(Expr(E.sum_all(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: complex is refused, not cast
        with pytest.raises(ShapeError, match=message):
            fn(x=value)


def test_values_that_convert_are_read_as_float64():
    from fractions import Fraction

    fn = lambdify(Expr(E.hadamard(a, x)))
    for xv in ([1, 2, 3], np.array([True, False, True]), np.arange(3, dtype=np.int8),
               np.array([1.0, 2.0, 3.0], dtype=">f8"), np.array([Fraction(1, 2), 1, 2], dtype=object),
               np.array([1.0, 2.0, 3.0], dtype=">f4")):
        got = fn(a=2, x=xv)
        # floating dtypes are kept (float32 stays float32), everything else is read as float64
        want = np.asarray(xv).dtype.newbyteorder("=") if np.asarray(xv).dtype.kind == "f" \
            else np.dtype(np.float64)
        assert got.dtype == want, (xv, got.dtype)
        np.testing.assert_allclose(got, 2 * np.asarray(xv, dtype=np.float64))


def test_float32_in_float32_out_python_numbers_float64():
    # SPEC 9: results keep the floating dtype of the inputs; Python numbers and ints give float64
    fn = lambdify(Expr(E.add(E.hadamard(a, x), E.einsum("ij,j->i", E.inv(A), x))))
    x32, a32 = np.arange(1.0, 4.0, dtype=np.float32), np.eye(3, dtype=np.float32) * 2
    assert fn(a=2.0, x=x32, A=a32).dtype == np.float32
    assert fn(a=2, x=[1, 2, 3], A=np.eye(3)).dtype == np.float64
    assert fn(a=np.float32(2), x=x32, A=a32).dtype == np.float32
    h = lambdify(__import__("mathcalc").hessian("norm2(X - U*V')^2", "U", X=("m", "p"), U=("m", "k"),
                                                V=("p", "k")))
    X32, U32, V32 = (np.ones(s, dtype=np.float32) for s in ((4, 3), (4, 2), (3, 2)))
    assert h(X=X32, U=U32, V=V32).dtype == np.float32  # the block fill too
    s = lambdify(Expr(E.einsum("i,i->", x, x)))
    assert isinstance(s(x=x32), np.float32) and isinstance(s(x=[1, 2]), np.float64)


def test_a_scalar_argument_with_a_bad_value():
    fn = lambdify(Expr(E.hadamard(a, x)))
    with pytest.raises(ShapeError, match="'a' is complex"):
        fn(a=1j, x=np.ones(3))
    with pytest.raises(ShapeError, match="'a' is a value of type NoneType"):
        fn(a=None, x=np.ones(3))


def test_size_dependent_function_reports_bad_values_too():
    import mathcalc as mc

    fn = lambdify(mc.diff("norm2(X - U*V')^2", "U"))
    ok = dict(X=np.ones((4, 3)), U=np.ones((4, 2)), V=np.ones((3, 2)))
    with pytest.raises(ShapeError, match="'V' is ragged"):
        fn(**{**ok, "V": [[1.0, 2.0], [3.0]]})
    with pytest.raises(ShapeError, match="'U' is complex"):
        fn(**{**ok, "U": ok["U"] + 1j})
    with pytest.raises(ShapeError, match="missing argument 'X'"):
        fn(U=ok["U"], V=ok["V"])


# ---------------------------------------------------------------------------
# numpy float64 semantics for constant operands


@pytest.mark.parametrize("text, want", [
    ("(1 - 2) .^ (0.5 .^ 3 - 1.5) + c", np.nan),  # Python: a complex number
    ("(1 - 1) .^ (0 - 1) + c", np.inf),  # Python: ZeroDivisionError
    ("(1 - 1) .^ (0 - 3) + c", np.inf),  # Python: ZeroDivisionError
    ("(0.5 - 3) .^ 0.5 + c", np.nan),
])
def test_powers_of_constants_follow_numpy(text, want):
    import mathcalc as mc

    fn = lambdify(mc.parse(text))
    with np.errstate(all="ignore"):
        got = fn(c=1.0)
    assert isinstance(got, np.float64)
    np.testing.assert_equal(got, want)


# ---------------------------------------------------------------------------
# The size-dispatching function looks like any lambdified one


def test_size_dispatch_has_the_docstring_signature_and_attributes():
    import inspect

    import mathcalc as mc

    g = mc.diff("norm2(Y - P*Q')^2", "P")  # built here first: no shapes seen yet
    fn = lambdify(g)
    plain = lambdify(mc.diff("norm2(Y - P)^2", "P"))
    assert fn.__name__ == plain.__name__ == "f"
    assert str(g) in fn.__doc__ and "P: shape (m, k)" in fn.__doc__
    assert list(inspect.signature(fn).parameters) == ["Y", "P", "Q", "unexpected"]
    assert fn.expr == g and fn.size_dependent
    assert fn.source.startswith("def f(") and fn.sources == {}
    thin = dict(Y=np.ones((40, 30)), P=np.ones((40, 2)), Q=np.ones((30, 2)))
    square = dict(Y=np.ones((6, 6)), P=np.ones((6, 6)), Q=np.ones((6, 6)))
    for vals in (thin, square):
        np.testing.assert_allclose(fn(**vals), -2 * (vals["Y"] - vals["P"] @ vals["Q"].T) @ vals["Q"])
    assert set(fn.sources) == {((40, 30), (40, 2), (30, 2)), ((6, 6), (6, 6), (6, 6))}
    thin_src = fn.sources[((40, 30), (40, 2), (30, 2))]
    assert thin_src != fn.sources[((6, 6), (6, 6), (6, 6))]
    assert thin_src.startswith("def f(") and thin_src != fn.source


# ---------------------------------------------------------------------------
# No copies, no repeated work


def test_hessian_block_result_is_returned_without_a_copy():
    import mathcalc as mc

    h = mc.hessian("norm2(X-U*V')^2 + norm2(U)^2", "U")
    fn = lambdify(h)
    assert "np.array(" not in fn.source
    rng = np.random.default_rng(7)
    V_ = rng.standard_normal((3, 2))
    got = fn(X=np.ones((4, 3)), U=np.ones((4, 2)), V=V_)
    # H[i,j,k,l] = d²f / dU_ij dU_kl = 2 δ_ik (I + V'V)_jl
    np.testing.assert_allclose(got, np.einsum("ik,jl->ijkl", np.eye(4), 2 * np.eye(2) + 2 * V_.T @ V_))


def test_a_view_of_a_computed_array_is_not_copied_but_an_argument_is():
    fn = lambdify(Expr(E.transpose(E.inv(A))))  # inv(X)' : a view of a new array
    assert "np.array(" not in fn.source
    av = np.array([[2.0, 1.0], [0.0, 4.0]])
    np.testing.assert_allclose(fn(A=av), np.linalg.inv(av).T)
    fn = lambdify(Expr(E.transpose(W)))
    assert "np.array(" in fn.source  # a view of the argument: copied
    w = np.ones((2, 3))
    assert not np.shares_memory(fn(W=w), w)


def test_a_product_and_its_transpose_are_contracted_once():
    # d det(A*X*B)/dX = det(M) (B inv(M) A)' holds M = A X B and, inside inv(M)', M'.
    import mathcalc as mc

    g = mc.diff("det(A*X*B)", "X")
    fn = lambdify(g)
    assert fn.source.count(".dot(") == 4, fn.source  # A, X, B contracted once (two products)
    assert re.search(r"= t\d+\.T$", fn.source, re.M)
    rng = np.random.default_rng(8)
    for m, n, k in [(3, 4, 5), (2, 30, 3)]:
        Av, Xv, Bv = rng.standard_normal((m, n)), rng.standard_normal((n, k)), rng.standard_normal((k, m))
        M = Av @ Xv @ Bv
        want = np.linalg.det(M) * (Bv @ np.linalg.inv(M) @ Av).T
        np.testing.assert_allclose(fn(A=Av, X=Xv, B=Bv), want, rtol=1e-9)
    assert len(fn.sources) == 2
    for src in fn.sources.values():  # M in two products, inv(M)*B', A'*(...): four in all
        assert src.count(".dot(") == 4, src


def test_vectors_on_one_index_are_one_scaling_of_x_transpose_x():
    # The logistic regression Hessian X'*diag(y.^2 .* s .* (1 - s))*X: the three
    # vectors on the row index multiply first, then one scaled X'X (BLAS), never
    # a five-operand einsum (10 s at m=2000, n=1000, against 0.07 s by hand).
    import mathcalc as mc

    h = mc.hessian("sum(log(1 + exp(-y .* (X*w))))", "w", X=("m", "n"), w=("n",), y=("m",))
    fn = mc.lambdify(h)
    assert "einsum" not in fn.source and "c0(" not in fn.source
    assert fn.source.count(".dot(") == 2  # X*w, then the scaled X'X
    rng = np.random.default_rng(3)
    X, w, y = rng.standard_normal((5, 3)), rng.standard_normal(3), np.sign(rng.standard_normal(5))
    s = 1 / (1 + np.exp(y * (X @ w)))
    np.testing.assert_allclose(fn(X=X, w=w, y=y), (X * (y**2 * s * (1 - s))[:, None]).T @ X,
                               rtol=1e-12)
