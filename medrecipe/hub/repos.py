"""Each repository's exact contents: the files it holds and its card, taken from the run's outputs.

One description drives every way of publishing: `--dry-run` prints it, `--to-dir` writes it as a folder,
and a push uploads a folder of links to it, so what a dry run shows, what --to-dir writes and what reaches
the Hub are the same files.
"""

from __future__ import annotations

import fnmatch
import io
import json
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from ..compile.build import empty_curated_dataset, run_command, written_json
from ..compile.lighteval.evaluated_model import default_model, scores_of_model
from ..compile.layout import STAGES, Layout, recipe_sha256, refuse_writing_among_data
from ..errors import UserError
from ..recipe import LoadedRecipe
from ..recipe.load import display
from ..recipe.untrusted import redact
from ..report import compare
from . import cards
from .release import HubRepo, Release, dataset_file, offline_namespace, release, why_not_published

STAGE_CHOICES = (*STAGES, "all")
CARD = "README.md"
CHART = "scores.png"

# What trainers leave beside the final weights that is training state, not part of a released model:
# intermediate checkpoints, DeepSpeed shards and optimizer / scheduler / RNG state. The trainer's own
# README.md is replaced by the generated card.
TRAINING_STATE = (
    "checkpoint-*",
    "global_step*",
    "latest",
    "zero_to_fp32.py",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state*.pth",
    "trainer_state.json",
    "training_args.bin",
    ".cache",
    ".git",
)


@dataclass(frozen=True)
class RepoFile:
    path: str  # inside the repository
    size: int
    source: Path | None = None  # the file it is copied from
    text: str | None = None  # or its content (the card)
    data: bytes | None = None  # or its bytes (the score chart, drawn for the release)


@dataclass(frozen=True)
class RepoContent:
    artifact: HubRepo
    private: bool
    files: tuple[RepoFile, ...]  # the card included
    complete: bool  # the repository holds exactly these files (others are removed); False: only these are updated
    # An update's repository must already hold these weights (the files of the checkpoint the update describes).
    weights: tuple[RepoFile, ...] = ()

    @property
    def size(self) -> int:
        return sum(file.size for file in self.files)

    @property
    def card(self) -> str:
        return next(file.text for file in self.files if file.path == CARD)  # type: ignore[return-value]


def release_of(loaded: LoadedRecipe, namespace: str) -> Release:
    return release(loaded.recipe, recipe_sha256(loaded.recipe), namespace)


def plan(loaded: LoadedRecipe, layout: Layout, release: Release, stages: Iterable[str],
         missing: dict[str, UserError] | None = None) -> list[RepoContent]:
    """The repositories `--stage` selects, with their contents. `all` is every artifact the recipe publishes;
    a stage named explicitly must publish something. A missing output is an error naming the command that
    makes it, raised before anything is published; given `missing` (a dry run, which shows what is ready),
    it goes there instead, under the repository's id, and the repository is left out."""
    contents = _selected(loaded, layout, release, set(stages), missing)
    for content in contents:
        _refuse_files_outside(content, layout.root)
    return contents


def _selected(loaded: LoadedRecipe, layout: Layout, release: Release, stages: set[str],
              missing: dict[str, UserError] | None) -> list[RepoContent]:
    recipe = loaded.recipe
    outputs = RunOutputs(loaded, layout)
    if "all" in stages:
        if not release.artifacts:
            raise UserError(f"{recipe.name} publishes nothing", "see the recipe's `publish` section")
        selected = list(release.artifacts)
    else:
        selected = [artifact for artifact in release.artifacts if artifact.stage in stages]
        for stage in (s for s in STAGES if s in stages and s != "eval"):
            if not any(artifact.stage == stage for artifact in selected):
                raise UserError(f"--stage {stage}: {why_not_published(recipe, stage)}", "see the recipe's `publish` section")
    planned: list[tuple[HubRepo, Callable[[], RepoContent]]] = [
        (artifact, partial(_content, loaded, release, artifact, outputs)) for artifact in selected]
    if "eval" in stages and release.evaluated not in selected:
        if release.evaluated is None:
            raise UserError(f"--stage eval: {why_not_published(recipe, 'eval')}")
        planned.append((release.evaluated, partial(_card_update, loaded, release, release.evaluated, outputs)))
    contents = []
    for artifact, content in planned:
        try:
            contents.append(content())
        except UserError as error:
            if missing is None:
                raise
            missing[artifact.repo_id] = error
    return contents


def write_folder(content: RepoContent, folder: Path, link: bool = False) -> None:
    """Write a repository's files into `folder`: copies (or symbolic links, for an upload) plus the card.
    A complete repository's folder is left holding exactly its files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = set()
    for file in content.files:
        target = folder / file.path
        written.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if file.data is not None:
            if not target.is_file() or target.read_bytes() != file.data:
                target.write_bytes(file.data)
        elif file.source is None:
            assert file.text is not None
            text = redact(file.text)
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
        elif link:
            target.unlink(missing_ok=True)
            target.symlink_to(file.source.resolve())
        elif not _same_file(file.source, target):
            shutil.copy2(file.source, target)
    if content.complete:
        for path in sorted(folder.rglob("*"), reverse=True):  # children before their folders
            if path.is_file() and path not in written:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def write_repos(
    loaded: LoadedRecipe,
    layout: Layout,
    target_dir: Path,
    stages: Iterable[str] = ("all",),
    namespace: str | None = None,
    missing: dict[str, UserError] | None = None,
) -> list[tuple[str, Path]]:
    """Write each selected repository's exact contents to `target_dir/<repository name>/`, contacting nobody
    (what `--to-dir` does). Returns (repository id, folder) pairs. Without a namespace (argument or recipe)
    the ids use a placeholder. Given `missing`, a repository whose output is missing is left out (plan())."""
    refuse_writing_among_data(loaded, Path(target_dir), "--to-dir")
    target_dir = Path(target_dir).resolve()
    if layout.root.resolve().is_relative_to(target_dir):
        raise UserError(f"the build folder {layout.root} is inside {target_dir}: writing repositories there could replace it",
                        "choose a folder outside the build for --to-dir")
    manifest = target_dir / MANIFEST
    made = _written_before(manifest)
    written = []
    for content in plan(loaded, layout, release_of(loaded, offline_namespace(loaded.recipe, namespace)), stages, missing):
        name = content.artifact.name
        folder = (target_dir / name).resolve()
        if folder.parent != target_dir:
            raise UserError(f"repository {name!r} would be written outside {target_dir}")
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and name not in made:
            raise UserError(f"{folder} exists and medrecipe did not write it: it is left as it is",
                            "write the repositories into an empty folder (or remove that one)")
        # named in the manifest before it is written, so that a write cut off midway (Ctrl-C) is finished by a rerun
        made.add(name)
        target_dir.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(sorted(made), indent=2) + "\n", encoding="utf-8")
        write_folder(content, folder)
        written.append((content.artifact.repo_id, folder))
    return written


# The repository folders medrecipe wrote into a --to-dir folder: only those are ever replaced (stale files removed).
MANIFEST = ".medrecipe-repos.json"


def _written_before(manifest: Path) -> set[str]:
    if not manifest.is_file():
        return set()
    try:
        names = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise UserError(f"{manifest} is not the list of repositories medrecipe wrote", f"delete it, and empty {manifest.parent}")
    return set(names)


def describe(content: RepoContent, release: Release) -> str:
    """What `--dry-run` prints for one repository: where it goes, every file, and the card."""
    artifact = content.artifact
    lines = [
        f"{artifact.repo_type} {artifact.repo_id} ({'private' if content.private else 'public'})",
        "  revision: main"
        + (f", tagged {release.tag}" if release.recipe.publish.tag_recipe_hash else ""),
        "  files:" if content.complete else "  files (others in the repository are kept):",
    ]
    for file in content.files:
        origin = display(file.source) if file.source else "generated chart" if file.data is not None else "generated card"
        lines.append(f"    {file.path}  {human_size(file.size)}  <- {origin}")
    if content.complete:
        lines.append("  files already in the repository that are not listed are removed (.gitattributes is kept)")
    lines += [f"  card ({CARD}):", *(f"    {line}" if line else "" for line in content.card.splitlines())]
    return "\n".join(lines)


def human_size(size: float) -> str:
    units = ["B", "KB", "MB", "GB", "TB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.0f} B" if index == 0 else f"{size:.1f} {units[index]}"


# ------------------------------------------------------------------------------------------ internals


class RunOutputs:
    """The run's outputs that publishing reads, each checked for when it is needed."""

    def __init__(self, loaded: LoadedRecipe, layout: Layout):
        self.layout = layout
        self.loaded = loaded

    def stats(self, required: bool) -> dict | None:
        path = self.layout.data_stats()
        if path.is_file():
            return written_json(path)
        if required:
            raise UserError(f"the data stage has not finished: {display(path)} is missing",
                            f"run it first: {run_command(self.loaded, self.layout.root, 'data')}")
        return None

    def parquet_files(self) -> list[Path]:
        files = sorted(self.layout.data_output().rglob("*.parquet"))
        # Not published when empty: a repository whose card's `configs` match no file is one `load_dataset` cannot load.
        if not files and (empty := empty_curated_dataset(self.layout)):
            raise empty
        if not files:
            raise UserError(f"the curated dataset is missing: no parquet files in {display(self.layout.data_output())}",
                            f"run the data stage first: {run_command(self.loaded, self.layout.root, 'data')}")
        return files

    def scores(self, required: bool) -> dict | None:
        """The evaluation's scores, if they are this recipe's evaluated model's (scores_of_model)."""
        model = str(default_model(self.loaded, self.layout))
        if (scores := scores_of_model(self.layout, model)) is not None or not required:
            return scores
        path = self.layout.eval_scores()
        evaluate = f"run the evaluation first: {run_command(self.loaded, self.layout.root, 'eval')}"
        if not path.is_file():
            raise UserError(f"no evaluation scores: {display(path)} is missing", evaluate)
        other = written_json(path) or {}
        raise UserError(f"{display(path)} holds the scores of {redact(str(other.get('model')))} (evaluation "
                        f"{other.get('key')}), not of this recipe's model {model} (evaluation {self.layout.keys['eval']})",
                        evaluate)

    def comparison(self) -> compare.Comparison | None:
        """What the card's chart shows: the scores it publishes beside the recipe's reproduced row, if both are there
        and matplotlib (the `plot` extra) can draw it; else the card has no chart."""
        published = self.loaded.recipe.eval and self.loaded.recipe.eval.published
        scores = self.scores(required=False) if published and compare.can_plot() else None
        shared = scores and set(scores["benchmarks"]) & set(published.scores[published.reproduces])
        return compare.compare(scores, published) if shared else None

    def trained(self, stage: str) -> bool:
        """Whether the recipe has the stage and its checkpoint exists (checkpoint() says what is missing)."""
        if getattr(self.loaded.recipe, stage) is None:
            return False
        try:
            self.checkpoint(stage)
        except UserError:
            return False
        return True

    def checkpoint(self, stage: str) -> Path:
        folder = self.layout.sft_output() if stage == "sft" else self.layout.rl_output()
        weights = [*folder.glob("*.safetensors"), *folder.glob("*.bin")] if folder.is_dir() else []
        if not (folder / "config.json").is_file() or not weights:
            what = "SFT" if stage == "sft" else "RL"
            raise UserError(
                f"no {what} checkpoint in {display(folder)} (a model folder with config.json and weights)",
                f"run the {what} stage first: {run_command(self.loaded, self.layout.root, stage)}",
            )
        return folder


def _content(loaded: LoadedRecipe, release: Release, artifact: HubRepo, outputs: RunOutputs) -> RepoContent:
    if artifact.kind == "dataset":
        shards = outputs.parquet_files()
        stats = outputs.stats(required=True)
        files = [RepoFile(dataset_file(i, len(shards)), shard.stat().st_size, shard) for i, shard in enumerate(shards)]
        card = cards.dataset_card(loaded, release, artifact, stats=stats)
    else:
        folder = outputs.checkpoint(artifact.stage)
        files = [RepoFile(path, (folder / path).stat().st_size, folder / path) for path in _checkpoint_files(folder)]
        files += _evaluation_files(release, artifact, outputs)
        card = _model_card(loaded, release, artifact, outputs)
    files.append(RepoFile(CARD, len(card.encode()), text=card))
    return RepoContent(artifact, loaded.recipe.hub.private, tuple(files), complete=True)


def _card_update(loaded: LoadedRecipe, release: Release, artifact: HubRepo, outputs: RunOutputs) -> RepoContent:
    """`--stage eval`: the evaluated model's card (and chart) with the scores, its checkpoint left as it is. The card
    describes this recipe's checkpoint, which the repository must hold: its weights go with the update, to be
    compared with the repository's (hub/publish.py)."""
    outputs.scores(required=True)
    folder = outputs.checkpoint(artifact.stage)
    weights = tuple(RepoFile(path, (folder / path).stat().st_size, folder / path) for path in _checkpoint_files(folder)
                    if path.endswith((".safetensors", ".bin")))
    card = _model_card(loaded, release, artifact, outputs)
    files = [*_evaluation_files(release, artifact, outputs), RepoFile(CARD, len(card.encode()), text=card)]
    return RepoContent(artifact, loaded.recipe.hub.private, tuple(files), complete=False, weights=weights)


def _model_card(loaded: LoadedRecipe, release: Release, artifact: HubRepo, outputs: RunOutputs) -> str:
    evaluated = release.evaluated == artifact
    chart = CHART if evaluated and outputs.comparison() else None  # _evaluation_files draws it
    return cards.model_card(
        loaded,
        release,
        artifact,
        stats=outputs.stats(required=False) if loaded.recipe.data else None,
        scores=outputs.scores(required=False) if evaluated else None,
        chart=chart,
        rl_trained=outputs.trained("rl"),
    )


def _evaluation_files(release: Release, artifact: HubRepo, outputs: RunOutputs) -> list[RepoFile]:
    """The score chart, in the repository of the model it scores, which its legend names, drawn in memory from the
    scores the card publishes (found by review: the chart `compare` drew of an earlier evaluation was published beside
    the new scores, naming this machine's checkpoint folder; drawn into the build, a dry run overwrote compare's)."""
    comparison = outputs.comparison() if release.evaluated == artifact else None
    if comparison is None:
        return []
    compare.plot(comparison, chart := io.BytesIO(), artifact.repo_id)
    return [RepoFile(CHART, len(chart.getvalue()), data=chart.getvalue())]


def _checkpoint_files(folder: Path) -> list[str]:
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or relative.as_posix() == CARD:
            continue
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in TRAINING_STATE):
            continue
        files.append(relative.as_posix())
    return files


def _refuse_files_outside(content: RepoContent, build: Path) -> None:
    """Only what is in the build is published. A symbolic link in an output folder is followed by every way of
    publishing (the upload, --to-dir's copy), so one that leads out of the build would publish whatever it points
    at: a key, the Hub token, another run's weights."""
    root = build.resolve()
    for file in content.files:
        if file.source is not None and not file.source.resolve().is_relative_to(root):
            raise UserError(
                f"{content.artifact.repo_id}: {display(file.source.parent)}/{file.source.name} leads out of the build, "
                f"to {file.source.resolve()}; only files in the build are published",
                "copy the file into the build if it belongs to the release, or remove the link",
            )


def _same_file(source: Path, target: Path) -> bool:
    """Whether `target` is an unchanged earlier copy of `source` (copy2 keeps the modification time)."""
    if not target.is_file():
        return False
    a, b = source.stat(), target.stat()
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns
