"""Where a recipe's build lives, and the content keys that name each stage's working folder.

    build/<recipe>/
      recipe.resolved.yaml  lock.json
      data/  plan.json            data/<key>/  (datatrove logs and completions, intermediate shards, output/, stats.json)
      sft/   axolotl.yaml ...     sft/<key>/   (checkpoints, the final model)
      rl/    args.json launch.sh  rl/<key>/
      eval/  tasks.py launch.sh   eval/<key>/  (lighteval results), eval/scores.json
      cards/ model/README.md dataset/README.md

A stage's key hashes exactly the part of the recipe the stage depends on, including the keys of the stages
it consumes, so a changed recipe never reuses stale work and an unchanged one resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import UserError
from ..recipe import LoadedRecipe, Recipe
from ..recipe.derive import sft_batch
from ..recipe.errors import dotted

STAGES = ("data", "sft", "rl", "eval")
# The layout of what the data stage keeps between its segments (a record's place in reading order: blocks/record.py;
# the ids an LLM step's runner checkpoints: blocks/llm.py).
# It is part of the data key, so that a run resumed by a medrecipe whose layout differs starts a folder of its own
# rather than mixing the two.
DATA_FORMAT = 3
BUILD_FOLDERS = (*STAGES, "cards", "hub")  # what a build writes into, beside recipe.resolved.yaml and lock.json
BUILD_FILES = ("recipe.resolved.yaml", "lock.json")


def fingerprint(value) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def recipe_sha256(recipe: Recipe) -> str:
    return hashlib.sha256(json.dumps(recipe.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Layout:
    root: Path
    recipe: Recipe

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def work_dir(self, stage: str) -> Path:
        """The content-keyed folder a stage's run writes into."""
        return self.root / stage / self.keys[stage]

    @cached_property
    def keys(self) -> dict[str, str]:
        recipe = self.recipe
        keys: dict[str, str] = {}
        decontam_sets = [b.model_dump(mode="json") for b in recipe.eval.benchmarks] if recipe.eval else []
        # the recipe's own benchmarks are keyed only where there are some: the keys of recipes without any stay as they were
        own = [b.model_dump(mode="json") for b in recipe.eval.custom_benchmarks] if recipe.eval else []
        decontam_sets += own
        if recipe.data:
            keys["data"] = fingerprint(
                {"data": recipe.data.model_dump(mode="json"), "seed": recipe.seed, "eval_sets": decontam_sets,
                 "tasks": recipe.compute.tasks, "format": DATA_FORMAT}
            )
        if recipe.sft:
            batch = sft_batch(recipe.sft, recipe.compute)
            keys["sft"] = fingerprint(
                {
                    "sft": recipe.sft.model_dump(mode="json"),
                    "base_model": recipe.base_model,
                    "seed": recipe.seed,
                    "batch": [batch.gpus, batch.micro_batch_size, batch.gradient_accumulation],
                    "data": keys.get("data") if recipe.sft.datasets is None else None,
                }
            )
        if recipe.rl:
            keys["rl"] = fingerprint(
                {
                    "rl": recipe.rl.model_dump(mode="json"),
                    "seed": recipe.seed,
                    "compute": recipe.compute.model_dump(mode="json", exclude={"gpu"}),  # the GPU type changes no output
                    "from": keys.get("sft") if recipe.rl.init_from == "sft" else recipe.rl.init_from,
                }
            )
        if recipe.eval:
            # data_parallel_size spreads the same evaluation over engines, as compute (not in the key either) does
            left_out = {"published", "data_parallel_size"} | (set() if own else {"custom_benchmarks"})
            keys["eval"] = fingerprint(
                {"eval": recipe.eval.model_dump(mode="json", exclude=left_out),
                 "seed": recipe.seed,
                 "model": self._model_key(keys)}
            )
        return keys

    def _model_key(self, keys: dict[str, str]) -> str:
        recipe = self.recipe
        choice = recipe.evaluated_model()
        if choice == "base":
            return recipe.base_model
        if choice in ("sft", "rl"):
            return f"{choice}:{keys[choice]}"
        return choice

    # The paths other stages and the publisher read.
    def data_output(self) -> Path:
        return self.work_dir("data") / "output"

    def data_stats(self) -> Path:
        return self.work_dir("data") / "stats.json"

    def sft_output(self) -> Path:
        return self.work_dir("sft") / "model"

    def rl_output(self) -> Path:
        return self.work_dir("rl") / "model"

    def rl_prompts(self) -> Path:
        """The RL prompts as OpenRLHF reads them, written by medrecipe from the recipe's prompt dataset."""
        return self.work_dir("rl") / "prompts.jsonl"

    def eval_scores(self) -> Path:
        return self.stage_dir("eval") / "scores.json"

    def eval_chart(self) -> Path:
        """The bar chart of the scores beside the published table, which `medrecipe compare` writes by default (publish
        draws the card's own from the scores it publishes: hub/repos.py)."""
        return self.stage_dir("eval") / "scores.png"


def refuse_writing_among_data(loaded: LoadedRecipe, target: Path, option: str, writes_into: tuple[str, ...] = ()) -> None:
    """A folder medrecipe writes (a build, or --to-dir's repositories) may not be at or inside a folder the recipe reads
    data from, nor be one of the folders it writes into (`writes_into`, under `target`): the next run would read its
    excluded records, decisions and parquet files as data."""
    written = target.expanduser().resolve()
    for path, folder in loaded.data_folders():
        if written == folder or folder in written.parents or (folder.parent == written and folder.name in writes_into):
            raise UserError(f"{option} {target} writes into the data folder {folder} ({dotted(path)}): the next run would "
                            "read what this one writes as data", f"write elsewhere, e.g. {option} build/{loaded.recipe.name}")


def written_field(file: Path, key: str) -> str | None:
    """`key` of the JSON object medrecipe wrote at `file` (lock.json's recipe_sha256, plan.json's work_dir), or None
    where there is no such file or it is not one medrecipe wrote."""
    try:
        value = json.loads(file.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def refuse_foreign_folder(target: Path, option: str = "--out") -> None:
    """A build writes its own names into its folder (BUILD_FOLDERS, BUILD_FILES, data/plan.json), so a folder may hold
    other files, but not those names unless they are a build's: one whose lock.json medrecipe wrote, or a run that
    stopped before it wrote its lock.json, which leaves data/<key>/ only (found by review: --out at an existing folder
    replaced its lock.json, sft/axolotl.yaml and data/plan.json without a word). A data/ folder of the user's own
    files is built into: the build adds plan.json and folders named by keys there, and replaces nothing."""
    if not target.is_dir():
        return
    ours = written_field(target / "lock.json", "recipe_sha256") is not None
    taken = [name for name in (*BUILD_FILES, *BUILD_FOLDERS) if name != "data" and (target / name).exists()]
    plan = target / "data" / "plan.json"
    if plan.exists() and written_field(plan, "work_dir") is None:
        taken.append("data/plan.json")
    if not ours and taken:
        raise UserError(f"{option} {target} holds {taken[0]}, which medrecipe did not write (no lock.json of a build of "
                        "its own): a build there would replace it", f"give a new folder, e.g. {option} build/<recipe name>")


def refuse_build_folder(loaded: LoadedRecipe, target: Path) -> None:
    """Where a build may not go: among the recipe's data, or over files medrecipe did not write."""
    refuse_writing_among_data(loaded, target, "--out", BUILD_FOLDERS)
    refuse_foreign_folder(target)
