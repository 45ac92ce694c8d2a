"""codegen: standalone numpy source that agrees with lambdify."""

from __future__ import annotations

import ast

import numpy as np
import pytest
import sympy

from mathcalc import nodes as E
from mathcalc.codegen import codegen
from mathcalc.errors import MathcalcError
from mathcalc.expression import Expr
from mathcalc.functions import register_function
from mathcalc.lambdify import lambdify
from test_numeric import CASES, ENV, _values


def _load(source: str, name: str = "f"):
    """Execute generated source as a user would: a fresh module namespace."""
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("case", sorted(CASES))
def test_codegen_round_trip_agrees_with_lambdify(case):
    e = Expr(CASES[case], ENV)
    fn = _load(codegen(e))
    vals = _values(e.node, np.random.default_rng(5))
    np.testing.assert_allclose(fn(**vals), lambdify(e)(**vals), rtol=1e-12, atol=1e-14)


def test_source_imports_only_numpy():
    e = Expr(E.logsumexp(E.add(E.einsum("ij,j->i", E.var("W", ("m", "n")), E.var("x", ("n",))),
                                E.var("b", ("m",)))))
    tree = ast.parse(codegen(e))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names]
    assert imported == ["numpy"]


def test_docstring_gives_expression_and_shapes():
    e = Expr(E.einsum("ij,j->i", E.var("W", ("m", "n")), E.var("x", ("n",))))
    fn = _load(codegen(e, name="predict"), "predict")
    assert str(e) in fn.__doc__
    assert "W: (m, n)" in fn.__doc__ and "x: (n,)" in fn.__doc__
    assert "-> (m,)" in fn.__doc__


def test_shared_subexpressions_are_named_temporaries():
    W, x, b = E.var("W", ("m", "n")), E.var("x", ("n",)), E.var("b", ("m",))
    z = E.add(E.einsum("ij,j->i", W, x), b)
    e = Expr(E.add(E.apply("tanh", z), E.apply("sigmoid", z)))
    src = codegen(e)
    assert src.count(" @ ") == 1
    assert "t0 = " in src


def test_standalone_function_raises_its_own_shape_error():
    e = Expr(E.einsum("i,i->", E.var("x", ("n",)), E.var("y", ("n",))))
    fn = _load(codegen(e))
    first = list(e.variables)[0]  # checked first: it binds n
    second = "x" if first == "y" else "y"
    with pytest.raises(ValueError, match=rf"{second}: expected shape \(n,\) = \(3,\), got \(2,\)"):
        fn(**{first: np.ones(3), second: np.ones(2)})
    with pytest.raises(ValueError, match=rf"{first}: expected shape \(n,\), got \(2, 1\)"):
        fn(**{first: np.ones((2, 1)), second: np.ones(3)})
    with pytest.raises(TypeError, match="'y'"):  # Python's own error for a missing argument
        fn(x=np.ones(2))
    assert "raise" not in codegen(e, checks=False)


def test_registered_function_is_printed_by_sympy():
    t = sympy.Symbol("t")
    register_function("gauss_codegen_test", sympy.exp(-t ** 2) * t)
    e = Expr(E.apply("gauss_codegen_test", E.var("x", ("n",))))
    src = codegen(e)
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(_load(src)(x=v), lambdify(e)(x=v), rtol=1e-14)
    np.testing.assert_allclose(_load(src)(x=v), v * np.exp(-v ** 2))


def test_function_name_is_validated():
    e = Expr(E.var("x", ("n",)))
    with pytest.raises(MathcalcError, match="not a plain identifier"):
        codegen(e, name="f(): pass\nimport os\ndef g")


def test_user_names_that_clash_with_internal_ones():
    e = Expr(E.add(E.var("np", ("n",)), E.var("t0", ("n",)), E.var("MISSING", ("n",))))
    fn = _load(codegen(e))
    np.testing.assert_allclose(fn(np=np.ones(2), t0=np.ones(2), MISSING=np.ones(2)), [3.0, 3.0])


# ---------------------------------------------------------------------------
# Variable names that are no Python parameter, bad argument values, float64 powers


def test_odd_variable_names_work_in_standalone_code():
    import mathcalc as mc
    from test_numeric import ODD_NAMES

    for name in ODD_NAMES:
        e = mc.parse(f"{name} * y + x", **{name: (), "x": ("n",), "y": ("n",)})
        src = codegen(e)
        fn = _load(src)
        got = fn(2.0, np.array([3.0, 4.0]), np.array([1.0, 2.0]))  # in order of appearance
        np.testing.assert_allclose(got, [7.0, 10.0], err_msg=name)
        params = [a.arg for a in ast.parse(src).body[-1].args.args]
        from mathcalc.backend.names import is_parameter_name

        assert params[1:] == ["y", "x"] and params[0] == (name if is_parameter_name(name)
                                                          else params[0]), (name, params)
        assert all(is_parameter_name(p) for p in params)


def test_standalone_code_takes_arrays_and_leaves_value_checks_to_the_library():
    # no converter in pasted code (SPEC 9): numpy arrays in, numpy's own errors otherwise
    e = Expr(E.sum_all(E.var("x", ("n",))))
    src = codegen(e)
    assert "class " not in src and "def " in src and src.count("def ") == 1
    fn = _load(src)
    assert fn(np.array([1.0, 2.0, 3.0])) == 6.0
    with pytest.raises(ValueError, match="x: expected shape"):
        fn(np.ones((2, 2)))


def test_standalone_powers_of_constants_are_float64():
    import mathcalc as mc

    fn = _load(codegen(mc.parse("(1 - 2) .^ (0.5 .^ 3 - 1.5) + c")))
    with np.errstate(invalid="ignore"):
        assert np.isnan(fn(1.0))


# ---------------------------------------------------------------------------
# What lambdify runs: re-association, fixed contraction orders


def _executed_lines(fn, **kwargs) -> set:
    """Line numbers of ``fn``'s source (loaded by ``_load``) that ran for these arguments."""
    import sys

    lines = set()

    def trace(frame, event, arg):
        if frame.f_code.co_filename == "<generated>":
            lines.add(frame.f_lineno)
            return trace
        return None

    sys.settrace(trace)
    try:
        result = fn(**kwargs)
    finally:
        sys.settrace(None)
    return lines, result


def test_codegen_distributes_where_lambdify_does():
    import mathcalc as mc

    g = mc.diff("x'*A*x", "x")  # (A + A')*x: A*x + A'*x, no n-by-n sum
    src = codegen(g)
    assert src.count(" @ ") == 2 and "A + A.T" not in src and ".T + " not in src
    rng = np.random.default_rng(9)
    xv, av = rng.standard_normal(4), rng.standard_normal((4, 4))
    np.testing.assert_allclose(_load(src)(x=xv, A=av), (av + av.T) @ xv, rtol=1e-12)


def _branches(src) -> list:
    """Lines of the body that branch, other than the one-line shape checks."""
    return [line for line in src.splitlines() if line.strip().startswith(("if ", "elif ", "else"))
            and "raise ValueError(" not in line]


def test_codegen_writes_one_form_and_one_order_for_any_size():
    # SPEC 9: one contraction order, no size branches in pasted code; the values are
    # right at every size (the cost model chose for sizes of 1000).
    import mathcalc as mc

    g = mc.diff("norm2(X - U*V')^2", "U")
    src = codegen(g)
    assert not _branches(src) and src.count("return ") == 1 and "<=" not in src
    fn = _load(src)
    rng = np.random.default_rng(10)
    for m, p, k in [(60, 50, 2), (8, 8, 8), (5, 40, 40)]:
        X, U, V = rng.standard_normal((m, p)), rng.standard_normal((m, k)), rng.standard_normal((p, k))
        np.testing.assert_allclose(fn(X, U, V), -2 * (X - U @ V.T) @ V, rtol=1e-10)


def test_chains_have_one_fixed_order_not_an_einsum_search():
    from mathcalc.backend import cost

    for case in ("matrix chain", "chain with vector"):
        e = Expr(CASES[case], ENV)
        src = codegen(e)
        assert "optimize=True" not in src and "einsum" not in src and not _branches(src), src
        fn = _load(src)
        rng = np.random.default_rng(11)
        for sizes in ({"m": 2, "n": 3, "k": 4, "p": 5}, {"m": 40, "n": 2, "k": 30, "p": 2}):
            vals = _values(e.node, rng, sizes)
            np.testing.assert_allclose(fn(**vals), lambdify(e)(**vals), rtol=1e-10)
    # the order is the cost model's for the assumed sizes: W*(B*C) is never worse there
    assert cost.ASSUMED_SIZE == 1000


def test_standalone_hessian_and_det_do_no_extra_work():
    import mathcalc as mc

    src = codegen(mc.hessian("norm2(X-U*V')^2 + norm2(U)^2", "U"))
    assert "np.array(" not in src
    src = codegen(mc.diff("det(A*X*B)", "X"))
    assert src.count("np.linalg.") == 2 and src.count(" @ ") == 4  # M once (and M' a view), then 2
    fn = _load(src)
    rng = np.random.default_rng(13)
    Av, Xv, Bv = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    M = Av @ Xv @ Bv
    np.testing.assert_allclose(fn(A=Av, X=Xv, B=Bv), np.linalg.det(M) * (Bv @ np.linalg.inv(M) @ Av).T,
                               rtol=1e-9)


def test_a_sum_applies_its_terms_coefficients_once():
    # 2*U*(V'*V) - 2*X*V: one subtraction and one scaling, no scaled copy of each term
    import mathcalc as mc

    g = mc.diff("norm2(X - U*V')^2", "U", X=("m", "p"), U=("m", "k"), V=("p", "k"))
    src = mc.codegen(g)
    thin = mc.lambdify(g)
    thin(X=np.ones((40, 30)), U=np.ones((40, 2)), V=np.ones((30, 2)))
    thin = thin.sources[((40, 30), (40, 2), (30, 2))]  # the distributed variant, for thin U and V
    assert "2.0 * (" in thin and " - " in thin and "(-2.0)" not in thin and "(-1.0)" not in src
    rng = np.random.default_rng(5)
    X, U, V = rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    np.testing.assert_allclose(mc.lambdify(g)(X=X, U=U, V=V), 2 * (U @ (V.T @ V) - X @ V),
                               rtol=1e-12)


def test_sigmoid_of_a_scaled_argument_scales_inside_its_template():
    # sigmoid(-y .* (X*w)): the sign joins the template's 0.5, no pass of its own;
    # 1 - s is one subtraction
    import mathcalc as mc

    shapes = dict(X=("m", "n"), w=("n",), y=("m",))
    g = mc.grad("sum(log(1 + exp(-y .* (X*w))))", "w", **shapes)
    h = mc.hessian("sum(log(1 + exp(-y .* (X*w))))", "w", **shapes)
    src_g, src_h = mc.lambdify(g).source, mc.lambdify(h).source
    assert "np.tanh((-0.5) * " in src_g and "(-1.0)) * (v0" not in src_g
    assert "= 1.0 - t" in src_h
    rng = np.random.default_rng(6)
    X, w, y = rng.standard_normal((5, 3)), rng.standard_normal(3), np.sign(rng.standard_normal(5))
    s = 1 / (1 + np.exp(y * (X @ w)))
    np.testing.assert_allclose(mc.lambdify(g)(X=X, w=w, y=y), X.T @ (-y * s), rtol=1e-12)
    np.testing.assert_allclose(mc.lambdify(h)(X=X, w=w, y=y), (X * (s * (1 - s))[:, None]).T @ X,
                               rtol=1e-12)
