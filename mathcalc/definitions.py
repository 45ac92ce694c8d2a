"""Definitions in the language (SPEC 7): checked, then substituted into the expression.

``u = W*x + b; sum(max(0, u))`` and ``sum(max(0, u)) where u = W*x + b`` read
as ``sum(max(0, W*x + b))``: a defined name stands for its definition. The
parser (parse.py) builds one ``Definition`` per ``name = ...`` with the Terms
of its right-hand side; ``expand`` checks them and returns the expression's
Term tree with every use of a defined name replaced by a copy of its
definition, so that shape inference and lowering see one ordinary tree (a
definition is shape-checked where it is used, like the text it stands for).

Rules, each a ParseError with a caret:

- a name is defined once; ``I``, ``eye``, ``vector`` and ``matrix`` are
  reserved and cannot be defined;
- in the first form a definition is used only after it (``u = v; v = x; u``
  uses v before its definition); a where block may list its definitions in
  any order;
- a definition may not refer to itself, directly or through others (the
  caret is at the first definition in the text that is on the cycle);
- the expansion is bounded: at most ``MAX_EXPANDED_TERMS`` terms and
  ``MAX_DEPTH`` levels of nesting, so that a chain ``t2 = t1 + t1; t3 = t2 +
  t2; ...`` is refused at once instead of growing exponentially.

Equal subexpressions become equal nodes when lowered (nodes are hashed by
structure), so a definition used many times is one node of the result's DAG.
"""

from __future__ import annotations

import re

from .calls import RESERVED
from .errors import ParseError, place
from .shapes import Term, iter_postorder

MAX_EXPANDED_TERMS = 50_000  # about what MAX_LENGTH allows a text without definitions


class Definition:
    """``name = term`` at offset ``start``; ``prefix`` when it comes before the expression."""

    __slots__ = ("name", "start", "term", "prefix")

    def __init__(self, name: str, start: int, term: Term, prefix: bool):
        self.name, self.start, self.term, self.prefix = name, start, term, prefix


class Program:
    """The expression's Terms and its definitions in text order."""

    __slots__ = ("expression", "definitions")

    def __init__(self, expression: Term, definitions: list):
        self.expression, self.definitions = expression, definitions


def _uses(term: Term, defined: dict) -> list:
    """The terms under ``term`` that use a defined name, in text order."""
    return [t for t in iter_postorder(term) if t.op == "var" and t.value in defined]


def check(program: Program, text: str) -> dict:
    """The definitions by name, once each checked (names, order, cycles); a ParseError else."""
    defined: dict = {}
    for d in program.definitions:
        if d.name in RESERVED:
            raise ParseError.at(f"{d.name} is reserved ({RESERVED[d.name]}) and cannot be defined",
                                text, d.start)
        if d.name in defined:
            raise ParseError.at(
                f"{d.name} is defined twice (first at {place(text, defined[d.name].start)});"
                " each name is defined once", text, d.start)
        defined[d.name] = d
    uses = {d.name: _uses(d.term, defined) for d in program.definitions}
    _check_cycles(program.definitions, uses, text)
    order = {d.name: k for k, d in enumerate(program.definitions)}
    for k, d in enumerate(program.definitions):
        if not d.prefix:
            continue
        for use in uses[d.name]:
            target = defined[use.value]
            if target.prefix and order[target.name] > k:
                raise ParseError.at(
                    f"{use.value} is used before its definition at "
                    f"{place(text, target.start)}: define it first, or in a where block "
                    "after the expression", text, use.start)
    return defined


def _check_cycles(definitions: list, uses: dict, text: str) -> None:
    """A ParseError at the first definition (in text order) that is part of a cycle."""
    state: dict = {}  # name -> 1 while on the path, 2 when done
    for first in definitions:
        if first.name in state:
            continue
        path = [first.name]
        stack = [iter(uses[first.name])]
        state[first.name] = 1
        while stack:
            use = next(stack[-1], None)
            if use is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            name = use.value
            if state.get(name) == 1:
                cycle = path[path.index(name):] + [name]
                raise _cycle_error(cycle, definitions, text)
            if name not in state:
                state[name] = 1
                path.append(name)
                stack.append(iter(uses[name]))


def _cycle_error(cycle: list, definitions: list, text: str) -> ParseError:
    on_cycle = set(cycle)
    culprit = next(d for d in definitions if d.name in on_cycle)
    if len(cycle) == 2:
        message = f"{culprit.name} is defined in terms of itself"
    else:
        k = cycle.index(culprit.name)
        loop = cycle[k:-1] + cycle[:k] + [culprit.name]
        message = f"{culprit.name} is defined in terms of itself ({' → '.join(loop)})"
    return ParseError.at(
        message + ": a definition may use only other names" + minus_hint(text), text,
        culprit.start)


def minus_hint(text: str) -> str:
    """A hint where a line starts with a minus sign: it continued the line before."""
    if re.search(r"\n[^\S\n]*-", text):
        return " (a line that starts with '-' continues the line before: end that one with ';')"
    return ""


def _topological(defined: dict) -> list:
    """Definitions, each after those it uses (there are no cycles: ``check`` ran)."""
    order, done = [], set()
    for root in defined.values():
        if root.name in done:
            continue
        stack = [(root, False)]
        while stack:
            d, ready = stack.pop()
            if d.name in done:
                continue
            if ready:
                done.add(d.name)
                order.append(d)
                continue
            stack.append((d, True))
            for use in _uses(d.term, defined):
                if use.value not in done:
                    stack.append((defined[use.value], False))
    return order


def _measure(term: Term, sizes: dict, depths: dict) -> tuple:
    """(terms, depth) of ``term`` once the defined names in it are expanded."""
    size, depth = {}, {}
    for t in iter_postorder(term):
        if t.op == "var" and t.value in sizes:
            size[id(t)], depth[id(t)] = sizes[t.value], depths[t.value]
        else:
            size[id(t)] = 1 + sum(size[id(a)] for a in t.args)
            depth[id(t)] = 1 + max((depth[id(a)] for a in t.args), default=0)
    return size[id(term)], depth[id(term)]


def expand(program: Program, text: str, max_depth: int) -> tuple:
    """``(root, defined, unused, copies)``: the expression with every defined name
    replaced by its definition; the definitions by name; the unused ones
    expanded on their own (name -> Term); and, for every term of ``root`` that
    stands for a use, its id -> the name it stands for.

    The copy that replaces a use has the use's place in the text (so a shape
    error about it names ``u``), the terms inside it their places in the
    definition; it is bracketed like a parenthesised expression.
    """
    defined = check(program, text)
    sizes: dict = {}
    depths: dict = {}
    for d in _topological(defined):
        sizes[d.name], depths[d.name] = _measure(d.term, sizes, depths)
        _check_bounds(sizes[d.name], depths[d.name], d.name, text, d.start, max_depth)
    size, depth = _measure(program.expression, sizes, depths)
    _check_bounds(size, depth, None, text, program.expression.start, max_depth)
    expanded: dict = {}
    copies: dict = {}
    for d in _topological(defined):
        expanded[d.name] = _substitute(d.term, expanded, copies)
    root = _substitute(program.expression, expanded, copies)
    used, todo = set(), [t.value for t in _uses(program.expression, defined)]
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo.extend(t.value for t in _uses(defined[name].term, defined))
    unused = {name: expanded[name] for name in defined if name not in used}
    in_root = {id(t) for t in iter_postorder(root)}
    return root, defined, unused, {k: v for k, v in copies.items() if k in in_root}


def _check_bounds(size: int, depth: int, name, text: str, pos: int, max_depth: int) -> None:
    what = f"the definition of {name}" if name is not None else "the expression"
    if size > MAX_EXPANDED_TERMS:
        raise ParseError.at(f"{what} is too large once its definitions are substituted (more than "
                            f"{MAX_EXPANDED_TERMS} terms)", text, pos)
    if depth > max_depth:
        raise ParseError.at(f"{what} is nested too deeply once its definitions are substituted "
                            f"(more than {max_depth} levels of operators and functions)", text, pos)


def _substitute(term: Term, expanded: dict, copies: dict) -> Term:
    """``term`` with each use of a name in ``expanded`` replaced by a fresh copy of it.

    ``copies`` (id of a copy's root -> name) is kept up to date, copies of
    copies included.
    """
    if not any(t.op == "var" and t.value in expanded for t in iter_postorder(term)):
        return term
    made: dict = {}
    for t in iter_postorder(term):
        if t.op == "var" and t.value in expanded:
            made[id(t)] = _copy(expanded[t.value], copies)
            root = made[id(t)]
            root.start, root.end, root.paren = t.start, t.end, True
            copies[id(root)] = t.value
        else:
            made[id(t)] = _clone(t, [made.pop(id(a)) for a in t.args])
    return made[id(term)]


def _clone(t: Term, args: list) -> Term:
    new = Term(t.op, args, value=t.value, start=t.start, end=t.end, op_pos=t.op_pos)
    new.ops = list(t.ops)
    new.paren, new.count = t.paren, t.count
    return new


def _copy(template: Term, copies: dict) -> Term:
    """A fresh copy of an expanded definition (the copies inside it noted in ``copies``)."""
    made: dict = {}
    for t in iter_postorder(template):
        new = made[id(t)] = _clone(t, [made.pop(id(a)) for a in t.args])
        if id(t) in copies:
            copies[id(new)] = copies[id(t)]
    return made[id(template)]
