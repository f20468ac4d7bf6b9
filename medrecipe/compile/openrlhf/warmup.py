"""Warmup as OpenRLHF takes it: a ratio of all optimizer steps. The recipe counts warmup in training steps, which
for DAPO and GRPO are rollouts of several optimizer updates each (as verl counts them, and as OpenRLHF's own
`save_steps` does), and for DPO and reward models single updates. They become that ratio at compile time when the
data size is known, else launch.sh counts the data (as OpenRLHF loads it) just before it launches."""

from __future__ import annotations

import inspect
import json
import math
import shlex
from typing import TYPE_CHECKING, Any

from ...errors import UserError
from ...recipe.model import PolicyOptimization, PreferenceStage
from ..build import StageBuild

if TYPE_CHECKING:
    from .launch import Launch


def warmup_ratio(warmup_steps: int, total_steps: int) -> float:
    """The ratio OpenRLHF turns back into exactly `warmup_steps` (it takes ceil(total_steps x ratio))."""
    ratio = warmup_steps / total_steps
    while math.ceil(total_steps * ratio) > warmup_steps:
        ratio = math.nextafter(ratio, 0.0)
    return ratio


def warmup(
    launch: Launch,
    rl: PolicyOptimization | PreferenceStage,
    flag: str,
    total_steps: int | None,
    formula: str,
    count: dict[str, Any],
    size_field: str,
    stage: StageBuild,
    updates_per_step: int = 1,
) -> None:
    """Set `flag` for `rl.warmup_steps` training steps of `updates_per_step` optimizer updates each, out of
    `total_steps` optimizer updates (None: launch.sh counts them)."""
    if rl.warmup_ratio is not None or not rl.warmup_steps:
        launch.flags[flag] = rl.warmup_ratio or 0.0
        return
    updates = rl.warmup_steps * updates_per_step
    steps = f"{rl.warmup_steps} steps" + (f" x {updates_per_step} updates = {updates} optimizer steps" if updates_per_step > 1 else "")
    if total_steps is not None:
        if updates > total_steps:
            raise UserError(
                f"rl.warmup_steps: {steps} of warmup, but the run has {total_steps} optimizer steps ({formula})",
                "lower rl.warmup_steps",
            )
        ratio = warmup_ratio(updates, total_steps)
        launch.flags[flag] = ratio
        stage.facts.append(("warmup", f"{steps} = --{flag} {ratio!r} of {total_steps} optimizer steps ({formula})"))
        return
    launch.warmup_at_launch = {"flag": flag, "warmup_optimizer_steps": updates, "formula": formula, **count}
    stage.warnings.append(
        f"rl.warmup_steps: OpenRLHF takes warmup as a ratio of all optimizer steps ({formula}); with {size_field} unset, "
        f"launch.sh counts the data and computes --{flag} for {steps} just before it launches"
    )
    stage.facts.append(("warmup", f"{steps}; --{flag} computed by launch.sh from the counted data ({formula})"))


# Runs in OpenRLHF's environment from launch.sh: counts the data as OpenRLHF will load it (its own
# `blending_datasets`), then prints the warmup ratio.
_COUNT_AND_RATIO = """\
import json, math, sys, types
from openrlhf.datasets.utils import blending_datasets
spec = json.loads(sys.argv[1])
strategy = types.SimpleNamespace(print=lambda *args: None, is_rank_0=lambda: False, args=types.SimpleNamespace(use_ms=False))
data = blending_datasets(spec["dataset"], None, strategy, max_count=spec["max_samples"], dataset_split=spec["split"])
count = min(spec["max_samples"], len(data))
if "samples_per_prompt" in spec:
    total = count * spec["samples_per_prompt"] // spec["train_batch_size"] * spec["episodes"]
else:
    total = math.ceil(spec["epochs"] * (count // spec["train_batch_size"]))
if total < spec["warmup_optimizer_steps"]:
    sys.exit(f"{spec['warmup_optimizer_steps']} optimizer steps of warmup, but {count} records give only {total} ({spec['formula']})")
print(warmup_ratio(spec["warmup_optimizer_steps"], total))
print(f"warmup: {spec['warmup_optimizer_steps']} of {total} optimizer steps ({count} records)", file=sys.stderr)
"""


def warmup_snippet(spec: dict[str, Any]) -> list[str]:
    code = inspect.getsource(warmup_ratio) + "\n\n" + _COUNT_AND_RATIO
    return [
        "# OpenRLHF takes warmup as a ratio of all optimizer steps: count the data as OpenRLHF loads it.",
        f"WARMUP_RATIO=\"$(\"$PYTHON\" - {shlex.quote(json.dumps(spec, sort_keys=True))} <<'PY'",
        *code.rstrip("\n").splitlines(),
        "PY",
        ')"',
        "",
    ]
