"""`medrecipe publish`: datasets, checkpoints and cards to the Hugging Face Hub, or to a local folder."""

from __future__ import annotations

from pathlib import Path

import click

from ..compile.build import default_out
from ..compile.layout import Layout
from ..errors import UserError
from ..hub import publish
from ..hub.release import PLACEHOLDER_NAMESPACE, namespace_for, offline_namespace
from ..hub.repos import STAGE_CHOICES, describe, human_size, plan, release_of, write_repos
from .common import load, overrides_option, recipe_argument


def _checked_namespace(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from ..recipe.model.basics import hub_namespace

    try:
        return None if value is None else hub_namespace(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--namespace") from None


@click.command(
    epilog="""\b
Examples:
  medrecipe publish recipes/quickstart.yaml --stage data --to-dir build/quickstart/hub   # the dataset's files + card
  medrecipe publish ii-medical-8b-1706 --dry-run              # every repository, file and card; contacts nobody
  medrecipe publish ii-medical-8b-1706 --namespace my-org     # everything the recipe publishes, under my-org
  medrecipe publish ii-medical-8b-1706 --stage data           # only the curated dataset
  medrecipe publish ii-medical-8b-1706 --stage eval           # only the scores, into the evaluated model's card
\b
The token comes from HF_TOKEN or `hf auth login`. Rerunning after a failure finishes what is missing;
rerunning with nothing changed makes no commit.
"""
)
@recipe_argument
@overrides_option
@click.option(
    "--stage",
    "stages",
    multiple=True,
    type=click.Choice(STAGE_CHOICES),
    help="What to publish: data (the dataset), sft / rl (the checkpoints), eval (the scores, into the evaluated "
    "model's card), all (default). Repeatable.",
)
@click.option("--namespace", metavar="NS", callback=_checked_namespace,
              help="User or organisation to publish under (default: hub.namespace, else your account).")
@click.option("--dry-run", is_flag=True, help="Print every repository, revision, file and card; contact nobody.")
@click.option(
    "--to-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write each repository's exact contents (files + README.md card) to DIR/<repository>/ instead of the Hub.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Build folder (default: build/<recipe name>).")
def command(
    recipe: str,
    overrides: tuple[str, ...],
    stages: tuple[str, ...],
    namespace: str | None,
    dry_run: bool,
    to_dir: Path | None,
    out: Path | None,
) -> None:
    """Publish RECIPE's curated dataset (parquet), its SFT and final checkpoints, each with a generated card,
    to the Hugging Face Hub: private unless the recipe says public, every commit tagged recipe-<hash>."""
    if dry_run and to_dir:
        raise click.UsageError("--dry-run and --to-dir exclude each other")
    loaded, _ = load(recipe, overrides)
    layout = Layout((out or default_out(loaded)).resolve(), loaded.recipe)
    stages = stages or ("all",)

    if to_dir:
        rows = []
        for repo_id, folder in write_repos(loaded, layout, to_dir, stages, namespace):
            files = [path for path in folder.rglob("*") if path.is_file()]
            rows.append([repo_id, str(folder), str(len(files)), human_size(sum(path.stat().st_size for path in files))])
        _table(["Repository", "Folder", "Files", "Size"], rows)
        _placeholder_note(loaded.recipe, namespace)
    elif dry_run:
        release = release_of(loaded, offline_namespace(loaded.recipe, namespace))
        missing: dict[str, UserError] = {}
        contents = plan(loaded, layout, release, stages, missing)
        for content in contents:
            click.echo(describe(content, release) + "\n")
        _table(["Repository", "Visibility", "Files", "Size"],
               [[c.artifact.repo_id, _visibility(c.private), str(len(c.files)), human_size(c.size)] for c in contents]
               + [[repo_id, "-", "not ready", "-"] for repo_id in missing])
        _placeholder_note(loaded.recipe, namespace)
        publish.refuse_files_over_the_limit(contents)
        if missing:  # what publishing would refuse to start with, each with the command that makes it
            raise UserError("publishing would stop before it starts, for want of what these need:\n" + "\n".join(
                f"  {repo_id}: " + str(error).replace("\n", "\n  ") for repo_id, error in missing.items()))
    else:
        api, account = publish.connect()
        release = release_of(loaded, namespace_for(loaded.recipe, namespace, lambda: account))
        contents = plan(loaded, layout, release, stages)
        publication = publish.push(api, contents, release, log=_log)
        for result in publication.pushed:
            for warning in result.warnings:
                _log(f"warning: {warning}")
        _table(
            ["Repository", "Visibility", "Files", "Size", "Commit", "Tag"],
            [
                [
                    result.content.artifact.repo_id,
                    _visibility(result.private) + ("" if result.private == result.content.private
                                                   else f" (kept; the recipe asks for {_visibility(result.content.private)})"),
                    str(len(result.content.files)),
                    human_size(result.content.size),
                    f"{result.commit[:8]} ({'new' if result.committed else 'unchanged'})",
                    f"{release.tag} ({result.tag})" if result.tag != "off" else "off",
                ]
                for result in publication.pushed
            ]
            # the repository that failed, then those not attempted: what a rerun pushes
            + [[content.artifact.repo_id, _visibility(content.private), str(len(content.files)), human_size(content.size),
                "failed" if index == 0 else "not attempted", "-"]
               for index, content in enumerate(contents[len(publication.pushed):])],
        )
        if publication.failure:
            raise publication.failure


def _log(line: str) -> None:
    click.echo(line, err=True)


def _placeholder_note(recipe, namespace: str | None) -> None:
    if offline_namespace(recipe, namespace) == PLACEHOLDER_NAMESPACE:
        _log(f"note: no namespace given; the repository ids use {PLACEHOLDER_NAMESPACE!r} (set hub.namespace or pass --namespace)")


def _visibility(private: bool) -> str:
    return "private" if private else "public"


def _table(header: list[str], rows: list[list[str]]) -> None:
    """The closing summary, as plain aligned columns (never truncated, whatever the terminal's width)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for index, row in enumerate([header, *rows]):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            click.echo("  ".join("-" * width for width in widths))
