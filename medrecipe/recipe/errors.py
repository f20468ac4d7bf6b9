"""Recipe problems with the place they were written: `recipes/x.yaml:12:3: sft.learning_rate: message`."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Position:
    """Where a value was written: a file position, or a command-line override (line 0)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe."""

    position: Position | None
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.position}: " if self.position else ""
        field = f"{self.path}: " if self.path else ""
        text = f"{where}{field}{self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class RecipeError(UserError):
    """A recipe that cannot be loaded or validated; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def __reduce__(self):
        return type(self), (self.problems,)

    def report(self) -> str:
        count = len(self.problems)
        return "".join(f"error: {p}\n" for p in self.problems) + f"{count} error{'s' if count != 1 else ''} in the recipe"


def dotted(path: tuple) -> str:
    """`('data', 'steps', 2, 'ngram')` -> `data.steps[2].ngram`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
