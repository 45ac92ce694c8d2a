"""Compatibility names: ``lambdify`` lives in ``mathcalc/lambdify.py``, the lowering in
``mathcalc/backend/`` (kept so that ``from mathcalc.numeric import lambdify`` still works)."""

from .backend.cost import symbols_spec  # noqa: F401
from .backend.names import is_parameter_name, validate_identifier, validate_variable_name  # noqa: F401
from .lambdify import lambdify  # noqa: F401
