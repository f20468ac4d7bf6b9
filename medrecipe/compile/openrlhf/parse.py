"""Parse OpenRLHF flags with OpenRLHF's own parser. Runs INSIDE the rl environment (medrecipe is not
installed there; on a CPU machine OpenRLHF is installed without its dependencies): standard library only.

    python parse.py train_ppo_ray|train_dpo|train_rm ARGV_JSON
    python parse.py --flags train_ppo_ray|train_dpo|train_rm

OpenRLHF builds its parser and checks the parsed arguments in the `if __name__ == "__main__":` block of
each CLI module, whose imports (ray, vLLM, DeepSpeed, torch) cannot load without GPUs. This runs exactly
the statements of that block, read from the installed file, except the final `train(args)` and the
ModelScope hub patch: every flag, default, choice, assertion and rewrite is OpenRLHF's own code.

Prints one JSON line {"problems": [...]}: what argparse rejects, a failed assertion, or a warning the
checks print (a compiled launch should make OpenRLHF neither complain nor rewrite a flag). With --flags, it
prints {"flags": [...]}: the names of the flags the CLI's parser takes, which catalog/openrlhf_flags.py holds.
"""

import argparse
import ast
import contextlib
import datetime
import importlib.util
import io
import json
import os
import sys


class ArgumentError(Exception):
    """What argparse would have reported before exiting with status 2."""


def package_dir() -> str:
    spec = importlib.util.find_spec("openrlhf")  # openrlhf/__init__.py is empty: finding it imports nothing
    if spec is None or spec.origin is None:
        raise SystemExit("openrlhf is not installed in this environment")
    return os.path.dirname(spec.origin)


def register_config_module() -> None:
    # The block imports `openrlhf.utils.config.hierarchize`; importing the package `openrlhf.utils` would
    # load torch and transformers, so the stdlib-only config module is registered on its own.
    name = "openrlhf.utils.config"
    spec = importlib.util.spec_from_file_location(name, os.path.join(package_dir(), "utils", "config.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module


def skipped(statement: ast.stmt) -> bool:
    calls_train = (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and isinstance(statement.value.func, ast.Name)
        and statement.value.func.id == "train"
    )
    hub_patch = isinstance(statement, ast.If) and isinstance(statement.test, ast.Attribute) and statement.test.attr == "use_ms"
    return calls_train or hub_patch


def main_block(module: str):
    path = os.path.join(package_dir(), "cli", f"{module}.py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=path)
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and getattr(node.test.left, "id", None) == "__name__":
            body = [statement for statement in node.body if not skipped(statement)]
            return compile(ast.Module(body=body, type_ignores=[]), path, "exec")
    raise SystemExit(f"no __main__ block in {path}")


class ParserBuilt(Exception):
    """Stops the block at its parse_args: `flags` wants the parser, not a run."""

    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__()
        self.parser = parser


def run_main_block(module: str, parse_args) -> str:
    """Run the block with `parse_args(parser)` in place of the parser's own; returns what the block printed."""
    register_config_module()
    code = main_block(module)

    class Parser(argparse.ArgumentParser):
        def parse_args(self, args=None, namespace=None):
            return parse_args(self)

        def error(self, message):
            raise ArgumentError(message)

    shim = argparse.Namespace(**{name: getattr(argparse, name) for name in dir(argparse) if not name.startswith("_")})
    shim.ArgumentParser = Parser
    scope = {"__name__": "__main__", "__builtins__": __builtins__, "argparse": shim, "datetime": datetime.datetime, "os": os}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, scope)
    return printed.getvalue()


def parse(module: str, arguments: list[str]) -> list[str]:
    try:
        printed = run_main_block(module, lambda parser: argparse.ArgumentParser.parse_args(parser, arguments))
    except ArgumentError as error:
        return [f"argparse: {error}"]
    except AssertionError as error:
        return [f"assertion: {error}"]
    except Exception as error:  # the real checks also fail with TypeError / AttributeError on some combinations
        return [f"{type(error).__name__}: {error}"]
    return [f"OpenRLHF warns: {line.strip()}" for line in printed.splitlines() if line.strip()]


def flags(module: str) -> list[str]:
    """The names, without `--`, of the flags the parser takes: the option strings argparse matches an argument, or
    the beginning of one, against; less argparse's own --help."""

    def stop(parser: argparse.ArgumentParser):
        raise ParserBuilt(parser)

    try:
        run_main_block(module, stop)
    except ParserBuilt as built:
        options = built.parser._option_string_actions
        return sorted(option[2:] for option, action in options.items()
                      if option.startswith("--") and not isinstance(action, argparse._HelpAction))
    raise SystemExit(f"the __main__ block of {module} parsed no arguments")


def main() -> None:
    if sys.argv[1] == "--flags":
        print(json.dumps({"flags": flags(sys.argv[2])}))
        return
    module, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"problems": parse(module, arguments)}))


if __name__ == "__main__":
    main()
