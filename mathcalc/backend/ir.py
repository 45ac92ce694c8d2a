"""The backend-neutral program: operands and ops, as the lowering writes them.

A program is a list of steps, each binding one or more names to one op
applied to operands; an operand is a name (``Ref``), a number (``Lit``: a
float, or an int size) or a nested op (``Call``), which the emitter writes
inline. Nothing here knows a library: ``emit.py`` and the backend modules
turn ops into calls.
"""

from __future__ import annotations


class Ref:
    """A name in the program: an argument, a dimension size, a temporary."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        return isinstance(other, Ref) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("ref", self.name))


class Lit:
    """A number: a float constant, or an int (a size)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


class Call:
    """``op(*args, **attrs)``: attrs are static (axes, specs, flags), args operands."""

    __slots__ = ("op", "args", "attrs")

    def __init__(self, op: str, *args, **attrs):
        self.op = op
        self.args = args
        self.attrs = attrs

    def __repr__(self) -> str:
        inner = ", ".join([repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.attrs.items()])
        return f"{self.op}({inner})"


class Step:
    """``targets = value`` (a tuple target for ops with several results)."""

    __slots__ = ("targets", "value")

    def __init__(self, targets, value):
        self.targets = targets
        self.value = value

    def __repr__(self) -> str:
        return f"{', '.join(map(repr, self.targets))} = {self.value!r}"


class Program:
    """The steps computing one expression from its arguments, and what they need."""

    def __init__(self, steps, result, rank: int, needs: set, dims_used: set,
                 size_dependent: bool, fresh: bool, aliases_argument: bool):
        self.steps = steps
        self.result = result  # an operand
        self.rank = rank
        self.needs = needs  # {"dtype"}: the frame binds the result dtype (and device)
        self.dims_used = dims_used  # dimension names the steps read
        self.size_dependent = size_dependent  # a contraction order chosen for assumed sizes
        self.fresh = fresh  # the result is an array made here
        self.aliases_argument = aliases_argument  # the result may be a view of an argument

    def __repr__(self) -> str:
        return "\n".join([repr(s) for s in self.steps] + [f"return {self.result!r}"])
