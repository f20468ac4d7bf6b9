"""The main job: the build folder (compiled inputs, lock.json, cards), then the stages asked for, then the cards
again with what the stages wrote and, for `main` and `all`, the repositories' contents under hub/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..compile.build import StageBuild, compile_recipe, refuse_absent_stages, stages_of
from ..compile.layout import STAGES, Layout, recipe_sha256, refuse_build_folder, written_field
from ..errors import NotRunnableHere, UserError
from ..hub.card_files import write_cards
from ..hub.repos import write_repos
from ..recipe import LoadedRecipe
from .stages import MAIN_JOB, RunOptions, StageResult, missing_input, prepare_stage, run_stage


def build(loaded: LoadedRecipe, out: Path, stages: list[str] | None = None) -> list[StageBuild]:
    """Compile the recipe into `out` and write its cards; returns what each stage compiled to, then the cards."""
    builds = compile_recipe(loaded, out, stages)
    return builds + [write_cards(loaded, Layout(out.resolve(), loaded.recipe))]


def _refuse_missing_inputs(loaded: LoadedRecipe, layout: Layout, wanted: list[str], whole: str | None,
                           options: RunOptions) -> None:
    """Before any stage runs, what a stage would find missing that no stage of this run makes: `--stage data --stage
    rl` without an SFT model failed after the data stage. `all` skips a stage that cannot run here when it comes to
    it; a dry run refuses only what no stage can make (a --model that is no model folder)."""
    for name in wanted:
        missing = missing_input(loaded, layout, name, options)
        if missing is None or missing[0] in wanted:
            continue
        maker, error = missing
        if maker is None or not (options.dry_run or (whole == "all" and isinstance(error, NotRunnableHere))):
            raise error


def _dry_run_keeps_the_build(loaded: LoadedRecipe, target: Path) -> None:
    """A dry run compiles what it prints into `target`: refused when that would replace another recipe's (or other
    overrides') compiled files, which a queued job may be about to read."""
    compiled = written_field(target / "lock.json", "recipe_sha256")
    if compiled and compiled != recipe_sha256(loaded.recipe):
        raise UserError(f"--dry-run would rewrite {target}, compiled from another version of the recipe (lock.json)",
                        "give the dry run its own folder: --out /tmp/dry-run")


@dataclass
class MainJob:
    builds: list[StageBuild]
    results: list[StageResult]  # of the stages that ran, up to the failure
    failure: UserError | None = None  # what stopped it: a stage that failed


def run(loaded: LoadedRecipe, target: Path, stages: tuple[str, ...], options: RunOptions,
        on_warning: Callable[[str, str], None], on_stage: Callable[[str], None]) -> MainJob:
    """Build, then run `stages`: `main` (the data stage), `all` (every stage the recipe has; one that cannot run on
    this machine is skipped with the reason, and the rest go on), or stages named, in the pipeline's order.
    `on_warning(stage, text)` hears each compile warning before anything runs, `on_stage(name)` each stage as it
    starts."""
    refuse_build_folder(loaded, target)  # before anything is written there (prepare starts writing logs)
    if options.dry_run:
        _dry_run_keeps_the_build(loaded, target)
    layout = Layout(target, loaded.recipe)
    present = stages_of(loaded)
    whole = stages[0] if stages[0] in (MAIN_JOB, "all") else None  # these two stand alone (cli/run.py)
    if whole == MAIN_JOB:
        wanted = [s for s in ("data",) if s in present]
    elif whole == "all":
        wanted = present
    else:
        refuse_absent_stages(loaded, stages)
        wanted = [s for s in STAGES if s in stages]

    if options.launcher != "local" and len(submitted := [s for s in wanted if s != "data"]) > 1:
        # Each is its own job, submitted at once: the next one's input is not there yet.
        raise UserError(f"--launcher {options.launcher} submits {', '.join(submitted)} as separate jobs that do not wait "
                        "for each other", f"submit one stage at a time: --stage {submitted[0]}, then --stage "
                        f"{submitted[1]} when it has finished")
    _refuse_missing_inputs(loaded, layout, wanted, whole, options)  # before anything starts or is written
    for name in wanted:
        prepare_stage(loaded, layout, name, options)
    builds = build(loaded, target)
    for compiled in builds:
        for warning in compiled.warnings:
            on_warning(compiled.stage, warning)

    results: list[StageResult] = []
    failure = None
    for name in wanted:
        on_stage(name)
        try:
            results.append(run_stage(loaded, layout, name, options))
        except UserError as exc:
            if whole == "all" and isinstance(exc, NotRunnableHere):
                results.append(StageResult(name, "skipped", notes=[str(exc)]))
                continue
            failure = exc  # the stages before it are summarised, their outputs in the cards
            break
    if not options.dry_run:
        write_cards(loaded, layout)  # with whatever the stages produced
    if failure is not None:
        return MainJob(builds, results, failure)
    if whole and not options.dry_run:
        # Each repository the recipe publishes whose output exists, this run's or an earlier one's.
        missing: dict[str, UserError] = {}
        repos = write_repos(loaded, layout, target / "hub", missing=missing) if loaded.recipe.published() else []
        results.append(StageResult("repos", "done", outputs=[(repo, str(folder)) for repo, folder in repos],
                                   notes=[f"{repo}: not yet, {error.hint or error}" for repo, error in missing.items()]))
    return MainJob(builds, results)
