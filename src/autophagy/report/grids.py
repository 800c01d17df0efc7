"""Per-generation sample mosaics for image sources (what a generation "looks like", for reports).

``autophagy.run(config, out=DIR)`` on an image source (``info.image_shape`` set) writes
``DIR/grids/<run_id>/real.png`` (replicate 0's real training images) and ``gen0000.png`` …
(``metrics.grid_samples`` fresh samples of replicate 0's model at each generation, drawn with
the run's sampling bias from the seed tree's ``grid`` role, so no recorded metric changes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np


def save_generation_grid(grid_dir: Path, generation: Union[int, str], images: np.ndarray, image_shape: tuple) -> Path:
    """Write ``images`` ``(n, H·W)`` as ``grid_dir/gen{generation:04d}.png`` (or ``{generation}.png`` for a label).

    Written to a temporary name and renamed, so an interrupted run never leaves a truncated PNG.
    """
    from ..metrics.images import save_grid

    name = f"gen{generation:04d}" if isinstance(generation, (int, np.integer)) else str(generation)
    grid_dir = Path(grid_dir)
    tmp = save_grid(images, image_shape, grid_dir / f".{name}.tmp.png")
    target = grid_dir / f"{name}.png"
    tmp.replace(target)
    return target
