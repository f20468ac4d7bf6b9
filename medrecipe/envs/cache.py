"""medrecipe's own cache: tool environments and materialized offline models."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$MEDRECIPE_HOME, else $XDG_CACHE_HOME/medrecipe, else ~/.cache/medrecipe; always an absolute path. The tools run
    from their stage's folder with the environment's interpreter and the private Hub cache named by these paths (found
    by review: MEDRECIPE_HOME=.medrecipe made every stage fail to start its interpreter). A relative XDG_CACHE_HOME is
    ignored, as the XDG Base Directory Specification asks."""
    if os.environ.get("MEDRECIPE_HOME"):
        return Path(os.environ["MEDRECIPE_HOME"]).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "medrecipe"
