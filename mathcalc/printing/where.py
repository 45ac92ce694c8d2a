"""Where-forms (SPEC 7): a result with its repeated and long subexpressions named.

``where_form(node)`` chooses what to name, as a careful person writing a
derivation would, over the result's DAG (nodes are shared, so "used more than
once" is a property of the DAG, not of the printed text):

1. **Repeated subexpressions.** A node used by two or more parents in the DAG
   is named when its form (with the names already chosen in it) is bigger
   than a variable or its transpose: not ``x``, ``A'``, ``-x``, ``2*x``,
   ``ones(n)``. Nodes are taken children first, so a name's definition uses
   the names of its own repeated parts (``t2 = tanh(W_2*t1)``).
2. **Long lines.** While a line (the result, or a definition) is longer than
   ``LINE_WIDTH`` (80) characters, its longest part that fits on a line (else its
   longest part) is named, so a temporary used once is made only where it
   shortens a line. A product's factors are one node (``W_6*diag(…)*W_5*…``):
   where a long line is a product with no part to name, a connected group of
   its factors with at most two free indices is named instead.
3. **Clean-up.** With the final names (shorter than the placeholders used
   while measuring), a temporary used once whose line would now fit with it
   written out is put back.

Only parts with a matrix form are named (a definition must read back); the
names are ``t1, t2, …`` in dependency order (each definition uses only
earlier names), skipping any name of a variable or dimension of the result,
and any whose LaTeX (``t_{1}``) would look like a variable's.

On the deep chain ``sum(tanh(W_k*…tanh(W_1*x)))`` the derivative by ``W_1``
holds each layer's ``tanh(...)`` twice (forward value and local derivative):
each becomes one short definition, so the printed length grows linearly in
k where the plain text grows as k².

``Where`` is what ``mathcalc.where`` returns; ``where_text`` and
``where_latex`` print any such form (reusable, e.g. for the intermediate
variables of ``mathcalc.explain``).
"""

from __future__ import annotations

import itertools

from .. import nodes as E
from ..expression import Expr
from . import tree as M
from .latex import latex_name, to_latex
from .layout import measure, render
from .notebook import shape_latex
from .recognise import _NoMatrixForm, _Recogniser

LINE_WIDTH = 80
# A part shorter than this is never named to shorten a line: t12 saves nothing.
MIN_SPLIT = 16


# ---------------------------------------------------------------------------
# Choosing what to name


def where_form(node: E.Node, avoid=(), width: int = LINE_WIDTH) -> tuple:
    """``(result, definitions)``: ``node`` with its repeated and long parts replaced by
    temporaries, and ``[(name, definition), …]`` in dependency order (nodes both).

    ``avoid`` are more names the temporaries must not take (the variables an
    Expr keeps that dropped out of ``node``).
    """
    order = E.walk(node)
    chooser = _Chooser(order, _taken(order, avoid))
    chooser.name_repeated(node)
    chooser.name_long_lines(node, width)
    return chooser.form(node, width)


def _taken(order, avoid) -> set:
    """Names a temporary may not take: variables and dimension names, and ``avoid``."""
    taken = set(avoid)
    for n in order:
        if isinstance(n, E.Var):
            taken.add(n.name)
        taken.update(d for d in n.shape if isinstance(d, str))
    return taken


def temporary_names(taken) -> "itertools.Iterator[str]":
    """``t1, t2, …`` without the names in ``taken`` or names that print alike in LaTeX."""
    looks = {latex_name(name) for name in taken}
    for k in itertools.count(1):
        name = f"t{k}"
        if name not in taken and latex_name(name) not in looks:
            yield name


class _Chooser:
    def __init__(self, order: list, taken: set):
        self.order = order  # children first
        self.position = {n: k for k, n in enumerate(order)}
        self.uses: dict = {}
        for n in order:
            for child in n.children():
                self.uses[child] = self.uses.get(child, 0) + 1
        self.taken = taken
        self.named: dict = {}  # node -> placeholder Var (renamed t1, t2, … at the end)
        # a long product P -> (Q, the factors of P in Q, Q's labels in P): P is printed
        # as Q's temporary times the other factors
        self.split: dict = {}
        self.recogniser = _Recogniser()
        self.recogniser.avoid = frozenset(taken)
        self._subst: dict = {}

    # -- the forms with the names chosen so far ------------------------------

    def definition(self, n: E.Node) -> E.Node:
        """``n`` with each named part below it replaced by its temporary."""
        split = self.split.get(n)
        if split is not None and split[0] in self.named:  # a long product, in two
            q, inside, labels = split
            rest = [(self.reference(f), idx) for k, (f, idx) in enumerate(n.factors)
                    if k not in inside]
            return E.product([(self.named[q], labels)] + rest, tuple(range(n.rank)), coef=n.coef)
        return n.with_children([self.reference(k) for k in n.children()])

    def reference(self, n: E.Node) -> E.Node:
        """What stands for ``n`` in its parents: its temporary, or its definition."""
        var = self.named.get(n)
        if var is not None:
            return var
        found = self._subst.get(n)
        if found is None:
            found = self._subst[n] = self.definition(n)
        return found

    def _forget(self) -> None:
        self._subst.clear()

    def ast(self, n: E.Node):
        """The matrix form of ``n``'s definition, or None (no matrix form, or order > 2)."""
        if n.rank > 2:
            return None
        try:
            return self.recogniser.matrix(self.definition(n))
        except _NoMatrixForm:
            return None

    # -- step 1 --------------------------------------------------------------

    def name_repeated(self, root: E.Node) -> None:
        for n in self.order:  # children first: the forms below are final
            if n is root or self.uses.get(n, 0) < 2 or not n.children():
                continue
            ast = self.ast(n)
            if ast is not None and not _small(ast):
                self._name(n)

    def _name(self, n: E.Node) -> None:
        self.named[n] = _temporary(f"_t{len(self.named)}", n)
        self._forget()

    # -- step 2 --------------------------------------------------------------

    def name_long_lines(self, root: E.Node, width: int) -> None:
        while True:
            for line in [root] + sorted(self.named, key=self.position.get):
                ast = self.ast(line)
                if ast is None or len(render(ast)) <= width:
                    continue
                part = self._longest_part(line, width, len(render(ast)))
                if part is not None:
                    self._name(part)
                    break  # the names changed: measure every line again
                if isinstance(line, E.Product) and line not in self.split and \
                        self._split_product(line, width, len(render(ast))):
                    break
            else:
                return

    def _split_product(self, p: E.Product, width: int, length: int) -> bool:
        """Name a part of a long product that is not a node of its own (a product's
        factors are one node: ``W_6*diag(…)*W_5*…``): the connected group of factors
        with at most two free indices whose form is the longest that fits in
        ``width`` (else the longest). False when no group will do."""
        factors = p.factors
        count: dict = {}
        for _, idx in factors:
            for label in idx:
                count[label] = count.get(label, 0) + 1
        outputs = set(range(p.rank))
        best = None  # (fits, size, -len(group)), group, q, labels
        for group in _connected_groups(factors, outputs):
            inside: dict = {}
            for k in group:
                for label in factors[k][1]:
                    inside[label] = inside.get(label, 0) + 1
            labels = tuple(sorted(l for l in inside if l in outputs or inside[l] < count[l]))
            if len(labels) > 2:
                continue
            q = E.product([factors[k] for k in group], labels)
            if not isinstance(q, E.Product) or q in self.named:
                continue
            size = self._part_size(q, length)
            if size is None:
                continue
            key = (size <= width, size, -len(group))
            if best is None or key > best[0]:
                best = (key, frozenset(group), q, labels)
        if best is None:
            return False
        _, group, q, labels = best
        self.position[q] = self.position[p] - 0.5  # after its factors, before p
        self.split[p] = (q, group, labels)
        self._name(q)
        if self.ast(p) is None:  # no matrix form in two parts: leave p whole
            del self.split[p], self.named[q]
            self._forget()
            return False
        return True

    def _longest_part(self, line: E.Node, width: int, length: int):
        """The part of ``line``'s definition to name: the longest that fits in ``width``,
        else the longest; parts named already are not looked into."""
        best, best_key = None, None
        stack, seen = list(line.children()), set()
        while stack:
            n = stack.pop()
            if n in seen or n in self.named:
                continue
            seen.add(n)
            stack.extend(n.children())
            size = self._part_size(n, length) if n.children() else None
            if size is None:
                continue
            key = (size <= width, size, -self.position[n])  # deterministic among equal lengths
            if best_key is None or key > best_key:
                best, best_key = n, key
        return best

    def _part_size(self, n: E.Node, length: int):
        """The length of ``n``'s form where naming it would shorten a line of ``length``
        characters (it has a matrix form, is not small, saves more than its name), else None."""
        ast = self.ast(n)
        if ast is None or _small(ast):
            return None
        size = len(render(ast))
        return size if MIN_SPLIT <= size < length - 4 else None

    # -- the result ------------------------------------------------------------

    def form(self, root: E.Node, width: int) -> tuple:
        """(result, definitions) with the names t1, t2, … in dependency order.

        With the final names (shorter than the placeholders) a temporary used
        once may no longer be needed: one is put back where its line then fits.
        """
        self._rename()
        self._drop_needless(root, width)
        ordered = self._rename()
        definitions = [(self.named[n].name, self.definition(n)) for n in ordered]
        return self.definition(root), definitions

    def _rename(self) -> list:
        ordered = sorted(self.named, key=self.position.get)  # children before parents
        names = temporary_names(self.taken)
        self.named = {n: _temporary(next(names), n) for n in ordered}
        self._forget()
        return ordered

    def _drop_needless(self, root: E.Node, width: int) -> None:
        while True:
            users: dict = {}  # temporary -> the lines that use it, once per parent
            for line in [root] + list(self.named):
                for part in E.walk(self.definition(line)):
                    for child in part.children():
                        if isinstance(child, E.Var):
                            users.setdefault(child, []).append(line)
            for n in sorted(self.named, key=self.position.get, reverse=True):
                var = self.named[n]
                if len(users.get(var, ())) != 1:
                    continue
                (line,) = users[var]
                del self.named[n]
                self._forget()
                ast = self.ast(line)
                if ast is not None and len(render(ast)) <= width:
                    break  # put back: the names changed, count again
                self.named[n] = var
                self._forget()
            else:
                return


MAX_GROUPS = 2000  # connected groups of a product's factors looked at, at most


def _connected_groups(factors, outputs) -> list:
    """Groups (tuples of factor positions, two or more, not all) of a product's factors
    that are connected through summed indices, smallest first."""
    n = len(factors)
    near = [set() for _ in range(n)]
    for a in range(n):
        for b in range(a + 1, n):
            if (set(factors[a][1]) & set(factors[b][1])) - outputs:
                near[a].add(b)
                near[b].add(a)
    seen, layer, groups = set(), [frozenset([k]) for k in range(n)], []
    while layer and len(seen) < MAX_GROUPS:
        grown = []
        for group in layer:
            for k in set().union(*(near[j] for j in group)) - group:
                bigger = group | {k}
                if bigger not in seen and len(bigger) < n:
                    seen.add(bigger)
                    grown.append(bigger)
        groups.extend(tuple(sorted(g)) for g in grown)
        layer = grown
    return groups


def _small(ast) -> bool:
    """No bigger than a variable or its transpose: a leaf, possibly negated or
    transposed, or a number or scalar times one (``2*x``, ``x/2``, ``a*x``)."""
    while isinstance(ast, (M.Neg, M.Transpose)):
        ast = ast.arg
    if isinstance(ast, M.Leaf):
        return True
    if isinstance(ast, M.Scaled):
        parts = ast.items() + tuple(ast.divisors)
        return all(isinstance(p, M.Leaf) for p in parts) and measure(ast)[0] <= 3
    return False


# ---------------------------------------------------------------------------
# The object and its printers


class Where:
    """A result with named temporaries: ``result`` (an Expr over the temporaries) and
    ``definitions`` (``[(name, Expr), …]``, each using only earlier names).

    ``str(w)`` is ``RESULT where t1 = …; t2 = …``, which ``mathcalc.parse`` reads
    back (with the variables' shapes) to an expression equivalent to the
    original; ``mathcalc.latex(w)`` is one aligned display.
    """

    __slots__ = ("result", "definitions")

    def __init__(self, result, definitions):
        self.result = result
        self.definitions = list(definitions)

    def __str__(self) -> str:
        return where_text(self.result, self.definitions)

    def text(self, multiline: bool = False) -> str:
        """``str(w)``, or with ``multiline`` one line each (it reads back the same)."""
        return where_text(self.result, self.definitions, multiline)

    def __repr__(self) -> str:
        return f"Where({str(self)!r})"

    def latex(self, bold: bool = False) -> str:
        return where_latex(self.result.node, [(n, d.node) for n, d in self.definitions], bold)

    def _repr_latex_(self) -> str:
        return "$$" + self.latex() + shape_latex(self.shape) + "$$"

    @property
    def shape(self) -> tuple:
        return self.result.shape


def _temporary(name: str, n: E.Node) -> E.Var:
    """The variable standing for ``n``: symmetric where n is (t1 = inv(S) with S
    symmetric prints as t1, not t1', where the product reads it transposed)."""
    return E.Var(name, n.shape, "symmetric" if E.is_symmetric(n) else None)


def where_text(result, definitions, multiline: bool = False) -> str:
    """``RESULT where t1 = …; t2 = …`` (Exprs); ``multiline``: one line each."""
    head = str(result)
    if not definitions:
        return head
    lines = [f"{name} = {d}" for name, d in definitions]
    if multiline:
        return head + "\nwhere\n" + "\n".join("  " + line for line in lines)
    return head + " where " + "; ".join(lines)


def where_latex(result: E.Node, definitions, bold: bool = False) -> str:
    """The result, then ``where`` and the definitions aligned at their ``=`` (nodes)."""
    head = to_latex(result, bold=bold)
    if not definitions:
        return head
    rows = r" \\ ".join(f"{latex_name(name, bold and d.rank > 0)} &= {to_latex(d, bold=bold)}"
                        for name, d in definitions)
    return (rf"\begin{{aligned}} & {head} \\ & \text{{where}} \\ "
            rf"& \quad \begin{{aligned}} {rows} \end{{aligned}} \end{{aligned}}")


def where(expr) -> Where:
    """The where-form of an Expr (``mathcalc.where`` parses text first)."""
    env = expr.variables
    result, definitions = where_form(expr.node, avoid=tuple(env))
    return Where(Expr(result, env), [(name, Expr(d, env)) for name, d in definitions])
