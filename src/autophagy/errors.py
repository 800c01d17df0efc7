"""User-facing errors: one line naming the field, the bad value and what would be valid."""
from __future__ import annotations

from typing import Any


class AutophagyError(Exception):
    """Base class for errors the CLI reports in one line with exit code 2."""


def _one_line(text: str) -> str:
    """Messages stay on one line whatever the user typed (a key or option holding a newline, a plug-in's
    multi-line exception text): line breaks and other control characters are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _field(field) -> str:
    return field if isinstance(field, str) and field.isprintable() else repr(field)


class ConfigError(AutophagyError, ValueError):
    """A bad configuration value. ``str(err)`` is the one-line message."""

    def __init__(self, field: str, value: Any, valid: str, *, problem: str | None = None):
        self.field, self.value, self.valid = field, value, valid
        shown = repr(value) if not isinstance(value, str) or len(value) < 80 else repr(value[:77] + "...")
        message = f"{_field(field)} = {shown}: {problem}" if problem else f"{_field(field)} = {shown}: expected {valid}"
        super().__init__(_one_line(message))
        self.problem = problem

    def __reduce__(self):  # errors raised in a worker process travel back to the driver intact
        return _rebuild, (type(self), (self.field, self.value, self.valid), {"problem": self.problem})


class DataError(AutophagyError, ValueError):
    """A bad data file (missing, empty, NaN/inf, wrong shape)."""

    def __init__(self, field: str, value: Any, problem: str):
        self.field, self.value, self.problem = field, value, problem
        super().__init__(_one_line(f"{_field(field)} = {value!r}: {problem}"))

    def __reduce__(self):
        return _rebuild, (type(self), (self.field, self.value, self.problem), {})


class StoreError(AutophagyError):
    """A results directory that cannot be used (corrupt database, a file where a folder should be)."""

    def __init__(self, path: Any, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(_one_line(f"{path}: {problem}"))

    def __reduce__(self):
        return _rebuild, (type(self), (self.path, self.problem), {})


def _rebuild(cls, args, kwargs):
    return cls(*args, **kwargs)
