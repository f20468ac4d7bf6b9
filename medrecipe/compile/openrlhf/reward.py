"""rl/reward.py: medrecipe/grading.py verbatim, then `reward_entry.py` with the recipe's reward constants."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from ... import __version__, grading
from ...recipe import LoadedRecipe
from ...recipe.model import PolicyOptimization

ENTRY = Path(__file__).with_name("reward_entry.py")
MARKER = "# ---------------------------------------------------------------- OpenRLHF's entry point (medrecipe)"


def reward_source(loaded: LoadedRecipe) -> str:
    """rl/reward.py: medrecipe's grading module, verbatim, plus the `reward_func` OpenRLHF calls."""
    rl = loaded.recipe.rl
    assert isinstance(rl, PolicyOptimization)
    header = (
        f"# The rule-based verifier OpenRLHF loads (--reward.remote_url), compiled by medrecipe {__version__} from recipe\n"
        f"# {loaded.recipe.name!r}. Up to `reward_func` this is medrecipe/grading.py, verbatim. Edit the recipe, not this file.\n"
    )
    text = ENTRY.read_text(encoding="utf-8")
    entry = text[text.index(MARKER):]
    for name, value in (("CORRECT_REWARD", rl.reward.correct), ("INCORRECT_REWARD", rl.reward.incorrect),
                        ("REQUIRE_BOX", rl.reward.require_box)):
        entry = re.sub(rf"^{name} = .*$", lambda _: f"{name} = {value!r}", entry, count=1, flags=re.M)
    return header + inspect.getsource(grading).rstrip("\n") + "\n\n\n" + entry
