"""mathcalc: symbolic matrix calculus, derivatives of matrix expressions as formulas."""

from .errors import DiffError, MathcalcError, ParseError, ShapeError
from .expression import Expr
from .functions import register_function
from .api import diff, grad, hessian, jacobian, latex, latex_derivation, parse

__all__ = [
    "Expr", "MathcalcError", "ParseError", "ShapeError", "DiffError",
    "parse", "diff", "grad", "jacobian", "hessian", "latex", "latex_derivation",
    "register_function",
]
__version__ = "0.1.0"
