"""The post-SFT stage as an OpenRLHF 0.11 launch: `rl/args.json`, `rl/launch.sh` and, for DAPO / GRPO, `rl/reward.py`.

- DAPO and GRPO run `openrlhf.cli.train_ppo_ray` (Ray, vLLM rollouts, a rule-based verifier loaded from
  `rl/reward.py`); DPO runs `openrlhf.cli.train_dpo` and reward models `openrlhf.cli.train_rm` (torchrun).
- The flags are OpenRLHF 0.11's dotted names. `args.json` holds them as {flag: value} (true for a switch,
  a list for a flag that takes several values); `launch.sh` passes the same flags.
- What OpenRLHF cannot express exactly becomes a warning naming the recipe field. Warmup is one: OpenRLHF
  takes a ratio of all optimizer steps, so the recipe's steps are converted, at compile time when the data
  size is known, else by `launch.sh` from the counted prompts just before it launches.
- `check` runs OpenRLHF's real argument parser and post-parse assertions (the statements of each CLI's
  `__main__` block, read from the installed package) in the rl environment. The three arithmetic checks
  OpenRLHF makes at the start of `train()` are made here, at compile time (`flags.train_time_checks`).
"""


from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ...recipe import LoadedRecipe
from ...recipe.model import PolicyOptimization
from ..build import Artifact, StageBuild
from ..layout import Layout
from .flags import train_time_checks
from .launch import ARGS, LABEL_COLUMN, LAUNCH, PROMPT_COLUMN, REWARD, TOOL, VERSION, argv
from .policy import policy_launch
from .preference import preference_launch
from .reward import reward_source
from .warmup import warmup_ratio

__all__ = ["ARGS", "LABEL_COLUMN", "LAUNCH", "PROMPT_COLUMN", "REWARD", "TOOL", "VERSION", "argv", "build", "check",
           "train_time_checks", "warmup_ratio"]


def build(loaded: LoadedRecipe, layout: Layout) -> StageBuild:
    rl = loaded.recipe.rl
    assert rl is not None
    stage = StageBuild("rl", tool_versions={"openrlhf": VERSION})
    if isinstance(rl, PolicyOptimization):
        launch = policy_launch(loaded, layout, rl, stage)
    else:
        launch = preference_launch(loaded, layout, rl, stage)
    train_time_checks(launch.flags)
    stage.artifacts.append(Artifact(ARGS, json.dumps(launch.args_json(), indent=2, allow_nan=False) + "\n"))
    stage.artifacts.append(Artifact(LAUNCH, launch.script(loaded), executable=True))
    if isinstance(rl, PolicyOptimization):
        stage.artifacts.append(Artifact(REWARD, reward_source(loaded)))
    stage.facts.append(("final model", str(layout.rl_output())))
    return stage


# ------------------------------------------------------------------------------------------------ check

_PARSER = Path(__file__).with_name("parse.py")


def check(loaded: LoadedRecipe, layout: Layout) -> list[str]:
    """OpenRLHF's own argument parser and post-parse checks on the compiled flags, in the rl environment."""
    from ...envs import tools

    python = tools.require("rl")
    args_file = layout.root / ARGS
    if not args_file.is_file():
        return [f"{args_file} is missing: compile first"]
    spec = json.loads(args_file.read_text(encoding="utf-8"))
    flags = dict(spec["flags"])
    for flag in spec.get("computed_at_launch", {}):
        flags[flag] = 0.0  # any ratio parses alike; launch.sh supplies the real one
    module = spec["module"].rsplit(".", 1)[1]
    result = subprocess.run([str(python), "-I", str(_PARSER), module, json.dumps(argv(flags))], capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
        return [f"OpenRLHF's parser did not run:\n{tail}"]
    return json.loads(result.stdout.strip().splitlines()[-1])["problems"]
