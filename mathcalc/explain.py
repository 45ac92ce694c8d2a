"""Step-by-step derivations (SPEC section 8), as Parr & Howard write them.

``explain(f, wrt)`` introduces intermediate variables for the structure of
f along the paths from f to X, gives each one's local derivative, and
combines them by the chain rule into the derivative, which is then written
in f's own variables and simplified.

Which subexpressions get a name (on the DAG, among the nodes that depend
on X; X itself never does):

- f itself (the last step);
- every nonlinear node: an element-wise function, power, max or min, a
  matrix function (inv, det, logdet, softmax, logsumexp, the norms), or a
  product in which X enters more than once (``x'*A*x``);
- the operand of a nonlinear node (``W*x + b`` under ``tanh``) and a
  subexpression used more than once;
- a subexpression the user named in f's text (``h = tanh(W1*x + b1); …``,
  SPEC 7), under that name;
- except what would only restate a variable (``x``, ``X'``): a linear
  block (sums and products, ``W2*u2 + b2``) is one step, not one per
  operator, so a network gets one intermediate for each layer's affine map
  and one for its activation; and a scalar nonlinear node used only by a
  scalar function of it is part of that step (``norm2(r)^2``,
  ``log(det(X))``).

The chain rule runs backwards from f, as reverse mode does (diff.py): the
adjoint ∂f/∂u of each intermediate u (shape ``f.shape + u.shape``, the
layout of the spec) is the sum over the steps c built from u of ∂f/∂c
contracted with the local Jacobian ∂c/∂u over c's axes. Printed in matrix
notation those contractions carry the transposes the layout needs: for a
scalar f, ``∂f/∂u1 = (∂u2/∂u1)'*(∂f/∂u2)``.

``ex.result`` is the chain evaluated from the steps' local derivatives and
the definitions substituted back, simplified: it is computed from the steps,
not copied from ``diff``, so a test that compares the two checks the steps.
"""

from __future__ import annotations

from typing import NamedTuple

from . import nodes as E
from .diff import diff_node
from .errors import MathcalcError
from .expression import Expr
from .parse import parse_program
from .printing.latex import LatexString
from .printing.steps import explanation_latex, explanation_text
from .simplify import simplify

# Nodes whose value is not linear in their X-dependent children.
_NONLINEAR = (E.Apply, E.Pow, E.Max, E.Min, E.Inv, E.Det, E.LogDet, E.Softmax, E.LogSumExp,
              E.Norm1, E.Norm2)
# Scalar functions that take a scalar nonlinear operand into their own step.
_SCALAR_FUNCTIONS = (E.Apply, E.Pow)
# Names tried for the intermediates, in order, until none clashes with a variable or a
# name defined in f's text.
_STEMS = ("u", "v", "z", "q", "u_")


class Step(NamedTuple):
    """One intermediate variable.

    ``name`` is new (it clashes with no variable of f); ``definition`` is an
    Expr over f's variables and earlier steps' names; ``local`` maps each
    name the step is built from (earlier steps, and X where the step uses it
    directly) to the Jacobian of the step with respect to it, of shape
    ``definition.shape + that one's shape``. Locals are written with the
    names of the steps where they occur (``∂u2/∂u1 = diag(1 - u2 .^ 2)``
    for ``u2 = tanh(u1)``).
    """

    name: str
    definition: Expr
    local: dict


class ChainTerm(NamedTuple):
    """One term of the chain rule for ∂f/∂``target``: through ``consumer``."""

    consumer: str  # the step built from target
    symbolic: E.Node | None  # ∂f/∂consumer · ∂consumer/∂target, both as placeholders
    with_local: E.Node | None  # ∂f/∂consumer as a placeholder, the local written out
    # (None where a placeholder would be a tensor of order 3 or more)


# A chain rule value in the steps' names is worked out for display up to this many nodes.
SMALL_VALUE = 40


class ChainLine(NamedTuple):
    """∂f/∂``target`` by the chain rule: the sum of ``terms``, and its value in the steps'
    names (None where it is large: on a deep network, the lines far from f)."""

    target: str
    terms: tuple
    value: E.Node | None


class Placeholder(NamedTuple):
    """A symbol of the chain rule: ∂``top``/∂``bottom`` (a Jacobian or an adjoint)."""

    top: str
    bottom: str


class Explanation:
    """The derivation of ∂f/∂``wrt``: ``steps``, the ``chain`` rule lines and the ``result``.

    ``str(ex)`` is the derivation as text, ``ex.latex`` one aligned LaTeX
    display; in a notebook it renders as math.
    """

    def __init__(self, f: Expr, wrt: str, steps: list, chain: list, result: Expr,
                 placeholders: dict):
        self.f = f
        self.wrt = wrt
        self.steps = steps
        self.chain = chain
        self.result = result
        self.placeholders = placeholders  # Var name -> Placeholder, for the printers

    @property
    def root(self) -> str | None:
        """The name of the last step (f itself), or None when f does not depend on X."""
        return self.steps[-1].name if self.steps else None

    def __str__(self) -> str:
        return explanation_text(self)

    @property
    def latex(self) -> str:
        """One aligned display (a LatexString: shown alone in a notebook, it renders)."""
        return LatexString(explanation_latex(self))

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self.steps)
        return f"Explanation(d/d{self.wrt}, steps=[{names}], result={str(self.result)!r})"

    def _repr_latex_(self) -> str:
        return "$$" + self.latex + "$$"


def explain_expr(f: Expr, wrt: str, wrt_shape: tuple) -> Explanation:
    """The Explanation of ∂f/∂wrt (``wrt`` a variable of f, of shape ``wrt_shape``)."""
    wrt_shape = tuple(wrt_shape)
    users = _user_definitions(f)
    named = _named_nodes(f.node, wrt, users)
    generated = iter(_names({**f.variables, **dict.fromkeys(users.values())},
                            sum(n not in users for n in named)))
    names = [users[n] if n in users else next(generated) for n in named]
    env = dict(f.variables)
    as_var = {}  # named node -> its Var
    steps, definitions = [], {}  # definitions: name -> node in earlier names
    for node, name in zip(named, names):
        definition = _in_names(node, as_var, wrt)
        as_var[node] = E.var(name, node.shape)
        definitions[name] = definition
        env[name] = node.shape
        steps.append((name, definition))
    shapes = {**env, wrt: wrt_shape}
    compact = {}  # definition (in names) -> its Var: writes locals with the steps' names
    built = []
    for name, definition in steps:
        compact[definition] = E.var(name, definition.shape)
        inputs = [n for n in names if n in definition.free_vars]
        if wrt in definition.free_vars:
            inputs.append(wrt)
        local = {}
        for inp in inputs:
            node = _compacted(diff_node(definition, inp, shapes[inp]), compact)
            local[inp] = Expr(node, _env_for(node, shapes))
        built.append(Step(name, Expr(definition, _env_for(definition, env)), local))
    placeholders: dict = {}
    chain, adjoint_x = _chain(built, f.shape, wrt, shapes, placeholders, compact)
    # With no steps (f constant in X, or X itself) the derivative is a rule's own result.
    result = _substituted(adjoint_x, definitions) if built else diff_node(f.node, wrt, wrt_shape)
    return Explanation(f, wrt, built, chain, Expr(simplify(result), f.variables), placeholders)


# ---------------------------------------------------------------------------
# Which nodes are intermediate variables


def _user_definitions(f: Expr) -> dict:
    """node -> name for the definitions in f's text (``u = W*x + b; …``, SPEC 7)."""
    if not f.source:
        return {}
    try:
        _, _, definitions = parse_program(f.source, f.declared())
    except MathcalcError:  # f was parsed from it once: this does not happen
        return {}
    return {node: name for name, node in definitions}


def _named_nodes(root: E.Node, wrt: str, users: dict) -> list:
    """The nodes that get a name, children before parents (f last); empty when f is
    constant in X. What the user named in f's text is named so here too."""
    order = [n for n in E.walk(root) if wrt in n.free_vars]
    if not order:
        return []
    uses: dict = {}
    parents: dict = {}
    for n in order:
        for child in n.children():
            if wrt in child.free_vars:
                uses[child] = uses.get(child, 0) + 1
                parents.setdefault(child, []).append(n)
    named = []
    for n in order:
        if _restates_variable(n):
            continue  # f = X or X' too: there is nothing to explain step by step
        if n == root or n in users or _wants_name(n, uses.get(n, 0), parents.get(n, []), wrt):
            named.append(n)
    return named


def _wants_name(n: E.Node, uses: int, parents: list, wrt: str) -> bool:
    if _merges_into(n, uses, parents, wrt):
        return False
    return uses > 1 or _nonlinear(n, wrt) or any(_nonlinear(p, wrt) for p in parents)


def _merges_into(n: E.Node, uses: int, parents: list, wrt: str) -> bool:
    """A scalar nonlinear node used once, by a scalar function: norm2(r)^2, log(det(X))."""
    return (uses == 1 and n.rank == 0 and _nonlinear(n, wrt)
            and isinstance(parents[0], _SCALAR_FUNCTIONS) and parents[0].rank == 0)


def _nonlinear(n: E.Node, wrt: str) -> bool:
    if isinstance(n, _NONLINEAR):
        return True
    if isinstance(n, E.Product):
        return sum(wrt in f.free_vars for f, _ in n.factors) > 1
    return False


def _restates_variable(n: E.Node) -> bool:
    """X itself, or X relabelled (its transpose): nothing a step would add."""
    if isinstance(n, E.Var):
        return True
    return (isinstance(n, E.Product) and n.coef == 1 and len(n.factors) == 1
            and isinstance(n.factors[0][0], E.Var) and n.n_indices == n.rank)


def _names(variables: dict, count: int) -> list:
    """u1, u2, … (or the first stem whose names clash with no variable or defined name)."""
    for stem in _STEMS:
        names = [f"{stem}{k}" for k in range(1, count + 1)]
        if not set(names) & set(variables):
            return names
    taken = set(variables)
    names, k = [], 1
    while len(names) < count:  # every stem clashes: number on past the variables
        if f"u{k}" not in taken:
            names.append(f"u{k}")
        k += 1
    return names


# ---------------------------------------------------------------------------
# Rewriting nodes in terms of the steps' names


def _in_names(node: E.Node, as_var: dict, wrt: str) -> E.Node:
    """``node`` with every named node strictly below it replaced by its Var."""
    memo: dict = {}
    for n in E.walk(node):
        if n is not node and n in as_var:
            memo[n] = as_var[n]
        elif wrt in n.free_vars:
            memo[n] = n.with_children([memo.get(k, k) for k in n.children()])
    return memo.get(node, node)


def _replaced(node: E.Node, mapping: dict) -> E.Node:
    """``node`` with every subexpression found in ``mapping`` replaced, bottom-up."""
    memo: dict = {}
    for n in E.walk(node):
        new = n.with_children([memo.get(k, k) for k in n.children()])
        memo[n] = mapping.get(new, new)
    return memo[node]


def _compacted(node: E.Node, compact: dict) -> E.Node:
    """A local derivative with the steps' definitions written as their names."""
    return simplify(_replaced(node, compact))


def _substituted(node: E.Node, definitions: dict) -> E.Node:
    """``node`` in f's own variables: each step's name replaced by its definition."""
    full: dict = {}
    for name, definition in definitions.items():  # in order: earlier names first
        full[E.var(name, definition.shape)] = _replaced(definition, full)
    return _replaced(node, full)


def _env_for(node: E.Node, env: dict) -> dict:
    return {name: env[name] for name in env if name in node.free_vars}


# ---------------------------------------------------------------------------
# The chain rule


def _contract(adjoint: E.Node, f_rank: int, local: E.Node, mid_rank: int) -> E.Node:
    """Σ adjoint[f…, m…] local[m…, x…] → [f…, x…]: the chain rule over the mid axes."""
    f_labels = tuple(("f", k) for k in range(f_rank))
    m_labels = tuple(("m", k) for k in range(mid_rank))
    x_labels = tuple(("x", k) for k in range(local.rank - mid_rank))
    return E.product([(adjoint, f_labels + m_labels), (local, m_labels + x_labels)],
                     f_labels + x_labels)


def _chain(steps: list, f_shape: tuple, wrt: str, shapes: dict, placeholders: dict,
           compact: dict):
    """The chain rule lines (intermediates in reverse order, then X) and ∂f/∂X in names."""
    if not steps:
        return [], None
    root = steps[-1].name
    f_rank = len(f_shape)

    def symbol(top: str, bottom: str, shape: tuple):
        """The placeholder ∂top/∂bottom, or None past order 2 (no variable has that
        shape, and matrix notation could not show it)."""
        if len(shape) > 2:
            return None
        name = f"(∂{top}/∂{bottom})"  # bracketed: the text reads (∂u2/∂u1)'*x, not ∂u2/∂u1'*x
        placeholders[name] = Placeholder(top, bottom)
        return E.var(name, shape)

    consumers: dict = {}
    for step in steps:
        for inp in step.local:
            consumers.setdefault(inp, []).append(step)
    values = {root: None}  # ∂f/∂step in names, unsimplified; None for f itself (the identity)
    sizes = {root: 0}  # a bound on the nodes of each value (shown only when small)
    lines = []
    targets = [s.name for s in reversed(steps[:-1])] + [wrt]
    for target in targets:
        terms, parts = [], []
        size = 0
        for c in consumers.get(target, []):
            local = c.local[target].node
            size += sizes[c.name] + len(E.walk(local))
            c_rank = len(c.definition.shape)
            if c.name == root:
                sym = symbol(root, target, local.shape)
                loc = part = local
            else:
                adjoint = symbol(root, c.name, f_shape + c.definition.shape)
                jacobian = symbol(c.name, target, local.shape)
                sym = jacobian and adjoint and _contract(adjoint, f_rank, jacobian, c_rank)
                loc = adjoint and _contract(adjoint, f_rank, local, c_rank)
                part = _contract(values[c.name], f_rank, local, c_rank)
            terms.append(ChainTerm(c.name, sym and simplify(sym), loc and simplify(loc)))
            parts.append(part)
        values[target], sizes[target] = E.add(*parts), size
        # Simplified only where it is shown: on a deep network each value holds the
        # layers above it, and simplifying them all would take time quadratic in depth.
        shown = _compacted(values[target], compact) if target == wrt or \
            size <= SMALL_VALUE else None
        lines.append(ChainLine(target, tuple(terms), shown))
    return lines, values[wrt]
