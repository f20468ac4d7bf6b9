"""The eval section as a lighteval 0.13 suite: `eval/tasks.py`, `eval/launch.sh` and `eval/prepare_model.py`.

- `tasks.py` is a self-contained custom-task module: medrecipe's benchmark readers (benchmark_items.py) and
  graders (grading.py) are embedded verbatim, followed by the recipe's parameters and the task code
  (tasks_runtime.py). One task `medrecipe:<benchmark>` per recipe benchmark, reading the registry's
  location (Hub id, subset, split, row filter) or the recipe's local copy.
- lighteval 0.13's own tasks for these benchmarks (`med_mcqa`, `med_qa`, `pubmedqa`, `mmlu:<subject>`) are
  generative exact match of a few tokens on other copies of the data, neither the boxed-reasoning setting nor
  the log-likelihood setting a recipe asks for (BUILTIN_SETTINGS), so none is run; `plan` says so per benchmark.
- `launch.sh` holds the exact `lighteval vllm|accelerate` command, run in the stage's content-keyed folder.
  `prepare_model.py` (this package's prepare_model.py) gives lighteval a relative name for a local model (an
  absolute one would put lighteval's answer cache inside the model folder) and, when the accelerate backend
  must sample, a linked copy whose generation_config.json enables sampling: that backend never passes
  `do_sample` to transformers, so a sampling recipe would otherwise silently decode greedily.
- `check` loads tasks.py into lighteval's own registry in the eval environment and builds every task.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ...catalog import benchmarks
from ...recipe import LoadedRecipe
from ...recipe.derive import eval_gpus
from ...recipe.model import RECIPE_MODELS
from ...recipe.model.eval import PROMPT_ROOM
from ..build import Artifact, StageBuild
from ..layout import Layout
from .benchmark_files import DataPlan, data_plan
from .evaluated_model import default_model, max_model_length, samples, scores_of_model
from .launch import launch_script, stage_data_script
from .names import (LAUNCH, PREPARE_MODEL, PREPARE_MODEL_SOURCE, REGISTRY_CHECK, STAGE_DATA, TASKS, TOOL,
                    VERSION, builtin_setting, task_name)
from .scores import score_of
from .tasks import tasks_module

__all__ = ["LAUNCH", "STAGE_DATA", "TASKS", "TOOL", "VERSION", "build", "builtin_setting", "check", "default_model",
           "ensure_offline_import", "max_model_length", "score_of", "scores_of_model", "task_name"]


def build(loaded: LoadedRecipe, layout: Layout) -> StageBuild:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    stage = StageBuild("eval", tool_versions={"lighteval": VERSION})
    plans = [data_plan(loaded, index) for index in range(len(ev.benchmarks))]
    stage.artifacts.append(Artifact(TASKS, tasks_module(loaded, plans)))
    stage.artifacts.append(Artifact(LAUNCH, launch_script(loaded, layout, plans), executable=True))
    if any(plan.links for plan in plans):
        stage.artifacts.append(Artifact(STAGE_DATA, stage_data_script(loaded, plans), executable=True))
    stage.artifacts.append(Artifact(PREPARE_MODEL, PREPARE_MODEL_SOURCE.read_text(encoding="utf-8")))
    _facts(loaded, layout, plans, stage)
    return stage


def _facts(loaded: LoadedRecipe, layout: Layout, plans: list[DataPlan], stage: StageBuild) -> None:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    model = default_model(loaded, layout)
    stage.facts.append(("evaluated model", f"{ev.model}: {model}" if ev.model in RECIPE_MODELS else str(model)))
    stage.facts.append(("backend", f"lighteval {ev.backend} ({ev.dtype}), {ev.mode}"))
    if ev.mode == "loglikelihood":
        stage.facts.append(("scoring", "each option's likelihood right after the prompt, as plain text (no chat template, "
                                       "the tokenizer's own special tokens)"))
    if ev.mode == "generative":
        sampling = ev.sampling
        top_k = sampling.top_k if sampling.top_k is not None and sampling.top_k >= 0 else "none"
        stage.facts.append(("generation", f"temperature {sampling.temperature:g}, top_p {sampling.top_p:g}, top_k {top_k}, "
                                          f"max_new_tokens {sampling.max_new_tokens}, seed {recipe.seed}"))
        if ev.backend == "accelerate" and samples(loaded):
            stage.facts.append(("sampling", "accelerate backend: a linked model copy whose generation_config.json sets "
                                            "do_sample (lighteval passes temperature but not do_sample)"))
    length = max_model_length(loaded)
    if ev.max_model_length:
        stage.facts.append(("max model length", str(length)))
    else:
        room = f"{PROMPT_ROOM} prompt" + (f" + {ev.sampling.max_new_tokens} answer" if ev.mode == "generative" else "")
        capped = ", capped at the model's positions" if length < ev.context_length() else ""
        stage.facts.append(("max model length", f"{length} ({room}{capped})"))
    for ref, plan in zip(ev.benchmarks, plans):
        bench = benchmarks.of(loaded.recipe, ref.name)
        line = f"custom {task_name(ref.name)} <- {plan.origin}; {score_of(bench, ev.mode, ev.judge and ev.judge.model).description}"
        if ref.max_samples:
            line += f"; first {ref.max_samples} items"
        if bench.builtin:
            line += f". lighteval's own {bench.builtin} is not this setting: {builtin_setting(bench.builtin)}"
        stage.facts.append((f"task {ref.name}", line))
    stage.facts.append(("tasks", f"{len(ev.benchmarks)} custom (eval/tasks.py), none of lighteval's built-in tasks"))
    engines, gpus = eval_gpus(ev, recipe.compute)
    if ev.backend == "vllm" and gpus < recipe.compute.gpus_per_node:
        more = recipe.compute.gpus_per_node // ev.tensor_parallel_size
        stage.warnings.append(
            f"eval runs {engines} vLLM engine(s) on {gpus} of the node's {recipe.compute.gpus_per_node} GPUs: "
            f"eval.data_parallel_size: {more} runs {more} engines (lighteval's data parallelism, each engine a Ray "
            "task; not yet run on GPUs by medrecipe's tests, and not with --launcher ray)"
        )
    if ev.mode == "loglikelihood" and "\\boxed" in ev.prompt.instruction:
        stage.warnings.append(
            "eval.prompt.instruction asks for a \\boxed{} answer, but eval.mode loglikelihood scores the option letter "
            "right after the prompt: set an instruction that ends where the letter follows, e.g. 'Answer:'"
        )
    if ev.judge and any(benchmarks.of(loaded.recipe, ref.name).kind == "rubric" for ref in ev.benchmarks):
        key = f", API key from ${ev.judge.api_key_env}" if ev.judge.api_key_env else ""
        judge = ev.judge
        system = f"system message {judge.system!r}" if judge.system else "no system message"
        prompt = "the recipe's grading prompt" if judge.prompt else "medrecipe's wording of simple-evals' grading prompt"
        stage.facts.append(("judge", f"{judge.model} at {judge.endpoint}{key}; it grades the final answer (after the last "
                                      f"</think>) against each rubric item, as OpenAI's simple-evals does: {prompt}, {system}, "
                                      f"temperature {judge.temperature:g}, up to {judge.max_tokens} tokens"))
        stage.facts.append(("conversations", "healthbench items are sent turn by turn through the model's chat template"))


# ----------------------------------------------------------------------------------------------- check


def check(loaded: LoadedRecipe, layout: Layout) -> list[str]:
    """tasks.py loaded into lighteval's own registry in the eval environment; every recipe benchmark present."""
    from ...envs import tools

    python = tools.require("eval")
    tasks_file = layout.root / TASKS
    if not tasks_file.is_file():
        return [f"{tasks_file} is missing: compile first"]
    ensure_offline_import(python)
    ev = loaded.recipe.eval
    assert ev is not None
    request = {
        "tasks": [task_name(ref.name) for ref in ev.benchmarks],
        "builtins": sorted({b.builtin for ref in ev.benchmarks if (b := benchmarks.of(loaded.recipe, ref.name)).builtin}),
    }
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([str(python), "-I", str(REGISTRY_CHECK), str(tasks_file), json.dumps(request)],
                            capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
        return [f"lighteval's registry did not load:\n{tail}"]
    return json.loads(result.stdout.strip().splitlines()[-1])["problems"]


def ensure_offline_import(python: Path) -> None:
    """Importing lighteval's task registry downloads tinyBenchmarks.pkl into its tasks folder when the file is
    absent (and fails offline). medrecipe runs no tinyBenchmarks task: an empty placeholder, inside the eval
    environment, lets the registry load without the network."""
    found = subprocess.run([str(python), "-I", "-c", "import importlib.util as u; print(u.find_spec('lighteval').submodule_search_locations[0])"],
                           capture_output=True, text=True, check=True)
    placeholder = Path(found.stdout.strip()) / "tasks" / "tasks" / "tinyBenchmarks.pkl"
    if not placeholder.is_file():
        placeholder.write_bytes(b"\x80\x04}\x94.")  # pickle.dumps({}, protocol=4)
