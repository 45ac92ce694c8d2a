"""Text -> core expression node: the grammar, syntax errors, calls, lowering.

The pipeline, each step without recursion so that deep or long input cannot
overflow the stack:

1. ``_checked_text``: a string, not too long, not empty.
2. lark (LALR, ``grammar/mathcalc.lark``) builds a parse tree; every lark
   exception becomes a ParseError in ``_syntax_error`` (the one place).
3. ``_TermBuilder`` turns the parse tree into ``shapes.Term`` nodes with their
   positions: left-associative chains (``x+x+...+x``, ``A*B*C``) become one
   n-ary term, calls are looked up in two tables (the built-in matrix calls
   of ``calls.CALLS``, element-wise functions from ``functions.lookup`` at
   parse time, so registered ones work), depth is limited (``MAX_DEPTH``).
4. ``shapes.infer_shapes`` gives every term a kind (scalar, column, row,
   matrix) and a shape, or raises ShapeError.
5. ``_lower`` builds the node with the constructors of ``nodes.py`` only: a
   product chain becomes one einsum, a sum chain one ``add``, a built-in
   call what its row of ``calls.CALLS`` lowers it to.

User text never reaches eval, exec, sympify or parse_expr.

Decisions worth knowing:

- ``A^T`` is the transpose when the ``T`` is not followed by a name
  character; ``A^Tx`` is a ParseError (ambiguous: ``A^T*x`` or ``A^(Tx)``).
- ``2.`` is not a number, so ``2.*x`` is ``2 .* x`` and ``1./x`` is ``1 ./ x``.
- Operator nesting deeper than ``MAX_DEPTH`` (parentheses alone do not count,
  nor left-associative chains) is a ParseError: later stages (printing,
  differentiation) may recurse over the tree.
- Text longer than ``MAX_LENGTH`` characters is a ParseError (lark needs about
  20 µs a token; this bounds the time to about a second).
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import itertools
import re
import unicodedata
from fractions import Fraction
from importlib.resources import files
from pathlib import Path

from lark import Lark, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from . import definitions as D
from . import nodes as E
from . import functions
from .calls import CALLS, IDENTITY_NAMES, RESERVED, S, matmul_axes, takes
from .declared import normalise_shape
from .errors import MathcalcError, ParseError, ShapeError, line_col, located
from .shapes import PRODUCT_OPS, READINGS, Term, infer_shapes, iter_postorder

MAX_DEPTH = 200
MAX_LENGTH = 50_000
MAX_NUMBER_DIGITS = 1000  # digits of a literal, and size of its exponent
MAX_CONSTANT_BITS = 13_000  # exact constants larger than this are refused (see _check_bits)

# ---------------------------------------------------------------------------
# The grammar, loaded relative to the package (installed) or the source tree.

_LARK = None


def _grammar_text() -> str:
    try:
        return (files("mathcalc.grammar") / "mathcalc.lark").read_text(encoding="utf-8")
    except (ImportError, FileNotFoundError, ModuleNotFoundError, TypeError, OSError):
        path = Path(__file__).resolve().parent.parent / "grammar" / "mathcalc.lark"
        return path.read_text(encoding="utf-8")


def parser():
    """The Lark parser, built once."""
    global _LARK
    if _LARK is None:
        # Positions are read from the tokens by _TermBuilder: lark's
        # propagate_positions would double the parse time for nothing. The
        # basic lexer reads tokens without the parser's state, so the postlexer
        # may look one token past a newline before the parser sees it.
        _LARK = Lark(_grammar_text(), parser="lalr", lexer="basic", postlex=_Newlines(),
                     propagate_positions=False, maybe_placeholders=True)
    return _LARK


# Tokens that end an operand, and those that start one (a newline between them
# separates statements: otherwise they would need an operator between them).
_OPERAND_END = {"NAME", "NUMBER", "RPAR", "TRANSPOSE"}
_STATEMENT_START = {"NAME", "NUMBER", "LPAR"}


class _Newlines:
    """lark postlexer: which newlines separate statements (SPEC 7).

    A newline outside brackets separates two statements when the token before
    it ends an operand and the token after it starts one, other than a minus
    sign: ``u = W*x + b`` / ``sum(u)``. There the two lines could not be one
    expression anyway (``x`` / ``y`` has no operator), so every expression
    that spans lines reads as before (SPEC 1: whitespace is free), a line
    that starts with an operator (``+ b``, ``- c``) included. Other newlines
    are dropped.
    """

    always_accept = ()

    def process(self, stream):
        depth, prev, pending = 0, None, None
        for token in stream:
            if token.type == "_NL":
                if depth == 0 and prev is not None and prev.type in _OPERAND_END:
                    pending = token
                continue
            if pending is not None and token.type in _STATEMENT_START:
                yield pending
            pending = None
            if token.type == "LPAR":
                depth += 1
            elif token.type == "RPAR" and depth:
                depth -= 1
            prev = token
            yield token


# ---------------------------------------------------------------------------
# Entry point


def parse_text(text, shapes: dict | None = None):
    """Parse ``text`` into a core node; return ``(node, env)``.

    ``shapes`` maps variable names to declared shapes (as users give them).
    ``env`` maps every variable to its shape: those of the text in order of
    first appearance, then declared names that do not occur.
    Raises ParseError, ShapeError or MathcalcError, nothing else.
    """
    node, env, _ = parse_program(text, shapes)
    return node, env


def parse_program(text, shapes: dict | None = None):
    """Parse ``text``, definitions included (SPEC 7); return ``(node, env, definitions)``.

    ``node`` and ``env`` are as for ``parse_text`` (a defined name is not a
    variable); ``definitions`` lists ``(name, node)`` in text order, the node
    a defined name stands for (shaped where it is first used; an unused
    definition is checked on its own). A shape given for a defined name must
    be its definition's shape.
    """
    text = _checked_text(text)
    declared = _declared(shapes or {})
    with _no_gc():
        program = parse_terms(text)
        if not isinstance(program, D.Program):
            env = infer_shapes(program, text, declared)
            return _guarded_lower(program, text), env, []
        root, defined, unused, copies = D.expand(program, text, MAX_DEPTH)
        claimed = {name: declared.pop(name) for name in defined if name in declared}
        env = infer_shapes(root, text, declared)
        first = {}  # name -> id of the term standing for its first use
        for term in iter_postorder(root):
            if id(term) in copies:
                first.setdefault(copies[id(term)], id(term))
        kept = dict.fromkeys(first.values())
        node = _guarded_lower(root, text, kept)
        nodes = {name: kept[tid] for name, tid in first.items()}
        for name, term in unused.items():
            infer_shapes(term, text, declared)
            nodes[name] = _guarded_lower(term, text)
        for name, shape in claimed.items():
            if nodes[name].shape != shape:
                raise ShapeError(located(
                    f"{name} is declared with shape {shape!r}, but its definition has shape "
                    f"{nodes[name].shape!r}", text, defined[name].start))
        return node, env, [(d.name, nodes[d.name]) for d in program.definitions]


def defined_names(text: str) -> dict:
    """The names ``text`` defines (SPEC 7), each with its definition's text; {} for text
    without definitions or that does not parse. (For messages: a defined name is not a
    variable, so differentiating by it is a DiffError that says what it is.)"""
    try:
        program = parse_terms(_checked_text(text))
    except MathcalcError:
        return {}
    if not isinstance(program, D.Program):
        return {}
    return {d.name: " ".join(text[d.term.start:d.term.end].split()) for d in program.definitions}


def _guarded_lower(root, text: str, kept: dict | None = None):
    try:
        return _lower(root, text, kept)
    except MathcalcError:
        raise
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        # A last guard (the checks in _lower should prevent it): arithmetic on
        # constants the core cannot represent.
        raise MathcalcError(f"cannot build the expression: {exc}") from None


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic garbage collector while parsing: a long input keeps many
    objects alive, each collection walks them all, and parse time grew
    quadratically. Nothing built here is cyclic, so nothing is left behind."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_terms(text: str):
    """The syntax tree of ``text`` (positions kept): a Term, or a ``definitions.Program``
    when the text has definitions; a ParseError else."""
    try:
        tree = parser().parse(text)
    except LarkError as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:  # pragma: no cover - lark's parser is iterative
        raise ParseError("expression nested too deeply", text, 1, 1) from None
    return _TermBuilder(text).build(tree)


def _checked_text(text) -> str:
    if not isinstance(text, str):
        raise MathcalcError(f"expected the expression as a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression too long ({len(text)} characters; the limit is "
                         f"{MAX_LENGTH})", text[:MAX_LENGTH + 1], *line_col(text, MAX_LENGTH))
    if not text.strip():
        raise ParseError("empty expression: expected an operand", text, *line_col(text, 0))
    return text


def _declared(shapes: dict) -> dict:
    if not isinstance(shapes, dict):
        raise MathcalcError(f"shapes must be a dict of name -> shape, not {type(shapes).__name__}")
    declared = {}
    for name, shape in shapes.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name) or \
                _bad_name_char(name) is not None:
            raise MathcalcError(f"{name!r} is not a variable name (letters, digits and _, "
                                "not starting with a digit)")
        if name in RESERVED:
            raise ShapeError(f"{name!r} is reserved ({RESERVED[name]}) and cannot be "
                             "declared as a variable")
        declared[name] = normalise_shape(name, shape)
    return declared


_NAME = re.compile(r"(?!ᵀ)[^\W\d](?:(?!ᵀ)\w)*")


def _bad_name_char(name: str):
    """The index of the first character that may not be in a name, or None."""
    for i, ch in enumerate(name):
        if not (ch == "_" or "0" <= ch <= "9" or unicodedata.category(ch).startswith("L")):
            return i
    return None


# ---------------------------------------------------------------------------
# Syntax errors: every lark exception is turned into a ParseError here.
#
# Each kind of error has a name, a message and labelled examples (the tests
# run every example). The classifier reads the offending token and the one
# before it; that covers every LALR state at once, where lark's
# ``match_examples`` would need one example per operator and context.

SYNTAX_ERRORS = {
    # name: (the message, as a regular expression; labelled examples)
    "empty": (r"empty expression", ["", "   ", "\n"]),
    "missing operand": (r"expected an operand after (the argument separator )?'\S+'",
                        ["x +", "x *", "-", "x^", "(", "f(x,", "x + * y", "2 ./", "x - )",
                         "x^'", "max(x,)"]),
    "missing operand at start": (r"expected an operand before ('\S+'|\"'\")",
                                 ["* x", "+ x", ")", "'", ", x"]),
    "empty parentheses": (r"empty parentheses", ["()", "x*()"]),
    "implicit product": (r"'\w+' needs an explicit product: write \w+\*\w+",
                         ["2x", "3y + 1", "1e3x", "x + 2A"]),
    "missing operator": (r"missing operator (between '.+' and '.+'|before '.+'); products need "
                         r"an explicit \*",
                         ["x y", "(x)(y)", "x' y", "2 x", "A x'", "f(x) g(y)", "x 2", "2(x)"]),
    "unbalanced parenthesis": (r"unbalanced parenthesis opened at (line \d+, )?column \d+: "
                               r"expected '\)'", ["(x + y", "((x)", "exp(x", "f(x, y", "(x\n+ y"]),
    "unexpected ')'": (r"unexpected '\)': no '\(' to close", ["x)", "x + y))", "(x))"]),
    "unexpected ','": (r"unexpected ',' outside a function's arguments", ["x, y", "(x, y)"]),
    "unexpected character": (r"unexpected (character '.+'|control character U\+[0-9A-F]{4}|'\.')",
                             ["x $ y", "x ! y", "x \x00", "2.", "x\x07", "a → b", "x\x1c",
                              "x²", "x٣ + 1"]),
    # Definitions (SPEC 7)
    "misplaced '='": (r"'=' defines a name", ["x + y = 3", "2 = x", "u = x = y", "(u = x)",
                                              "exp(u = 1)"]),
    "';' after the expression": (r"only definitions \(name = expression\) come before ';'",
                                 ["x; y", "x;", "sum(u); u = x"]),
    "no expression": (r"(need an expression after them|expected (a definition|a definition or "
                      r"the expression)( \(name = expression\))? after)",
                      ["u = x", "u = x;", "u = x\n", "u = x; v = y", "x where", "x where u = 1;",
                       "u = x;\n", "x where 2 = y", "x where u = 1; (v) = 2"]),
    "where block": (r"expected '=' after '\w+': a where block defines names",
                    ["x where u", "x where u = 1; v", "x where u + 1", "x where u\nv = 1",
                     "x where u = 1; u; v = 2"]),
    "keyword where": (r"'where' is a keyword", ["where", "where + 1", "x*where", "u = x where v",
                                                "x where where = 1", "x where u = 1 where v = 2"]),
    "defined twice": (r"is defined twice", ["u = x; u = y; u", "x'*u where u = x; u = 2*x"]),
    "self-reference": (r"is defined in terms of itself",
                       ["u = u + 1; u", "sum(u) where u = v + 1; v = 2*u", "u where u = u'",
                        "v where u = w; v = u; w = v .* v"]),
    "used before its definition": (r"used before its definition", ["u = v; v = x; u"]),
    "reserved definition": (r"is reserved .* cannot be defined", ["I = x; I", "vector = x; x",
                                                                   "x where eye = 2"]),
    "ambiguous ^T": (r"'\^T\w+' is ambiguous", ["A^Tx", "A^Tb + c"]),
    "unknown function": (r"unknown function '\w+'", ["foo(x)", "sigmod(x)", "x(2)"]),
    "wrong arity": (r"\w+ takes .+ got \d+", ["max(x)", "exp(x, y)", "tr()", "ones(1, 2, 3)",
                                                "eye()", "vector(a, b)"]),
    "bad size": (r"the sizes in \w+\(\.\.\.\) are", ["ones(x+1)", "eye(0)", "zeros(2.5)"]),
    "reserved name": (r"(needs an argument|is the identity matrix, not a function)",
                      ["vector", "matrix + 1", "I(3)"]),
    "too deep": (r"nested too deeply", ["-(" * 300 + "x" + ")" * 300,
                                        "exp(" * 300 + "x" + ")" * 300, "a^" * 300 + "a"]),
    "too long": (r"expression too long", ["x+" * 30000 + "x"]),
    "too large": (r"(number too long|too large to compute exactly)",
                  ["1e5000", "((2^64)^64)^64", "1" * 1500]),
}

_OPERAND_START = {"NAME", "NUMBER", "LPAR"}
_OPERATORS = {"PLUS", "MINUS", "MULOP", "POW", "EPOW", "LPAR", "COMMA"}


def _syntax_error(exc, text: str) -> ParseError:
    if isinstance(exc, UnexpectedCharacters):
        return _character_error(text, exc.pos_in_stream)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        at_end = token.type == "$END"
        pos = len(text.rstrip()) if at_end else token.start_pos
        return _token_error(text, pos, None if at_end else token, set(exc.expected or ()))
    return ParseError.at(f"cannot parse the expression ({type(exc).__name__})", text, 0)


def _character_error(text: str, pos: int) -> ParseError:
    ch = text[pos] if pos < len(text) else ""
    if ch and unicodedata.category(ch)[0] in "CZ" and not ch.isspace() or ch in "\x0b\x0c":
        return ParseError.at(f"unexpected control character U+{ord(ch):04X}", text, pos)
    if ch == "." and (pos + 1 >= len(text) or not text[pos + 1].isdigit()):
        return ParseError.at("unexpected '.': numbers are written 0.5 or 2, element-wise operators "
                             ".* ./ .^", text, pos)
    return ParseError.at(f"unexpected character {ch!r}", text, pos)


def _tokens_before(text: str, pos: int) -> list:
    """The tokens of ``text`` that start before ``pos`` (the text there lexed fine)."""
    tokens = []
    try:
        for token in parser().lex(text[:pos]):
            tokens.append(token)
    except LarkError:  # pragma: no cover - the parser already lexed this far
        pass
    return tokens


def _token_error(text: str, pos: int, token, expected=frozenset()) -> ParseError:
    before = _tokens_before(text, pos)
    prev = before[-1] if before else None
    kind = token.type if token is not None else "$END"
    shown = str(token) if token is not None else ""
    found = _statement_error(text, pos, token, kind, before, expected)
    if found is not None:
        return found
    if prev is None or prev.type in _OPERATORS:
        if prev is not None and prev.type == "LPAR" and kind == "RPAR":
            return ParseError.at("empty parentheses: expected an expression inside", text, pos)
        if prev is None:
            return ParseError.at(f"expected an operand before {shown!r}", text, pos)
        after = "the argument separator ','" if prev.type == "COMMA" else repr(str(prev))
        found = f", found {shown!r}" if token is not None else ""
        return ParseError.at(f"expected an operand after {after}{found}", text, pos)
    if prev.type in _OPERAND_END and kind in _OPERAND_START:
        return _missing_operator(text, prev, token)
    if kind == "RPAR" and _open_parens(before) == []:
        return ParseError.at("unexpected ')': no '(' to close", text, pos)
    if kind == "COMMA":
        return ParseError.at("unexpected ',' outside a function's arguments", text, pos)
    if kind == "$END":
        opened = _open_parens(before)
        if opened:
            line, column = line_col(text, opened[-1])
            where = f"column {column}" if line == line_col(text, pos)[0] else \
                f"line {line}, column {column}"
            return ParseError.at(
                f"unbalanced parenthesis opened at {where}: expected ')'", text, pos)
        return ParseError.at("unexpected end of the expression", text, pos)
    return ParseError.at(f"unexpected {shown!r}", text, pos)


_EXAMPLE = "u = W*x + b; sum(u)"


def _statement_error(text: str, pos: int, token, kind: str, before: list, expected: set):
    """Errors about definitions and their separators (SPEC 7), or None for the others."""
    prev = before[-1] if before else None
    in_where = any(t.type == "_WHERE" for t in before)
    if kind == "EQUALS":
        return ParseError.at(
            f"'=' defines a name: it follows the name at the start of a definition "
            f"({_EXAMPLE})", text, pos)
    if kind == "_WHERE":
        return ParseError.at(
            "unexpected 'where': 'where' is a keyword (RESULT where u = W*x + b), not a "
            "name, and follows the expression", text, pos)
    if expected == {"EQUALS"} and prev is not None and prev.type == "NAME":
        return ParseError.at(f"expected '=' after {str(prev)!r}: a where block defines names "
                             "(sum(u) where u = W*x + b)", text, pos)
    if expected == {"NAME"} and prev is not None:  # where a definition starts
        found = f", found {str(token)!r}" if token is not None else ""
        after = repr(str(prev)) if prev.type in ("_WHERE", "_SEMI") else "the line break"
        return ParseError.at(f"expected a definition (name = expression) after {after}{found}",
                             text, pos)
    if kind == "_NL":  # a line that could not continue the one before: read it so
        after = _tokens_from(text, token.end_pos)
        return _missing_operator(text, prev, after) if after is not None else None
    if kind == "_SEMI":
        if _open_parens(before):
            return None
        return ParseError.at(
            f"only definitions (name = expression) come before ';'; the expression "
            f"comes last ({_EXAMPLE})", text, pos)
    if kind != "$END" or prev is None:
        return None
    if prev.type in ("_SEMI", "_WHERE"):
        what = "a definition" if in_where or prev.type == "_WHERE" else \
            "a definition or the expression"
        return ParseError.at(f"expected {what} after {str(prev)!r}", text, pos)
    if "_SEMI" in expected and not in_where and not _open_parens(before):
        return ParseError.at(f"the definitions need an expression after them ({_EXAMPLE})"
                             + D.minus_hint(text), text, pos)
    return None


def _tokens_from(text: str, pos: int):
    """The first token of ``text`` at or after ``pos``, or None."""
    try:
        for token in parser().lex(text[pos:]):
            token.start_pos += pos
            token.end_pos += pos
            return token
    except LarkError:
        pass
    return None


def _open_parens(tokens) -> list:
    """Offsets of the '(' still open after ``tokens``."""
    opened = []
    for token in tokens:
        if token.type == "LPAR":
            opened.append(token.start_pos)
        elif token.type == "RPAR" and opened:
            opened.pop()
    return opened


def _missing_operator(text: str, prev, token) -> ParseError:
    left, right = str(prev), str(token)
    if prev.type == "NUMBER" and token.type == "NAME" and prev.end_pos == token.start_pos:
        return ParseError.at(
            f"'{left}{right}' needs an explicit product: write {left}*{right}", text,
            token.start_pos)
    if prev.type in ("NAME", "NUMBER"):
        shown = "(...)" if right == "(" else right
        return ParseError.at(f"missing operator between {left!r} and {right!r}; products need an "
                             f"explicit *: write {left}*{shown}", text, token.start_pos)
    return ParseError.at(f"missing operator before {right!r}; products need an explicit *", text,
                         token.start_pos)


# ---------------------------------------------------------------------------
# Parse tree -> Terms


class _TermBuilder:
    """Builds Terms from lark's parse tree bottom-up, with an explicit stack."""

    def __init__(self, text: str):
        self.text = text

    def build(self, tree) -> Term:
        results = []
        stack = [(tree, False)]
        while stack:
            node, done = stack.pop()
            if not isinstance(node, Tree):
                results.append(node)  # a token, or None for an absent [args]
            elif done:
                n = len(node.children)
                kids = results[len(results) - n:]
                del results[len(results) - n:]
                results.append(self._handler(node.data)(node, kids))
            else:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.children))
        return results[0]

    def _handler(self, rule: str):
        """The method for a parse-tree node; a grammar rule without one is a bug, said loudly."""
        method = getattr(self, "_" + rule, None)
        if method is None:
            raise MathcalcError(f"internal error: the grammar rule {rule!r} has no handler "
                                "in parse._TermBuilder")
        return method

    def _limit(self, term: Term) -> Term:
        if term.depth > MAX_DEPTH:
            raise ParseError.at(f"expression nested too deeply (more than {MAX_DEPTH} levels of "
                                "operators and functions)", self.text, term.start)
        return term

    def _number(self, node, kids):
        (token,) = kids
        mantissa, _, exponent = str(token).lower().partition("e")
        if len(mantissa) > MAX_NUMBER_DIGITS or (exponent and
                                                 abs(int(exponent)) > MAX_NUMBER_DIGITS):
            raise ParseError.at(
                f"number too long (more than {MAX_NUMBER_DIGITS} digits or an exponent "
                f"beyond ±{MAX_NUMBER_DIGITS})", self.text, token.start_pos)
        return Term("num", value=str(token), start=token.start_pos, end=token.end_pos)

    def _name(self, node, kids):
        (token,) = kids
        name = self._checked_name(token)
        if name in IDENTITY_NAMES:
            return Term("identity", value=name, start=token.start_pos, end=token.end_pos)
        if name in RESERVED:  # vector, matrix
            raise ParseError.at(
                f"{name} needs an argument: {name}(c) is a {name} with every entry c",
                self.text, token.start_pos)
        return Term("var", value=name, start=token.start_pos, end=token.end_pos)

    def _checked_name(self, token) -> str:
        """Names are letters, ASCII digits and _; the lexer's \\w also takes ² or ①."""
        name = str(token)
        bad = _bad_name_char(name)
        if bad is not None:
            ch = name[bad]
            hint = "; powers are written x^2" if ch in "⁰¹²³⁴⁵⁶⁷⁸⁹" else ""
            raise ParseError.at(
                f"unexpected character {ch!r} in the name {name!r}{hint}", self.text,
                token.start_pos + bad)
        return name

    def _definition(self, node, kids):
        name_token, _, term = kids
        return D.Definition(self._checked_name(name_token), name_token.start_pos, term, True)

    def _program(self, node, kids):
        definitions, expression = [], None
        for kid in kids:
            if isinstance(kid, D.Definition):
                kid.prefix = expression is None  # before the expression, or in its where block
                definitions.append(kid)
            else:
                expression = kid
        return D.Program(expression, definitions)

    def _args(self, node, kids):
        return [kid for kid in kids if isinstance(kid, Term)]

    def _paren(self, node, kids):
        lpar, term, rpar = kids
        term.start, term.end, term.paren = lpar.start_pos, rpar.end_pos, True
        return term

    def _add(self, node, kids):
        return self._chain("sum", kids)

    def _mul(self, node, kids):
        return self._chain("prod", kids)

    def _chain(self, op: str, kids) -> Term:
        left, token, right = kids
        if left.op == op and not left.paren:  # extend x+x+... in place: no deep tree
            left.args.append(right)
            left.ops.append((str(token), token.start_pos))
            left.end = right.end
            left.depth = max(left.depth, right.depth + 1)
            return self._limit(left)
        term = Term(op, [left, right], start=left.start, end=right.end, op_pos=token.start_pos)
        term.ops.append((str(token), token.start_pos))
        return self._limit(term)

    def _neg(self, node, kids):
        token, arg = kids
        if arg.op == "neg" and not arg.paren:  # - - x: count, not nest
            arg.count += 1
            arg.start = token.start_pos
            return arg
        return self._limit(Term("neg", [arg], start=token.start_pos, end=arg.end))

    def _transpose(self, node, kids):
        arg, token = kids
        if arg.op == "transpose" and not arg.paren:  # A'' or A^T^T: count, not nest
            arg.count += 1
            arg.end = token.end_pos
            return arg
        return self._limit(Term("transpose", [arg], start=arg.start, end=token.end_pos))

    def _pow(self, node, kids):
        base, token, exponent = kids
        if str(token) == "^" and exponent.op == "var" and not exponent.paren and \
                exponent.value.startswith("T"):  # A^ T is a transpose too (the grammar allows blanks)
            raise ParseError.at(
                f"'^{exponent.value}' is ambiguous: write ^T*{exponent.value[1:]} for a "
                f"transpose times {exponent.value[1:]}, or ^({exponent.value}) for a "
                "power", self.text, token.start_pos)
        return self._limit(Term("pow", [base, exponent], value=str(token), start=base.start,
                                end=exponent.end, op_pos=token.start_pos))

    def _call(self, node, kids):
        name_token, _, args, rpar = kids
        name = self._checked_name(name_token)
        args = args or []
        start, end = name_token.start_pos, rpar.end_pos
        if name == "I":
            raise ParseError.at("I is the identity matrix, not a function: write I alone (sized by "
                                "context) or eye(n)", self.text, start)
        row = CALLS.get(name)
        if row is None:
            if functions.lookup(name) is None:
                raise ParseError.at(_unknown_function(name), self.text, start)
            if len(args) != 1:  # element-wise functions take one argument
                raise ParseError.at(f"{name} takes {takes(1)}, got {len(args)}", self.text, start)
            return self._limit(Term("call", args, value=name, start=start, end=end,
                                    op_pos=start))
        wrong = row.arity_error(len(args))
        if wrong is not None:
            raise ParseError.at(wrong, self.text, start)
        if row.form == "sized":
            dims = tuple(self._dimension(name, arg) for arg in args)
            return Term("sized", value=(name, dims), start=start, end=end)
        return self._limit(Term(row.form, args, value=name, start=start, end=end, op_pos=start))

    def _dimension(self, name: str, arg: Term):
        """A size in eye/ones/zeros: a positive int literal or a dimension name."""
        literal = self.text[arg.start:arg.end].strip("() \t\r\n")
        if arg.op == "num" and literal.isdigit() and int(literal) > 0:
            return int(literal)
        if arg.op == "var" and arg.value.isascii():
            return arg.value
        raise ParseError.at(f"the sizes in {name}(...) are positive integers or dimension names "
                            f"(ASCII), not {literal!r}", self.text, arg.start)


# Other tools' names for functions of the table, for the suggestion only.
_ALIASES = {"ln": "log", "trace": "tr", "logistic": "sigmoid", "expit": "sigmoid",
            "transpose": "'", "inverse": "inv", "heaviside": "step", "maximum": "max",
            "minimum": "min", "norm": "norm2", "lse": "logsumexp", "diagonal": "diag",
            "identity": "eye"}


def _unknown_function(name: str) -> str:
    known = sorted(set(functions.FUNCTIONS) | set(CALLS))
    lowered = name.lower()
    alias = _ALIASES.get(lowered)
    if alias == "'":
        return f"unknown function {name!r}; the transpose is written A' (or A^T)"
    if alias is not None:
        return f"unknown function {name!r}; did you mean {alias!r}?"
    close = [k for k in known if k.lower() == lowered] or \
        difflib.get_close_matches(lowered, known, n=1, cutoff=0.5)
    if close:
        return f"unknown function {name!r}; did you mean {close[0]!r}?"
    guess = difflib.get_close_matches(lowered, known, n=1, cutoff=0.0)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return f"unknown function {name!r}{hint} (known: {', '.join(known)})"


# ---------------------------------------------------------------------------
# Terms (with shapes) -> core nodes


def _lower(root: Term, text: str, kept: dict | None = None) -> E.Node:
    """The node of ``root``; ``kept`` (term id -> None) is filled with those terms' nodes."""
    nodes = {}
    variables = {}  # one node per variable: building a node hashes it
    for term in iter_postorder(root):
        if term.op == "var":
            node = variables.get(term.value)
            if node is None:
                node = variables[term.value] = E.var(term.value, term.shape)
        else:
            args = [nodes.pop(id(arg)) for arg in term.args]
            node = _LOWER[term.op](term, args, text)
        nodes[id(term)] = node
        if kept is not None and id(term) in kept:
            kept[id(term)] = node
    return nodes[id(root)]


def _lower_num(term, args, text):
    return E.num(Fraction(term.value))


def _lower_identity(term, args, text):
    return E.eye(term.shape[0])


def _lower_sized(term, args, text):
    return CALLS[term.value[0]].lower(args, (), term.shape)


def _lower_filled(term, args, text):
    return CALLS[term.value].lower(args, [arg.kind for arg in term.args], term.shape)


def _lower_neg(term, args, text):
    return E.neg(args[0]) if term.count % 2 else args[0]


def _lower_transpose(term, args, text):
    # A row vector is the same node as its column: orientation lives in the kinds.
    return E.transpose(args[0]) if term.count % 2 else args[0]


def _lower_sum(term, args, text):
    terms = []
    for k, (arg, node) in enumerate(zip(term.args, args)):
        if arg.kind == S and term.kind != S:  # a scalar broadcasts over the other terms
            node = E.hadamard(node, E.ones(term.shape))
        if k and term.ops[k - 1][0] == "-":
            node = E.neg(node)
        terms.append(node)
    _check_bits(_sum_bits(terms), text, term.start)
    return E.add(*terms)


def _lower_prod(term, args, text):
    """A product chain as one einsum: each operand gets labels for its axes."""
    _check_bits(sum(_bits(node) for node in args), text, term.start)
    fresh = itertools.count()
    first = term.args[0]
    labels = tuple(next(fresh) for _ in first.shape)
    factors = [(args[0], labels)]
    kind, out = first.kind, labels
    for (sym, _), arg, node in zip(term.ops, term.args[1:], args[1:]):
        own = tuple(next(fresh) for _ in arg.shape)
        if sym in ("./", "/"):
            node = E.power(node, E.num(-1))
        if PRODUCT_OPS[sym] == "matmul" and kind != S and arg.kind != S:
            kind, ties, out = matmul_axes(kind, out, arg.kind, own)
            tied = {right: left for left, right in ties}  # a contracted label is the left's
            own = tuple(tied.get(label, label) for label in own)
        elif kind == S:
            kind, out = arg.kind, own
        elif arg.kind != S:  # element-wise: the same labels on both sides
            own = out
        factors.append((node, own))
    return E.product(factors, out)


def _lower_pow(term, args, text):
    base, exponent = args
    _check_power(base, exponent, text, term.op_pos)
    return E.power(base, exponent)


def _lower_call(term, args, text):
    row = CALLS.get(term.value)
    if row is None:  # an element-wise function
        return E.apply(term.value, *args)
    return row.lower(args, [arg.kind for arg in term.args], term.shape)

_LOWER = {"num": _lower_num, "identity": _lower_identity,
          "sized": _lower_sized, "filled": _lower_filled, "neg": _lower_neg,
          "transpose": _lower_transpose, "sum": _lower_sum, "prod": _lower_prod,
          "pow": _lower_pow, "call": _lower_call}


# Exact constants: the core folds numbers exactly (Fractions), so 2^64^... or a
# long chain of big factors could take unbounded time and memory, and a number
# of more than 4300 digits cannot even be hashed (Python's int-to-str limit).
# Constants beyond MAX_CONSTANT_BITS are refused before they are built.

def _coef(node: E.Node):
    if isinstance(node, E.Num):
        return node.value
    if isinstance(node, E.Product):
        return node.coef
    return None


def _bits(node: E.Node) -> int:
    """Bits of the larger of numerator and denominator of the node's own coefficient."""
    value = _coef(node)
    if isinstance(value, Fraction):
        return max(value.numerator.bit_length(), value.denominator.bit_length())
    return 0


def _sum_bits(nodes) -> int:
    """A bound on the bits of the coefficients ``add`` collects from these terms:
    the common denominator divides the product of the distinct denominators
    (0.1 + 0.1 + … stays tenths), numerators grow by a bit per term at most."""
    coefs = []
    for node in nodes:
        for term in (node.terms if isinstance(node, E.Sum) else (node,)):
            value = _coef(term)
            coefs.append(value if isinstance(value, Fraction) else Fraction(1))
    denominators = sum(d.bit_length() - 1 for d in {c.denominator for c in coefs})
    numerators = max((abs(c.numerator).bit_length() for c in coefs), default=0)
    return numerators + denominators + len(coefs).bit_length()


def _check_bits(bits: int, text: str, pos: int) -> None:
    if bits > MAX_CONSTANT_BITS:
        raise ParseError.at("a numeric constant here is too large to compute exactly (more than "
                            f"{MAX_CONSTANT_BITS} bits)", text, pos)


def _check_power(base: E.Node, exponent: E.Node, text: str, pos: int) -> None:
    if not isinstance(exponent, E.Num):
        return
    e = exponent.value
    if isinstance(base, E.Pow) and isinstance(base.exponent, E.Num) and \
            isinstance(e, Fraction) and e.denominator == 1:
        e, base = base.exponent.value * e, base.base  # power() merges (b^p)^q
    if isinstance(base, E.Num) and isinstance(e, Fraction) and e.denominator == 1 and \
            abs(e) <= 64:
        _check_bits(_bits(base) * abs(int(e)), text, pos)


def readings(text: str, declared: dict) -> dict:
    """Each variable of the text and why it has its shape, in words (``mathcalc shapes``).

    ``declared`` maps names to shapes as ``parse`` takes them. The reasons
    are "declared as …", "its use in … makes it …", "… by convention", or
    why the convention was overruled ("it is transposed in c' …, so it is a
    column vector, not a scalar"). Raises what parsing the text raises.
    """
    found: dict = {}
    token = READINGS.set(found)
    try:
        parse_text(text, declared)
    finally:
        READINGS.reset(token)
    return found
