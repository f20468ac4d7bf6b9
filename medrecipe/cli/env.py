"""`medrecipe env`: build and list the pinned tool environments."""

from __future__ import annotations

import click

from ..envs import tools
from .common import folding_table


@click.group(
    epilog="""\b
Examples:
  medrecipe env setup sft            # Axolotl 0.19.0 with the CPU torch wheel (0.21.0 on a python3.12 on PATH)
  medrecipe env setup eval rl        # lighteval 0.13.0; OpenRLHF 0.11.2 (its parser, on CPU)
  medrecipe env setup all --gpu      # the GPU builds: DeepSpeed, FlashAttention, vLLM
  medrecipe env list
"""
)
def command() -> None:
    """Each training and evaluation tool runs in its own virtual environment, built from requirement
    pins shipped with medrecipe (their pins conflict, so they cannot share one). Environments live
    under $MEDRECIPE_HOME (default ~/.cache/medrecipe); pip's cache is reused."""


@command.command(short_help="Build the named environments; ready ones are reused.", epilog="""\b
Examples:
  medrecipe env setup sft
  medrecipe env setup eval rl
  medrecipe env setup all --gpu
""")
@click.argument("names", nargs=-1, required=True, type=click.Choice([*tools.ENVIRONMENTS, "all"]))
@click.option("--gpu", is_flag=True, help="Build the GPU variant (DeepSpeed, FlashAttention, vLLM; needs CUDA).")
def setup(names: tuple[str, ...], gpu: bool) -> None:
    """Build the named environments (sft, rl, eval, or all); ready ones are reused."""
    chosen = list(tools.ENVIRONMENTS) if "all" in names else list(dict.fromkeys(names))
    for name in chosen:
        tools.setup(name, gpu=gpu, log=lambda line: click.echo(line, err=True))


@command.command(name="list", short_help="Show each environment: ready or not, where, its tool versions.", epilog="""\b
Examples:
  medrecipe env list
""")
def list_() -> None:
    """Show each environment: ready or not, where, and the tool versions it holds."""
    from rich.console import Console

    table = folding_table("env", "tool", "status", "versions", "path")
    for name, env in tools.ENVIRONMENTS.items():
        interpreter = tools.python(name)
        if interpreter is None:
            table.add_row(name, env.tool, "[yellow]not set up[/]", "", f"medrecipe env setup {name}")
            continue
        packages = tools.installed(name)
        keys = [env.tool, "torch", "transformers", "vllm"]
        versions = ", ".join(f"{k} {packages[k]}" for k in keys if k in packages)
        changed = tools.changed_pins(interpreter.parent.parent)
        status = f"[red]changed: {', '.join(changed)}[/] (medrecipe env setup {name})" if changed else "[green]ready[/]"
        table.add_row(name, env.tool, status, versions, str(interpreter.parent.parent))
    Console().print(table)
