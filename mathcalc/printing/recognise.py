"""Recognition: core nodes (orientation-free einsums) to the matrix-notation AST.

The core has no row or column vectors: a vector is shape ``("n",)`` and every
multiplication is a ``Product`` einsum. Printing decides orientation: vectors
are column vectors, and a product's factors are combined, move by move, into
chains of matrix operations whose index pattern equals the einsum's:

- ``ij,j->i`` is ``A*x``; ``i,i->`` is ``x'*y``; ``i,j->ij`` is ``x*y'``
  (matrix products along an index summed in exactly two places);
- ``ii->`` is ``tr(A)``, ``ii->i`` is ``diag(A)``;
- ``i->`` is ``sum(x)``; ``ij->i`` is ``A*ones(n)`` (an index summed in one place);
- ``i,i->i`` is ``x .* y`` (same index sets: Hadamard);
- ``i,ij->ij`` is ``diag(v)*A`` (a vector index shared with a matrix).

All sequences of moves are tried (a greedy pass for very long products) and
the form with the fewest tokens, then the fewest transposes, wins; the text
is the tie-break, so the choice is deterministic. What no sequence reaches
prints in index notation (see ``matrix.py``).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from .. import nodes as E
from ..calls import KIND_OF_RANK, TRANSPOSED
from ..functions import FUNCTIONS
from . import tree as M
from .layout import cost, measure, render

_KIND = KIND_OF_RANK  # a core node's rank -> its kind (vectors are columns)
_INDEX_NAMES = "ijklpqrstuvwabcdefgh"
_EXHAUSTIVE_LIMIT = 6  # pieces; longer products are combined greedily


def recognise(node: E.Node, avoid=(), recogniser=None) -> M.Ast:
    """The matrix-notation AST of ``node``; vectors are column vectors.

    Index notation never names an index like a variable of ``node`` or a name
    in ``avoid`` (e.g. the variables an ``Expr`` keeps that dropped out of it).
    ``recogniser`` is the ``_Recogniser`` to run (a subclass that notes more,
    as the LaTeX printer's); a fresh one by default.
    """
    recogniser = _Recogniser() if recogniser is None else recogniser
    recogniser.avoid = frozenset(avoid)
    # Children first, so that no rule recurses deeply (results of deep networks).
    for part in E.walk(node)[:-1]:
        if part.rank <= 2:
            try:
                recogniser.matrix(part)
            except _NoMatrixForm:
                pass
    return recogniser.top(node)


# ---------------------------------------------------------------------------
# AST helpers shared by the recogniser (they rank forms with ``cost``)


def dim_text(d) -> str:
    return str(d)


def _leaf_for_rank(text: str, rank: int, role: str = "var") -> M.Leaf:
    return M.Leaf(text, _KIND[rank], role)


def sized(name: str, shape: tuple) -> M.Leaf:
    """``ones(n)``, ``zeros(m, n)``, ``eye(n)`` with the dimensions of ``shape``."""
    role = {"ones": "ones", "zeros": "zeros", "eye": "eye"}[name]
    dims = (shape[0],) if name == "eye" else shape
    return M.Leaf(f"{name}({', '.join(dim_text(d) for d in dims)})", _KIND[len(shape)], role,
                  tuple(dims))


def number(value) -> M.Ast:
    """A numeric constant: ``2``, ``0.5`` (terminating), ``1/3``, floats by repr; minus as Neg."""
    if isinstance(value, float):
        text = repr(abs(value))
        leaf = M.Leaf(text, M.SCALAR, "number")
        return M.Neg(leaf) if value < 0 else leaf
    value = Fraction(value)
    mag = abs(value)
    if mag.denominator == 1:
        ast = M.Leaf(str(mag.numerator), M.SCALAR, "number")
    elif _terminates(mag.denominator):
        ast = M.Leaf(_decimal(mag), M.SCALAR, "number")
    else:
        ast = M.Scaled(str(mag.numerator), (), None, (M.Leaf(str(mag.denominator), M.SCALAR, "number"),))
    return M.Neg(ast) if value < 0 else ast


def _terminates(q: int) -> bool:
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def _decimal(f: Fraction) -> str:
    with localcontext() as ctx:
        ctx.prec = 60
        return format(Decimal(f.numerator) / Decimal(f.denominator), "f")


def negate(ast: M.Ast) -> M.Ast:
    """``-ast``: a double negation cancels, a sum flips its signs (``-(a - b)`` is
    ``b - a``, ``-(-A - A')`` is ``A + A'``: fewer tokens either way)."""
    if isinstance(ast, M.Neg):
        return ast.arg
    if isinstance(ast, M.Add):
        return flip_signs(ast)
    return M.Neg(ast)


def flip_signs(ast: M.Add) -> M.Add:
    """The sum with every sign flipped, positive terms first; the order within each
    sign is kept (it is the recogniser's, whose first criterion is the sign)."""
    flipped = [("+" if sign == "-" else "-", term) for sign, term in ast.terms]
    flipped.sort(key=lambda st: st[0] == "-")  # stable
    return M.Add(tuple(flipped), ast.kind)


def unsigned(ast: M.Ast) -> M.Ast | None:
    """``-ast`` where the sign is better pulled out of a factor of a product: a
    negation, or a sum with more negative than positive terms; else None."""
    if isinstance(ast, M.Neg):
        return ast.arg
    if isinstance(ast, M.Add):
        negative = sum(sign == "-" for sign, _ in ast.terms)
        if 2 * negative > len(ast.terms):
            return flip_signs(ast)
    return None


def matmul(*factors: M.Ast) -> M.Ast:
    """``F1*F2*...``, flattening nested chains; a chain of one factor is that factor.

    A diagonal matrix applied to a vector is a Hadamard product: ``diag(v)*u``
    is ``v .* u``; ``u'*diag(v)`` is ``(u .* v)'`` where that is no longer.
    """
    flat = []
    for f in factors:
        flat.extend(f.factors if isinstance(f, M.MatMul) else (f,))
    out: list = []
    for f in flat:
        if f.kind == M.COLUMN:
            while out and _is_diag_matrix(out[-1]):
                f = hadamard(out.pop().args[0], f)
        elif _is_diag_matrix(f) and out and out[-1].kind == M.ROW:
            row = transpose(hadamard(transpose(out[-1]), f.args[0]))
            if cost(row)[:3] < cost(M.MatMul((out[-1], f)))[:3]:
                out.pop()
                f = row
        out.append(f)
    return out[0] if len(out) == 1 else M.MatMul(tuple(out))


def _is_diag_matrix(ast: M.Ast) -> bool:
    return isinstance(ast, M.Call) and ast.name == "diag" and ast.kind == M.MATRIX


def hadamard(*operands: M.Ast) -> M.Ast:
    """``a .* b ./ c``: flattened, powers with negative exponents become divisors,
    operands in a readable deterministic order (short first)."""
    factors, divisors = [], []
    for op in operands:
        if _is_reciprocal(op):
            divisors.extend(op.divisors)
        elif isinstance(op, M.Hadamard):
            factors.extend(op.factors)
            divisors.extend(op.divisors)
        else:
            factors.append(op)
    kind = next((op.kind for op in operands if op.kind != M.SCALAR), M.SCALAR)
    factors.sort(key=cost)
    divisors.sort(key=cost)
    if not divisors and len(factors) == 1:
        return factors[0]
    if not factors:
        factors = [M.Leaf("1", M.SCALAR, "number")]
    return M.Hadamard(tuple(factors), tuple(divisors), kind)


def _is_reciprocal(ast: M.Ast) -> bool:
    """``1 ./ u``, as a Pow with a negative exponent prints."""
    return isinstance(ast, M.Hadamard) and len(ast.factors) == 1 and \
        isinstance(ast.factors[0], M.Leaf) and ast.factors[0].text == "1"


# "symmetric": a variable declared symmetric or spd (SPEC 6), S' = S
_SYMMETRIC_ROLES = ("eye", "delta", "symmetric")


_TRANSPOSED: dict = {}  # (text, kind) -> transpose: the text fixes the value
_PUSH_DEPTH = 12  # how deep transposes are pushed into a form


def transpose(ast: M.Ast, depth: int = 0) -> M.Ast:
    """The transpose of ``ast``, in its cheapest spelling.

    ``(A*B)'`` is also ``B'*A'``; ``(A + B)'`` is ``A' + B'``; element-wise
    functions commute with it. On a tie the plain ``X'`` wins (``inv(X)'``).
    """
    # (the text fixes the value, given which names are declared symmetric)
    key = (render(ast), ast.kind, symmetric_leaves(ast))
    found = _TRANSPOSED.get(key)
    if found is None:
        found = _transpose(ast, depth)
        if len(_TRANSPOSED) > 20000:
            _TRANSPOSED.clear()
        _TRANSPOSED[key] = found
    return found


def _transpose(ast: M.Ast, depth: int) -> M.Ast:
    if ast.kind == M.SCALAR:
        return ast
    if isinstance(ast, M.Transpose):
        return ast.arg
    if isinstance(ast, M.Leaf) and ast.role in _SYMMETRIC_ROLES:
        return ast
    if isinstance(ast, M.Call) and ast.name == "diag" and ast.kind == M.MATRIX:
        return ast  # diag(v) is symmetric
    if symmetric_leaves(ast) and _symmetric(ast, depth):
        return ast  # inv(S), S + I, exp(S) for a symmetric S
    if isinstance(ast, M.Neg):
        return M.Neg(transpose(ast.arg, depth))
    if depth > _PUSH_DEPTH:
        return M.Transpose(ast)
    candidates = [M.Transpose(ast)] + _pushed_transposes(ast, depth + 1)
    return min(candidates, key=lambda a: cost(a)[:2])  # min keeps the first on a tie


def symmetric_leaves(ast: M.Ast) -> frozenset:
    """The names of the symmetric variables in ``ast`` (cached on each AST node)."""
    found = ast.__dict__.get("_symmetric_leaves")
    if found is None:
        for part in M.postorder(ast):  # children first: deep results never recurse
            if "_symmetric_leaves" in part.__dict__:
                continue
            if isinstance(part, M.Leaf):
                mine = frozenset((part.text,)) if part.role == "symmetric" else frozenset()
            else:
                mine = frozenset().union(*(symmetric_leaves(c) for c in M.children(part)))
            object.__setattr__(part, "_symmetric_leaves", mine)
        found = ast.__dict__["_symmetric_leaves"]
    return found


def _symmetric(ast: M.Ast, depth: int) -> bool:
    """Whether a matrix is its own transpose because its symmetric parts are:
    a function or sum of symmetric matrices (and scalars)."""
    def same(a):
        return a.kind == M.SCALAR or render(transpose(a, depth + 1)) == render(a)

    if ast.kind != M.MATRIX:
        return False
    if isinstance(ast, M.Call) and (ast.name in ("inv", "max", "min") or _elementwise(ast.name)):
        return all(same(a) for a in ast.args)
    if isinstance(ast, M.Add):
        return all(same(term) for _, term in ast.terms)
    if isinstance(ast, M.Power) and ast.elementwise:
        return same(ast.base) and same(ast.exponent)
    return False


def _pushed_transposes(ast: M.Ast, depth: int) -> list:
    def t(a):
        return transpose(a, depth)

    if isinstance(ast, M.MatMul):
        return [matmul(*[t(f) for f in reversed(ast.factors)])]
    if isinstance(ast, M.Hadamard):
        quotients = [M.Hadamard((M.Leaf("1", M.SCALAR, "number"),), (t(d),), _flip(ast.kind))
                     for d in ast.divisors]
        return [hadamard(*[t(f) for f in ast.factors], *quotients)]
    if isinstance(ast, M.Scaled):
        return [M.Scaled(ast.number, ast.scalars, t(ast.body), ast.divisors)]
    # Into sums and functions only where a transpose inside could cancel:
    # tanh(A')' is tanh(A), but tanh(W*x)' is best left as it is.
    if not measure(ast)[1]:  # no transpose inside (the layout's quotes, counted once)
        return []
    if isinstance(ast, M.Add):  # (W + W')' is W' + W: fewer transposes first again, W + W'
        terms = sorted(((s, t(term)) for s, term in ast.terms),
                       key=lambda st: (st[0] == "-", matrix_transposes(st[1])))
        return [M.Add(tuple(terms), _flip(ast.kind))]
    if isinstance(ast, M.Call) and (ast.name in ("inv", "max", "min") or _elementwise(ast.name)):
        return [M.Call(ast.name, tuple(t(a) for a in ast.args), _flip(ast.kind))]
    if isinstance(ast, M.Power) and ast.elementwise:
        exponent = t(ast.exponent) if ast.exponent.kind == M.MATRIX else ast.exponent
        return [M.Power(t(ast.base), exponent, True, _flip(ast.kind))]
    if isinstance(ast, M.Leaf) and ast.role in ("ones", "zeros") and ast.kind == M.MATRIX:
        return [sized(ast.role, ast.dims[::-1])]
    return []


def matrix_transposes(ast: M.Ast) -> int:
    """How many transposes of matrices ``ast`` has (x' in x'*A*x is a row, not counted).

    Cached on each AST node: shared subtrees of deep results are counted once each.
    """
    found = ast.__dict__.get("_transposes")
    if found is not None:
        return found
    count = int(isinstance(ast, M.Transpose) and ast.arg.kind == M.MATRIX)
    for value in vars(ast).values():
        if isinstance(value, M.Ast):
            count += matrix_transposes(value)
        elif isinstance(value, tuple):
            for v in value:
                if isinstance(v, M.Ast):
                    count += matrix_transposes(v)
                elif isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], M.Ast):
                    count += matrix_transposes(v[1])
    object.__setattr__(ast, "_transposes", count)
    return count


def _flip(kind: int) -> int:
    return TRANSPOSED[kind]


def _elementwise(name: str) -> bool:
    return name in FUNCTIONS


def scaled(coef, scalars=(), body=None, divisors=(), sort=True) -> M.Ast:
    """``coef * scalars * body / divisors``, with a negative coefficient as a minus.

    Scalars are put in a readable order (short first) unless ``sort`` is False.
    """
    divisors = list(divisors)
    if isinstance(coef, float):
        mag, num_text = abs(coef), repr(abs(coef))
        negative = coef < 0
        if mag == 1:
            num_text = None
    else:
        coef = Fraction(coef)
        negative = coef < 0
        p, q = abs(coef.numerator), coef.denominator
        num_text = None if p == 1 else str(p)
        if q != 1:
            divisors.insert(0, M.Leaf(str(q), M.SCALAR, "number"))
    scalars = sorted(scalars, key=cost) if sort else list(scalars)
    if body is None and scalars and isinstance(scalars[-1], M.MatMul):
        body = scalars.pop()  # c*x'*y: a scalar chain last scales like a body
    if num_text is None and not divisors and body is not None and not scalars:
        ast = body
    elif num_text is None and not divisors and body is None and len(scalars) == 1:
        ast = scalars[0]
    else:
        ast = M.Scaled(num_text, tuple(scalars), body, tuple(divisors))
        if body is not None and body.kind != M.SCALAR:
            ast = _folded(ast, mag if isinstance(coef, float) else abs(coef))
    return negate(ast) if negative else ast


def _folded(ast: M.Scaled, mag) -> M.Ast:
    """``ast`` or, where that has no more tokens, its factor moved into the body:
    ``(1 ./ sqrt(x))/2`` is ``0.5 ./ sqrt(x)``, ``(1 ./ u)/3`` is ``1 ./ (3*u)``,
    ``a*(1 ./ u)`` is ``a ./ u``, ``diag(1 ./ u)/2`` is ``diag(0.5 ./ u)``.

    ``mag`` is the positive numeric factor; ``scaled`` put its denominator
    first among ``ast.divisors``.
    """
    body = ast.body
    exact = isinstance(mag, Fraction)
    others = ast.divisors[1:] if exact and mag.denominator != 1 else ast.divisors
    folded, later = [], []
    if _is_reciprocal(body):
        if exact and mag.denominator != 1 and not ast.scalars and not others \
                and len(body.divisors) == 1:  # p ./ (q*u)
            inner = M.Scaled(str(mag.denominator), (), body.divisors[0])
            folded.append(M.Hadamard((number(mag.numerator),), (inner,), body.kind))
        if not ast.scalars and not others:
            factor = number(mag)  # 0.5, 3, 1/3
        elif ast.number is None and not ast.divisors and len(ast.scalars) == 1:
            factor = ast.scalars[0]
        else:
            factor = M.Scaled(ast.number, ast.scalars, None, ast.divisors)
        quotient = M.Hadamard((factor,), body.divisors, body.kind)
        # (a/2) ./ u, (1/3) ./ u only where shorter; 0.5 ./ u, a ./ u also on a tie
        (later if isinstance(factor, M.Scaled) else folded).append(quotient)
    elif isinstance(body, M.Call) and body.name == "diag" and body.kind == M.MATRIX:
        inner = scaled(mag, ast.scalars, body.args[0], others, sort=False)
        if isinstance(inner, M.Hadamard):  # folded into a reciprocal: diag(0.5 ./ u)
            folded.append(M.Call("diag", (inner,), M.MATRIX))
    # min keeps the first on a tie
    return min(folded + [ast] + later, key=lambda a: cost(a)[:3])


# ---------------------------------------------------------------------------
# The recogniser: one rule per core node type; unknown types raise TypeError.


class _Recogniser:
    def __init__(self):
        self._cache: dict = {}
        self._next_index = 0
        self._reserved: frozenset = frozenset()  # variable names: never index names
        self.avoid: frozenset = frozenset()  # more names index names must not take

    # -- entry points --------------------------------------------------------

    def top(self, node: E.Node) -> M.Ast:
        """The form of a whole result: a vector as a column (a gradient is one:
        ``A'*B'*y``, never the row ``y'*B*A``, which would not parse back where
        a column is needed); index notation where any part has no matrix form."""
        try:
            return self.matrix(node)
        except _NoMatrixForm:
            return self.indexed_top(node)

    def matrix(self, node: E.Node) -> M.Ast:
        """The matrix form of ``node`` with vectors as columns (cached per node).

        Raises _NoMatrixForm for tensors of order >= 3 and products that no
        chain of matrix operations spells.
        """
        cached = self._cache.get(node)
        if cached is None:
            rule = _check_type(node)
            try:
                if node.rank > 2:
                    raise _NoMatrixForm()
                cached = rule(self, node)
            except _NoMatrixForm:
                cached = _NO_FORM
            self._cache[node] = cached
        if cached is _NO_FORM:
            raise _NoMatrixForm()
        return cached

    # -- leaves --------------------------------------------------------------

    def _var(self, node: E.Var) -> M.Ast:
        return _leaf_for_rank(node.name, node.rank, "symmetric" if node.structure else "var")

    def _num(self, node: E.Num) -> M.Ast:
        return number(node.value)

    def _zero(self, node: E.Zero) -> M.Ast:
        return number(0) if node.rank == 0 else sized("zeros", node.shape)

    def _ones(self, node: E.Ones) -> M.Ast:
        return number(1) if node.rank == 0 else sized("ones", node.shape)

    def _delta(self, node: E.Delta) -> M.Ast:
        return sized("eye", node.shape)

    # -- sums ----------------------------------------------------------------

    def _sum(self, node: E.Sum) -> M.Ast:
        """Terms ordered readably: positive first, broadcast scalars last, fewer
        matrix transposes first (``A + A'``), then longer first (``x'*A*x + b'*x + c``)."""
        entries = []
        for term in node.terms:
            explicit = self.matrix(term)
            short = self._broadcast_scalar(term) if term.rank else None
            entries.append((explicit, short))

        def key(entry):
            explicit, short = entry
            ast = short if short is not None else explicit
            body = negate(ast) if isinstance(ast, M.Neg) else ast
            tokens, _, _, text = cost(body)
            return (isinstance(ast, M.Neg), short is not None, matrix_transposes(body), -tokens, text)

        entries.sort(key=key)
        # A broadcast scalar prints as the scalar (x + c, 1 - s) where another
        # term fixes the shape; if none does, the first keeps its ones(n).
        if all(short is not None for _, short in entries):
            entries[0] = (entries[0][0], None)
        terms = []
        for explicit, short in entries:
            ast = short if short is not None else explicit
            if isinstance(ast, M.Neg):
                terms.append(("-", ast.arg))
            else:
                terms.append(("+", ast))
        form = M.Add(tuple(terms), _KIND[node.rank])
        shared = _common_divisor(form)
        # x*y'/2 + y*x'/2 is (x*y' + y*x')/2: a symmetric part reads as the mean it is
        return shared if shared is not None and cost(shared)[:2] <= cost(form)[:2] else form

    def _broadcast_scalar(self, node: E.Node) -> M.Ast | None:
        """The scalar ``c`` when ``node`` is ``c`` broadcast over its shape, else None."""
        if isinstance(node, E.Ones):
            return number(1)
        if not isinstance(node, E.Product) or node.n_indices != node.rank:
            return None
        covered, scalars = set(), []
        for f, idx in node.factors:
            if f.rank == 0:
                scalars.append(f)
            elif isinstance(f, E.Ones) and len(idx) == 1:
                covered.add(idx[0])
            else:
                return None
        if covered != set(range(node.rank)):
            return None
        return self._scalar_product(node.coef, scalars)

    def _scalar_product(self, coef, factors) -> M.Ast:
        scalars, divisors = self._split_scalars(factors)
        return scaled(coef, scalars, None, divisors)

    def _split_scalars(self, factors):
        """Scalar factors and the divisors that negative powers of scalars become."""
        scalars, divisors = [], []
        for f in factors:
            if isinstance(f, E.Pow) and isinstance(f.exponent, E.Num) and f.exponent.value < 0:
                positive = E.power(f.base, E.Num(-f.exponent.value))
                divisors.append(self.matrix(positive))
            else:
                scalars.append(self.matrix(f))
        return scalars, divisors

    # -- products ------------------------------------------------------------

    def _product(self, node: E.Product) -> M.Ast:
        if node.rank > 2 or any(f.rank > 2 for f, _ in node.factors):
            raise _NoMatrixForm()
        scalar_nodes = [f for f, _ in node.factors if f.rank == 0]
        pieces = [(self.matrix(f), tuple(idx)) for f, idx in node.factors if f.rank > 0]
        scalars, divisors = self._split_scalars(scalar_nodes)
        form = self._product_form(node, node.coef, pieces, scalars, divisors)
        # Signs: a factor that is a negation or a sum of mostly negative terms
        # may give its sign to the whole product, -A'*(W + W')*u for
        # A'*(-W - W')*u; the cheaper form (fewer tokens, then minus signs) wins.
        flips = 0

        def pulled(ast):
            nonlocal flips
            positive = unsigned(ast)
            if positive is None:
                return ast
            flips += 1
            return positive

        s_pieces = [(pulled(ast), idx) for ast, idx in pieces]
        s_scalars = [pulled(ast) for ast in scalars]
        # (a/(-b) stays: test_latex keeps it as its example of \frac{a}{-b})
        s_divisors = [pulled(ast) if isinstance(ast, M.Add) else ast for ast in divisors]
        if flips:
            coef = node.coef if flips % 2 == 0 else -node.coef
            alt = self._product_form(node, coef, s_pieces, s_scalars, s_divisors)
            if cost(alt) < cost(form):
                form = alt
        return form

    def _product_form(self, node: E.Product, coef, pieces, scalars, divisors) -> M.Ast:
        solved = _Solver(pieces, node.rank, node.dims).solve()
        if solved is None:
            raise _NoMatrixForm()
        extra, main = solved
        return scaled(coef, scalars + list(extra), main, divisors)

    # -- element-wise and matrix functions -----------------------------------

    def _apply(self, node: E.Apply) -> M.Ast:
        return M.Call(node.fn, (self.matrix(node.arg),), _KIND[node.rank])

    def _pow(self, node: E.Pow) -> M.Ast:
        base, exponent = node.base, node.exponent
        elementwise = node.rank > 0
        if isinstance(exponent, E.Num) and exponent.value < 0:
            positive = self.matrix(E.power(base, E.Num(-exponent.value)))
            if elementwise:
                return M.Hadamard((M.Leaf("1", M.SCALAR, "number"),), (positive,), _KIND[node.rank])
            return M.Scaled(None, (), None, (positive,))
        return M.Power(self.matrix(base), self.matrix(exponent), elementwise, _KIND[node.rank])

    def _max(self, node: E.Max) -> M.Ast:
        return M.Call("max", (self.matrix(node.left), self.matrix(node.right)), _KIND[node.rank])

    def _min(self, node: E.Min) -> M.Ast:
        return M.Call("min", (self.matrix(node.left), self.matrix(node.right)), _KIND[node.rank])

    # -- index notation -----------------------------------------------------

    def _fresh_index(self) -> str:
        """The next index name: i, j, k, l, p, q, ..., then i1, j1, ...; a name that
        is a variable of the result is skipped (``W*k`` by W: ``δ(i,j)*k(l)``)."""
        while True:
            k = self._next_index
            self._next_index += 1
            letter = _INDEX_NAMES[k % len(_INDEX_NAMES)]
            name = letter if k < len(_INDEX_NAMES) else f"{letter}{k // len(_INDEX_NAMES)}"
            if name not in self._reserved:
                return name

    def indexed_top(self, node: E.Node) -> M.Ast:
        """Index notation for a whole result: axes named i, j, k, ... in order,
        skipping the names of the result's variables."""
        self._reserved = self.avoid | {n.name for n in E.walk(node) if isinstance(n, E.Var)}
        saved = self._next_index
        self._next_index = 0
        names = tuple(self._fresh_index() for _ in range(node.rank))
        self._next_index = max(self._next_index, saved)
        return self.indexed(node, names)

    def indexed(self, node: E.Node, names: tuple) -> M.Ast:
        """Entry ``names`` of ``node`` in index notation (a scalar-valued AST)."""
        if isinstance(node, E.Product):
            local = list(names) + [self._fresh_index() for _ in range(node.rank, node.n_indices)]
            # δ factors first, then by their indices: δ(i,j)*A(i,l)*B(l,j)*x(k).
            factors = sorted(node.factors,
                             key=lambda fi: (not isinstance(fi[0], E.Delta), sorted(fi[1])))
            items = [self.indexed_factor(f, tuple(local[i] for i in idx)) for f, idx in factors]
            return scaled(node.coef, items, None, (), sort=False)
        if isinstance(node, E.Sum):
            terms = []
            for t in node.terms:
                ast = self.indexed(t, names)
                terms.append(("-", ast.arg) if isinstance(ast, M.Neg) else ("+", ast))
            terms.sort(key=lambda st: st[0] == "-")
            return M.Add(tuple(terms), M.SCALAR)
        if isinstance(node, E.Apply):
            return M.Call(node.fn, (self.indexed(node.arg, names),), M.SCALAR)
        if isinstance(node, (E.Max, E.Min, E.Pow)):
            left, right = (self._broadcast_entry(op, names) for op in node.children())
            if isinstance(node, E.Pow):
                return M.Power(left, right, False, M.SCALAR)
            return M.Call(type(node).__name__.lower(), (left, right), M.SCALAR)
        if isinstance(node, E.Zero):
            return number(0)
        if isinstance(node, E.Ones):
            return number(1)
        return self.indexed_factor(node, names)

    def _broadcast_entry(self, node: E.Node, names: tuple) -> M.Ast:
        return self.matrix(node) if node.rank == 0 else self.indexed(node, names)

    def indexed_factor(self, node: E.Node, names: tuple) -> M.Ast:
        """One factor of an index-notation product: ``x(k)``, ``δ(i,j)``, ``(W*x + b)(i)``."""
        if node.rank == 0:
            return self.matrix(node)
        if isinstance(node, E.Delta):  # I(i,j) where a variable is named δ
            text = "I" if "δ" in self._reserved else "δ"
            return M.Indexed(M.Leaf(text, M.SCALAR, "delta"), names)
        if node.rank > 2:
            return self.indexed(node, names)
        try:
            ast = self.matrix(node)
        except _NoMatrixForm:
            return self.indexed(node, names)
        if isinstance(ast, M.Transpose) and isinstance(ast.arg, M.Leaf):
            return M.Indexed(ast.arg, tuple(reversed(names)))
        return M.Indexed(ast, names)


def _common_divisor(ast: M.Add):
    """``(a + b)/c`` for a sum ``a/c + b/c`` whose every term has the one numeric
    divisor c (and no other factor outside its body), else None."""
    divisor, bodies = None, []
    for sign, term in ast.terms:
        if not (isinstance(term, M.Scaled) and term.number is None and not term.scalars
                and term.body is not None and len(term.divisors) == 1
                and isinstance(term.divisors[0], M.Leaf) and term.divisors[0].role == "number"):
            return None
        if divisor is not None and term.divisors[0] != divisor:
            return None
        divisor = term.divisors[0]
        bodies.append((sign, term.body))
    if divisor is None or len(bodies) < 2:
        return None
    return M.Scaled(None, (), M.Add(tuple(bodies), ast.kind), (divisor,))


def _unary_rule(name: str):
    """inv, det, logdet, softmax, logsumexp, norm1, norm2: a call on the matrix form."""
    def rule(self, node):
        return M.Call(name, (self.matrix(node.arg),), _KIND[node.rank])
    return rule


class _NoMatrixForm(Exception):
    """A part has no matrix form: the whole result prints in index notation."""


_NO_FORM = object()


def _check_type(node: E.Node):
    try:
        return _RULES[type(node)]
    except KeyError:
        raise E.unknown_node("printing", node) from None


_RULES = {
    E.Var: _Recogniser._var,
    E.Num: _Recogniser._num,
    E.Zero: _Recogniser._zero,
    E.Ones: _Recogniser._ones,
    E.Delta: _Recogniser._delta,
    E.Sum: _Recogniser._sum,
    E.Product: _Recogniser._product,
    E.Apply: _Recogniser._apply,
    E.Pow: _Recogniser._pow,
    E.Max: _Recogniser._max,
    E.Min: _Recogniser._min,
    E.Inv: _unary_rule("inv"),
    E.Det: _unary_rule("det"),
    E.LogDet: _unary_rule("logdet"),
    E.Softmax: _unary_rule("softmax"),
    E.LogSumExp: _unary_rule("logsumexp"),
    E.Norm1: _unary_rule("norm1"),
    E.Norm2: _unary_rule("norm2"),
}


# ---------------------------------------------------------------------------
# The product solver: pieces (AST, labels) combined into one matrix form.


class _Solver:
    """Combines the non-scalar factors of one product into a matrix form.

    A piece is ``(ast, labels)``: labels ``(a,)`` for a column vector over
    index a, ``(a, b)`` for a matrix with rows a and columns b. Each move
    replaces pieces by an equivalent piece (or a scalar); the result is
    ``(scalars, main)`` with ``main`` over the output indices in order, or
    None when no sequence of moves reaches one.
    """

    def __init__(self, pieces, rank: int, dims: tuple):
        self.rank = rank
        self.dims = dims
        self.summed = set(range(rank, len(dims)))
        self.memo: dict = {}
        self.exhaustive = len(pieces) <= _EXHAUSTIVE_LIMIT
        self.pieces = self._merge_output_ones(list(pieces))

    def _merge_output_ones(self, pieces):
        """ones(m) on axis 0 and ones(n) on axis 1 are the matrix ones(m, n)."""
        if self.rank != 2:
            return pieces
        ones = {p[1][0]: p for p in pieces if _is_ones(p[0]) and p[1][0] < 2}
        if set(ones) != {0, 1}:
            return pieces
        rest = [p for p in pieces if p is not ones[0] and p is not ones[1]]
        return rest + [(sized("ones", self.dims[:2]), (0, 1))]

    def solve(self):
        return self._solve(tuple(self.pieces))

    def _key(self, pieces) -> tuple:
        return tuple(sorted((render(ast), labels) for ast, labels in pieces))

    def _solve(self, pieces):
        """The best (scalars, main) over every sequence of moves (memoised)."""
        if not self.exhaustive:
            return self._greedy(pieces)
        key = self._key(pieces)
        if key in self.memo:
            return self.memo[key]
        result = self._terminal(pieces)
        if result is None:
            best, best_cost = None, None
            for used, made in self._moves(pieces):
                new_pieces, scalar = _apply_move(pieces, used, made)
                sub = self._solve(new_pieces)
                if sub is None:
                    continue
                cand = (sub[0] + ((scalar,) if scalar is not None else ()), sub[1])
                c = cost(scaled(1, cand[0], cand[1]))
                if best_cost is None or c < best_cost:
                    best, best_cost = cand, c
            result = best
        self.memo[key] = result
        return result

    def _greedy(self, pieces):
        """For long products: each time the move that makes the cheapest piece."""
        scalars = []
        pieces = _merge_equal_labels(pieces, self._inner)
        while True:
            result = self._terminal(pieces)
            if result is not None:
                return (tuple(scalars), result[1])
            moves = self._moves(pieces)
            if not moves:
                return None
            used, made = min(moves, key=lambda m: cost(m[1] if not isinstance(m[1], tuple)
                                                        else m[1][0]))
            pieces, scalar = _apply_move(pieces, used, made)
            if scalar is not None:
                scalars.append(scalar)

    def _terminal(self, pieces):
        if self.rank == 0 and not pieces:
            return ((), None)
        if len(pieces) != 1:
            return None
        ast, labels = pieces[0]
        if self.rank == 1 and labels == (0,):
            return ((), ast)
        if self.rank == 2 and labels == (0, 1):
            return ((), ast)
        if self.rank == 2 and labels == (1, 0):
            return ((), transpose(ast))
        return None

    def _count(self, pieces) -> dict:
        counts: dict = {}
        for _, labels in pieces:
            for lab in labels:
                counts[lab] = counts.get(lab, 0) + 1
        return counts

    def _moves(self, pieces) -> list:
        """Every move from ``pieces``: (indices of the pieces used, new piece or scalar)."""
        counts = self._count(pieces)
        moves = []
        for k, piece in enumerate(pieces):
            for made in self._single(piece, counts):
                moves.append(((k,), made))
        # Only pieces that share an index combine, or two vectors over output
        # axes (an outer product); listing just those keeps long products fast.
        holders: dict = {}
        for k, (_, labels) in enumerate(pieces):
            for lab in set(labels):
                holders.setdefault(lab, []).append(k)
        groups = list(holders.values())
        groups.append([k for k, (_, labels) in enumerate(pieces)
                       if len(labels) == 1 and labels[0] < self.rank])
        pairs = sorted({(a, b) for group in groups for a in group for b in group if a != b})
        for a, b in pairs:
            for made in self._pair(pieces[a], pieces[b], counts, a < b):
                moves.append(((a, b), made))
        return moves

    def _unique_summed(self, lab, counts) -> bool:
        return lab in self.summed and counts[lab] == 1

    def _single(self, piece, counts):
        ast, labels = piece
        if len(labels) == 2 and labels[0] == labels[1]:
            a = labels[0]
            if a in self.summed and counts[a] == 2:
                yield M.Call("tr", (ast,), M.SCALAR)  # ii->
            else:
                yield (M.Call("diag", (ast,), M.COLUMN), (a,))  # ii->i
            return
        if labels and all(self._unique_summed(lab, counts) for lab in labels):
            yield M.Call("sum", (ast,), M.SCALAR)  # i-> , ij->
            return
        if len(labels) == 2:
            a, b = labels
            if self._unique_summed(b, counts):  # ij->i: A*ones(n)
                yield (matmul(ast, sized("ones", (self.dims[b],))), (a,))
            elif self._unique_summed(a, counts):  # ij->j: A'*ones(m)
                yield (matmul(transpose(ast), sized("ones", (self.dims[a],))), (b,))

    def _pair(self, p, q, counts, ordered_first: bool):
        (pa, pl), (qa, ql) = p, q
        shared = set(pl) & set(ql)
        for s in shared:
            if s in self.summed and counts[s] == 2 and pl.count(s) == 1 and ql.count(s) == 1:
                yield from self._contract(p, q, s)
        # Hadamard: the same index set, one shape (the other order gives the same form).
        # Not for two vectors an inner product contracts: x'*y, not sum(x .* y)
        # (but sum(x .* y .* z) where one already is a Hadamard product).
        if ordered_first and pl and sorted(pl) == sorted(ql) and len(set(pl)) == len(pl) \
                and not self._inner(pl, counts[pl[0]], (pa, qa)):
            qa_oriented = qa if ql == pl else transpose(qa)
            yield (hadamard(pa, qa_oriented), pl)
        # diag(v)*A: a vector's index shared with a matrix (not a plain contraction).
        if len(pl) == 1 and len(ql) == 2 and ql[0] != ql[1] and pl[0] in ql:
            a = pl[0]
            if not (a in self.summed and counts[a] == 2):
                yield self._diag(pa, qa, ql, a)
        # Outer product x*y' of two vectors over different output axes.
        if len(pl) == 1 and len(ql) == 1 and pl != ql and pl[0] < self.rank and ql[0] < self.rank \
                and counts[pl[0]] == 1 and counts[ql[0]] == 1:
            yield (matmul(pa, transpose(qa)), (pl[0], ql[0]))

    def _inner(self, labels, count: int, asts) -> bool:
        """Whether vectors ``asts`` over ``labels`` (held by ``count`` pieces) are best
        an inner product ``x'*y``: two, neither a Hadamard product, summed there only."""
        return len(labels) == 1 and labels[0] in self.summed and count == 2 == len(asts) \
            and not any(isinstance(a, M.Hadamard) for a in asts)

    def _contract(self, p, q, s):
        """A matrix product along index s, summed in exactly p and q."""
        (pa, pl), (qa, ql) = p, q
        if len(pl) == 1 and len(ql) == 1:  # i,i->: x'*y
            yield matmul(transpose(pa), qa)
            return
        if len(pl) == 1:  # vector p, matrix q: q oriented (b, s) times p
            b = ql[0] if ql[1] == s else ql[1]
            q_bs = qa if ql[1] == s else transpose(qa)
            yield (matmul(q_bs, pa), (b,))
            return
        if len(ql) == 1:
            return  # the (q, p) order yields it
        a = pl[0] if pl[1] == s else pl[1]
        b = ql[1] if ql[0] == s else ql[0]
        p_as = pa if pl[1] == s else transpose(pa)
        q_sb = qa if ql[0] == s else transpose(qa)
        yield (matmul(p_as, q_sb), (a, b))

    def _diag(self, va, ma, ml, a):
        if isinstance(ma, M.Leaf) and ma.role == "eye":
            return (M.Call("diag", (va,), M.MATRIX), ml)  # v(i) δ(i,j)
        d = M.Call("diag", (va,), M.MATRIX)
        if ml[0] == a:
            return (matmul(d, ma), ml)
        return (matmul(ma, d), ml)


def _merge_equal_labels(pieces, inner) -> tuple:
    """Pieces over the very same indices are one Hadamard product, merged in one step,
    except vectors that ``inner(labels, count, asts)`` says are an inner product.

    (Pairwise, a long element-wise chain such as the derivative of
    exp(exp(...(x))) would be searched move by move, in cubic time.)
    """
    groups: dict = {}
    for ast, labels in pieces:
        groups.setdefault(labels, []).append(ast)
    counts: dict = {}
    for _, labels in pieces:
        for lab in labels:
            counts[lab] = counts.get(lab, 0) + 1
    merged = []
    for labels, asts in groups.items():
        if len(asts) > 1 and labels and len(set(labels)) == len(labels) \
                and not inner(labels, counts[labels[0]], asts):
            merged.append((hadamard(*asts), labels))
        else:
            merged.extend((ast, labels) for ast in asts)
    return tuple(merged)


def _is_ones(ast: M.Ast) -> bool:
    return isinstance(ast, M.Leaf) and ast.role == "ones" and ast.kind == M.COLUMN


def _apply_move(pieces: tuple, used: tuple, made) -> tuple:
    """(new pieces, new scalar or None): ``made`` is a piece (ast, labels) or a scalar AST."""
    rest = tuple(p for k, p in enumerate(pieces) if k not in used)
    if isinstance(made, tuple):
        return (rest + (made,), None)
    return (rest, made)
