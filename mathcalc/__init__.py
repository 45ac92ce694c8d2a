"""mathcalc: symbolic matrix calculus, derivatives of matrix expressions as formulas."""

# The submodules named like API functions (mathcalc/diff.py, mathcalc/parse.py)
# are loaded first: a first import of a submodule binds its name on the
# package, which must not happen after the functions below take those names.
from . import diff as _diff_module, explain as _explain_module, parse as _parse_module  # noqa: F401
from .errors import DiffError, MathcalcError, ParseError, ShapeError
from .expression import Expr, spd, symmetric
from .functions import register_function
from .api import diff, explain, grad, hessian, jacobian, latex, latex_derivation, parse
from .lambdify import lambdify
from .api import where
from .codegen import codegen
from .checking import check, equivalent
from .api import from_sympy

__all__ = [
    "Expr", "MathcalcError", "ParseError", "ShapeError", "DiffError",
    "parse", "diff", "grad", "jacobian", "hessian", "latex", "latex_derivation", "explain",
    "lambdify", "codegen", "check", "equivalent", "register_function", "from_sympy",
    "symmetric", "spd", "where",
]
__version__ = "0.1.0"
