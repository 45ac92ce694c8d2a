"""Checking hand derivations in tests, and the pytest plugin.

``assert_derivative(f, wrt, expected, **shapes)`` passes when ``diff(f, wrt)``
is equivalent to ``expected`` and otherwise raises an AssertionError that
shows both sides in matrix notation, the largest difference, the entry and
the point where it occurs.

Installed, mathcalc registers this module as a pytest plugin (entry point
``pytest11``), which provides the fixture ``derivative_checker``::

    def test_quadratic_form(derivative_checker):
        derivative_checker("x'*A*x", "x", "(A + A')*x")

Importing this module does not need pytest; the fixture exists only when
pytest is importable.
"""

from __future__ import annotations

import numpy as np

from .api import diff
from .checking import compare, pair
from .declared import shapes_named_like_options
from .expression import Expr, as_expr, keywords_are_shapes
from .nodes import debug_str

try:  # only the fixture needs pytest
    import pytest
except ImportError:  # pragma: no cover - exercised without pytest installed
    pytest = None

__all__ = ["assert_derivative", "derivative_checker"]


@keywords_are_shapes()
def assert_derivative(f, wrt: str, expected, /, values: dict | None = None, seed: int = 0,
                      **shapes) -> None:
    """Raise AssertionError unless ``expected`` is the derivative of ``f`` with respect to ``wrt``.

    ``f`` and ``expected`` are Exprs or text; text for ``expected`` is parsed
    with f's variables as shapes. The comparison is structural, then
    numerical at three random in-domain points (see ``mathcalc.equivalent``).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    values, seed = shapes_named_like_options(shapes, values=(values, None), seed=(seed, 0))
    f = as_expr(f, shapes)
    derived = diff(f, wrt)
    if isinstance(expected, str):
        derived, claimed = pair(derived, expected, shapes)
    else:
        claimed = as_expr(expected, shapes)
    result = compare(derived, claimed, values=values, seed=seed)
    if result.equal:
        return
    lines = [f"the derivative of {_show(f)} with respect to {wrt} is not the claimed one",
             f"  derived: {_show(derived)}    shape {_shape(derived.shape)}",
             f"  claimed: {_show(claimed)}    shape {_shape(claimed.shape)}"]
    if result.point is None:
        lines.append(f"  {result.reason}")
    else:
        entry = f" at entry {list(result.index)}" if result.index else ""
        lines.append(f"  largest difference {result.max_diff:.6g}{entry}: "
                     f"derived {result.left:.10g}, claimed {result.right:.10g}")
        lines.append("  at the point")
        for name, value in result.point.items():
            prefix = f"    {name} = "
            lines.append(prefix + _array(value, len(prefix)))
    raise AssertionError("\n".join(lines))


def _show(e: Expr) -> str:
    if e.source is not None:  # text the user gave: echoed as written, not reordered
        return e.source.strip()
    try:
        return str(e)
    except Exception:  # a message must never fail to render; the debug form always works
        return debug_str(e.node)


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _array(value, indent: int) -> str:
    text = np.array2string(np.asarray(value), precision=4, suppress_small=True,
                           max_line_width=100)
    return text.replace("\n", "\n" + " " * indent)


if pytest is not None:

    @pytest.fixture
    def derivative_checker():
        """``derivative_checker(f, wrt, expected, **shapes)``: mathcalc.testing.assert_derivative."""
        return assert_derivative
