"""Compile a recipe into build/<recipe>/: every stage's native inputs, the resolved recipe and lock.json."""

from __future__ import annotations

import hashlib
import importlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import UserError
from ..recipe import LoadedRecipe
from ..recipe.load import display
from ..recipe.show import to_yaml
from ..recipe.untrusted import redact
from .layout import STAGES, Layout, recipe_sha256, refuse_build_folder

# stage -> module whose `build(loaded, layout) -> StageBuild` compiles it (imported only when needed)
COMPILERS = {
    "data": "medrecipe.compile.data",
    "sft": "medrecipe.compile.axolotl",
    "rl": "medrecipe.compile.openrlhf",
    "eval": "medrecipe.compile.lighteval",
}


@dataclass
class Artifact:
    path: str  # relative to the build root
    text: str
    executable: bool = False


@dataclass
class StageBuild:
    """What a compiler produced for one stage, plus what `plan` shows about it."""

    stage: str
    artifacts: list[Artifact] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the tool cannot express, naming the recipe field
    facts: list[tuple[str, str]] = field(default_factory=list)  # derived numbers and choices, for `plan`
    tool_versions: dict[str, str] = field(default_factory=dict)


def default_out(loaded: LoadedRecipe) -> Path:
    return Path("build") / loaded.recipe.name


def run_command(loaded: LoadedRecipe, root: Path, stage: str) -> str:
    """The command that runs `stage` into this build: the same recipe file, `--set` overrides and build folder."""
    words = ["medrecipe", "run", display(loaded.file), *(word for override in loaded.overrides for word in ("--set", override))]
    if Path(root).resolve() != default_out(loaded).resolve():
        words += ["--out", display(root)]
    return shlex.join([*words, "--stage", stage])


def stages_of(loaded: LoadedRecipe) -> list[str]:
    return [stage for stage in STAGES if getattr(loaded.recipe, stage) is not None]


def refuse_absent_stages(loaded: LoadedRecipe, stages) -> None:
    """A stage named on the command line (`--stage`) that the recipe has no section for is an error naming its stages."""
    if absent := [stage for stage in stages if stage not in stages_of(loaded)]:
        raise UserError(f"the recipe has no `{absent[0]}` section", f"its stages: {', '.join(stages_of(loaded)) or 'none'}")


def compile_stage(loaded: LoadedRecipe, layout: Layout, stage: str) -> StageBuild:
    module = importlib.import_module(COMPILERS[stage])
    return module.build(loaded, layout)


def write_artifact(out: Path, artifact: Artifact) -> str:
    """Write one artifact under `out`; returns its sha256 for lock.json."""
    target = (out / artifact.path).resolve()
    if not target.is_relative_to(out.resolve()):
        raise UserError(f"{artifact.path} would be written outside the build folder {out}")
    text = redact(artifact.text)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    if artifact.executable:
        target.chmod(0o755)
    return hashlib.sha256(text.encode()).hexdigest()


def written_json(path: Path) -> dict | None:
    """A JSON file a stage wrote (stats, scores), or None when the stage has not run."""
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        found = None
    if not isinstance(found, dict):
        raise UserError(f"{path} is not the JSON medrecipe wrote there", "delete it and rerun the stage that writes it")
    return found


def empty_curated_dataset(layout: Layout) -> UserError | None:
    """The error when the data stage ran and kept no record (its stats.json says so): it wrote no parquet file, as
    datatrove's writers open one at the first record (DiskWriter.write, datatrove 0.10.1), and running it again as it
    is changes nothing: what reads the dataset says so, not "run the data stage first" (found by review)."""
    stats = written_json(layout.data_stats())
    if stats is None or stats["output"]["records"] != 0:
        return None
    read = sum(source["read"] for source in stats["sources"])
    return UserError(f"the curated dataset is empty: the data stage kept none of the {read} records it read",
                     f"see what each step removed in {display(layout.data_stats())}, then change the recipe's data "
                     "section and run the data stage again")


def compile_recipe(loaded: LoadedRecipe, out: Path, stages: list[str] | None = None) -> list[StageBuild]:
    """Write every compiled artifact, the resolved recipe and lock.json under `out`; returns what each stage
    compiled to. The cards are written by `hub.card_files`, above this layer."""
    refuse_absent_stages(loaded, stages or ())
    refuse_build_folder(loaded, out)
    out = out.resolve()
    layout = Layout(out, loaded.recipe)
    builds = [compile_stage(loaded, layout, stage) for stage in (stages or stages_of(loaded))]
    files = {a.path: write_artifact(out, a) for a in [Artifact("recipe.resolved.yaml", to_yaml(loaded, comments=True))]
             + [a for b in builds for a in b.artifacts]}
    lock = {
        "recipe": loaded.recipe.name,
        "recipe_sha256": recipe_sha256(loaded.recipe),
        "sources": [str(f) for f in loaded.tree.files],
        "overrides": list(loaded.overrides),
        "medrecipe": __version__,
        "stage_keys": layout.keys,
        "tools": {name: version for b in builds for name, version in b.tool_versions.items()},
        "files": dict(sorted(files.items())),
    }
    (out / "lock.json").write_text(redact(json.dumps(lock, indent=2, allow_nan=False)) + "\n", encoding="utf-8")
    return builds
