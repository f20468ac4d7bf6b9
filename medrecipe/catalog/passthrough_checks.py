"""Checks of what a recipe passes through to the tools as they are (`sft.axolotl`, `rl.openrlhf`): keys that would
contradict the recipe, hold a credential, run code or send data where the recipe's author chose, and OpenRLHF flags
that argparse would read otherwise than written. Errors fail `validate`; warnings are printed."""

from __future__ import annotations

import difflib

from . import axolotl_keys, openrlhf_flags
from ..recipe import LoadedRecipe, Problem


def check(loaded: LoadedRecipe) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    _openrlhf_flags(loaded, errors)
    _passthrough_keys(loaded, errors)
    _remote_code(loaded, warnings)
    return errors, warnings


def _passthrough(loaded: LoadedRecipe) -> list[tuple[tuple[str, str], dict]]:
    """(where in the recipe, its entries) of each passthrough."""
    recipe = loaded.recipe
    return [(("sft", "axolotl"), recipe.sft.axolotl if recipe.sft else {}),
            (("rl", "openrlhf"), recipe.rl.openrlhf if recipe.rl else {})]


# Tool options that make the tool import or run code named by the recipe: allowed (a recipe may need a model's
# own code), but never silently, since recipes are shared. (OpenRLHF 0.11 has no trust_remote_code flag: it always
# trusts the model's code.)
_REMOTE_CODE = {
    ("sft", "axolotl"): {"trust_remote_code": "runs the model repository's own Python code",
                         "plugins": "imports the Python modules it names"},
    ("rl", "openrlhf"): {"train.agent_func_path": "runs the Python file it names",
                         # cli/train_*.py: modelscope's patch_hub, then every model loaded with trust_remote_code=True
                         "use_ms": "downloads the models it names from ModelScope instead of the Hub and runs their code"},
}
# Passthrough keys that send data or write files where the recipe says (Axolotl 0.19's config keys, OpenRLHF 0.11's
# flags: cli/train_ppo_ray.py --logger.*)
_ELSEWHERE = {
    ("sft", "axolotl"): {
        "push_dataset_to_hub": "pushes the tokenized dataset to the Hub repository it names, with your token",
        "hub_model_id": "pushes the training folder, the tokenized dataset and logs in it, to the Hub repository it names, "
                        "with your token",
        "mlflow_tracking_uri": "sends the run's metrics to the server it names",
        "hf_mlflow_log_artifacts": "uploads the checkpoints to the MLflow server",
        "wandb_entity": "logs the run to the W&B entity it names, with your W&B key",
        "comet_workspace": "logs the run to the Comet workspace it names, with your Comet key",
    },
    ("rl", "openrlhf"): {
        "logger.wandb.key": "logs the run to W&B with the key it holds",
        "logger.wandb.org": "logs the run to the W&B organisation it names",
        "logger.tensorboard_dir": "writes its logs to the folder it names, which may be outside the build",
    },
}


# Passthrough entries whose value is a credential, with the variable the tool reads it from instead: a recipe is
# shared, and its values go into lock.json, the cards and the tools' command lines. Evidence: Axolotl 0.19
# utils/schemas/integrations.py (comet_api_key; comet_ml reads COMET_API_KEY); OpenRLHF 0.11.2 utils/logging_utils.py
# (`if not wandb.api.api_key: wandb.login(key=args.logger.wandb.key)`): the flag turns W&B logging on, and its value is
# used as the key only where W&B has none of its own (WANDB_API_KEY, or `wandb login`), so a switch value ("on") serves.
_CREDENTIALS = {
    ("sft", "axolotl"): {"comet_api_key": ("COMET_API_KEY", None)},
    ("rl", "openrlhf"): {"logger.wandb.key": ("WANDB_API_KEY", "on")},
}


def _passthrough_keys(loaded: LoadedRecipe, errors: list[Problem]) -> None:
    """Errors for passthrough keys that would contradict the recipe (Axolotl keys medrecipe writes from its fields) or
    that hold a credential."""
    for at, options in _passthrough(loaded):
        for key, value in options.items():
            if at == ("sft", "axolotl") and key in axolotl_keys.DERIVED_FROM:
                errors.append(loaded.problem((*at, key), f"medrecipe writes {key} from {axolotl_keys.DERIVED_FROM[key]}",
                                                   f"set {axolotl_keys.DERIVED_FROM[key]} instead; the passthrough is for "
                                                   "keys medrecipe does not map"))
            credential = _CREDENTIALS[at].get(key)
            if credential and value not in (None, False, credential[1]):
                variable, switch = credential
                errors.append(loaded.problem(
                    (*at, key), f"{key} holds a credential, which this recipe would write into lock.json, the cards and "
                    "the tool's command line", f"export {variable}=... (the tool reads it from there)"
                    + (f" and set {'.'.join(at)}.{key}: {switch}, which turns the logging on" if switch else f" and remove {key}")))


def _remote_code(loaded: LoadedRecipe, warnings: list[Problem]) -> None:
    """Warnings for passthrough keys that run code, or send data or write files where the recipe's author chose."""
    for at, options in _passthrough(loaded):
        for key, value in options.items():
            if value in (False, None, [], ""):
                continue
            if key in _REMOTE_CODE[at]:
                warnings.append(loaded.problem((*at, key), f"{key}: the tool {_REMOTE_CODE[at][key]}; this recipe can "
                                                     "run code on the machines it runs on", "run it only if you trust its author"))
            elif key in _ELSEWHERE[at]:
                warnings.append(loaded.problem((*at, key), f"{key}: the tool {_ELSEWHERE[at][key]}; this recipe chooses "
                                                     "where your data goes", f"remove it unless you chose it: --set {'.'.join(at)}.{key}=~"))


def _openrlhf_flags(loaded: LoadedRecipe, errors: list[Problem]) -> None:
    """Errors for `rl.openrlhf` entries that OpenRLHF would read otherwise than written: a name that is not one of its
    flags (argparse reads the beginning of a flag as that flag) and a value that begins with '-' (read as a flag)."""
    rl = loaded.recipe.rl
    if rl is None:
        return
    cli = openrlhf_flags.CLI[rl.algorithm]
    for name, value in rl.openrlhf.items():
        if value is False or value is None:
            continue  # an unset switch, or an entry a child recipe removed: nothing is passed
        if name not in openrlhf_flags.FLAGS[cli]:
            errors.append(_not_a_flag(loaded, cli, name))
        items = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]  # a list: one argument each
        for index, item in items:
            argument = str(item)
            if openrlhf_flags.read_as_flag(argument):
                errors.append(loaded.problem(
                    ("rl", "openrlhf", name) if index is None else ("rl", "openrlhf", name, index),
                    f"{argument!r} begins with '-': OpenRLHF would read it as another flag, not as a value of --{name}",
                    "a value may not begin with '-' (a negative number may)"))


def _not_a_flag(loaded: LoadedRecipe, cli: str, name: str) -> Problem:
    at = ("rl", "openrlhf")
    message = f"not a flag of OpenRLHF {openrlhf_flags.VERSION}'s {cli}"
    begun = openrlhf_flags.abbreviated_flags(cli, name)
    if len(begun) == 1:
        flag = begun[0]
        does = _REMOTE_CODE[at].get(flag) or _ELSEWHERE[at].get(flag)
        return loaded.problem((*at, name), f"{message}; OpenRLHF would read it as --{flag}" + (f", which {does}" if does else ""),
                              f"write the whole name, {flag}, if you mean that flag")
    if begun:
        return loaded.problem((*at, name), f"{message}, but the beginning of {', '.join(f'--{flag}' for flag in begun)}",
                              "write the whole name of the flag you mean")
    close = difflib.get_close_matches(name, openrlhf_flags.FLAGS[cli], n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"the flags are those of openrlhf/cli/{cli}.py"
    return loaded.problem((*at, name), message, hint)
