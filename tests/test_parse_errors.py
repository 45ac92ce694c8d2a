"""Errors (SPEC section 4): every kind of syntax error, and nothing else escapes.

Each kind of syntax error is one entry of ``parse.SYNTAX_ERRORS``: the message
as a regular expression and labelled examples; every example is run here.
Random text and random soups of the language's tokens may only parse or raise
a MathcalcError, with ParseError positions inside the text.
"""

from __future__ import annotations

import builtins
import importlib
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mathcalc as mc

P = importlib.import_module("mathcalc.parse")


def parse_error(text, **shapes) -> mc.ParseError:
    with pytest.raises(mc.ParseError) as info:
        P.parse_text(text, shapes)
    return info.value


def assert_position_in_text(err: mc.ParseError, text: str) -> None:
    lines = text.split("\n")
    assert 1 <= err.line <= len(lines), (text, err.line)
    assert 1 <= err.column <= len(lines[err.line - 1]) + 1, (text, err.line, err.column)


# ---------------------------------------------------------------------------
# The labelled examples


EXAMPLES = [(kind, example) for kind, (_, examples) in P.SYNTAX_ERRORS.items()
            for example in examples]


@pytest.mark.parametrize("kind, example", EXAMPLES,
                         ids=[f"{kind}:{example[:12]!r}" for kind, example in EXAMPLES])
def test_labelled_examples(kind, example):
    pattern = P.SYNTAX_ERRORS[kind][0]
    err = parse_error(example)
    assert re.search(pattern, err.message), (kind, example, err.message)
    assert_position_in_text(err, example)


# ---------------------------------------------------------------------------
# Messages and positions, one kind at a time


def test_caret_under_the_offending_character():
    err = parse_error("x + $")
    assert (err.line, err.column) == (1, 5)
    assert str(err).splitlines()[1:] == ["  x + $", "      ^"]
    assert err.source_line == "x + $"


def test_missing_operand_points_after_the_operator():
    err = parse_error("x +")
    assert err.message == "expected an operand after '+'"
    assert err.column == 4
    err = parse_error("x + * y")
    assert err.message == "expected an operand after '+', found '*'"
    assert err.column == 5


def test_implicit_product_suggests_the_star():
    err = parse_error("2x")
    assert err.message == "'2x' needs an explicit product: write 2*x"
    assert "write 3*y" in parse_error("1 + 3y").message


def test_missing_operator():
    assert parse_error("x y").message.startswith("missing operator between 'x' and 'y'")
    assert "write 2*(...)" in parse_error("2(x + 1)").message


def test_unbalanced_parenthesis_says_where_it_opened():
    err = parse_error("a + (x + y")
    assert err.message == "unbalanced parenthesis opened at column 5: expected ')'"
    err = parse_error("(a +\nx")
    assert err.message == "unbalanced parenthesis opened at line 1, column 1: expected ')'"
    assert (err.line, err.column) == (2, 2)


def test_unexpected_closing_parenthesis():
    err = parse_error("x)")
    assert err.message.startswith("unexpected ')'") and err.column == 2


def test_unknown_function_suggests_a_known_one():
    assert parse_error("lgo(x)").message == "unknown function 'lgo'; did you mean 'log'?"
    assert parse_error("sigmod(x)").message.endswith("did you mean 'sigmoid'?")
    assert "known:" in parse_error("qqqqqq(x)").message


@pytest.mark.parametrize("text, meant", [("ln(x)", "log"), ("trace(X)", "tr"), ("ReLU(x)", "relu"),
                                         ("Tr(X)", "tr"), ("Exp(x)", "exp"),
                                         ("logistic(x)", "sigmoid")])
def test_unknown_function_suggests_across_case_and_other_tools_names(text, meant):
    assert parse_error(text).message.endswith(f"did you mean {meant!r}?")


def test_transpose_spelled_with_a_blank_is_as_ambiguous_as_without():
    assert parse_error("A^ Tx").message == parse_error("A^Tx").message
    assert "ambiguous" in parse_error("A^ Tx").message
    assert str(mc.parse("A^ T", A=(2, 3))) == "A'"


def test_wrong_number_of_arguments():
    assert parse_error("max(x)").message == "max takes 2 arguments, got 1"
    assert parse_error("exp(x, y)").message == "exp takes 1 argument, got 2"
    assert parse_error("tr()").message == "tr takes 1 argument, got 0"
    assert "eye alone" in parse_error("eye()").message


def test_unexpected_characters():
    assert parse_error("x $ y").message == "unexpected character '$'"
    assert parse_error("x\x00").message == "unexpected control character U+0000"
    assert parse_error("x + \x1b[31m").message == "unexpected control character U+001B"
    assert parse_error("x\u200by").message == "unexpected control character U+200B"


def test_ambiguous_transpose_power():
    err = parse_error("A^Tx")
    assert "ambiguous" in err.message
    assert "^T*x" in err.message and "^(Tx)" in err.message
    assert P.parse_text("a^(Tx)", {"Tx": ()})[0].shape == ()


def test_depth_limit():
    err = parse_error("-(" * (P.MAX_DEPTH + 5) + "x" + ")" * (P.MAX_DEPTH + 5))
    assert "nested too deeply" in err.message
    P.parse_text("-(" * (P.MAX_DEPTH - 5) + "x" + ")" * (P.MAX_DEPTH - 5), {})


def test_length_limit_is_fast():
    start = time.process_time()
    err = parse_error("x+" * 500_000 + "x")  # 1 MB
    assert time.process_time() - start < 2
    assert "too long" in err.message


def test_huge_constants_are_refused_not_computed():
    start = time.process_time()
    for text in ["((((2^64)^64)^64)^64)^64", "1e100000000", "9" * 5000,
                 "*".join(["(2^64)^64"] * 20), " + ".join(f"x/{p}" for p in range(3, 7000, 2))]:
        with pytest.raises(mc.MathcalcError):
            P.parse_text(text, {})
    assert time.process_time() - start < 10


def test_non_string_input():
    for bad in [None, 3, b"x", ["x"], object()]:
        with pytest.raises(mc.MathcalcError):
            P.parse_text(bad, {})
    with pytest.raises(mc.MathcalcError):
        mc.parse(b"x'*x")


def test_shapes_must_be_a_dict():
    with pytest.raises(mc.MathcalcError):
        P.parse_text("x", [("x", ())])


def test_user_text_never_reaches_eval(monkeypatch):
    import sympy
    from sympy.parsing import sympy_parser

    def forbidden(*args, **kwargs):
        raise AssertionError("user text reached an evaluator")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sympy, "sympify", forbidden)
    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    for text in ["__import__('os').system('echo hi')", "x'*A*x", "exp(x).__class__",
                 "sum(max(0, W*x + b))", "lambda: 0"]:
        try:
            P.parse_text(text, {})
        except mc.MathcalcError:
            pass


# ---------------------------------------------------------------------------
# Nothing else escapes: random text and random token soups

TOKENS = ["x", "y", "A", "B", "a", "α", "λ", "Tx", "x2", "2", "0.5", ".5", "1e-3", "2.5E+4",
          "0", "64", "+", "-", "*", "@", "·", "⋅", ".*", "⊙", "./", "/", "^", ".^", "'", "^T", "ᵀ",
          "(", ")", ",", " ", "\n", "exp(", "max(", "min(", "sum(", "tr(", "det(", "logdet(",
          "inv(", "norm1(", "norm2(", "diag(", "softmax(", "logsumexp(", "relu(", "eye", "I",
          "eye(3)", "ones(n)", "ones(2,3)", "zeros(m,n)", "vector(", "matrix(", "foo(", "$",
          "\x00", "é", "→", "2x", "T", ".", "e", "E", "=", ";", " where ", "u = ", "where"]

DECLARED = st.sampled_from([{}, {"x": ("n",)}, {"A": ("m", "n"), "x": ("n",)},
                            {"a": (), "x": (3,), "A": (3, 3), "y": ("n",)},
                            {"A": (2, 3), "B": ("n", "n"), "x": (2,)}])


def check_only_mathcalc_errors(text, declared):
    try:
        P.parse_text(text, declared)
    except mc.ParseError as err:
        assert_position_in_text(err, text)
        str(err)
    except mc.MathcalcError as err:
        str(err)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60), DECLARED)
def test_random_text(text, declared):
    check_only_mathcalc_errors(text, declared)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=30), DECLARED)
def test_random_token_soup(tokens, declared):
    check_only_mathcalc_errors("".join(tokens), declared)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=12), st.integers(0, 400))
def test_deep_random_nesting(tokens, depth):
    check_only_mathcalc_errors("(" * depth + "".join(tokens) + ")" * depth, {})
    check_only_mathcalc_errors("-(" * depth + "".join(tokens) + ")" * depth, {})
