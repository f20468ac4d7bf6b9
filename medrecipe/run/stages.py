"""Running a compiled stage: each stage's runner lives in `medrecipe.run.<stage>`, with the same signatures:
`run(loaded, layout, options)` and `missing_input(loaded, layout, options)`, and where a stage has work to start
before the build is written, `prepare(loaded, layout, options)`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Literal

from ..compile.layout import Layout
from ..errors import UserError
from ..recipe import LoadedRecipe

RUNNERS = {stage: f"medrecipe.run.{stage}" for stage in ("data", "sft", "rl", "eval")}
MAIN_JOB = "main"  # curate the data, compile everything, write cards and the repositories' contents


@dataclass
class RunOptions:
    launcher: Literal["local", "slurm", "ray"] = "local"  # how training / eval jobs are started
    executor: Literal["local", "ray", "slurm"] | None = None  # the data stage's executor (default: the recipe's)
    workers: int | None = None  # data tasks at once (default: the recipe's, else the CPU count)
    dry_run: bool = False  # print the exact commands, run nothing
    model: str | None = None  # eval: evaluate this model instead of the recipe's
    gpu: bool = False  # use the GPU build of the tool environment
    verbose: bool = False  # stream the tools' own output to the console too (it always goes to the stage's log)


@dataclass
class StageResult:
    stage: str
    status: Literal["done", "dry-run", "skipped", "submitted"]  # submitted: a Slurm / Ray job that runs on
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (what, where) for the closing summary
    counts: list[tuple[str, int, int, int]] = field(default_factory=list)  # (step, in, out, removed) for the data stage
    notes: list[str] = field(default_factory=list)


def run_stage(loaded: LoadedRecipe, layout: Layout, stage: str, options: RunOptions) -> StageResult:
    """`medrecipe.run.<stage>.run(loaded, layout, options)`; imported only when that stage runs."""
    return importlib.import_module(RUNNERS[stage]).run(loaded, layout, options)


def prepare_stage(loaded: LoadedRecipe, layout: Layout, stage: str, options: RunOptions) -> None:
    """`medrecipe.run.<stage>.prepare(loaded, layout, options)`, where the runner has one."""
    prepare = getattr(importlib.import_module(RUNNERS[stage]), "prepare", None)
    if prepare is not None:
        prepare(loaded, layout, options)


def missing_input(loaded: LoadedRecipe, layout: Layout, stage: str,
                  options: RunOptions) -> tuple[str | None, UserError] | None:
    """What `stage` reads that is not there: (the stage that makes it, None where none does, the error), or None."""
    return importlib.import_module(RUNNERS[stage]).missing_input(loaded, layout, options)
