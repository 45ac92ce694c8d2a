"""The Python API of SPEC section 3: every entry point takes an Expr or text."""

from __future__ import annotations

from .diff import diff_node
from .errors import DiffError, MathcalcError, ShapeError
from .explain import explain_expr
from .expression import Expr, as_expr, keywords_are_shapes, spd, symmetric  # noqa: F401
from .parse import defined_names
from .printing.latex import derivation_latex, to_latex
from .printing.source import written_form
from .printing.where import Where, where as where_of
from .sympy_interop import node_from_sympy


def _option(shapes: dict, name: str, default):
    """An option that is also a possible variable name (``order``, ``bold``).

    A tuple or list given under that name is the variable's shape; anything
    else is the option's value.
    """
    value = shapes.get(name, default)
    if isinstance(value, (tuple, list)):
        return default
    shapes.pop(name, None)
    return value


@keywords_are_shapes()
def parse(text: str, /, **shapes) -> Expr:
    """Parse text into an Expr; shapes are keywords: ``x=("n",)``, ``A=("m", "n")``.

    The text is positional, so any name (``text`` too) can be declared.
    """
    if not isinstance(text, str):
        raise MathcalcError(f"parse expects a string, got {type(text).__name__}")
    return as_expr(text, shapes)


def _wrt_shape(f: Expr, wrt: str) -> tuple:
    if not isinstance(wrt, str):
        raise DiffError(f"differentiate with respect to a variable name, not {wrt!r}")
    env = f.variables
    if wrt not in env:
        _not_defined(f, wrt, env)
        raise DiffError(f"cannot differentiate with respect to {wrt!r}: it is neither in the "
                        f"expression nor declared (variables: {', '.join(env) or 'none'})")
    return env[wrt]


def _not_defined(f: Expr, wrt: str, env: dict) -> None:
    """A DiffError when ``wrt`` is a name the text defines (SPEC 7): it is not a variable."""
    definition = defined_names(f.source).get(wrt) if f.source is not None else None
    if definition is not None:
        raise DiffError(f"cannot differentiate with respect to {wrt!r}: it is defined in the "
                        f"expression ({wrt} = {definition}), not a variable; differentiate "
                        f"with respect to a variable ({', '.join(env) or 'none'})")


@keywords_are_shapes("order")
def diff(f, wrt: str, /, **shapes) -> Expr:
    """The derivative of f with respect to the variable ``wrt``: shape f.shape + wrt's shape.

    ``order=k`` takes the k-th derivative (a tuple under ``order`` declares a
    variable of that name instead).
    """
    order = _option(shapes, "order", 1)
    f = as_expr(f, shapes)
    shape = _wrt_shape(f, wrt)
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise DiffError(f"the order of a derivative must be a positive integer, not {order!r}")
    node = f.node
    for _ in range(order):
        node = diff_node(node, wrt, shape)
    return Expr(node, f.variables, f.structure)


@keywords_are_shapes("order")
def jacobian(f, wrt: str, /, **shapes) -> Expr:
    """Same as diff, for any f: shape f.shape + wrt's shape."""
    return diff(f, wrt, **shapes)


@keywords_are_shapes()
def grad(f, wrt: str, /, **shapes) -> Expr:
    """The gradient of a scalar f: shape of ``wrt``."""
    f = as_expr(f, shapes)
    if f.shape != ():
        raise ShapeError(f"grad needs a scalar expression; this one has shape {f.shape} "
                         "(use jacobian for vector- or matrix-valued expressions)")
    return diff(f, wrt)


@keywords_are_shapes()
def hessian(f, wrt: str, /, **shapes) -> Expr:
    """diff(diff(f, wrt), wrt) for a scalar f: shape wrt.shape + wrt.shape."""
    f = as_expr(f, shapes)
    if f.shape != ():
        raise ShapeError(f"hessian needs a scalar expression; this one has shape {f.shape}")
    return diff(f, wrt, order=2)


@keywords_are_shapes("bold")
def latex(f, /, **shapes) -> str:
    """LaTeX for the expression (bold vectors and matrices with bold=True)."""
    bold = _option(shapes, "bold", False)
    if isinstance(f, Where):  # the where-form's display (SPEC 7)
        return f.latex(bold=bold)
    return to_latex(as_expr(f, shapes).node, bold=bold)


@keywords_are_shapes()
def where(f, /, **shapes):
    """f with its repeated and long subexpressions named t1, t2, … (SPEC 7).

    ``w.result`` is an Expr over the temporaries, ``w.definitions`` lists
    ``(name, Expr)`` in dependency order; ``str(w)`` reads back with ``parse``
    (given the variables' shapes) to an expression equivalent to f, and
    ``latex(w)`` is one aligned display.
    """
    return where_of(as_expr(f, shapes))


@keywords_are_shapes("bold")
def latex_derivation(f, wrt: str, /, **shapes) -> str:
    """The whole statement ``\\frac{\\partial}{\\partial W} f = df`` as one display."""
    bold = _option(shapes, "bold", False)
    f = as_expr(f, shapes)
    g = diff(f, wrt)
    # f as the user wrote it (no reordering), the result simplified
    return derivation_latex(f.node, wrt, g.node, f.variables[wrt], bold=bold,
                            written=written_form(f, bold))


@keywords_are_shapes()
def explain(f, wrt: str, /, **shapes):
    """The derivation of ∂f/∂wrt step by step, as Parr & Howard write it (SPEC 8).

    ``ex.steps`` lists Step(name, definition, local); ``str(ex)`` and
    ``ex.latex`` show the intermediate variables, the local derivatives, the
    chain rule and the simplified result ``ex.result`` (equivalent to diff).
    """
    f = as_expr(f, shapes)
    return explain_expr(f, wrt, _wrt_shape(f, wrt))


def from_sympy(obj) -> Expr:
    """An Expr equal to a SymPy matrix (or scalar) expression."""
    return Expr(node_from_sympy(obj))
