"""`medrecipe run`: compile a recipe and run its stages, then write the cards and the repos' contents."""

from __future__ import annotations

from pathlib import Path

import click

from ..compile.build import default_out
from ..compile.layout import STAGES
from ..recipe.load import display
from ..run.stages import MAIN_JOB
from .common import load, overrides_option, recipe_argument


@click.command(
    epilog="""\b
Examples:
  medrecipe run recipes/quickstart.yaml                 # curate, compile SFT/RL/eval, write cards and repos
  medrecipe run recipes/quickstart.yaml --stage all     # + the tiny CPU SFT and evaluation
  medrecipe run recipes/quickstart.yaml --stage data --stage sft   # curate, then train (stages in order)
  medrecipe run ii-medical-8b-1706 --stage data --executor slurm
  medrecipe run ii-medical-8b-1706 --stage sft --launcher slurm --dry-run
  medrecipe run ii-medical-8b-1706 --stage eval --model Intelligent-Internet/II-Medical-8B-1706
  medrecipe run ii-medical-8b-1706 --stage eval --launcher slurm      # one GPU node, vLLM, then scores.json
  RAY_ADDRESS=http://head:8265 medrecipe run ii-medical-8b-1706 --stage eval --launcher ray
"""
)
@recipe_argument
@overrides_option
@click.option("--stage", "stages", type=click.Choice([MAIN_JOB, *STAGES, "all"]), multiple=True, default=[MAIN_JOB],
              show_default=True, help="`main`: curate data, compile everything, write cards and repo contents; `all`: every "
              "stage; or the stages named (repeatable; they run in the pipeline's order).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Build folder (default: build/<recipe name>).")
@click.option("--executor", type=click.Choice(["local", "ray", "slurm"]), help="Data-stage executor (default: the recipe's).")
@click.option("--workers", type=click.IntRange(min=1), help="Data tasks run at once (default: the recipe's, else the CPU count).")
@click.option("--launcher", type=click.Choice(["local", "slurm", "ray"]), default="local", show_default=True,
              help="How training and evaluation jobs start: on this machine, as a Slurm batch job, or (DAPO / GRPO, evaluation) as a job on a running Ray cluster.")
@click.option("--model", help="eval: evaluate this model (path or Hub id) instead of the recipe's.")
@click.option("--gpu", is_flag=True, help="Use the GPU builds of the tool environments.")
@click.option("--dry-run", is_flag=True, help="Print what would run (exact commands), run nothing.")
@click.option("--verbose", is_flag=True, help="Stream the tools' own output too (it always goes to each stage's log file).")
def command(recipe, overrides, stages, out, executor, workers, launcher, model, gpu, dry_run, verbose) -> None:
    """Run RECIPE: curate the data with datatrove, train with Axolotl and OpenRLHF, evaluate with lighteval,
    each in its pinned environment. Finished work is kept: rerunning after a crash resumes, and a changed
    recipe starts clean (stage folders are keyed by the recipe content they depend on)."""
    from rich.console import Console

    from ..run import main_job
    from ..run.stages import RunOptions

    stages = tuple(dict.fromkeys(stages))
    if len(stages) > 1 and {MAIN_JOB, "all"} & set(stages):
        raise click.UsageError(f"--stage {MAIN_JOB} and --stage all stand alone; to run several stages, name each: "
                               "--stage data --stage sft")
    if model and not {"eval", "all"} & set(stages):
        raise click.UsageError("--model names the model the eval stage evaluates: use it with --stage eval (or all)")
    if (executor or workers) and not {MAIN_JOB, "data", "all"} & set(stages):
        raise click.UsageError(f"--{'executor' if executor else 'workers'} sets how the data stage runs, which "
                               f"--stage {' --stage '.join(stages)} does not run")
    if (launcher != "local" or gpu) and not {"sft", "rl", "eval", "all"} & set(stages):
        # found by review: `--stage data --launcher slurm` curated on this machine without a word
        raise click.UsageError(f"--{'gpu' if gpu else 'launcher'} sets how training and evaluation run, which --stage "
                               f"{' --stage '.join(stages)} does not run; the data stage runs on --executor (local, ray or slurm)")
    console = Console()
    loaded, _ = load(recipe, overrides)
    target = (out or default_out(loaded)).resolve()
    options = RunOptions(launcher=launcher, executor=executor, workers=workers, dry_run=dry_run, model=model, gpu=gpu,
                         verbose=verbose)
    warnings = Console(stderr=True)  # diagnostics, apart from what ran and where (stdout)
    job = main_job.run(loaded, target, stages, options,
                       on_warning=lambda name, text: warnings.print(f"[yellow]warning[/] {name}: {text}"),
                       on_stage=lambda name: console.rule(f"[bold]{name}"))
    _summary(console, loaded, target, job.results)
    if job.failure is not None:
        raise job.failure


def _summary(console, loaded, target: Path, results) -> None:
    from rich.table import Table

    for result in results:
        if result.counts:
            table = Table(title=f"{result.stage}: records in and out of each step", title_justify="left")
            table.add_column("step")
            table.add_column("in", justify="right")
            table.add_column("out", justify="right")
            table.add_column("removed", justify="right")
            for step, count_in, count_out, removed in result.counts:
                table.add_row(step, f"{count_in:,}", f"{count_out:,}", f"{removed:,}")
            console.print(table)
    table = Table(title=f"{loaded.recipe.name}: where everything is", title_justify="left")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("what", overflow="fold")
    table.add_column("where", overflow="fold")
    table.add_row("compile", "done", "native inputs, cards, lock.json", display(target))
    for result in results:
        rows = result.outputs or [("", "")]
        for index, (what, where) in enumerate(rows):
            table.add_row(result.stage if index == 0 else "", result.status if index == 0 else "", what,
                          display(Path(where)) if where.startswith("/") else where)
        for note in result.notes:
            table.add_row("", "", "note", note)
    console.print(table)
