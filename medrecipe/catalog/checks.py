"""Semantic checks of a valid recipe against what medrecipe knows: benchmarks, base models, dataset layouts, local files.

The recipe model checks a recipe's shape; these check its meaning (a benchmark that exists, a sequence
length the base model supports). Errors fail `validate`; warnings are printed and kept in `plan`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from . import benchmarks, dataset_checks, models, openrlhf_flags, passthrough_checks, template_checks
from .licenses import HUB_LICENSES
from ..recipe import LoadedRecipe, Problem
from ..recipe.model import DecontaminateFuzzy, DecontaminateNgram, Generate, PolicyOptimization, PreferenceStage
from ..recipe.model.eval import PROMPT_ROOM
from ..recipe.untrusted import key_destination_problem, provider_hosts


@dataclass
class Findings:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    unknown_models: set[str] = field(default_factory=set)  # whose limits are unknown, said once each


def _sft_start(loaded: LoadedRecipe) -> tuple[str, tuple[str, ...]]:
    """The model SFT starts from, and the recipe field that names it."""
    recipe = loaded.recipe
    if recipe.sft and recipe.sft.base_model:
        return recipe.sft.base_model, ("sft", "base_model")
    return recipe.base_model, ("base_model",)


def _rl_start(loaded: LoadedRecipe) -> tuple[str, tuple[str, ...]]:
    """The model whose architecture the RL stage trains, its `init_from` or the SFT stage's base model, and the
    recipe field that names it."""
    rl = loaded.recipe.rl
    assert rl is not None
    return (rl.init_from, ("rl", "init_from")) if rl.init_from != "sft" else _sft_start(loaded)


def sft_base_model(loaded: LoadedRecipe) -> str:
    return _sft_start(loaded)[0]


def rl_base_model(loaded: LoadedRecipe) -> str:
    return _rl_start(loaded)[0]


def chat_template(loaded: LoadedRecipe) -> str:
    """The Axolotl chat template the SFT stage uses: the recipe's, or the base model family's for `auto`."""
    assert loaded.recipe.sft is not None
    if loaded.recipe.sft.chat_template != "auto":
        return loaded.recipe.sft.chat_template
    derived = models.chat_template_for(sft_base_model(loaded))
    return derived or "tokenizer_default"


def check(loaded: LoadedRecipe) -> Findings:
    found = Findings()
    _reproduced_model(loaded, found)
    _benchmarks(loaded, found)
    errors, warnings = dataset_checks.check(loaded)
    found.errors += errors
    found.warnings += warnings
    errors, warnings = passthrough_checks.check(loaded)
    found.errors += errors
    found.warnings += warnings
    _rl_model_code(loaded, found)
    _curation_model_code(loaded, found)
    if loaded.recipe.sft:
        found.warnings += template_checks.thinking(loaded, sft_base_model(loaded), chat_template(loaded))
    _slurm_environment(loaded, found)
    _key_destinations(loaded, found)
    _license(loaded, found)
    _base_model(loaded, found)
    _local_sources(loaded, found)
    return found


def model_errors(loaded: LoadedRecipe) -> list[Problem]:
    """The errors of the checks against the models' limits and families alone (`preflight`, once each model's
    config.json is in the Hub cache, where `models.limits` reads it)."""
    found = Findings()
    _base_model(loaded, found)
    return found.errors


def _reproduced_model(loaded: LoadedRecipe, found: Findings) -> None:
    """A recipe that trains from the model it says it reproduces (a child recipe that inherited the parent's
    hub.reproduces) would publish cards naming one model as both its base and what it reproduces."""
    recipe = loaded.recipe
    reproduced = recipe.hub.reproduces.model if recipe.hub.reproduces else None
    if reproduced is None or (recipe.sft is None and recipe.rl is None):
        return
    start = rl_base_model(loaded) if recipe.rl else sft_base_model(loaded)
    if reproduced == start:
        found.errors.append(loaded.problem(("hub", "reproduces", "model"), f"this recipe trains from {start}, the model it "
                                           "says it reproduces", "name the published model this recipe's training "
                                           "reproduces, or none: --set hub.reproduces.model=~"))


def _unknown_benchmark(loaded: LoadedRecipe, path: tuple, name: str) -> Problem:
    names = list(benchmarks.known(loaded.recipe))
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names)} (or define it in eval.custom_benchmarks)"
    return loaded.problem(path, f"unknown benchmark {name!r}", hint)


def _benchmarks(loaded: LoadedRecipe, found: Findings) -> None:
    recipe = loaded.recipe
    known = benchmarks.known(recipe)
    if recipe.eval:
        for index, custom in enumerate(recipe.eval.custom_benchmarks):
            if custom.name in benchmarks.BENCHMARKS:
                found.errors.append(loaded.problem(("eval", "custom_benchmarks", index, "name"),
                                                   f"{custom.name!r} is a benchmark of the registry", "give yours another name"))
        for index, ref in enumerate(recipe.eval.benchmarks):
            if ref.name not in known:
                found.errors.append(_unknown_benchmark(loaded, ("eval", "benchmarks", index), ref.name))
                continue
            bench = known[ref.name]
            if not bench.hub and not ref.path:
                found.errors.append(loaded.problem(("eval", "benchmarks", index), f"{ref.name} has no Hub dataset and no local copy",
                                                   f"give its path: {{name: {ref.name}, path: ...}}, or its hub in eval.custom_benchmarks"))
            if bench.kind == "rubric" and recipe.eval.judge is None:
                found.errors.append(
                    loaded.problem(("eval", "benchmarks", index), f"{ref.name} is graded by a judge model, and eval.judge is not set",
                                   "add eval.judge: {model: ..., endpoint: ...}")
                )
            elif bench.kind == "rubric" and recipe.eval.judge.endpoint is None:
                found.errors.append(
                    loaded.problem(("eval", "judge"), f"{ref.name}'s judge is called at an OpenAI-compatible endpoint; "
                                   "eval.judge.endpoint is not set", "e.g. endpoint: https://api.openai.com/v1")
                )
            if bench.kind == "rubric" and recipe.eval.mode == "loglikelihood":
                found.errors.append(
                    loaded.problem(("eval", "benchmarks", index), f"{ref.name} grades a written answer; eval.mode loglikelihood writes none",
                                   "set eval.mode: generative, or drop the benchmark")
                )
            if ref.path and not loaded.local_path(("eval", "benchmarks", index, "path")).exists():
                found.warnings.append(loaded.problem(("eval", "benchmarks", index, "path"), f"{ref.path} does not exist (yet)"))
    if recipe.data:
        for index, step in enumerate(recipe.data.steps):
            if isinstance(step, (DecontaminateNgram, DecontaminateFuzzy)) and step.benchmarks:
                for position, name in enumerate(step.benchmarks):
                    if name not in known:
                        found.errors.append(_unknown_benchmark(loaded, ("data", "steps", index, "benchmarks", position), name))


def _limits(loaded: LoadedRecipe, found: Findings, model: str, at: tuple) -> models.Limits | None:
    """A model's limits; where medrecipe knows none, a warning (once per model) that nothing was checked against
    them: Axolotl trains past a model's positions with a log line (loaders/model.py raises max_position_embeddings)."""
    bounds = models.limits(model)
    if bounds is None and model not in found.unknown_models:
        found.unknown_models.add(model)
        found.warnings.append(loaded.problem(at, f"medrecipe does not know {model}'s positions and attention heads: the "
                                             "lengths and tensor-parallel sizes this recipe runs it with are not checked "
                                             "against them", "`medrecipe preflight` reads its config.json from the Hub and "
                                             "checks them"))
    return bounds


def _base_model(loaded: LoadedRecipe, found: Findings) -> None:
    recipe = loaded.recipe
    if recipe.sft:
        model, at = _sft_start(loaded)
        errors, warnings = template_checks.check(loaded, model, chat_template(loaded))
        found.errors += errors
        found.warnings += warnings
        bounds = _limits(loaded, found, model, at)
        if bounds and recipe.sft.sequence_len > bounds.max_positions:
            found.errors.append(
                loaded.problem(("sft", "sequence_len"),
                               f"{recipe.sft.sequence_len} tokens exceed {model}'s {bounds.max_positions} positions",
                               f"lower sft.sequence_len to at most {bounds.max_positions}")
            )
    rl = recipe.rl
    if rl and rl.init_from != "sft":
        trained, base = models.family(rl.init_from), models.family(recipe.base_model)
        if trained and base and trained != base:  # found by review: a fork's base_model, which RL does not train
            found.warnings.append(loaded.problem(("rl", "init_from"), f"RL trains {rl.init_from}, a {trained} model, and "
                                                 f"base_model is {recipe.base_model}, a {base} model", "start RL from a model "
                                                 "of base_model's family (init_from: sft, or the model SFT made from it)"))
    if isinstance(rl, PolicyOptimization):
        model, at = _rl_start(loaded)
        bounds = _limits(loaded, found, model, at)
        total = rl.max_prompt_length + rl.max_response_length
        if bounds and total > bounds.max_positions:
            found.errors.append(
                loaded.problem(("rl", "max_response_length"),
                               f"prompt {rl.max_prompt_length} + response {rl.max_response_length} = {total} tokens exceed "
                               f"{model}'s {bounds.max_positions} positions")
            )
        if bounds and bounds.attention_heads % rl.rollout.tensor_parallel_size:
            found.errors.append(
                loaded.problem(("rl", "rollout", "tensor_parallel_size"),
                               f"tensor parallel size {rl.rollout.tensor_parallel_size} does not divide {model}'s "
                               f"{bounds.attention_heads} attention heads")
            )
    elif isinstance(rl, PreferenceStage):
        model, at = _rl_start(loaded)
        bounds = _limits(loaded, found, model, at)
        if bounds and rl.max_len > bounds.max_positions:
            found.errors.append(loaded.problem(("rl", "max_len"), f"{rl.max_len} tokens exceed {model}'s {bounds.max_positions} "
                                               "positions", f"lower rl.max_len to at most {bounds.max_positions}"))
    for path, call in recipe.served_models():
        bounds = _limits(loaded, found, call.model, (*path, "model"))
        if bounds and bounds.attention_heads % call.tensor_parallel_size:
            found.errors.append(loaded.problem((*path, "tensor_parallel_size"), f"tensor parallel size {call.tensor_parallel_size} "
                                               f"does not divide {call.model}'s {bounds.attention_heads} attention heads"))
    if recipe.sft and recipe.sft.datasets is None and recipe.data:
        # Axolotl leaves out the records longer than sequence_len (excess_length_strategy drop, its default): a
        # generation that runs to max_tokens would be paid for, pass complete_generation, and never be trained.
        for index, step in enumerate(recipe.data.steps):
            if isinstance(step, Generate) and step.max_tokens >= recipe.sft.sequence_len:
                found.warnings.append(loaded.problem(
                    ("data", "steps", index, "max_tokens"),
                    f"responses of up to {step.max_tokens} tokens, but SFT trains records of at most sft.sequence_len = "
                    f"{recipe.sft.sequence_len} tokens with their prompts: Axolotl leaves the longer ones out",
                    f"generate at most what SFT trains, less the prompt: --set data.steps.{index}.max_tokens=..."))
    if recipe.eval:
        _evaluated_model(loaded, found)


def _evaluated_model(loaded: LoadedRecipe, found: Findings) -> None:
    """The evaluated model's limits, known for its architecture (the base model, or `eval.model`). lighteval gives the
    answer its max_new_tokens and cuts the prompt to what is left of the context, and stops with "Context size is less
    than 0" when nothing is (lighteval 0.13 models/vllm/vllm_model.py, _greedy_until)."""
    ev, model = loaded.recipe.eval, loaded.recipe.evaluated_architecture()
    assert ev is not None
    bounds = _limits(loaded, found, model, ("eval", "model"))
    if bounds and bounds.attention_heads % ev.tensor_parallel_size:
        found.errors.append(loaded.problem(("eval", "tensor_parallel_size"), f"tensor parallel size {ev.tensor_parallel_size} "
                                           f"does not divide {model}'s {bounds.attention_heads} attention heads"))
    if ev.mode != "generative":
        return
    context = min(ev.context_length(), bounds.max_positions) if bounds else ev.context_length()
    if ev.sampling.max_new_tokens >= context:
        found.errors.append(loaded.problem(
            ("eval", "sampling", "max_new_tokens"),
            f"{ev.sampling.max_new_tokens} answer tokens leave no room for the prompt in a context of {context} tokens"
            + (f" ({model}'s positions)" if bounds and context == bounds.max_positions else ""),
            f"at most {context - PROMPT_ROOM} answer tokens leave the prompt {PROMPT_ROOM}: --set eval.sampling.max_new_tokens=..."))
    elif bounds and ev.context_length() > bounds.max_positions and not ev.max_model_length:
        found.warnings.append(loaded.problem(
            ("eval", "sampling", "max_new_tokens"),
            f"{ev.sampling.max_new_tokens} answer tokens leave prompts {bounds.max_positions - ev.sampling.max_new_tokens} of "
            f"{model}'s {bounds.max_positions} positions: lighteval cuts the beginning of longer prompts",
            f"at most {bounds.max_positions - PROMPT_ROOM} answer tokens leave the prompt {PROMPT_ROOM}"))


def _rl_model_code(loaded: LoadedRecipe, found: Findings) -> None:
    """OpenRLHF 0.11 loads every model with trust_remote_code=True, unasked (openrlhf/models/model.py, actor.py,
    utils/utils.py): the code a model repository holds (its config.json's auto_map) runs. The models the catalog knows
    are transformers' own architectures; any other is said, since a recipe picks the model."""
    if loaded.recipe.rl is None:
        return
    model, at = _rl_start(loaded)
    if models.facts(model) is not None:
        return
    found.warnings.append(loaded.problem(at, f"OpenRLHF {openrlhf_flags.VERSION} loads {model} with trust_remote_code=True, "
                                             "always: Python code its repository holds runs on the machines RL runs on, and "
                                             "medrecipe does not know this model", "run it only if you trust the model's "
                                             "repository (an auto_map in its config.json names such code)"))


def _curation_model_code(loaded: LoadedRecipe, found: Findings) -> None:
    """A curation step without an endpoint has datatrove start vLLM for its model, always with --trust-remote-code
    (datatrove 0.10 pipeline/inference/servers/vllm_server.py): as for RL, a model the catalog does not know is said."""
    for path, call in loaded.recipe.served_models():
        if models.facts(call.model) is None:
            found.warnings.append(loaded.problem((*path, "model"), f"datatrove serves {call.model} with vLLM and "
                                                 "--trust-remote-code, always: Python code its repository holds runs where "
                                                 "the data stage runs, and medrecipe does not know this model",
                                                 "run it only if you trust the model's repository, or give the step an "
                                                 "endpoint that serves it"))


def _key_destinations(loaded: LoadedRecipe, found: Findings) -> None:
    """A key goes where the recipe's endpoint is only when that is the key's provider's API, or this machine, unless
    you name the endpoint yourself (--set): a recipe file names the endpoint, and its author may want your OpenAI key,
    or any other secret of your environment, sent to their server (found by review: `preflight` asked it for its
    models with the key). The rule of compute.ray.address and $RAY_AUTH_TOKEN (run/jobs.py)."""
    for path, call in loaded.recipe.model_calls():
        if not (call.endpoint and call.api_key_env and (problem := key_destination_problem(call.api_key_env, call.endpoint))):
            continue
        if not loaded.set_on_command_line((*path, "endpoint")):
            yours = f"give the endpoint yourself if it is yours to trust: --set {'.'.join(map(str, path))}.endpoint=..."
            own = ("name the variable of that server's own key (api_key_env: MY_SERVER_KEY, or ~ for none), or "
                   if provider_hosts(call.api_key_env) else "name no key (api_key_env: ~), or ")
            found.errors.append(loaded.problem((*path, "endpoint"), f"{problem}, named by the recipe", own + yours))


def _license(loaded: LoadedRecipe, found: Findings) -> None:
    """The Hub checks a card's license when it is pushed (found by review: a misspelt id passed validate, to be refused
    by the Hub after the weights had been uploaded). A warning, not an error: the Hub adds ids after medrecipe's list."""
    recipe = loaded.recipe
    if recipe.license not in HUB_LICENSES:
        found.warnings.append(loaded.problem(("license",), f"{recipe.license} is not one of the Hub's license ids, and the Hub "
                                             "refuses a card whose license it does not know",
                                             "name a Hub license id (apache-2.0, llama3, cc-by-4.0, ...), or `license: other` "
                                             "with license_name and license_link"))
    elif recipe.license == "other" and not recipe.license_name:
        found.warnings.append(loaded.problem(("license",), "other: the Hub asks for the license's name (license_name) and "
                                             "where its text is", "license_name: my-license, license_link: https://..."))
    for key in ("license_name", "license_link"):
        if getattr(recipe, key) and recipe.license != "other":
            found.errors.append(loaded.problem((key,), f"{key} names the license of `license: other`, and the license is "
                                               f"{recipe.license}", f"remove {key}, or set license: other"))


def _slurm_environment(loaded: LoadedRecipe, found: Findings) -> None:
    """The environment the Slurm jobs run in is code the recipe chooses: the virtual environment's activate script
    (sourced by every data job) and the container image (srun --container-image)."""
    slurm = loaded.recipe.compute.slurm
    for key, value, what in (("venv", slurm.venv, f"sources {slurm.venv}/bin/activate, a shell script, in every data job"),
                             ("container", slurm.container, f"runs every Slurm job in the image {slurm.container}")):
        if value:
            found.warnings.append(loaded.problem(("compute", "slurm", key), f"compute.slurm.{key}: medrecipe {what}; this "
                                                 "recipe chooses code that runs on the cluster",
                                                 f"run it only if you chose it or trust its author: --set compute.slurm.{key}=..."))


def _local_sources(loaded: LoadedRecipe, found: Findings) -> None:
    if not loaded.recipe.data:
        return
    for index, source in enumerate(loaded.recipe.data.sources):
        if source.path and not source_exists(loaded.local_path(("data", "sources", index, "path"))):
            kind = "required, so the data stage will stop" if source.required else "optional; it will be skipped"
            found.warnings.append(
                loaded.problem(("data", "sources", index, "path"), f"{source.path} does not exist ({kind})",
                               "point it at your copy, e.g. --set data.sources.%d.path=/data/..." % index)
            )


def source_exists(path: Path) -> bool:
    if any(char in path.name for char in "*?["):
        return any(path.parent.glob(path.name))
    return path.exists()
