"""The `medrecipe` command: one subcommand per module, imported only when it runs (validate stays fast)."""

from __future__ import annotations

import atexit
import gc
import importlib
import io
import shlex
import sys

import click

from .. import __version__
from . import pause_collecting, restore_collecting, start_collecting

# name -> (module, one-line help). The help is here so `medrecipe --help` imports no subcommand.
COMMANDS = {
    "validate": ("validate", "Check a recipe; exit 0 with a summary or 2 with every error."),
    "plan": ("plan", "Show every stage, step, derived number and Hub repo, without running anything."),
    "show": ("show", "Print the fully resolved recipe (extends, overrides, defaults) as YAML."),
    "new": ("new", "Fork a recipe: write recipes/NAME.yaml that extends a parent with only your overrides."),
    "schema": ("schema", "Write the recipe JSON Schema for editors (schemas/recipe.schema.json)."),
    "preflight": ("preflight", "Check every model and dataset a recipe names on the Hub, and read their first rows."),
    "inspect": ("inspect", "Show one record as SFT, RL and evaluation feed it to the model, and check they agree."),
    "compile": ("compile", "Compile a recipe into the native inputs of datatrove, Axolotl, OpenRLHF and lighteval."),
    "run": ("run", "Run a recipe's stages: data curation, SFT, RL, evaluation."),
    "publish": ("publish", "Push datasets, checkpoints and cards to the Hugging Face Hub (or --to-dir)."),
    "compare": ("compare", "Compare evaluation scores with a recipe's published results table."),
    "env": ("env", "Build and list the pinned tool environments (Axolotl, OpenRLHF, lighteval)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"medrecipe.cli.{COMMANDS[name][0]}")
        if not any(param.name == "recipe" for param in module.command.params):
            start_collecting()  # a command with a recipe resumes once it is loaded
        return module.command

    def resolve_command(self, ctx: click.Context, args: list[str]):
        # click suggests a command from those it holds, and this group holds none until one is imported
        if args and args[0] not in COMMANDS and not args[0].startswith("-"):
            raise click.exceptions.NoSuchCommand(args[0], possibilities=list(COMMANDS), ctx=ctx)
        return super().resolve_command(ctx, args)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser takes the arguments from the list as it reads them
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:  # `medrecipe --set x=1 validate r.yaml`: the command's option, too early
            name = next((arg for arg in given if arg in COMMANDS), None)
            command = name and self.get_command(ctx, name)
            if command and any(error.option_name in param.opts for param in command.params):
                before, after = given[: given.index(name)], given[given.index(name) + 1 :]
                error.message += (f" It is an option of `medrecipe {name}`, and goes after the command: "
                                  f"{shlex.join(['medrecipe', name, *after, *before])}")
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, help_text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="medrecipe")
def cli() -> None:
    """medrecipe: one YAML recipe for a whole medical-LLM release.

    \b
    Start with:
      medrecipe validate recipes/ii-medical-8b-1706.yaml
      medrecipe plan recipes/ii-medical-8b-1706.yaml
      medrecipe run recipes/quickstart.yaml
    """


class _Redacting(io.TextIOBase):
    """Everything medrecipe prints passes `redact`: no secret reaches a terminal or a captured log."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        from ..recipe.untrusted import redact

        self.stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8")


# As Python exits, its last garbage collection frees one by one every class, function and module that a stage's imports
# (datatrove, pyarrow, pydantic) made: 0.1 s of every such command, for memory the process is about to give back. Frozen,
# they are left to the operating system; reference counting still closes what each module held as modules are cleared.
atexit.register(gc.freeze)


def main() -> None:
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Redacting(sys.stdout), _Redacting(sys.stderr)
    pause_collecting()
    try:
        _main()
    finally:
        restore_collecting()
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams


def _main() -> None:
    from ..errors import UserError

    try:
        code = cli.main(standalone_mode=False)
    except UserError as exc:  # a recipe's errors (RecipeError), or the machine's or the user's
        click.echo(exc.report(), err=True)
        sys.exit(2)
    except OSError as exc:  # a folder that cannot be written, a full disk: the machine's answer, without a traceback
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, click.exceptions.Abort):  # click turns Ctrl-C into Abort outside standalone mode
        click.echo("\ninterrupted: finished work is kept; rerun the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
