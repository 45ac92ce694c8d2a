"""Identifier hygiene for generated source, and internal names that never clash.

Nothing reaches generated source unless it is a plain Python identifier
that means itself (SymPy's lambdify once ran shell commands hidden in a
symbol name). A variable name the parser accepts but that cannot be such a
parameter (``lambda``, ``match``, ``__x``, ``ﬁ``, ``sum``) is read from the
keyword dict instead (lambdify, its key written with ``repr``) or renamed
(codegen: ``lambda_``).
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

from ..errors import MathcalcError

# Names generated code may bind besides temporaries (t0…), arguments (v0…),
# dimension sizes (n0…) and bound objects (f0…, c0…).
FIXED = ("np", "jnp", "jax", "torch", "cp", "cupy", "da", "dask", "ShapeError", "MISSING",
         "unexpected", "read", "math", "functools", "dtype", "device", "frame", "result")
_INTERNAL = re.compile(r"^(v|t|n|f|c)\d+$")


def validate_identifier(name, what: str = "function") -> str:
    """``name`` if it can be written in generated source as a name that means itself."""
    if not is_parameter_name(name):
        raise MathcalcError(f"{what} name {name!r} is not a plain identifier; "
                            "it cannot be used in generated code")
    return name


def validate_variable_name(name) -> str:
    """``name`` if it is a name the parser accepts (letters, Greek too, digits and ``_``,
    not starting with a digit), else a MathcalcError."""
    if not isinstance(name, str) or not name or not all(
            ch == "_" or "0" <= ch <= "9" or unicodedata.category(ch).startswith("L")
            for ch in name) or "0" <= name[0] <= "9":
        raise MathcalcError(f"variable name {name!r} is not a plain identifier (letters, digits "
                            "and _, not starting with a digit); it cannot be used in generated code")
    return name


def is_parameter_name(name) -> bool:
    """Whether ``name`` can be a parameter of generated code that means itself.

    Not a keyword or soft keyword (``type`` included), nothing starting with
    ``__``, not a builtin the generated body could need (``sorted``,
    ``Exception``), unchanged by NFKC (Python normalises identifiers: ``ﬁ``
    would be the parameter ``fi``), printable.
    """
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name) \
        and not keyword.issoftkeyword(name) and name not in ("type", "_") \
        and not name.startswith("__") and name not in vars(builtins) \
        and unicodedata.normalize("NFKC", name) == name \
        and all(ch.isprintable() for ch in name)


class Names:
    """Internal names that cannot collide with any name in ``taken``: one prefix of ``_``."""

    def __init__(self, taken):
        prefix = ""
        while any(prefix + f in taken for f in FIXED) or \
                any(_INTERNAL.match(t[len(prefix):]) for t in taken if t.startswith(prefix)):
            prefix += "_"
        self.prefix = prefix

    def __call__(self, kind: str, k: int) -> str:
        return f"{self.prefix}{kind}{k}"

    def fixed(self, name: str) -> str:
        return self.prefix + name
