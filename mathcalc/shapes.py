"""Shape inference for parsed expressions (SPEC section 2).

The parser (parse.py) turns text into a tree of ``Term`` nodes; this module
gives every term a *kind* and a shape, in three steps:

1. **Kinds.** Each subexpression is a scalar, a column vector, a row vector
   or a matrix (the core is orientation-free; orientation only decides which
   products are allowed, so it lives here). Every operation is a small table
   from operand kinds to the result kind (``TABLES``). Declared variables
   have one kind; an undeclared one may be a scalar, a vector or a matrix.
   Arc consistency over the tables keeps only the kinds some consistent
   reading allows ("rank forced by usage"); where a choice remains, the
   naming convention of matrixcalculus.org picks (``a``–``g`` and Greek
   letters scalars, ``h``–``z`` vectors, capitals matrices), variables in
   order of first appearance, with a step back when a choice leads nowhere.
2. **Dimensions.** A walk over the tree, in text order, applies the same
   tables to the chosen kinds and ties dimensions together with union-find
   (``x'*A*x`` ties x's length to both of A's). A declared dimension is a
   fixed value: the same name is the same size, a name never equals an int.
   Any mismatch here is the ShapeError users see, naming both operands, their
   shapes and orientation, with a caret at the operator.
3. **Names.** Undeclared dimensions get names (``n, m, k, p, ...``) that
   clash with no declared dimension and no variable: variables in order of
   first appearance, each variable's axes last axis first (so ``X*w - y``
   gives X (m, n), w (n,), y (m,)), then context-sized constants.

Kinds, the product table and the built-in calls' shape rules are calls.py's;
this module only applies them.
"""

from __future__ import annotations

import collections
import contextvars
import itertools
import unicodedata

from .calls import (CALLS, ELEMENTWISE, KIND_OF_RANK, KIND_WORDS, KINDS, MATMUL_LANGUAGE, RANK,
                    TRANSPOSED, C, M, R, S, matmul_axes)
from .errors import ShapeError, located, place

VARIABLE_KINDS = S | C | M  # a variable is never a row vector: vectors are columns

# Fresh dimension names, in the order they are handed out.
DIM_NAMES = ("n", "m", "k", "p", "q", "r", "s", "t", "u", "v", "w")


class Term:
    """A node of the syntax tree, with its place in the text.

    ``op`` is one of:

    - ``num`` (``value`` the literal text), ``var`` (``value`` the name),
      ``identity`` (``I`` or ``eye`` alone, sized by context),
      ``sized`` (``value`` = (``"eye"|"ones"|"zeros"``, dims)),
      ``filled`` (``value`` = ``"vector"|"matrix"``, ``args`` = [c]);
    - ``sum`` and ``prod``: left-to-right chains, ``args`` the operands and
      ``ops`` the ``(operator, offset)`` between each pair;
    - ``neg`` and ``transpose`` (``count`` times, collapsed while parsing);
    - ``pow`` (``value`` ``"^"`` or ``".^"``, ``op_pos`` the operator);
    - ``call`` (``value`` the function name, ``op_pos`` the name's offset).

    ``start``/``end`` are character offsets (parentheses included when
    ``paren``); inference adds ``kind``, ``dims`` and, at the end, ``shape``.
    """

    __slots__ = ("op", "args", "ops", "value", "start", "end", "op_pos", "paren", "depth",
                 "count", "slot", "kind", "dims", "shape")

    def __init__(self, op, args=(), value=None, start=0, end=0, op_pos=None):
        self.op = op
        self.args = list(args)
        self.ops = []
        self.value = value
        self.start = start
        self.end = end
        self.op_pos = start if op_pos is None else op_pos
        self.paren = False
        self.depth = 1 + max((a.depth for a in self.args), default=0)
        self.count = 1
        self.slot = None
        self.kind = None
        self.dims = None
        self.shape = None

    def __repr__(self):  # pragma: no cover - debugging aid
        return f"Term({self.op}, {self.value!r}, {self.args!r})"


TERM_OPS = ("num", "var", "identity", "sized", "filled", "sum", "prod", "neg", "transpose",
            "pow", "call")


def iter_postorder(root: Term):
    """Every term under ``root``, children before parents, in text order; no recursion."""
    stack = [(root, False)]
    while stack:
        term, done = stack.pop()
        if done:
            yield term
            continue
        stack.append((term, True))
        for arg in reversed(term.args):
            stack.append((arg, False))


# ---------------------------------------------------------------------------
# Kind tables: operand kinds -> result kind. Each operation is one table; the
# kind search and the dimension walk both read them, so they cannot disagree.

TABLES = {
    # + - .* ⊙ ./ .^: same shape and orientation, or a scalar side.
    "elementwise": ELEMENTWISE,
    # * @ · ⋅: scalar·anything, and the products of calls.MATMUL_LANGUAGE.
    "matmul": {**{(S, k): k for k in KINDS}, **{(k, S): k for k in KINDS},
               **{pair: kind for pair, (kind, _) in MATMUL_LANGUAGE.items()}},
    "div": {(k, S): k for k in KINDS},  # / divides by a scalar
    "pow": {(S, S): S},  # ^ is the scalar power
    "transpose": {(k,): TRANSPOSED[k] for k in KINDS},
    # each built-in call's own shape rule, under its name (element-wise
    # functions keep their argument's kind and have no table)
    **{name: row.kinds for name, row in CALLS.items() if row.form != "sized"},
}

PRODUCT_OPS = {"*": "matmul", "@": "matmul", "·": "matmul", "⋅": "matmul",
               ".*": "elementwise", "⊙": "elementwise", "./": "elementwise", "/": "div"}


def convention_kind(name: str) -> int:
    """The kind matrixcalculus.org gives an undeclared name: a–g and Greek scalars,
    h–z vectors, capitals (Latin or Greek, e.g. Σ) matrices."""
    first = name[0]
    if first.isupper():
        return M
    if "a" <= first <= "g":
        return S
    if "h" <= first <= "z":
        return C
    return S  # Greek and other lowercase letters, and _


def _is_greek(ch: str) -> bool:
    return "GREEK" in unicodedata.name(ch, "")


# ---------------------------------------------------------------------------
# Step 1: kinds, by arc consistency over the tables.


class _KindSolver:
    """Slots hold sets of kinds; constraints are table rows linking slots.

    A variable has one slot wherever it occurs. Narrowing is recorded on a
    trail so that a choice that leads nowhere can be taken back.
    """

    def __init__(self):
        self.domain = []  # slot -> bit set of kinds
        self.constraints = []  # (table name, input slots, output slot, (start, end) in text)
        self.watch = []  # slot -> constraint ids that mention it
        self.trail = []
        self.reason = {}  # slot -> text span of the constraint that first fixed it
        self._memo = {}

    def new_slot(self, domain: int) -> int:
        self.domain.append(domain)
        self.watch.append([])
        return len(self.domain) - 1

    def constrain(self, table: str, inputs: tuple, span: tuple) -> int:
        out = self.new_slot(S | C | R | M)
        cid = len(self.constraints)
        self.constraints.append((table, inputs, out, span))
        for slot in set(inputs) | {out}:
            self.watch[slot].append(cid)
        return out

    def _supports(self, table: str, domains: tuple, same: bool) -> tuple:
        """For each slot of a constraint, the kinds some allowed row gives it (memoised)."""
        key = (table, domains, same)
        found = self._memo.get(key)
        if found is None:
            *ins, out = domains
            support = [0] * len(domains)
            for keys, val in TABLES[table].items():
                if not val & out or same and keys[0] != keys[1]:
                    continue
                if all(k & d for k, d in zip(keys, ins)):
                    for i, k in enumerate(keys):
                        support[i] |= k
                    support[-1] |= val
            found = self._memo[key] = tuple(support)
        return found

    def _revise(self, cid: int, record: bool):
        """Narrow the slots of one constraint; the changed slots, or None when one empties."""
        table, inputs, out, span = self.constraints[cid]
        slots = inputs + (out,)
        domains = tuple(self.domain[s] for s in slots)
        same = len(inputs) == 2 and inputs[0] == inputs[1]
        support = self._supports(table, domains, same)
        changed = []
        for slot, allowed in zip(slots, support):
            new = self.domain[slot] & allowed
            if new == self.domain[slot]:
                continue
            if not new:
                return None
            self.trail.append((slot, self.domain[slot]))
            self.domain[slot] = new
            if record and new & (new - 1) == 0:
                self.reason.setdefault(slot, span)
            changed.append(slot)
        return changed

    def propagate(self, queue, record=False) -> bool:
        """Arc consistency from the given constraints; False when no reading is left."""
        queue = collections.deque(queue)  # first in, first out: reasons follow the text
        queued = set(queue)
        while queue:
            cid = queue.popleft()
            queued.discard(cid)
            changed = self._revise(cid, record)
            if changed is None:
                return False
            for slot in changed:
                for other in self.watch[slot]:
                    if other not in queued:
                        queued.add(other)
                        queue.append(other)
        return True

    def undo(self, mark: int) -> None:
        while len(self.trail) > mark:
            slot, old = self.trail.pop()
            self.domain[slot] = old

    def choose(self, slot: int, kind: int) -> bool:
        """Fix a slot to one kind; False (and nothing changed) when that leaves no reading."""
        if not kind & self.domain[slot]:
            return False
        mark = len(self.trail)
        self.trail.append((slot, self.domain[slot]))
        self.domain[slot] = kind
        if self.propagate(self.watch[slot]):
            return True
        self.undo(mark)
        return False


# ---------------------------------------------------------------------------
# Step 2: dimensions, by union-find.


class _Dims:
    """Union-find over dimensions; a root may carry a fixed value (an int or a name)."""

    def __init__(self):
        self.parent = []
        self.fixed = []

    def new(self, fixed=None) -> int:
        self.parent.append(len(self.parent))
        self.fixed.append(fixed)
        return len(self.parent) - 1

    def find(self, d: int) -> int:
        root = d
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[d] != root:  # path compression
            self.parent[d], d = root, self.parent[d]
        return root

    def unify(self, a: int, b: int):
        """Tie a and b together; None on success, else their two clashing values."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        fa, fb = self.fixed[ra], self.fixed[rb]
        if fa is not None and fb is not None and not _same_dim(fa, fb):
            return fa, fb
        if fa is None:
            ra, rb = rb, ra  # keep the fixed root
        self.parent[rb] = ra
        return None


def _same_dim(a, b) -> bool:
    """A name never equals an int: 3 and "n" are different sizes."""
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------
# The inference proper.


class _Inference:
    def __init__(self, root: Term, text: str, declared: dict):
        self.root = root
        self.text = text
        self.declared = declared
        self.solver = _KindSolver()
        self.dims = _Dims()
        self.var_slot = {}  # name -> kind slot
        self.var_order = []  # names in order of first appearance
        self.var_kind = {}  # name -> chosen kind
        self.var_reason = {}  # name -> why it has its kind, for messages
        self.var_dims = {}  # name -> tuple of dimension ids
        self.context_dims = []  # dims of I, vector(c), matrix(c), in text order
        self.transposed = {}  # name -> the first term transposing it
        self.summed = {}  # name -> [(sum term, the operand that is the name)]
        self.avoid = set(declared)  # names a fresh dimension must not take
        for shape in declared.values():
            self.avoid.update(d for d in shape if isinstance(d, str))

    # -- step 1 -------------------------------------------------------------

    def build_constraints(self) -> None:
        solver = self.solver
        for term in iter_postorder(self.root):
            op = term.op
            span = (term.start, term.end)
            if op == "var":
                name = term.value
                if name not in self.var_slot:
                    self.var_order.append(name)
                    self.avoid.add(name)
                    shape = self.declared.get(name)
                    if shape is not None:
                        domain = KIND_OF_RANK[len(shape)]
                    elif convention_kind(name) == M:
                        domain = VARIABLE_KINDS & ~S  # a capital is never a scalar by usage
                    else:
                        domain = VARIABLE_KINDS
                    self.var_slot[name] = solver.new_slot(domain)
                term.slot = self.var_slot[name]
            elif op == "num":
                term.slot = solver.new_slot(S)
            elif op == "identity":
                term.slot = solver.new_slot(M)
            elif op == "sized":
                _, dims = term.value
                self.avoid.update(d for d in dims if isinstance(d, str))
                term.slot = solver.new_slot(CALLS[term.value[0]].kinds[len(dims)])
            elif op == "filled":
                term.slot = solver.constrain(term.value, (term.args[0].slot,), span)
            elif op in ("sum", "prod"):
                slot = term.args[0].slot
                for (sym, _), arg in zip(term.ops, term.args[1:]):
                    table = "elementwise" if op == "sum" else PRODUCT_OPS[sym]
                    slot = solver.constrain(table, (slot, arg.slot), (term.start, arg.end))
                term.slot = slot
                if op == "sum":  # a name added to a vector or matrix is not a scalar
                    for arg in term.args:
                        name = _bare_name(arg)
                        if name is not None:
                            self.summed.setdefault(name, []).append((term, arg))
            elif op == "neg" or (op == "transpose" and term.count % 2 == 0):
                term.slot = term.args[0].slot  # same kind: share the slot
            elif op == "transpose":
                term.slot = solver.constrain("transpose", (term.args[0].slot,), span)
                name = _bare_name(term.args[0])
                if name is not None:  # a transposed name is not a scalar
                    self.transposed.setdefault(name, term)
            elif op == "pow":
                table = "pow" if term.value == "^" else "elementwise"
                term.slot = solver.constrain(table, (term.args[0].slot, term.args[1].slot), span)
            elif op == "call":
                if term.value not in CALLS:  # an element-wise function keeps its argument's kind
                    term.slot = term.args[0].slot
                else:
                    term.slot = solver.constrain(term.value, tuple(a.slot for a in term.args),
                                                 span)
            else:  # pragma: no cover - the parser builds no other terms
                raise ShapeError(f"internal: unknown term {op!r}")

    def choose_kinds(self) -> None:
        """Kinds forced by usage first; where usage leaves a choice, the naming convention.

        Variables are taken in order of first appearance; each choice narrows
        the others. When usage leaves several kinds but the convention's kind
        is not a consistent one, it is kept anyway: the dimension walk then
        says where usage disagrees with it (``A*x'``, ``x + x'``) rather than
        guessing a scalar silently.

        The convention never makes an operation degenerate (SPEC 2): where it
        reads as a scalar a name that is transposed (``c'``) or added to or
        subtracted from a vector or matrix (``A*x - b``), the choices are made
        again with that name not a scalar (a vector where usage allows one,
        else a matrix), until no such reading is left. Usage that forces the
        scalar (``c'^2``) keeps it.
        """
        solver = self.solver
        consistent = solver.propagate(range(len(solver.constraints)), record=True)
        self._initial_domain = {name: solver.domain[slot] for name, slot in self.var_slot.items()}
        mark = len(solver.trail)
        not_scalar: dict = {}  # name -> why it is not read as a scalar
        while True:
            ok = consistent
            for name in list(not_scalar):
                slot = self.var_slot[name]
                if not (ok and solver.domain[slot] & ~S and
                        solver.choose(slot, solver.domain[slot] & ~S)):
                    del not_scalar[name]  # usage leaves it no other reading
            self._choose_in_order(ok, not_scalar)
            found = self._degenerate_scalars(not_scalar) if ok else {}
            if not found:
                return
            not_scalar.update(found)
            solver.undo(mark)

    def _choose_in_order(self, consistent: bool, not_scalar: dict) -> None:
        solver = self.solver
        self.var_reason = {}
        for name in self.var_order:
            slot = self.var_slot[name]
            domain = solver.domain[slot]
            preferred = convention_kind(name)
            if name in not_scalar and preferred == S:
                preferred = C if domain & C or not domain & M else M
            if name in self.declared:
                self.var_reason[name] = f"declared as {self.declared[name]!r}"
            elif domain & (domain - 1) == 0 and slot in solver.reason:
                start, end = solver.reason[slot]
                self.var_reason[name] = (f"not declared: its use in {self.snippet(start, end)} "
                                         f"{self.where(start)} makes it a {KIND_WORDS[domain]}")
            if consistent and domain & (domain - 1):
                consistent = solver.choose(slot, preferred)
            domain = solver.domain[slot]
            if domain & (domain - 1):  # no consistent reading: the dimension walk reports it
                domain = preferred
            self.var_kind[name] = domain
            if name in not_scalar and name not in self.var_reason:
                self.var_reason[name] = (f"not declared: {not_scalar[name]}, so it is a "
                                         f"{KIND_WORDS[domain]}, not a scalar")
            if name not in self.var_reason:
                if domain == preferred:
                    self.var_reason[name] = "not declared: " + _convention_words(name)
                else:
                    self.var_reason[name] = ("not declared: its use in the expression makes it "
                                             f"a {KIND_WORDS[domain]}")

    def _degenerate_scalars(self, not_scalar: dict) -> dict:
        """Names read as scalars by the convention alone that are transposed or added to a
        non-scalar, each with where; those usage forces to be scalars are not listed."""
        found = {}
        for name in self.var_order:
            if name in self.declared or name in not_scalar or self.var_kind[name] != S:
                continue
            if self._initial_domain[name] == S:
                continue  # usage alone makes it a scalar (x^2)
            term = self.transposed.get(name)
            if term is not None:
                found[name] = f"it is transposed in {self.snippet(term.start, term.end)} " \
                              f"{self.where(term.start)}"
                continue
            for total, arg in self.summed.get(name, ()):
                domain = self.solver.domain[total.slot]
                if domain and not domain & S:
                    # the operator next to the name (positions survive definitions'
                    # expansion, where the sum's own span is the defined name's use)
                    k = next(i for i, a in enumerate(total.args) if a is arg)
                    sym, pos = total.ops[k - 1] if k else total.ops[0]
                    other = f"a {KIND_WORDS.get(domain, 'non-scalar')}"
                    if sym != "-":
                        how = f"it is added to {other}"
                    else:
                        how = f"it is subtracted from {other}" if k else \
                            f"{other} is subtracted from it"
                    found[name] = f"{how} (the '{sym}' {self.where(pos)})"
                    break
        return found

    # -- step 2 -------------------------------------------------------------

    def walk_dims(self) -> None:
        for term in iter_postorder(self.root):
            getattr(self, "_dims_" + term.op)(term)

    def _dims_var(self, term):
        name = term.value
        if name not in self.var_dims:
            shape = self.declared.get(name)
            if shape is None:
                rank = RANK[self.var_kind[name]]
                self.var_dims[name] = tuple(self.dims.new() for _ in range(rank))
            else:
                self.var_dims[name] = tuple(self.dims.new(d) for d in shape)
        term.kind = self.var_kind[name]
        term.dims = self.var_dims[name]

    def _dims_num(self, term):
        term.kind, term.dims = S, ()

    def _dims_identity(self, term):
        d = self.dims.new()
        self.context_dims.append((d,))
        term.kind, term.dims = M, (d, d)

    def _dims_sized(self, term):
        name, dims = term.value
        term.kind = CALLS[name].kinds[len(dims)]
        term.dims = tuple(self.dims.new(d) for d in dims)
        if len(term.dims) < RANK[term.kind]:  # eye(n): one size for both sides
            term.dims = (term.dims[0], term.dims[0])

    def _dims_filled(self, term):
        arg = term.args[0]
        if arg.kind != S:
            raise self.error(f"{term.value}(c) fills every entry with a scalar c, but "
                             f"{self.clause(self.as_operand(arg))}", term.start)
        term.kind = CALLS[term.value].kinds[(S,)]
        term.dims = tuple(self.dims.new() for _ in range(RANK[term.kind]))
        self.context_dims.append(term.dims)

    def _dims_neg(self, term):
        term.kind, term.dims = term.args[0].kind, term.args[0].dims

    def _dims_transpose(self, term):
        arg = term.args[0]
        kind, dims = arg.kind, arg.dims
        if term.count % 2:
            kind = TRANSPOSED[kind]
            dims = dims[::-1]
        term.kind, term.dims = kind, dims

    def _dims_sum(self, term):
        self._chain(term, lambda sym: "elementwise")

    def _dims_prod(self, term):
        self._chain(term, PRODUCT_OPS.__getitem__)

    def _chain(self, term, table_of):
        first = term.args[0]
        kind, dims = first.kind, first.dims
        for (sym, pos), arg, prev in zip(term.ops, term.args[1:], term.args):
            if prev is first:
                left = self.as_operand(first)
            else:  # the chain so far: `A*B` in `A*B*x`
                left = _Operand((term.start, prev.end), kind, dims, None)
            right = self.as_operand(arg)
            kind, dims = self.binary(table_of(sym), sym, left, right, pos)
        term.kind, term.dims = kind, dims

    def _dims_pow(self, term):
        base, exponent = term.args
        table = "pow" if term.value == "^" else "elementwise"
        name = _bare_name(base) if base.op == "var" else None
        if table == "pow" and name and name not in self.declared and convention_kind(name) == M:
            raise self.error(_capital_power_message(name, self.snippet(exponent.start,
                                                                       exponent.end)),
                             term.op_pos)
        term.kind, term.dims = self.binary(table, term.value, self.as_operand(base),
                                           self.as_operand(exponent), term.op_pos)

    def _dims_call(self, term):
        name = term.value
        row = CALLS.get(name)
        if row is None:  # element-wise function
            term.kind, term.dims = term.args[0].kind, term.args[0].dims
        elif row.elementwise:  # max, min
            a, b = (self.as_operand(arg) for arg in term.args)
            term.kind, term.dims = self.binary("elementwise", name, a, b, term.op_pos)
        else:
            term.kind, term.dims = self.unary(row, self.as_operand(term.args[0]), term.op_pos)

    def binary(self, table: str, sym: str, left, right, pos: int):
        """The kind and dims of ``left sym right``, or a ShapeError naming both sides."""
        lk, rk, ld, rd = left.kind, right.kind, left.dims, right.dims
        if (lk, rk) not in TABLES[table]:
            raise self.error(_binary_kind_message(table, sym, *self.pair(left, right), lk, rk),
                             pos)
        result = TABLES[table][(lk, rk)]
        if table == "matmul" and lk != S and rk != S:
            _, ties, dims = matmul_axes(lk, ld, rk, rd)
        elif lk == S:
            ties, dims = [], rd
        elif rk == S:
            ties, dims = [], ld
        else:  # element-wise, same kind
            ties, dims = list(zip(ld, rd)), ld
        for a, b in ties:
            clash = self.dims.unify(a, b)
            if clash:
                raise self.error(_mismatch_message(table, sym, *self.pair(left, right), *clash),
                                 pos)
        return result, dims

    def unary(self, row, arg, pos: int):
        """The kind and dims of a built-in call of one argument (its row of calls.CALLS)."""
        if (arg.kind,) not in row.kinds:
            raise self.error(f"{row.name} needs {row.need}, but {self.clause(arg)}", pos)
        if row.square and arg.kind == M:
            clash = self.dims.unify(arg.dims[0], arg.dims[1])
            if clash:
                raise self.error(f"{row.name} needs a square matrix, but {self.clause(arg)}",
                                 pos)
        return row.kinds[(arg.kind,)], row.result_dims(arg.kind, arg.dims)

    # -- step 3 -------------------------------------------------------------

    def dim_names(self) -> dict:
        """Root -> name for every undeclared dimension reachable from a variable or constant."""
        taken = set(self.avoid)
        fresh = _fresh_names(taken)
        names = {}
        groups = [self.var_dims[name][::-1] for name in self.var_order if name in self.var_dims]
        groups += [dims[::-1] for dims in self.context_dims]
        for dims in groups:
            for d in dims:
                root = self.dims.find(d)
                if self.dims.fixed[root] is None and root not in names:
                    names[root] = next(fresh)
        return names

    def resolve(self, names: dict, dims: tuple) -> tuple:
        out = []
        for d in dims:
            root = self.dims.find(d)
            fixed = self.dims.fixed[root]
            out.append(fixed if fixed is not None else names[root])
        return tuple(out)

    # -- messages -----------------------------------------------------------

    def snippet(self, start: int, end: int) -> str:
        return _snippet(self.text[start:end])

    def where(self, pos: int) -> str:
        return "at " + place(self.text, pos)

    def as_operand(self, term: Term) -> "_Operand":
        base = term
        while base.op in ("transpose", "neg") and not base.paren:
            base = base.args[0]
        name = base.value if base.op == "var" else None
        return _Operand((term.start, term.end), term.kind, term.dims, name)

    def operand(self, operand: "_Operand", why: bool = True) -> str:
        """``x' (a row vector of length n; x is declared as ('n',))``: text, kind, shape, why."""
        reason = self.why(operand) if why else ""
        shown = self.describe(operand.kind, operand.dims)
        return f"{self.snippet(*operand.span)} ({shown}{reason})"

    def pair(self, left: "_Operand", right: "_Operand") -> tuple:
        """Both operands described; the reason for a variable is given once."""
        return self.operand(left), self.operand(right, why=right.name != left.name)

    def clause(self, operand: "_Operand") -> str:
        """``x is a column vector of length n (x is declared as ('n',))``."""
        why = self.why(operand)
        return (f"{self.snippet(*operand.span)} is {self.describe(operand.kind, operand.dims)}"
                + (f" ({why[2:]})" if why else ""))

    def why(self, operand: "_Operand") -> str:
        name = operand.name
        if name is None or name not in self.var_reason:
            return ""
        hint = ""
        if name not in self.declared and convention_kind(name) == M and \
                self.var_kind.get(name) == M:
            hint = f" (usage never makes a capital a scalar: declare {name}=() for one)"
        return f"; {name} is {self.var_reason[name]}{hint}"

    def describe(self, kind: int, dims: tuple) -> str:
        names = self.dim_names()
        shape = [str(x) for x in self.resolve_partial(names, dims)]
        if kind == S:
            return "a scalar"
        if kind in (C, R):
            return f"a {KIND_WORDS[kind]} of length {shape[0]}"
        return f"a matrix of shape {format_shape(shape)}"

    def resolve_partial(self, names, dims):
        out = []
        for d in dims:
            root = self.dims.find(d)
            fixed = self.dims.fixed[root]
            out.append(fixed if fixed is not None else names.get(root, "?"))
        return out

    def error(self, message: str, pos: int) -> ShapeError:
        return ShapeError(located(message, self.text, pos))


def _capital_power_message(name: str, exponent: str) -> str:
    """X^-1 with X undeclared: a capital is a matrix, never a scalar because of '^'."""
    ways = [f"inv({name}) for the inverse"] if exponent.replace(" ", "") in ("-1", "(-1)") else []
    ways += [f"{name} .^ {exponent} for the element-wise power",
             f"or declare {name}=() if {name} is a scalar"]
    return (f"'^' is the power of a scalar, but {name} is a matrix (it is not declared, and a "
            "capital name is a matrix: usage never makes it a scalar); write "
            + ", ".join(ways))


def _bare_name(term: Term):
    """The variable a term is, under negations and pairs of transposes; else None."""
    while term.op == "neg" or term.op == "transpose" and term.count % 2 == 0:
        term = term.args[0]
    return term.value if term.op == "var" else None


class _Operand:
    """One side of an operation: its place in the text (sliced only for a message)."""

    __slots__ = ("span", "kind", "dims", "name")

    def __init__(self, span, kind, dims, name):
        self.span, self.kind, self.dims, self.name = span, kind, dims, name


def _snippet(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _convention_words(name: str) -> str:
    kind = convention_kind(name)
    if kind == M:
        return "capital names are matrices by convention"
    if kind == C:
        return "names starting with h–z are vectors by convention"
    if _is_greek(name[0]):
        return "Greek names are scalars by convention"
    return "names starting with a–g are scalars by convention"


_VERBS = {"+": "add", "-": "subtract", ".*": "multiply element-wise",
          "⊙": "multiply element-wise",
          "./": "divide element-wise", ".^": "raise element-wise", "max": "take max of",
          "min": "take min of"}

_PRODUCT_RULES = {
    M: "a matrix can be multiplied by a scalar, a matrix or a column vector",
    C: "a column vector can be multiplied by a scalar, a row vector (outer product) "
       "or a column vector of the same length (inner product)",
    R: "a row vector can be multiplied by a scalar, a matrix or a column vector",
}


def _binary_kind_message(table, sym, left, right, lk, rk) -> str:
    if table == "matmul":
        return f"cannot multiply {left} by {right}: {_PRODUCT_RULES[lk]}"
    if table == "div":
        return (f"cannot divide {left} by {right}: '/' divides by a scalar; "
                "for element-wise division write ./")
    if table == "pow":
        culprit = left if lk != S else right
        return (f"'^' needs scalars on both sides, but the {'base' if lk != S else 'exponent'} "
                f"is {culprit}; for an element-wise power write .^ (and A' or A^T for a "
                "transpose, inv(A) for an inverse)")
    verb = _VERBS.get(sym, "combine")
    return (f"cannot {verb} {left} and {right}: element-wise operations need the same shape "
            "and orientation on both sides, or a scalar on one side")


def _mismatch_message(table, sym, left, right, a, b) -> str:
    if table == "matmul":
        return f"cannot multiply {left} by {right}: dimension {a} does not match {b}"
    verb = _VERBS.get(sym, "combine")
    return f"cannot {verb} {left} and {right}: dimension {a} does not match {b}"


def format_shape(shape) -> str:
    """``()``, ``(n,)``, ``(m, n)``, ``(3,)``: a shape as a Python tuple, without quotes."""
    dims = [str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _fresh_names(taken: set):
    for name in itertools.chain(DIM_NAMES, (f"n{i}" for i in itertools.count(1))):
        if name not in taken:
            yield name


def infer_shapes(root: Term, text: str, declared: dict) -> dict:
    """Give every term of the tree its ``kind`` and ``shape``; return the variables' shapes.

    ``declared`` maps names to normalised shapes. The result lists the
    variables of the text in order of first appearance, then the declared
    names that do not occur (SPEC 2: they are kept). Raises ShapeError.
    """
    inference = _Inference(root, text, declared)
    inference.build_constraints()
    inference.choose_kinds()
    inference.walk_dims()
    collect = READINGS.get()
    if collect is not None:
        for name in inference.var_order:
            collect.setdefault(name, inference.var_reason[name])
    names = inference.dim_names()
    for term in iter_postorder(root):
        term.shape = inference.resolve(names, term.dims)
    env = {name: inference.resolve(names, inference.var_dims[name])
           for name in inference.var_order}
    for name, shape in declared.items():
        env.setdefault(name, shape)
    return env


# Where readings() collects the reasons (a context variable: safe across threads).
READINGS: contextvars.ContextVar = contextvars.ContextVar("mathcalc_readings", default=None)
