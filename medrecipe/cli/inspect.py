"""`medrecipe inspect`: one record as SFT, RL and evaluation feed it to the model, and whether they agree."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import load, overrides_option, recipe_argument


@click.command(
    epilog="""\b
Examples:
  medrecipe inspect recipes/quickstart.yaml
  medrecipe inspect ii-medical-8b-1706 --tokenizer /models/Qwen3-8B
  medrecipe inspect ultramedical-llama3-8b --set sft.chat_template=llama3
"""
)
@recipe_argument
@overrides_option
@click.option("--tokenizer", metavar="DIR|ID",
              help="Tokenizer (with config.json) of the model training starts from. Default: the SFT base model, from the Hub.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the renderings and the checks to this JSON file.")
def command(recipe: str, overrides: tuple[str, ...], tokenizer: str | None, json_file: Path | None) -> None:
    """Render one record of RECIPE the way each stage feeds it to the model, with the tools' own code in their
    environments: the SFT sample as Axolotl tokenizes it (trained text between « »), the RL prompt (or preference
    pair) as OpenRLHF builds it, and one prompt per benchmark as lighteval builds it, all with the chat template
    SFT trains into the model. Then check that they agree on the template, the think block, the BOS token and
    the end of a turn; exit 2 when they do not. Needs `medrecipe env setup sft rl eval` and the recipe's data
    (see preflight)."""
    from rich.console import Console
    from rich.markup import escape

    from ..errors import UserError
    from ..recipe.untrusted import printable
    from ..run.inspect import inspect

    if tokenizer and tokenizer.startswith(("/", ".", "~")) and not Path(tokenizer).expanduser().is_dir():
        raise click.BadParameter(f"{tokenizer} is not a folder (a Hub id is written org/name)", param_hint="--tokenizer")
    loaded, _ = load(recipe, overrides)
    found = inspect(loaded, tokenizer)
    console = Console(highlight=False)
    if found.sft:
        console.rule("SFT sample (Axolotl; trained text between « »)", align="left")
        console.print(printable(found.sft_marked()), markup=False)
    if found.rl_prompt:
        console.rule("RL prompt (OpenRLHF)", align="left")
        console.print(printable(found.rl_prompt["text"]), markup=False)
        console.print(f"label: {found.rl_prompt['label']!r}", markup=False)
    if found.pair:
        console.rule("preference pair (OpenRLHF)", align="left")
        console.print(printable("\n".join(f"{key}: {value}" for key, value in found.pair.items())), markup=False)
    for name, value in found.evaluation.items():
        console.rule(f"evaluation prompt {name} (lighteval)", align="left")
        console.print(printable(value["prompt"]), markup=False)
    if json_file:
        json_file.write_text(json.dumps(found.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.rule("agreement", align="left")
    for agreement in found.agreements:
        console.print(f"{'[green]ok[/]' if agreement.ok else '[red]no[/]'}  {escape(agreement.check)}: {escape(printable(agreement.detail))}")
    failed = [agreement for agreement in found.agreements if not agreement.ok]
    if failed:
        raise UserError(f"the stages disagree: {'; '.join(a.check for a in failed)}",
                        "see the agreement table above; the chat template is sft.chat_template")
