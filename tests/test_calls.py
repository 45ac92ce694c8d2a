"""The table of built-in matrix calls (mathcalc/calls.py): one test per row of each concern.

For every row of ``calls.CALLS``: its arity (a wrong number of arguments is a
ParseError at the name, a right one is not), its shape rule (every argument
kind it takes gives the shape written out here, every other kind is a
ShapeError), the node it lowers to (the expr constructor, built by hand
here), and parse -> diff -> print -> parse (the derivative against central
finite differences, its printed form read back to the same numbers), at
distinct sizes m = 2, n = 3. Also the product table against numpy's matrix
product, the reserved names, and the shared helpers (line/column, shapes).
"""

import numpy as np
import pytest

import mathcalc as mc
from evaluate import evaluate, fd_jacobian, rel_error
from mathcalc import calls
from mathcalc import nodes as E
from mathcalc.calls import CALLS, C, M, R, S
from mathcalc.errors import line_col, place
from mathcalc.functions import register_function
from mathcalc.shapes import format_shape

SIZES = {"m": 2, "n": 3}
SHAPES = {"a": (), "c": (), "x": ("n",), "y": ("m",), "A": ("n", "n"), "X": ("m", "n")}
# An argument of each kind (A is square, X is not).
ARGUMENT = {S: "a", C: "x", R: "x'", M: "A"}


def test_every_call_of_the_language_has_one_row():
    # SPEC 1's reductions, matrix functions, binary functions and constants
    assert set(CALLS) == {"sum", "tr", "det", "logdet", "inv", "norm1", "norm2", "diag",
                          "softmax", "logsumexp", "max", "min", "eye", "ones", "zeros",
                          "vector", "matrix"}


# ---------------------------------------------------------------------------
# Arity

def _call_text(row, n: int) -> str:
    arg = "2" if row.form == "sized" else ("a" if row.form == "filled" else "x")
    return f"{row.name}({', '.join([arg] * n)})"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_arity(name):
    row = CALLS[name]
    for n in range(4):
        text = _call_text(row, n)
        if n in row.arity:
            try:
                mc.parse(text, **SHAPES)
            except mc.ParseError as err:  # pragma: no cover - the assertion says what
                raise AssertionError(f"{text}: {err}") from None
            except mc.ShapeError:
                pass  # the right number of arguments, of a kind the call does not take
            continue
        with pytest.raises(mc.ParseError) as info:
            mc.parse(text, **SHAPES)
        err = info.value
        assert err.message.startswith(f"{name} takes "), err.message
        assert f", got {n}" in err.message, err.message
        assert (err.line, err.column) == (1, 1)


def test_arity_messages():
    def message(text):
        with pytest.raises(mc.ParseError) as info:
            mc.parse(text, x=("n",))
        return info.value.message

    assert message("max(x)") == "max takes 2 arguments, got 1"
    assert message("tr()") == "tr takes 1 argument, got 0"
    assert message("vector(x, x)") == "vector takes 1 argument, got 2"
    assert message("ones(1, 2, 3)") == "ones takes 1 or 2 arguments (sizes), got 3"
    assert message("eye()") == ("eye takes 1 argument (a size), got 0; write eye alone for an "
                                "identity sized by context")
    assert message("exp(x, x)") == "exp takes 1 argument, got 2"  # element-wise functions too


# ---------------------------------------------------------------------------
# Shape rules: argument kind -> the result's shape, written out by hand

ONE_ARGUMENT = {
    "sum": {S: (), C: (), R: (), M: ()},
    "norm1": {S: (), C: (), R: (), M: ()},
    "norm2": {S: (), C: (), R: (), M: ()},
    "tr": {M: ()},
    "det": {M: ()},
    "logdet": {M: ()},
    "inv": {M: ("n", "n")},
    "diag": {C: ("n", "n"), R: ("n", "n"), M: ("n",)},
    "softmax": {C: ("n",), R: ("n",)},
    "logsumexp": {C: (), R: ()},
    "vector": {S: ("n",)},  # sized by the x it is added to below
    "matrix": {S: ("n", "n")},
}


@pytest.mark.parametrize("name", sorted(ONE_ARGUMENT))
def test_shape_rule_of_one_argument(name):
    row = CALLS[name]
    expected = ONE_ARGUMENT[name]
    assert {kinds[0] for kinds in row.kinds} == set(expected)
    for kind, arg in ARGUMENT.items():
        text = f"{name}({arg})"
        if row.form == "filled":  # sized by context: x or A gives the size
            text += " + x" if name == "vector" else " + A"
        if kind in expected:
            assert mc.parse(text, **SHAPES).shape == expected[kind], text
        else:
            with pytest.raises(mc.ShapeError) as info:
                mc.parse(text, **SHAPES)
            words = "fills every entry with a scalar c" if row.form == "filled" else \
                f"{name} needs {row.need}"
            assert words in str(info.value), str(info.value)


@pytest.mark.parametrize("name", sorted(n for n, row in CALLS.items() if row.square))
def test_a_square_matrix_is_needed(name):
    with pytest.raises(mc.ShapeError) as info:
        mc.parse(f"{name}(X)", X=("m", "n"))
    assert f"{name} needs a square matrix, but X is a matrix of shape (m, n)" in str(info.value)
    # undeclared, the two sides become one dimension
    assert mc.parse(f"{name}(X)").variables["X"] == ("n", "n")


@pytest.mark.parametrize("name", ["max", "min"])
def test_shape_rule_of_max_and_min(name):
    assert mc.parse(f"{name}(x, x)", **SHAPES).shape == ("n",)
    assert mc.parse(f"{name}(0, X)", **SHAPES).shape == ("m", "n")  # a scalar side broadcasts
    assert mc.parse(f"{name}(x', a)", **SHAPES).shape == ("n",)
    with pytest.raises(mc.ShapeError, match=f"cannot take {name} of"):
        mc.parse(f"{name}(x, y)", **SHAPES)  # n does not match m
    with pytest.raises(mc.ShapeError, match=f"cannot take {name} of"):
        mc.parse(f"{name}(x, x')", **SHAPES)  # orientation differs


@pytest.mark.parametrize("text, shape", [("eye(3)", (3, 3)), ("eye(n)", ("n", "n")),
                                         ("ones(2)", (2,)), ("ones(2, 3)", (2, 3)),
                                         ("zeros(m)", ("m",)), ("zeros(m, 3)", ("m", 3))])
def test_shape_rule_of_sized_constants(text, shape):
    assert mc.parse(text).shape == shape


# ---------------------------------------------------------------------------
# Lowering: the node each call builds

A = E.var("A", ("n", "n"))
X = E.var("X", ("m", "n"))
x = E.var("x", ("n",))
y = E.var("y", ("m",))
a = E.var("a", ())

LOWERED = {
    "sum": ("sum(X)", E.sum_all(X)),
    "norm1": ("norm1(x)", E.norm1(x)),
    "norm2": ("norm2(X)", E.norm2(X)),
    "tr": ("tr(A)", E.trace(A)),
    "det": ("det(A)", E.det(A)),
    "logdet": ("logdet(A)", E.logdet(A)),
    "inv": ("inv(A)", E.inv(A)),
    "diag": ("diag(x)", E.diag_matrix(x)),
    "softmax": ("softmax(x)", E.softmax(x)),
    "logsumexp": ("logsumexp(y)", E.logsumexp(y)),
    "max": ("max(a, x)", E.maximum(a, x)),
    "min": ("min(x, x)", E.minimum(x, x)),
    "eye": ("eye(n)", E.eye("n")),
    "ones": ("ones(m, 3)", E.ones(("m", 3))),
    "zeros": ("zeros(2)", E.zeros((2,))),
    "vector": ("vector(a) .* x", E.hadamard(E.hadamard(a, E.ones(("n",))), x)),
    "matrix": ("matrix(a) + X", E.add(E.hadamard(a, E.ones(("m", "n"))), X)),
}


def test_every_row_is_lowered_here():
    assert set(LOWERED) == set(CALLS)


@pytest.mark.parametrize("name", sorted(LOWERED))
def test_lowering(name):
    text, node = LOWERED[name]
    assert mc.parse(text, **SHAPES).node == node


def test_diag_of_a_matrix_is_its_diagonal():
    assert mc.parse("diag(A)", A=("n", "n")).node == E.diag_vector(A)
    assert mc.parse("diag(x')", x=("n",)).node == E.diag_matrix(x)


# ---------------------------------------------------------------------------
# parse -> diff -> print -> parse, numerically

ROUND_TRIP = {  # name: (text, wrt)
    "sum": ("sum(exp(X))", "X"),
    "norm1": ("norm1(X*x)", "x"),
    "norm2": ("norm2(X*x - y)", "x"),
    "tr": ("tr(X'*X*A)", "A"),
    "det": ("det(A)", "A"),
    "logdet": ("logdet(A'*A + eye(n))", "A"),
    "inv": ("x'*inv(A)*x", "A"),
    "diag": ("x'*diag(x)*A*x + diag(A)'*x", "A"),
    "softmax": ("y'*softmax(X*x)", "x"),
    "logsumexp": ("logsumexp(X*x)", "x"),
    "max": ("sum(max(0, X*x))", "x"),
    "min": ("sum(min(X*x, y))", "x"),
    "eye": ("x'*(A + eye(n))*x", "x"),
    "ones": ("ones(m)'*X*x", "x"),
    "zeros": ("x'*(A + zeros(n, n))*x", "x"),
    "vector": ("x'*(x + vector(c))", "c"),
    "matrix": ("tr(A*matrix(c)) + c^2", "c"),
}


def test_every_row_has_a_round_trip():
    assert set(ROUND_TRIP) == set(CALLS)


def _values(rng, variables):
    values = {}
    for name, shape in variables.items():
        dims = tuple(d if isinstance(d, int) else SIZES[d] for d in shape)
        values[name] = rng.standard_normal(dims)
    if "A" in values:  # well inside the domain of inv, det and logdet
        values["A"] = values["A"] + 3 * np.eye(SIZES["n"])
    return values


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_parse_diff_print_round_trip(name):
    text, wrt = ROUND_TRIP[name]
    f = mc.parse(text, **SHAPES)
    assert name in text
    g = mc.diff(f, wrt)
    rng = np.random.default_rng(sorted(CALLS).index(name))
    for _ in range(3):
        values = _values(rng, f.variables)
        expected = fd_jacobian(f.node, wrt, values)
        assert rel_error(evaluate(g.node, values), expected) < 1e-6, (text, str(g))
        for printed in (f, g):  # printed and read back: the same numbers
            back = mc.parse(str(printed), **printed.variables)
            assert rel_error(evaluate(back.node, values), evaluate(printed.node, values)) \
                < 1e-12, (str(printed))


# ---------------------------------------------------------------------------
# Products: the one table, against numpy's matrix product

def _operands(lk, rk, rng):
    """Arrays for ``left·right`` with distinct sizes: left's outer side 2, the shared 3,
    right's outer side 4 (a column times a row shares nothing: 2 and 4)."""
    left = {M: (2, 3), R: (3,), C: (2,) if rk == R else (3,)}[lk]
    right = {M: (3, 4), C: (3,), R: (4,)}[rk]
    return rng.standard_normal(left), rng.standard_normal(right)


def _as_matrix(kind, value):
    return {C: lambda: value[:, None], R: lambda: value[None, :], M: lambda: value}[kind]()


@pytest.mark.parametrize("lk, rk", sorted(calls.MATMUL_LANGUAGE))
def test_product_table_is_the_matrix_product(lk, rk):
    left, right = _operands(lk, rk, np.random.default_rng(lk * 16 + rk))
    kind, spec = calls.MATMUL_LANGUAGE[(lk, rk)]
    got = np.einsum(spec, left, right)
    lm, rm = _as_matrix(lk, left), _as_matrix(rk, right)
    want = lm.T @ rm if (lk, rk) == (C, C) else lm @ rm  # column·column: the inner product
    rows, cols = want.shape
    assert got.shape == {S: (), C: (rows,), R: (cols,), M: (rows, cols)}[kind]
    np.testing.assert_allclose(got, want.reshape(got.shape))
    # matmul_axes ties the axes the einsum contracts and keeps the ones it outputs
    lnames = tuple(f"l{i}" for i in range(left.ndim))
    rnames = tuple(f"r{i}" for i in range(right.ndim))
    _, ties, axes = calls.matmul_axes(lk, lnames, rk, rnames)
    sizes = dict(zip(lnames, left.shape)) | dict(zip(rnames, right.shape))
    assert all(sizes[p] == sizes[q] for p, q in ties)
    assert left.ndim + right.ndim - 2 * len(ties) == got.ndim
    assert tuple(sizes[ax] for ax in axes) == got.shape


def test_sympy_has_no_product_of_two_columns():
    assert (C, C) not in calls.MATMUL and (C, C) in calls.MATMUL_LANGUAGE


def test_one_kind_vocabulary():
    from mathcalc.printing import tree
    from mathcalc import shapes

    assert (tree.SCALAR, tree.COLUMN, tree.ROW, tree.MATRIX) == (S, C, R, M)
    assert (shapes.S, shapes.C, shapes.R, shapes.M) == (S, C, R, M)
    assert tree.Transpose(tree.Leaf("x", C)).kind == R
    assert all(calls.TRANSPOSED[calls.TRANSPOSED[k]] == k for k in calls.KINDS)


# ---------------------------------------------------------------------------
# Reserved names

@pytest.mark.parametrize("name", sorted(calls.RESERVED))
def test_reserved_names_are_not_variables_nor_definitions(name):
    with pytest.raises(mc.ShapeError, match=f"'{name}' is reserved"):
        mc.parse("x", **{name: ()})
    with pytest.raises(mc.ParseError, match=f"{name} is reserved"):
        mc.parse(f"{name} = x; x")


@pytest.mark.parametrize("name", sorted(calls.CALL_NAMES))
def test_call_names_cannot_be_registered_functions(name):
    import sympy

    u = sympy.Symbol("u")
    with pytest.raises(mc.MathcalcError, match="built-in name"):
        register_function(name, u ** 3)


@pytest.mark.parametrize("name", ["", "2x", "for", "x-y", "λ", "swish\n", None, 3])
def test_function_names_are_ascii_identifiers(name):
    assert not calls.is_identifier(name)
    import sympy

    with pytest.raises(mc.MathcalcError, match="not a valid function name"):
        register_function(name, sympy.Symbol("u") ** 3)


def test_unknown_function_suggests_a_call():
    with pytest.raises(mc.ParseError) as info:
        mc.parse("logdett(A)")
    assert info.value.message == "unknown function 'logdett'; did you mean 'logdet'?"


# ---------------------------------------------------------------------------
# The shared helpers

def test_line_col_and_place():
    text = "x +\n  y\n"
    assert line_col(text, 0) == (1, 1)
    assert line_col(text, 2) == (1, 3)
    assert line_col(text, 6) == (2, 3)
    assert line_col(text, 100) == (3, 1)  # clamped into the text
    assert place(text, 2) == "column 3"
    assert place(text, 6) == "line 2, column 3"


@pytest.mark.parametrize("shape, text", [((), "()"), (("n",), "(n,)"), ((3,), "(3,)"),
                                         (("m", "n"), "(m, n)"), ((2, "n"), "(2, n)")])
def test_format_shape(shape, text):
    assert format_shape(shape) == text
