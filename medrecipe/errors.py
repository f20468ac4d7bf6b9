"""Errors a user can cause outside the recipe file: a missing environment, file, GPU or token."""

from __future__ import annotations


class UserError(Exception):
    """Reported as `error: message` plus a hint, exit code 2, no traceback."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __reduce__(self):  # raised in a worker, it is pickled to the parent and rebuilt there with its hint
        return type(self), (self.args[0], self.hint)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def report(self) -> str:
        """What the command line prints of it."""
        return f"error: {self}"


class NotRunnableHere(UserError):
    """What this machine cannot do: no GPU, no tool environment, no cluster, no endpoint or key, or the output of a
    stage that could not run here. `run --stage all` reports such a stage as skipped; every other error stops it."""
