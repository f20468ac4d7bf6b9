"""medrecipe's own cache: tool environments and materialized offline models."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$MEDRECIPE_HOME, else $XDG_CACHE_HOME/medrecipe, else ~/.cache/medrecipe."""
    if os.environ.get("MEDRECIPE_HOME"):
        return Path(os.environ["MEDRECIPE_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medrecipe"
