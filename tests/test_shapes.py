"""Shapes (SPEC section 2): declared, inferred, named, and contradictions."""

from __future__ import annotations

import importlib

import pytest

import mathcalc as mc
from mathcalc import nodes as E
from mathcalc.shapes import C, M, S, convention_kind

P = importlib.import_module("mathcalc.parse")


def shapes(text, **declared):
    """The variables' shapes, in order, and the expression's shape."""
    node, env = P.parse_text(text, declared)
    return env, node.shape


def shape_error(text, **declared) -> str:
    with pytest.raises(mc.ShapeError) as info:
        P.parse_text(text, declared)
    return str(info.value)


# ---------------------------------------------------------------------------
# Declared shapes


def test_declared_shapes_are_used_and_ordered_by_appearance():
    env, shape = shapes("sum(max(0, W*x + b))", b=("m",), x=("n",), W=("m", "n"))
    assert list(env.items()) == [("W", ("m", "n")), ("x", ("n",)), ("b", ("m",))]
    assert shape == ()


def test_int_dimensions():
    env, shape = shapes("A*x", A=(2, 3), x=(3,))
    assert env == {"A": (2, 3), "x": (3,)} and shape == (2,)


def test_unnormalised_declarations():
    with pytest.raises(mc.MathcalcError, match="'x'"):  # SPEC 2: keywords are shapes only
        shapes("x'*x", x="n")
    env, _ = shapes("x'*x", x=["n"])
    assert env == {"x": ("n",)}
    env, _ = shapes("A*x", A=["m", "n"], x=("n",))
    assert env["A"] == ("m", "n")


def test_numpy_integer_dimensions_are_ints():
    np = pytest.importorskip("numpy")
    env, shape = shapes("A*x", A=(np.int64(2), np.int32(3)), x=(np.int64(3),))
    assert env == {"A": (2, 3), "x": (3,)} and shape == (2,)
    assert all(type(d) is int for d in env["A"])


@pytest.mark.parametrize("name", ["text", "f", "wrt", "order", "bold"])
def test_any_name_can_be_declared_through_the_api(name):
    f = mc.parse(f"{name}*x'*x", **{name: (), "x": ("n",)})
    assert f.variables == {name: (), "x": ("n",)}
    g = mc.diff(f"{name}*x'*x", "x", **{name: (), "x": ("n",)})
    assert mc.equivalent(g, f"2*{name}*x")
    assert mc.grad(f, "x").shape == ("n",) and mc.hessian(f, "x").shape == ("n", "n")
    assert mc.latex(f"{name}*x", **{name: ()})


def test_options_named_like_variables_still_work():
    assert mc.diff("x^3", "x", order=2) == mc.parse("6*x", x=())
    assert r"\mathbf" in mc.latex("A*x", bold=True)


def test_declared_names_absent_from_the_text_are_kept():
    env, _ = shapes("a'*x", a=("n",), x=("n",), A=("n", "n"), c=())
    assert list(env) == ["a", "x", "A", "c"]
    assert env["A"] == ("n", "n")


def test_declared_kind_beats_the_convention():
    env, shape = shapes("a'*X*b", a=(2,), X=(2, 3), b=(3,))
    assert env == {"a": (2,), "X": (2, 3), "b": (3,)} and shape == ()
    env, shape = shapes("x*A", x=(), A=("m", "n"))
    assert shape == ("m", "n")


@pytest.mark.parametrize("bad", [(1, 2, 3), (0,), (-2,), ("n m",), (1.5,), (True,), object(),
                                 b"n", {"n"}])
def test_bad_declarations(bad):
    with pytest.raises(mc.MathcalcError):
        P.parse_text("x", {"x": bad})


@pytest.mark.parametrize("name", ["I", "eye", "vector", "matrix"])
def test_reserved_names_cannot_be_declared(name):
    with pytest.raises(mc.ShapeError, match="reserved"):
        P.parse_text("x", {name: ()})


@pytest.mark.parametrize("name", ["2x", "x y", "", "a-b", "xᵀ", 3])
def test_declared_names_must_be_identifiers(name):
    with pytest.raises(mc.MathcalcError, match="not a variable name"):
        P.parse_text("x", {name: ()})


# ---------------------------------------------------------------------------
# Inference


def test_least_squares():
    env, shape = shapes("X*w - y")
    assert env == {"X": ("m", "n"), "w": ("n",), "y": ("m",)} and shape == ("m",)


def test_quadratic_form_is_square():
    env, shape = shapes("x'*A*x")
    assert env == {"x": ("n",), "A": ("n", "n")} and shape == ()


def test_affine_layer():
    env, shape = shapes("W*x + b")  # b added to a vector is not a scalar (SPEC 2)
    assert env == {"W": ("m", "n"), "x": ("n",), "b": ("m",)} and shape == ("m",)
    env, shape = shapes("W*x + b", b=())  # declared, a scalar broadcasts
    assert env == {"W": ("m", "n"), "x": ("n",), "b": ()} and shape == ("m",)
    env, shape = shapes("W*x + b", b=("m",))
    assert env == {"W": ("m", "n"), "x": ("n",), "b": ("m",)}
    env, shape = shapes("W*x + b", b=("k",))  # the declared name is used for W's rows
    assert env == {"W": ("k", "n"), "x": ("n",), "b": ("k",)}


def test_relu_unit():
    env, shape = shapes("max(0, w·x + b)")
    assert env == {"w": ("n",), "x": ("n",), "b": ()} and shape == ()


@pytest.mark.parametrize("text, name, expected", [
    ("tr(x)", "x", ("n", "n")),
    ("det(u)", "u", ("n", "n")),
    ("logdet(v) + 1", "v", ("n", "n")),
    ("inv(h)*A", "h", ("n", "n")),
    ("softmax(X)", "X", ("n",)),
    ("logsumexp(Y)", "Y", ("n",)),
    ("x^2", "x", ()),
])
def test_usage_forces_the_rank(text, name, expected):
    env, _ = shapes(text)
    assert env[name] == expected


@pytest.mark.parametrize("name, kind", [
    ("a", S), ("g", S), ("alpha", S), ("α", S), ("λ", S), ("h", C), ("x", C), ("z", C),
    ("A", M), ("X", M), ("Σ", M), ("_u", S),
])
def test_naming_convention(name, kind):
    assert convention_kind(name) == kind


def test_convention_when_usage_leaves_a_choice():
    env, _ = shapes("a + b")
    assert env == {"a": (), "b": ()}
    env, _ = shapes("x + y")
    assert env == {"x": ("n",), "y": ("n",)}
    env, _ = shapes("A + B")
    assert env == {"A": ("m", "n"), "B": ("m", "n")}
    env, shape = shapes("λ*x")
    assert env == {"λ": (), "x": ("n",)} and shape == ("n",)


def test_usage_of_declared_shapes_fixes_undeclared_ones():
    env, _ = shapes("x'*A*x", A=(3, 3))
    assert env == {"x": (3,), "A": (3, 3)}
    env, _ = shapes("A*x + y", A=("p", "q"))
    assert env == {"A": ("p", "q"), "x": ("q",), "y": ("p",)}


def test_fresh_dimensions_avoid_declared_names_and_variables():
    env, _ = shapes("A*x", x=("n",))
    assert env == {"A": ("m", "n"), "x": ("n",)}
    env, _ = shapes("n*x + m*y", n=(), m=())  # n and m are variables: dims skip their names
    assert env == {"n": (), "x": ("k",), "m": (), "y": ("k",)}
    env, _ = shapes("A*B", C=("n", "m"))
    assert env == {"A": ("p", "k"), "B": ("k", "q"), "C": ("n", "m")}


def test_dimension_naming_order_is_last_axis_first():
    env, _ = shapes("A*B*C")
    assert env == {"A": ("m", "n"), "B": ("n", "k"), "C": ("k", "p")}
    env, _ = shapes("x'*A'*y")
    assert env == {"x": ("n",), "A": ("m", "n"), "y": ("m",)}


def test_many_fresh_dimensions():
    text = "*".join(f"A{i}" for i in range(15))
    env, shape = shapes(text)
    assert len({d for s in env.values() for d in s}) == 16
    assert "n1" in {d for s in env.values() for d in s}


def test_context_sized_constants_take_their_size_from_context():
    env, shape = shapes("A + I", A=(3, 3))
    assert shape == (3, 3)
    assert P.parse_text("A + I", {"A": (3, 3)})[0] == E.add(E.var("A", (3, 3)), E.eye(3))
    env, shape = shapes("x + vector(1)", x=("k",))
    assert shape == ("k",)
    env, shape = shapes("x'*matrix(a)*y", x=("p",), y=("q",))
    assert shape == () and env["a"] == ()


def test_unconstrained_constants_get_fresh_names():
    assert shapes("I")[1] == ("n", "n")
    assert shapes("vector(2)")[1] == ("n",)
    assert shapes("matrix(2)")[1] == ("m", "n")
    assert shapes("x + sum(matrix(1))")[1] == ("n",)
    env, shape = shapes("x'*I*x + sum(vector(a))")
    assert shape == () and env == {"x": ("n",), "a": ()}


def test_sized_constants_with_named_dimensions():
    env, shape = shapes("eye(n)*x")
    assert env == {"x": ("n",)} and shape == ("n",)
    env, shape = shapes("ones(k)'*A*ones(3)")
    assert env == {"A": ("k", 3)} and shape == ()
    env, _ = shapes("A*x + ones(n)")
    assert env == {"A": ("n", "m"), "x": ("m",)}  # n is taken by ones(n)


def test_same_variable_shares_its_shape():
    env, shape = shapes("x'*x + sum(x)")
    assert env == {"x": ("n",)} and shape == ()


def test_row_vector_has_the_column_shape():
    env, shape = shapes("x'", x=("n",))
    assert shape == ("n",)
    env, shape = shapes("x'*A", x=(3,), A=(3, 2))
    assert shape == (2,)


# ---------------------------------------------------------------------------
# Contradictions and mismatches


def test_names_never_equal_ints():
    message = shape_error("x'*y", x=("n",), y=(3,))
    assert "x'" in message and "y" in message and "n" in message and "3" in message


def test_different_names_are_different_sizes():
    message = shape_error("x'*y", x=("n",), y=("m",))
    assert "row vector of length n" in message and "column vector of length m" in message
    assert "column 3" in message  # the caret points at the operator


def test_matrix_vector_mismatch_names_both_operands():
    message = shape_error("A*x", A=(2, 3), x=(2,))
    assert "cannot multiply A (a matrix of shape (2, 3)" in message
    assert "x (a column vector of length 2" in message
    assert "3 does not match 2" in message


def test_chain_mismatch_names_the_chain_so_far():
    message = shape_error("x'*A*x", A=("m", "n"))
    assert "x'*A (a row vector of length n)" in message
    assert "x (a column vector of length m" in message


def test_power_needs_scalars():
    message = shape_error("x'*x^2", x=("n",))
    assert "'^' needs scalars" in message and ".^" in message
    assert "column 5" in message


def test_vector_times_vector_transposed_wrongly():
    message = shape_error("A*x'")
    assert "cannot multiply A" in message and "row vector" in message
    assert "h–z are vectors by convention" in message


def test_elementwise_orientation_must_match():
    message = shape_error("x + x'")
    assert "cannot add x" in message and "x' (a row vector" in message


def test_elementwise_shapes_must_match():
    message = shape_error("x .* z", x=("n",), z=("m",))
    assert "multiply element-wise" in message and "n does not match m" in message


def test_division_by_a_non_scalar():
    assert "divides by a scalar" in shape_error("a/x", x=("n",))


def test_usage_contradicting_itself():
    message = shape_error("tr(x) + softmax(x)")
    assert "softmax needs a vector" in message
    assert "its use in tr(x) at column 1 makes it a matrix" in message


def test_usage_contradicting_a_declaration():
    message = shape_error("tr(x)", x=("n",))
    assert "tr needs a square matrix" in message and "declared as ('n',)" in message
    assert "square matrix" in shape_error("tr(A)", A=(2, 3))
    assert "square matrix" in shape_error("inv(A)", A=("m", "n"))
    assert "square matrix" in shape_error("det(A)", A=("m", "n"))
    assert "square matrix" in shape_error("logdet(A)", A=(2, 3))
    assert "square matrix" in shape_error("diag(A)", A=("m", "n"))


def test_vector_functions_need_vectors():
    assert "softmax needs a vector" in shape_error("softmax(A)", A=("m", "n"))
    assert "logsumexp needs a vector" in shape_error("logsumexp(a)", a=())


def test_filled_constants_need_a_scalar():
    assert "scalar c" in shape_error("vector(x)", x=("n",))


def test_square_identity_against_a_rectangular_matrix():
    message = shape_error("A + I", A=(2, 3))
    assert "2 does not match 3" in message or "3 does not match 2" in message


def test_errors_point_into_multiline_text():
    message = shape_error("a +\n  x'*y", x=("n",), y=("m",))
    assert "line 2, column 5" in message


def test_shape_errors_are_mathcalc_errors():
    with pytest.raises(mc.MathcalcError):
        P.parse_text("x'*y", {"x": ("n",), "y": ("m",)})
