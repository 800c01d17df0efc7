"""Base class for component options: validated once, frozen, unknown keys rejected."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Options of a source, family, curation or correction (the keys next to its name)."""

    # allow_inf_nan=False: `.inf` / `.nan` pass `> 0` style bounds (inf > 0), so they are refused here; a field
    # for which infinity means something (correction gamma: full) opts in with Field(allow_inf_nan=True)
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False)
