"""The differentiation API of SPEC §3 and issue 3, through ``import mathcalc as mc``.

- grad and hessian of a non-scalar are a ShapeError; diff with respect to a
  name neither in the expression nor declared is a DiffError naming it; with
  respect to a declared variable that does not occur, a zero of shape
  f.shape + X.shape whose callable still takes every variable;
- the layout f.shape + X.shape for scalar, vector and matrix f with respect to
  scalar, vector and matrix X (sizes 2, 3 and 4), each derivative equal to
  central finite differences written here;
- results of order 3 and 4 (W*x by W; A*X, X', inv(X), X.*X by X): the value
  against the closed form (np.einsum) and finite differences, and the printed
  index notation read back by the convention of README.md ("Index notation
  for results of order 3 and more") and evaluated here, entry by entry;
- derivatives of any order (3 and 4), the Jacobian of softmax, and text input
  with shapes as keywords for every entry point.

Finite differences are taken of ``mc.lambdify(f)``; the closed forms are
written with numpy, so neither side of a comparison is the library's own
derivative checker (mc.check is asserted in addition, not instead).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mathcalc as mc
from mathcalc.functions import FUNCTIONS

H = 1e-6
RTOL = 1e-6
SIZES = {"m": 2, "n": 3, "p": 4}


# ---------------------------------------------------------------------------
# Helpers: points, finite differences, comparison


def _concrete(shape, sizes=SIZES) -> tuple:
    return tuple(d if isinstance(d, int) else sizes[d] for d in shape)


def point(variables: dict, seed: int = 0, sizes=SIZES) -> dict:
    """Standard normal entries, every variable at its concrete shape."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(_concrete(shape, sizes)) if shape
            else float(rng.standard_normal()) for name, shape in variables.items()}


def fd_jacobian(fn, vals: dict, wrt: str, h: float = H) -> np.ndarray:
    """Central differences of ``fn(**vals)`` in ``vals[wrt]``: shape out.shape + X.shape."""
    x0 = np.array(vals[wrt], dtype=float)
    f0 = np.asarray(fn(**vals), dtype=float)
    out = np.empty(f0.shape + x0.shape)
    for k in np.ndindex(*x0.shape):
        step = h * max(1.0, abs(float(x0[k])))
        xp, xm = x0.copy(), x0.copy()
        xp[k] += step
        xm[k] -= step
        fp = np.asarray(fn(**{**vals, wrt: xp}), dtype=float)
        fm = np.asarray(fn(**{**vals, wrt: xm}), dtype=float)
        out[(...,) + k] = (fp - fm) / (2 * step)
    return out


def assert_close(got, expected, rtol=RTOL, what=""):
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    err = float(np.max(np.abs(got - expected), initial=0.0)) / scale
    assert err < rtol, f"{what}: max error {err:.2e} (relative to {scale:.3g})\n{got}\n{expected}"


# ---------------------------------------------------------------------------
# A reader of the index notation documented in README.md
#
# The result's axes are i, j, k, l, p, q, ... in order; every other index of a
# term is summed; X(i,j) is an entry, a matrix-form subexpression is indexed
# after it, (W*x + b)(i); δ(i,k) is the identity; element-wise functions apply
# to indexed entries, step((W*x + b)(i)); products with *, sums with + and -.

RESULT_AXES = "ijklpq"


def _split_terms(text: str) -> list[tuple[int, str]]:
    """(sign, term) for the depth-0 sums ' + ' and ' - ' (and a leading '-')."""
    terms, sign, start, depth = [], 1, 0, 0
    text = text.strip()
    if text.startswith("-"):
        sign, start = -1, 1
    i = start
    while i < len(text):
        ch = text[i]
        depth += ch in "(["
        depth -= ch in ")]"
        if depth == 0 and text[i:i + 3] in (" + ", " - "):
            terms.append((sign, text[start:i]))
            sign = 1 if text[i + 1] == "+" else -1
            start = i = i + 3
            continue
        i += 1
    terms.append((sign, text[start:]))
    return terms


def _split_factors(term: str) -> list[str]:
    out, start, depth = [], 0, 0
    for i, ch in enumerate(term):
        depth += ch in "(["
        depth -= ch in ")]"
        if depth == 0 and ch == "*":
            out.append(term[start:i])
            start = i + 1
    out.append(term[start:])
    return [f.strip() for f in out]


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


_ENTRY = re.compile(r"(.+)\(([a-z](?:,[a-z])*)\)")
_DELTA = re.compile(r"δ\(([a-z]),([a-z])\)")
_CALL = re.compile(r"([A-Za-z_]\w*)\((.*)\)")


def _matrix_form(text: str, shapes: dict, vals: dict) -> np.ndarray:
    e = mc.parse(text, **shapes)
    return np.asarray(mc.lambdify(e)(**{k: vals[k] for k in e.variables}), dtype=float)


def _factor(text: str, shapes: dict, vals: dict):
    """(array, index letters) of one factor; δ comes back as (None, letters)."""
    try:
        return float(text), ""
    except ValueError:
        pass
    m = _DELTA.fullmatch(text)
    if m:
        return None, m.group(1) + m.group(2)
    m = _ENTRY.fullmatch(text)
    if m and _balanced(m.group(1)) and m.group(1) not in FUNCTIONS:
        idx = m.group(2).replace(",", "")
        value = _matrix_form(m.group(1), shapes, vals)
        assert value.ndim == len(idx), f"{text!r}: {value.ndim} axes, {len(idx)} indices"
        return value, idx
    m = _CALL.fullmatch(text)
    if m and m.group(1) in FUNCTIONS and _balanced(m.group(2)):
        inner, idx = _factor(m.group(2), shapes, vals)
        if inner is not None and idx:  # f applied to an indexed entry
            return np.asarray(FUNCTIONS[m.group(1)].numpy(inner), dtype=float), idx
    value = _matrix_form(text, shapes, vals)  # a scalar in matrix notation, e.g. `a`
    assert value.ndim == 0, f"factor {text!r} is neither indexed nor a scalar"
    return value, ""


def eval_index_notation(text: str, result_shape: tuple, shapes: dict, vals: dict) -> np.ndarray:
    """The tensor that ``text`` denotes by the README's convention, at the point ``vals``."""
    axes = RESULT_AXES[:len(result_shape)]
    total = np.zeros(result_shape)
    for sign, term in _split_terms(text):
        factors = [_factor(f, shapes, vals) for f in _split_factors(term)]
        sizes = dict(zip(axes, result_shape))
        for value, idx in factors:
            if value is not None:
                for letter, n in zip(idx, np.shape(value)):
                    assert sizes.setdefault(letter, n) == n, f"{term!r}: index {letter} sizes"
        operands, subscripts = [], []
        for value, idx in factors:
            if value is None:
                value = np.eye(sizes[idx[0]])
            operands.append(np.asarray(value, dtype=float))
            subscripts.append(idx)
        for letter in axes:  # an axis the term does not mention: constant along it
            if not any(letter in s for s in subscripts):
                operands.append(np.ones(sizes[letter]))
                subscripts.append(letter)
        spec = ",".join(subscripts) + "->" + axes
        total = total + sign * np.einsum(spec, *operands)
    return total


def test_the_index_notation_reader_follows_the_readme():
    """The reader itself, on hand-written strings (so a failure below is the library's)."""
    vals = {"W": np.arange(6.0).reshape(2, 3), "x": np.array([1.0, -2.0, 3.0])}
    shapes = {"W": (2, 3), "x": (3,)}
    t = eval_index_notation("δ(i,j)*x(k)", (2, 2, 3), shapes, vals)
    np.testing.assert_array_equal(t, np.einsum("ij,k->ijk", np.eye(2), vals["x"]))
    s = eval_index_notation("W(i,k)*x(k)", (2,), shapes, vals)  # k summed
    np.testing.assert_array_equal(s, vals["W"] @ vals["x"])
    r = eval_index_notation("-2*(W*x)(i) + tanh(x(j))", (2, 3), shapes, vals)
    np.testing.assert_allclose(r, -2 * (vals["W"] @ vals["x"])[:, None] + np.tanh(vals["x"])[None])


# ---------------------------------------------------------------------------
# Errors: grad/hessian of a non-scalar, unknown variables


NON_SCALARS = [
    ("W*x", {"W": ("m", "n"), "x": ("n",)}, "x"),             # vector
    ("exp(x)", {"x": ("n",)}, "x"),                            # vector, element-wise
    ("A*X", {"A": ("m", "n"), "X": ("n", "p")}, "X"),         # matrix
    ("x*x'", {"x": ("n",)}, "x"),                              # matrix, outer product
]


@pytest.mark.parametrize("fn", [mc.grad, mc.hessian], ids=["grad", "hessian"])
@pytest.mark.parametrize("text, shapes, wrt", NON_SCALARS, ids=[t for t, _, _ in NON_SCALARS])
@pytest.mark.parametrize("as_text", [True, False], ids=["text", "Expr"])
def test_grad_and_hessian_of_a_non_scalar_are_a_shape_error(fn, text, shapes, wrt, as_text):
    f = text if as_text else mc.parse(text, **shapes)
    kwargs = shapes if as_text else {}
    with pytest.raises(mc.ShapeError):
        fn(f, wrt, **kwargs)
    # ... while the Jacobian of the same f exists, with the layout f.shape + X.shape
    e = mc.parse(text, **shapes)
    assert mc.jacobian(f, wrt, **kwargs).shape == e.shape + e.variables[wrt]


def test_shape_error_is_a_mathcalc_error():
    with pytest.raises(mc.MathcalcError):
        mc.grad("W*x", "x")
    with pytest.raises(ValueError):
        mc.hessian("x*x'", "x")


@pytest.mark.parametrize("call", [
    lambda f: mc.diff(f, "zeta"),
    lambda f: mc.diff(f, "zeta", order=2),
    lambda f: mc.grad(f, "zeta"),
    lambda f: mc.jacobian(f, "zeta"),
    lambda f: mc.hessian(f, "zeta"),
], ids=["diff", "diff2", "grad", "jacobian", "hessian"])
@pytest.mark.parametrize("as_text", [True, False], ids=["text", "Expr"])
def test_diff_by_an_unknown_name_is_a_diff_error_naming_it(call, as_text):
    text = "x'*A*x"
    f = text if as_text else mc.parse(text)
    with pytest.raises(mc.DiffError, match="zeta") as info:
        call(f)
    assert isinstance(info.value, mc.MathcalcError) and isinstance(info.value, ValueError)


def test_diff_by_an_unknown_name_is_a_diff_error_with_shapes_declared():
    """Declaring other names does not make an undeclared one known."""
    with pytest.raises(mc.DiffError, match="'B'"):
        mc.diff("x'*A*x", "B", x=("n",), A=("n", "n"), C=("n", "n"))


# ---------------------------------------------------------------------------
# A declared variable that does not occur: a zero of shape f.shape + X.shape


ABSENT = [
    # f, declared shapes, wrt (declared, absent from the text)
    ("x'*A*x", {"x": ("n",), "A": ("n", "n"), "B": ("m", "p")}, "B"),
    ("A*x", {"x": ("n",), "A": ("m", "n"), "B": ("m", "p")}, "B"),
    ("A*x", {"x": ("n",), "A": ("m", "n"), "y": ("p",)}, "y"),
    ("tanh(A)", {"A": ("m", "n"), "a": ()}, "a"),
    ("sum(exp(x))", {"x": ("n",), "a": ()}, "a"),
    ("x*x'", {"x": ("n",), "y": ("p",)}, "y"),
]


@pytest.mark.parametrize("text, shapes, wrt", ABSENT, ids=[f"{t}|d{w}" for t, _, w in ABSENT])
@pytest.mark.parametrize("as_text", [True, False], ids=["text", "Expr"])
def test_declared_but_absent_variable_gives_a_zero_of_the_layout_shape(text, shapes, wrt, as_text):
    f = mc.parse(text, **shapes)
    g = mc.diff(text, wrt, **shapes) if as_text else mc.diff(f, wrt)
    assert g.shape == f.shape + tuple(shapes[wrt])
    assert set(g.variables) == set(shapes)  # the absent variable is kept
    vals = point(shapes, seed=1)
    out = mc.lambdify(g)(**vals)  # accepts every variable, the absent one too
    expected_shape = _concrete(f.shape) + _concrete(shapes[wrt])
    assert np.shape(out) == expected_shape
    np.testing.assert_array_equal(out, np.zeros(expected_shape))
    # other sizes bind other shapes: the zero follows the arrays, not fixed sizes
    other = point(shapes, seed=2, sizes={"m": 4, "n": 2, "p": 3})
    out2 = mc.lambdify(g)(**other)
    assert np.shape(out2) == _concrete(f.shape, {"m": 4, "n": 2, "p": 3}) + \
        _concrete(shapes[wrt], {"m": 4, "n": 2, "p": 3})
    assert not np.any(out2)


def test_declared_but_absent_variable_has_a_zero_hessian_too():
    g = mc.hessian("x'*A*x", "B", x=("n",), A=("n", "n"), B=("m", "p"))
    assert g.shape == ("m", "p", "m", "p")
    out = mc.lambdify(g)(**point(g.variables))
    assert np.shape(out) == (2, 4, 2, 4) and not np.any(out)


def test_variable_that_drops_out_is_still_accepted():
    """d(a'*x)/dx = a: the callable still takes x (SPEC §3)."""
    g = mc.diff("a'*x", "x", a=("n",), x=("n",))
    vals = point(g.variables, seed=3)
    np.testing.assert_allclose(mc.lambdify(g)(**vals), vals["a"])


# ---------------------------------------------------------------------------
# Layout: f.shape + X.shape for every rank of f and of X, against finite differences

LAYOUT_SHAPES = {"a": (), "x": ("n",), "W": ("p", "n"), "C": ("m", "p")}  # m=2, n=3, p=4
LAYOUT_F = {
    "scalar": "a*sum(tanh(C*W*x))",          # ()
    "vector": "sin(a*C*W*x)",                 # (m,)
    "matrix": "a*tanh(C*W) + (C*W*x)*x'",     # (m, n)
}
F_SHAPES = {"scalar": (), "vector": ("m",), "matrix": ("m", "n")}


@pytest.mark.parametrize("wrt", ["a", "x", "W"], ids=["by-scalar", "by-vector", "by-matrix"])
@pytest.mark.parametrize("kind", list(LAYOUT_F))
def test_layout_against_finite_differences(kind, wrt):
    f = mc.parse(LAYOUT_F[kind], **LAYOUT_SHAPES)
    assert f.shape == F_SHAPES[kind]
    g = mc.diff(f, wrt)
    assert g.shape == f.shape + LAYOUT_SHAPES[wrt]
    vals = point(LAYOUT_SHAPES, seed=4)
    got = mc.lambdify(g)(**vals)
    assert np.shape(got) == _concrete(f.shape) + _concrete(LAYOUT_SHAPES[wrt])
    assert_close(got, fd_jacobian(mc.lambdify(f), vals, wrt), rtol=1e-6, what=f"d/d{wrt} {f}")
    result = mc.check(f, wrt)
    assert result.ok, result.message


@pytest.mark.parametrize("wrt", ["a", "x", "W"])
def test_layout_with_int_sizes(wrt):
    shapes = {"a": (), "x": (3,), "W": (4, 3), "C": (2, 4)}
    f = mc.parse(LAYOUT_F["matrix"], **shapes)
    g = mc.jacobian(f, wrt)
    assert g.shape == (2, 3) + shapes[wrt]
    vals = point(shapes, seed=5)
    assert_close(mc.lambdify(g)(**vals), fd_jacobian(mc.lambdify(f), vals, wrt), what=wrt)


def test_gradient_by_a_matrix_has_its_shape_and_the_jacobian_is_m_by_n():
    shapes = {"W": ("p", "n"), "x": ("n",)}
    g = mc.grad("sum(tanh(W*x))", "W", **shapes)
    assert g.shape == ("p", "n")
    j = mc.jacobian("tanh(W*x)", "x", **shapes)
    assert j.shape == ("p", "n")
    vals = point(shapes, seed=6)
    u = vals["W"] @ vals["x"]
    assert_close(mc.lambdify(j)(**vals), (1 - np.tanh(u) ** 2)[:, None] * vals["W"])
    assert_close(mc.lambdify(g)(**vals), np.outer(1 - np.tanh(u) ** 2, vals["x"]))


def test_hessian_by_a_vector_is_symmetric_and_by_a_matrix_has_shape_m_n_m_n():
    shapes = {"W": ("p", "n"), "x": ("n",)}
    f = mc.parse("sum(tanh(W*x))", **shapes)
    vals = point(shapes, seed=7)
    hx = mc.hessian(f, "x")
    assert hx.shape == ("n", "n")
    hxv = mc.lambdify(hx)(**vals)
    assert_close(hxv, hxv.T, rtol=1e-12, what="symmetry")
    assert_close(hxv, fd_jacobian(mc.lambdify(mc.grad(f, "x")), vals, "x"), what="H_x")
    hw = mc.hessian(f, "W")
    assert hw.shape == ("p", "n", "p", "n")
    hwv = mc.lambdify(hw)(**vals)
    assert hwv.shape == (4, 3, 4, 3)
    assert_close(hwv, fd_jacobian(mc.lambdify(mc.grad(f, "W")), vals, "W"), what="H_W")
    # closed form: -2 δ(i,k) t_i (1 - t_i²) x_j x_l
    t = np.tanh(vals["W"] @ vals["x"])
    expected = np.einsum("ik,i,j,l->ijkl", np.eye(4), -2 * t * (1 - t ** 2), vals["x"], vals["x"])
    assert_close(hwv, expected, what="closed form")


# ---------------------------------------------------------------------------
# Results of order 3 and 4: value, and the index notation read back


def _inv_point(vals):
    rng = np.random.default_rng(8)
    return {**vals, "X": 3 * np.eye(3) + 0.5 * rng.standard_normal((3, 3))}  # not symmetric


HIGHER = [
    # (f, wrt, shapes, closed form of the derivative at vals, printed form or None)
    ("W*x", "W", {"W": ("m", "n"), "x": ("n",)},
     lambda v: np.einsum("ij,k->ijk", np.eye(2), v["x"]), "δ(i,j)*x(k)"),
    ("A*X", "X", {"A": ("m", "n"), "X": ("n", "p")},
     lambda v: np.einsum("ik,jl->ijkl", v["A"], np.eye(4)), None),
    ("X'", "X", {"X": ("m", "n")},
     lambda v: np.einsum("il,jk->ijkl", np.eye(3), np.eye(2)), None),
    ("inv(X)", "X", {"X": ("n", "n")},
     lambda v: -np.einsum("ik,lj->ijkl", np.linalg.inv(v["X"]), np.linalg.inv(v["X"])),
     "-inv(X)(i,k)*inv(X)(l,j)"),
    ("X.*X", "X", {"X": ("m", "n")},
     lambda v: 2 * np.einsum("ik,jl,ij->ijkl", np.eye(2), np.eye(3), v["X"]), None),
]


@pytest.mark.parametrize("text, wrt, shapes, closed, printed", HIGHER,
                         ids=[f"{t}|d{w}" for t, w, _, _, _ in HIGHER])
def test_third_and_fourth_order_results(text, wrt, shapes, closed, printed):
    f = mc.parse(text, **shapes)
    g = mc.diff(f, wrt)
    assert g.shape == f.shape + shapes[wrt]
    assert len(g.shape) in (3, 4)
    vals = point(shapes, seed=9)
    if text == "inv(X)":
        vals = _inv_point(vals)
    concrete = _concrete(g.shape)
    got = mc.lambdify(g)(**vals)
    assert np.shape(got) == concrete
    expected = closed(vals)
    assert_close(got, expected, rtol=1e-12, what="closed form")
    assert_close(got, fd_jacobian(mc.lambdify(f), vals, wrt), what="finite differences")
    # the printed index notation denotes the same tensor (README's convention)
    text_g = str(g)
    assert_close(eval_index_notation(text_g, concrete, shapes, vals), expected, rtol=1e-12,
                 what=f"index notation {text_g!r}")
    if printed is not None:
        assert text_g == printed


def test_readme_index_notation_examples():
    """The examples of README.md's index-notation section, shapes inferred."""
    g = mc.diff("W*x", "W")
    assert str(g) == "δ(i,j)*x(k)"
    assert g.shape == ("m", "m", "n")
    assert repr(g) == "Expr('δ(i,j)*x(k)', shape=('m', 'm', 'n'))"
    assert str(mc.diff("inv(X)", "X")) == "-inv(X)(i,k)*inv(X)(l,j)"
    assert mc.latex(mc.diff("W*x", "W")) == r"\delta_{ij} x_{k}"


@pytest.mark.parametrize("text, wrt, shapes", [
    ("tanh(W*x)", "W", {"W": ("m", "n"), "x": ("n",)}),
    ("sin(a*C*W*x)", "W", LAYOUT_SHAPES),
    ("a*tanh(C*W) + (C*W*x)*x'", "x", LAYOUT_SHAPES),
    ("a*tanh(C*W) + (C*W*x)*x'", "W", LAYOUT_SHAPES),
    ("exp(A*X)", "X", {"A": ("m", "n"), "X": ("n", "p")}),
    ("sum(exp(A*x))", "x", {"A": ("p", "n"), "x": ("n",)}),
], ids=["tanh(Wx)|dW", "sin|dW", "matrix|dx", "matrix|dW", "exp(AX)|dX", "sum-exp|dx(order3)"])
def test_index_notation_of_other_results_denotes_their_value(text, wrt, shapes):
    """Whatever the printer chooses, the text read by the README's rules is the derivative."""
    f = mc.parse(text, **shapes)
    order = 3 if text == "sum(exp(A*x))" else 1
    g = mc.diff(f, wrt, order=order)
    assert len(g.shape) >= 3
    vals = point(shapes, seed=10)
    concrete = _concrete(g.shape)
    got = mc.lambdify(g)(**vals)
    base = mc.lambdify(mc.diff(f, wrt, order=order - 1) if order > 1 else f)
    assert_close(got, fd_jacobian(base, vals, wrt), rtol=1e-5, what="finite differences")
    assert_close(eval_index_notation(str(g), concrete, shapes, vals), got, rtol=1e-10,
                 what=f"index notation {str(g)!r}")


# ---------------------------------------------------------------------------
# Any order


def test_third_and_fourth_derivative_of_a_squared_norm():
    """(x'x)²: ∇ = 4(x'x)x, H = 4(x'x)I + 8xx', ∂³ = 8(δij x_k + δik x_j + δjk x_i),
    ∂⁴ = 8(δij δkl + δik δjl + δil δjk)."""
    shapes = {"x": ("n",)}
    f = mc.parse("(x'*x)^2", **shapes)
    vals = {"x": np.array([0.7, -1.2, 0.4])}
    x, eye = vals["x"], np.eye(3)
    d3 = mc.diff(f, "x", order=3)
    d4 = mc.diff(f, "x", order=4)
    assert d3.shape == ("n",) * 3 and d4.shape == ("n",) * 4
    third = 8 * (np.einsum("ij,k->ijk", eye, x) + np.einsum("ik,j->ijk", eye, x)
                 + np.einsum("jk,i->ijk", eye, x))
    fourth = 8 * (np.einsum("ij,kl->ijkl", eye, eye) + np.einsum("ik,jl->ijkl", eye, eye)
                  + np.einsum("il,jk->ijkl", eye, eye))
    assert_close(mc.lambdify(d3)(**vals), third, rtol=1e-12, what="3rd, closed form")
    assert_close(mc.lambdify(d4)(**vals), fourth, rtol=1e-12, what="4th, closed form")
    hess = mc.lambdify(mc.hessian(f, "x"))
    assert_close(mc.lambdify(d3)(**vals), fd_jacobian(hess, vals, "x"), what="3rd, fd")
    assert_close(mc.lambdify(d4)(**vals), fd_jacobian(mc.lambdify(d3), vals, "x"), what="4th, fd")
    for order in (3, 4):
        result = mc.check(f, "x", order=order)
        assert result.ok, result.message
    # diff of diff of diff is diff(order=3)
    nested = mc.diff(mc.diff(mc.diff(f, "x"), "x"), "x")
    assert nested.shape == d3.shape
    assert_close(mc.lambdify(nested)(**vals), third, rtol=1e-12, what="nested")
    assert mc.equivalent(nested, d3)
    assert_close(eval_index_notation(str(d3), (3, 3, 3), shapes, vals), third, rtol=1e-12,
                 what=f"index notation {str(d3)!r}")


def test_third_derivative_of_sum_exp_of_a_linear_map():
    """sum(exp(A x)) with A 4×3: ∂³/∂x_i∂x_j∂x_k = Σ_l A_li A_lj A_lk exp(A x)_l."""
    shapes = {"A": ("p", "n"), "x": ("n",)}
    f = mc.parse("sum(exp(A*x))", **shapes)
    vals = point(shapes, seed=11)
    A, x = vals["A"], vals["x"]
    d3 = mc.diff(f, "x", order=3)
    assert d3.shape == ("n", "n", "n")
    expected = np.einsum("li,lj,lk,l->ijk", A, A, A, np.exp(A @ x))
    got = mc.lambdify(d3)(**vals)
    assert_close(got, expected, rtol=1e-12, what="closed form")
    second = mc.lambdify(mc.diff(f, "x", order=2))
    assert_close(got, fd_jacobian(second, vals, "x"), rtol=1e-6, what="fd")
    result = mc.check(f, "x", order=3)
    assert result.ok, result.message
    assert result.max_rel_error < 1e-5
    # symmetric under every permutation of the three axes (Schwarz)
    for perm in [(1, 0, 2), (0, 2, 1), (2, 1, 0)]:
        assert_close(np.transpose(got, perm), got, rtol=1e-12, what=f"perm {perm}")


def test_second_derivative_of_a_vector_function_and_mixed_partials():
    """Jacobian of a Jacobian: d²(tanh(W*x))/dx² has shape (p, n, n); mixed d/dW d/dx too."""
    shapes = {"W": ("p", "n"), "x": ("n",)}
    f = mc.parse("tanh(W*x)", **shapes)
    vals = point(shapes, seed=12)
    d2 = mc.diff(f, "x", order=2)
    assert d2.shape == ("p", "n", "n")
    W, x = vals["W"], vals["x"]
    t = np.tanh(W @ x)
    expected = np.einsum("i,ij,ik->ijk", -2 * t * (1 - t ** 2), W, W)
    assert_close(mc.lambdify(d2)(**vals), expected, rtol=1e-12, what="closed form")
    mixed = mc.diff(mc.diff(f, "x"), "W")
    assert mixed.shape == ("p", "n", "p", "n")
    assert_close(mc.lambdify(mixed)(**vals),
                 fd_jacobian(mc.lambdify(mc.diff(f, "x")), vals, "W"), what="mixed")


@pytest.mark.parametrize("order", [0, -1, 1.5, True])
def test_order_must_be_a_positive_integer(order):
    with pytest.raises(mc.MathcalcError):
        mc.diff("x'*x", "x", order=order)


# ---------------------------------------------------------------------------
# softmax's Jacobian


@pytest.mark.parametrize("as_text", [True, False], ids=["text", "Expr"])
def test_jacobian_of_softmax_is_diag_s_minus_s_s_transposed(as_text):
    shapes = {"z": ("n",)}
    f = "softmax(z)" if as_text else mc.parse("softmax(z)", **shapes)
    j = mc.jacobian(f, "z", **(shapes if as_text else {}))
    assert j.shape == ("n", "n")
    fn = mc.lambdify(j)
    for seed, n in [(13, 4), (14, 2), (15, 3)]:
        z = 2 * np.random.default_rng(seed).standard_normal(n)
        s = np.exp(z - z.max())
        s /= s.sum()
        got = fn(z=z)
        assert_close(got, np.diag(s) - np.outer(s, s), rtol=1e-12, what=f"n={n}")
        assert_close(got, fd_jacobian(mc.lambdify(mc.parse("softmax(z)", **shapes)), {"z": z}, "z"),
                     what=f"fd n={n}")
        np.testing.assert_allclose(got.sum(axis=0), 0, atol=1e-12)  # columns sum to 0
    assert mc.equivalent(j, mc.parse("diag(softmax(z)) - softmax(z)*softmax(z)'", **shapes))


# ---------------------------------------------------------------------------
# Text input with shapes as keywords, for every entry point


TEXT_SHAPES = {"x": (2,), "A": (2, 3), "y": (3,)}
TEXT_F = "x'*A*y"  # gradient in A: x*y'; with these ints, A is not square


def test_text_input_with_int_shapes_for_every_entry_point():
    vals = point(TEXT_SHAPES, seed=16)
    x, A, y = vals["x"], vals["A"], vals["y"]

    g = mc.diff(TEXT_F, "A", **TEXT_SHAPES)
    assert g.shape == (2, 3)
    assert_close(mc.lambdify(g)(**vals), np.outer(x, y), rtol=1e-12, what="diff")

    gr = mc.grad(TEXT_F, "A", **TEXT_SHAPES)
    assert gr.shape == (2, 3)
    assert_close(mc.lambdify(gr)(**vals), np.outer(x, y), rtol=1e-12, what="grad")

    jac = mc.jacobian("A*y", "y", **TEXT_SHAPES)
    assert jac.shape == (2, 3)
    assert_close(mc.lambdify(jac)(**vals), A, rtol=1e-12, what="jacobian")

    hes = mc.hessian("x'*B*x", "x", x=(2,), B=(2, 2))
    assert hes.shape == (2, 2)
    B = np.array([[1.0, 2.0], [-3.0, 4.0]])
    assert_close(mc.lambdify(hes)(x=x, B=B), B + B.T, rtol=1e-12, what="hessian")

    d3 = mc.diff("(x'*x)^2", "x", order=3, x=(2,))
    assert d3.shape == (2, 2, 2)

    fn = mc.lambdify(TEXT_F, **TEXT_SHAPES)
    assert_close(fn(**vals), x @ A @ y, rtol=1e-12, what="lambdify")

    result = mc.check(TEXT_F, "A", **TEXT_SHAPES)
    assert result.ok and result.point["A"].shape == (2, 3)

    assert mc.equivalent("x*y'", g, **TEXT_SHAPES)
    assert not mc.equivalent("y*x'", mc.diff(TEXT_F, "A", x=(3,), A=(3, 3), y=(3,)),
                             x=(3,), A=(3, 3), y=(3,))
    assert mc.latex(TEXT_F, **TEXT_SHAPES) == mc.latex(mc.parse(TEXT_F, **TEXT_SHAPES))


def test_shape_keywords_are_honoured_not_inferred():
    """x'*A*y by A with x (m) and y (n): the gradient is m×n, not a square inferred shape."""
    g = mc.grad("x'*A*y", "A", x=("m",), A=("m", "n"), y=("n",))
    assert g.shape == ("m", "n")
    h = mc.jacobian("W*x", "x", W=("p", "n"), x=("n",))
    assert h.shape == ("p", "n")
    with pytest.raises(mc.ShapeError):  # contradicting the declaration
        mc.diff("x'*A*y", "A", x=("m",), A=("n", "n"), y=("n",))


@pytest.mark.parametrize("text, wrt, shapes", [
    (TEXT_F, "A", TEXT_SHAPES),
    ("sum(max(0, W*x + b))", "W", {"W": ("m", "n"), "x": ("n",), "b": ("m",)}),
    ("logsumexp(W*x)", "x", {"W": ("p", "n"), "x": ("n",)}),
    ("tanh(W*x)", "W", {"W": ("p", "n"), "x": ("n",)}),
])
def test_text_and_expr_input_give_the_same_derivative(text, wrt, shapes):
    from_text = mc.diff(text, wrt, **shapes)
    from_expr = mc.diff(mc.parse(text, **shapes), wrt)
    assert from_text.shape == from_expr.shape
    assert from_text.variables == from_expr.variables
    vals = point(from_text.variables, seed=17)
    assert_close(mc.lambdify(from_text)(**vals), mc.lambdify(from_expr)(**vals), rtol=1e-12)
    assert_close(mc.lambdify(from_text)(**vals),
                 fd_jacobian(mc.lambdify(text, **shapes), vals, wrt), rtol=1e-6, what="fd")
