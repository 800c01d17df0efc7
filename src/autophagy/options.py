"""Base class for component options: validated once, frozen, unknown keys rejected."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Options of a source, family, curation or correction (the keys next to its name)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
