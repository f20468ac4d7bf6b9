"""Warmup as OpenRLHF takes it: a ratio of all optimizer steps. The recipe's steps become that ratio at compile
time when the data size is known, else launch.sh counts the data (as OpenRLHF loads it) just before it launches."""

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
) -> None:
    if rl.warmup_ratio is not None or not rl.warmup_steps:
        launch.flags[flag] = rl.warmup_ratio or 0.0
        return
    if total_steps is not None:
        if rl.warmup_steps > total_steps:
            raise UserError(
                f"rl.warmup_steps: {rl.warmup_steps} warmup steps, but the run has {total_steps} optimizer steps ({formula})",
                "lower rl.warmup_steps",
            )
        ratio = warmup_ratio(rl.warmup_steps, total_steps)
        launch.flags[flag] = ratio
        stage.facts.append(("warmup", f"{rl.warmup_steps} steps = --{flag} {ratio!r} of {total_steps} optimizer steps ({formula})"))
        return
    launch.warmup_at_launch = {"flag": flag, "warmup_steps": rl.warmup_steps, "formula": formula, **count}
    stage.warnings.append(
        f"rl.warmup_steps: OpenRLHF takes warmup as a ratio of all optimizer steps ({formula}); with {size_field} unset, "
        f"launch.sh counts the data and computes --{flag} for {rl.warmup_steps} steps just before it launches"
    )
    stage.facts.append(("warmup", f"{rl.warmup_steps} steps; --{flag} computed by launch.sh from the counted data ({formula})"))


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
if total < spec["warmup_steps"]:
    sys.exit(f"{spec['warmup_steps']} warmup steps, but {count} records give only {total} optimizer steps ({spec['formula']})")
print(warmup_ratio(spec["warmup_steps"], total))
print(f"warmup: {spec['warmup_steps']} of {total} optimizer steps ({count} records)", file=sys.stderr)
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
