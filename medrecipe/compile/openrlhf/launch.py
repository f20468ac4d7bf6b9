"""OpenRLHF 0.11's launch of the post-SFT stage: the pinned version, the compiled files' names, and `Launch`,
which holds the flags and writes args.json and launch.sh."""

from __future__ import annotations

import shlex
from typing import Any

from ... import __version__
from ...catalog import openrlhf_flags
from ...catalog.openrlhf_flags import VERSION
from ...errors import UserError
from ...recipe import LoadedRecipe
from ...recipe.errors import RecipeError
from ..layout import recipe_sha256
from .warmup import warmup_snippet


TOOL = f"OpenRLHF {VERSION}"
ARGS = "rl/args.json"
LAUNCH = "rl/launch.sh"
REWARD = "rl/reward.py"

MODULES = {algorithm: f"openrlhf.cli.{cli}" for algorithm, cli in openrlhf_flags.CLI.items()}
LOSS_AGGREGATION = {"token_mean": "token-mean", "seq_mean_token_mean": "seq-mean-token-mean"}
SCHEDULERS = {"constant": "constant_with_warmup", "cosine": "cosine_with_min_lr"}
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".arrow")
# The columns of the prompts file medrecipe writes for DAPO / GRPO (run/rl_prompts.py): the chat prompt and the
# reference answer and options reward.py grades against (as JSON text: rl_prompts.reference_label).
PROMPT_COLUMN = "prompt"
LABEL_COLUMN = "label"


class Launch:
    """One OpenRLHF command: its module, its flags, and how `launch.sh` starts it."""

    def __init__(self, algorithm: str, flags: dict[str, Any], gpus_per_node: int, nodes: int):
        self.algorithm = algorithm
        self.module = MODULES[algorithm]
        self.flags = flags
        self.gpus_per_node = gpus_per_node
        self.nodes = nodes
        self.warmup_at_launch: dict[str, Any] | None = None  # how launch.sh computes the warmup ratio
        self.not_passed: dict[str, dict[str, Any]] = {}  # recipe field -> its value and why no flag carries it

    @property
    def uses_ray(self) -> bool:
        return self.module == MODULES["dapo"]

    def args_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tool": TOOL, "module": self.module, "flags": self.flags}
        if self.warmup_at_launch:
            data["computed_at_launch"] = {self.warmup_at_launch["flag"]: self.warmup_at_launch}
        if self.not_passed:
            data["not_passed"] = self.not_passed
        return data

    def script(self, loaded: LoadedRecipe) -> str:
        recipe = loaded.recipe
        lines = [
            "#!/usr/bin/env bash",
            f"# {TOOL} {self.algorithm} launch compiled by medrecipe {__version__} from recipe {recipe.name!r}",
            f"# (recipe sha256 {recipe_sha256(recipe)[:16]}); the same flags are in args.json. Edit the recipe, not this file.",
        ]
        if self.uses_ray:
            lines += [
                "#",
                "# With RAY_ADDRESS set, the job is submitted to that Ray cluster (one node or many: `ray start --head`",
                "# on one node, `ray start --address=HEAD:6379` on the others, from OpenRLHF's environment). Without it,",
                "# OpenRLHF starts a Ray instance on this node. Across nodes, the build folder must be on a shared",
                "# filesystem: the model, the prompts, reward.py and the checkpoints are read and written by path.",
            ]
        else:
            lines += [
                "#",
                f"# Run once per node ({self.nodes} node(s) x {self.gpus_per_node} GPUs): NODE_RANK (default: SLURM_NODEID, else 0),",
                "# MASTER_ADDR and MASTER_PORT name this node and the first node.",
            ]
        lines += ["set -euo pipefail", 'PYTHON="${OPENRLHF_PYTHON:-python3}"', ""]
        if self.warmup_at_launch:
            lines += warmup_snippet(self.warmup_at_launch)
        argv = " \\\n  ".join(_argv_lines(self.flags, self.warmup_at_launch))
        if self.uses_ray:
            lines += [
                'if [ -n "${RAY_ADDRESS:-}" ]; then',
                '  set -- ray job submit --address="$RAY_ADDRESS" -- "$PYTHON"',
                "else",
                '  set -- "$PYTHON"',
                "fi",
                f'exec "$@" -m {self.module} \\\n  {argv}',
            ]
        else:
            lines += [
                f'exec "$PYTHON" -m torch.distributed.run --nnodes {self.nodes} --nproc-per-node {self.gpus_per_node} \\',
                '  --node-rank "${NODE_RANK:-${SLURM_NODEID:-0}}" --master-addr "${MASTER_ADDR:-127.0.0.1}" '
                '--master-port "${MASTER_PORT:-29500}" \\',
                f"  -m {self.module} \\\n  {argv}",
            ]
        return "\n".join(lines) + "\n"


def argv(flags: dict[str, Any]) -> list[str]:
    """Command-line arguments for `flags`: `--name value`, `--name` for a switch, `--name v1 v2` for a list."""
    result: list[str] = []
    for name, value in flags.items():
        if value is True:
            result.append(f"--{name}")
        elif isinstance(value, list):
            result += [f"--{name}", *(_text(item) for item in value)]
        else:
            result += [f"--{name}", _text(value)]
    return result


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _argv_lines(flags: dict[str, Any], warmup: dict[str, Any] | None) -> list[str]:
    """One shell-quoted line per flag, for launch.sh; the warmup ratio comes from the script's own count."""
    lines = [shlex.join(argv({name: value})) for name, value in flags.items()]
    if warmup:
        lines.append(f'--{warmup["flag"]} "$WARMUP_RATIO"')
    return lines


def merge_passthrough(loaded: LoadedRecipe, flags: dict[str, Any], extra: dict[str, Any], algorithm: str) -> None:
    """`rl.openrlhf` adds flags medrecipe does not map; it may not override one derived from the recipe.

    OpenRLHF's parser reads the beginning of a flag as that flag and an argument that begins with '-' as a flag of its
    own, so a recipe could set a flag it does not name: only whole flags of the CLI the algorithm launches and values
    that stay values pass. `medrecipe validate` refuses the same at each entry's line (catalog/passthrough_checks.py);
    this guards every caller of the compiler.
    """
    passed = {name: list(value) if isinstance(value, (list, tuple)) else value
              for name, value in extra.items() if value is not False and value is not None}  # else an unset switch
    cli = openrlhf_flags.CLI[algorithm]
    unknown = sorted(name for name in passed if name not in openrlhf_flags.FLAGS[cli])
    if unknown:
        raise UserError(
            f"rl.openrlhf has names that are not flags of OpenRLHF {VERSION}'s {cli}: "
            + ", ".join(f"--{name}" for name in unknown),
            "write whole flag names of the CLI rl.algorithm launches: OpenRLHF reads the beginning of a flag as that "
            "flag (`medrecipe validate` names the flag each one begins)",
        )
    flag_like = [f"--{name} {argument!r}" for name, value in passed.items()
                 for argument in argv({name: value})[1:] if openrlhf_flags.read_as_flag(argument)]
    if flag_like:
        raise UserError(
            "rl.openrlhf has values that OpenRLHF would read as further flags: " + ", ".join(flag_like),
            "a value may not begin with '-' (a negative number may)",
        )
    taken = {name: "the recipe" for name in extra if name in flags}  # unset too: a derived switch is not turned off here
    taken.update({name: openrlhf_flags.LEFT_OUT_DEFAULTS[name] for name in passed
                  if name in openrlhf_flags.LEFT_OUT_DEFAULTS and name not in flags})
    if taken:
        raise RecipeError([loaded.problem(("rl", "openrlhf", name), f"medrecipe derives --{name} from {source}",
                                          "set the recipe field instead (see `medrecipe plan`); the passthrough is for "
                                          "flags medrecipe does not map") for name, source in sorted(taken.items())])
    flags.update(passed)
