"""The error family: everything mathcalc raises for bad input is a MathcalcError."""

from __future__ import annotations


class MathcalcError(ValueError):
    """Base of every error mathcalc raises for bad input."""


class ShapeError(MathcalcError):
    """Operands whose shapes do not fit the operation."""


class DiffError(MathcalcError):
    """A derivative that cannot be taken (e.g. with respect to an unknown name)."""


class ParseError(MathcalcError):
    """Text that is not a valid expression.

    Carries the 1-based ``line`` and ``column`` of the offending character, the
    source ``source_line`` and a message in plain words; ``str(err)`` shows all
    of them with a caret under the column.
    """

    def __init__(self, message: str, text: str = "", line: int = 1, column: int = 1):
        self.message = message
        self.text = text
        self.line = line
        self.column = column
        lines = text.split("\n") if text else [""]
        self.source_line = lines[line - 1] if 0 < line <= len(lines) else ""
        super().__init__(self._render())

    @classmethod
    def at(cls, message: str, text: str, pos: int) -> "ParseError":
        """The error at character offset ``pos`` of ``text``."""
        return cls(message, text, *line_col(text, pos))

    def _render(self) -> str:
        shown, col = _visible_window(self.source_line, self.column)
        caret = " " * (col - 1) + "^"
        return f"{self.message} (line {self.line}, column {self.column})\n  {shown}\n  {caret}"


def _visible_window(line: str, column: int, width: int = 76) -> tuple[str, int]:
    """The part of a long line around ``column``, printable, and the caret's column in it."""
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    if len(line) <= width:
        return line, column
    start = max(0, min(column - width // 2, len(line) - width))
    shown = line[start : start + width]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + width < len(line) else ""
    return prefix + shown + suffix, column - start + len(prefix)


def located(message: str, text: str, pos: int | None) -> str:
    """A message followed by the line of ``text`` at character offset ``pos`` and a caret.

    Used by ShapeError and DiffError to show where an operand stands in the text.
    """
    if pos is None or not text:
        return message
    line, column = line_col(text, pos)
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    source = text[start : end if end >= 0 else len(text)]
    shown, col = _visible_window(source, column)
    return f"{message} (line {line}, column {column})\n  {shown}\n  {' ' * (col - 1)}^"


def line_col(text: str, pos: int) -> tuple[int, int]:
    """The 1-based line and column of character offset ``pos`` (clamped into ``text``)."""
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def place(text: str, pos: int) -> str:
    """Where offset ``pos`` is, for a message: ``column 5`` on the first line, else
    ``line 2, column 5``."""
    line, column = line_col(text, pos)
    return f"column {column}" if line == 1 else f"line {line}, column {column}"
