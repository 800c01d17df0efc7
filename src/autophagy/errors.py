"""User-facing errors: one line naming the field, the bad value and what would be valid."""
from __future__ import annotations

from typing import Any


class AutophagyError(Exception):
    """Base class for errors the CLI reports in one line with exit code 2."""


class ConfigError(AutophagyError, ValueError):
    """A bad configuration value. ``str(err)`` is the one-line message."""

    def __init__(self, field: str, value: Any, valid: str, *, problem: str | None = None):
        self.field, self.value, self.valid = field, value, valid
        shown = repr(value) if not isinstance(value, str) or len(value) < 80 else repr(value[:77] + "...")
        super().__init__(f"{field} = {shown}: {problem}" if problem else f"{field} = {shown}: expected {valid}")


class DataError(AutophagyError, ValueError):
    """A bad data file (missing, empty, NaN/inf, wrong shape)."""

    def __init__(self, field: str, value: Any, problem: str):
        self.field, self.value = field, value
        super().__init__(f"{field} = {value!r}: {problem}")
