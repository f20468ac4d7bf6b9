"""The eval section as a lighteval 0.13 suite: `eval/tasks.py`, `eval/launch.sh` and `eval/prepare_model.py`.

- `tasks.py` is a self-contained custom-task module: medrecipe's benchmark readers (benchmark_items.py) and
  graders (grading.py) are embedded verbatim, followed by the recipe's parameters and the task code
  (lighteval_tasks_runtime.py). One task `medrecipe:<benchmark>` per recipe benchmark, reading the registry's
  location (Hub id, subset, split, row filter) or the recipe's local copy.
- lighteval 0.13's own tasks for these benchmarks (`med_mcqa`, `med_qa`, `pubmedqa`, `mmlu:<subject>`) are
  generative exact match of a few tokens on other copies of the data, neither the boxed-reasoning setting nor
  the log-likelihood setting a recipe asks for (BUILTIN_SETTINGS), so none is run; `plan` says so per benchmark.
- `launch.sh` holds the exact `lighteval vllm|accelerate` command, run in the stage's content-keyed folder.
  `prepare_model.py` (lighteval_prepare_model.py) gives lighteval a relative name for a local model (an
  absolute one would put lighteval's answer cache inside the model folder) and, when the accelerate backend
  must sample, a linked copy whose generation_config.json enables sampling: that backend never passes
  `do_sample` to transformers, so a sampling recipe would otherwise silently decode greedily.
- `check` loads tasks.py into lighteval's own registry in the eval environment and builds every task.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, grading
from ..catalog import benchmark_items, benchmarks, models
from ..recipe import LoadedRecipe
from .build import Artifact, StageBuild
from .layout import Layout, recipe_sha256

VERSION = "0.13.0"
TOOL = f"lighteval {VERSION}"
TASKS = "eval/tasks.py"
LAUNCH = "eval/launch.sh"
STAGE_DATA = "eval/stage_data.sh"
PREPARE_MODEL = "eval/prepare_model.py"
TASK_PREFIX = "medrecipe:"
PROMPT_ROOM = 4096  # prompt tokens assumed when eval.max_model_length is unset
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")

_HERE = Path(__file__).parent
_RUNTIME = _HERE / "lighteval_tasks_runtime.py"
_PREPARE_MODEL = _HERE / "lighteval_prepare_model.py"
_REGISTRY_CHECK = _HERE / "lighteval_registry.py"

# What lighteval 0.13's own task for a benchmark does (lighteval/tasks/tasks/med.py, pubmedqa.py, mmlu.py).
BUILTIN_SETTINGS = {
    "med_mcqa": "generative exact match of 5 tokens after 'Answer:' on lighteval/med_mcqa",
    "med_qa": "generative exact match of 5 tokens on bigbio/med_qa, a script repository datasets 5 cannot load",
    "pubmedqa": "exact match of 1 generated token, reading QUESTION/CONTEXTS columns that qiaojin/PubMedQA does not have",
    "mmlu": "generative exact match of 5 tokens after 'Answer:' on lighteval/mmlu",
}


def builtin_setting(task: str) -> str:
    return BUILTIN_SETTINGS[task.split(":")[0]]


def task_name(benchmark: str) -> str:
    return TASK_PREFIX + benchmark


@dataclass(frozen=True)
class Score:
    """Which lighteval metric of a task is its score, and what it measures (for scores.json)."""

    key: str  # in lighteval's results
    metric: str  # the metric's type in scores.json and the model card's model-index
    description: str
    unboxed: bool  # the task also reports the fraction of answers found without \boxed{}


def score_of(benchmark: benchmarks.Benchmark, mode: str, judge: str | None) -> Score:
    if mode == "loglikelihood":
        return Score("acc", "accuracy", "accuracy of the most likely option (log-likelihood of its letter)", False)
    if benchmark.kind == "rubric":
        return Score("rubric_score", "healthbench_score",
                     f"rubric points met over positive points, judged by {judge}; mean clipped to [0, 1]", False)
    answer = "yes/no/maybe" if benchmark.kind == "yes_no_maybe" else "option letter"
    return Score("acc", "accuracy", f"accuracy of the {answer} in the final \\boxed{{}} (unboxed answers counted too)", True)


# ------------------------------------------------------------------------------------------------ model


def default_model(loaded: LoadedRecipe, layout: Layout) -> str | Path:
    """What `eval.model` names: a stage's output folder, a local folder, or a Hub id."""
    recipe = loaded.recipe
    choice = recipe.evaluated_model()
    if choice == "rl":
        return layout.rl_output()
    if choice == "sft":
        return layout.sft_output()
    if choice == "base":
        return _local_or_hub(loaded, recipe.base_model, ("base_model",))
    return _local_or_hub(loaded, choice, ("eval", "model"))


def _local_or_hub(loaded: LoadedRecipe, value: str, path: tuple) -> str | Path:
    local = loaded.local_path(path)
    if value.startswith(("/", ".", "~")) or local.exists():
        return local
    return value


def max_model_length(loaded: LoadedRecipe) -> int:
    """eval.max_model_length, else prompt room plus the answer budget, within the model's positions when known
    (vLLM refuses a longer context than the model's)."""
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    if ev.max_model_length:
        return ev.max_model_length
    facts = models.facts(ev.model if ev.model not in ("final", "sft", "rl", "base") else recipe.base_model)
    return min(_wanted_length(ev), facts.max_positions) if facts else _wanted_length(ev)


def _wanted_length(ev) -> int:
    return PROMPT_ROOM + (ev.sampling.max_new_tokens if ev.mode == "generative" else 0)


def samples(loaded: LoadedRecipe) -> bool:
    ev = loaded.recipe.eval
    assert ev is not None
    return ev.mode == "generative" and ev.sampling.temperature > 0


def generation_parameters(loaded: LoadedRecipe) -> dict:
    """lighteval's GenerationParameters for the recipe (top_k -1, "disabled", is lighteval's unset)."""
    recipe = loaded.recipe
    assert recipe.eval is not None
    sampling = recipe.eval.sampling
    parameters: dict = {"temperature": sampling.temperature, "top_p": sampling.top_p}
    if sampling.top_k is not None and sampling.top_k >= 0:
        parameters["top_k"] = sampling.top_k
    parameters["max_new_tokens"] = sampling.max_new_tokens
    parameters["seed"] = recipe.seed
    return parameters


# ------------------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class DataPlan:
    """Where a task reads its benchmark: `location` directly, or files launch.sh links into eval/data/<name>/."""

    location: str | None  # a Hub id or a local folder; None when staged
    subset: str
    links: list[tuple[str, str]]  # (shell expression of the source file, link name) when staged
    origin: str  # for `plan`


def data_plan(loaded: LoadedRecipe, index: int) -> DataPlan:
    ev = loaded.recipe.eval
    assert ev is not None
    ref = ev.benchmarks[index]
    bench = benchmarks.get(ref.name)
    split = ref.split or bench.split
    if ref.path:
        local = loaded.local_path(("eval", "benchmarks", index, "path"))
        if local.suffix in DATA_SUFFIXES:  # one file (lighteval's loader reads folders: it is linked into one)
            return DataPlan(None, "default", [(shlex.quote(str(local)), f"{split}-00000{local.suffix}")], f"{local} ({split})")
        if bench.data_files:
            links = [(shlex.quote(str(local / name)), f"{split}-{i:05d}{Path(name).suffix}") for i, name in enumerate(bench.data_files)]
            return DataPlan(None, "default", links, f"{local} ({', '.join(bench.data_files)})")
        return DataPlan(str(local), "default", [], f"{local} (split {split})")
    if bench.data_files:
        revision = shlex.quote(bench.revision or "main")
        links = [(f'"$(hub_file {shlex.quote(bench.hub)} {shlex.quote(name)} {revision})"', f"{split}-{i:05d}{Path(name).suffix}")
                 for i, name in enumerate(bench.data_files)]
        return DataPlan(None, "default", links, f"{bench.hub}: {', '.join(bench.data_files)} ({split})")
    where = "".join(f", {column} = {value}" for column, value in bench.where.items())
    subset = f" {bench.subset}" if bench.subset else ""
    return DataPlan(bench.hub, bench.subset or "default", [], f"{bench.hub}{subset} {split}{where}")


# ----------------------------------------------------------------------------------------------- build


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
    stage.artifacts.append(Artifact(PREPARE_MODEL, _PREPARE_MODEL.read_text(encoding="utf-8")))
    _facts(loaded, layout, plans, stage)
    return stage


def _facts(loaded: LoadedRecipe, layout: Layout, plans: list[DataPlan], stage: StageBuild) -> None:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    model = default_model(loaded, layout)
    stage.facts.append(("evaluated model", f"{ev.model}: {model}" if ev.model in ("final", "sft", "rl", "base") else str(model)))
    stage.facts.append(("backend", f"lighteval {ev.backend} ({ev.dtype}), {ev.mode}"))
    if ev.mode == "generative":
        sampling = ev.sampling
        top_k = sampling.top_k if sampling.top_k is not None and sampling.top_k >= 0 else "backend default"
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
        capped = ", capped at the model's positions" if length < _wanted_length(ev) else ""
        stage.facts.append(("max model length", f"{length} ({room}{capped})"))
    for ref, plan in zip(ev.benchmarks, plans):
        bench = benchmarks.get(ref.name)
        line = f"custom {task_name(ref.name)} <- {plan.origin}; {score_of(bench, ev.mode, ev.judge and ev.judge.model).description}"
        if ref.max_samples:
            line += f"; first {ref.max_samples} items"
        if bench.builtin:
            line += f". lighteval's own {bench.builtin} is not this setting: {builtin_setting(bench.builtin)}"
        stage.facts.append((f"task {ref.name}", line))
    stage.facts.append(("tasks", f"{len(ev.benchmarks)} custom (eval/tasks.py), none of lighteval's built-in tasks"))
    if ev.mode == "loglikelihood" and "\\boxed" in ev.prompt.instruction:
        stage.warnings.append(
            "eval.prompt.instruction asks for a \\boxed{} answer, but eval.mode loglikelihood scores the option letter "
            "right after the prompt: set an instruction that ends where the letter follows, e.g. 'Answer:'"
        )
    if ev.judge and any(benchmarks.get(ref.name).kind == "rubric" for ref in ev.benchmarks):
        key = f", API key from ${ev.judge.api_key_env}" if ev.judge.api_key_env else ""
        stage.facts.append(("judge", f"{ev.judge.model} at {ev.judge.endpoint}{key}; it grades the final answer "
                                      "(after the last </think>) against each rubric item, as OpenAI's simple-evals does"))
        stage.facts.append(("conversations", "healthbench items are sent turn by turn through the model's chat template"))


# ------------------------------------------------------------------------------------------- tasks.py


def _embedded(module) -> str:
    """A medrecipe module's source for pasting into tasks.py (its `from __future__` import goes to the top)."""
    source = inspect.getsource(module)
    return "".join(line for line in source.splitlines(keepends=True) if line.strip() != "from __future__ import annotations")


def tasks_module(loaded: LoadedRecipe, plans: list[DataPlan]) -> str:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    entries = []
    for ref, plan in zip(ev.benchmarks, plans):
        bench = benchmarks.get(ref.name)
        entries.append({
            "name": ref.name,
            "task": task_name(ref.name),
            "reader": bench.reader,
            "spec": bench.spec,
            "where": bench.where,
            "location": plan.location,
            "staged": plan.location is None,
            "subset": plan.subset,
            "split": ref.split or bench.split,
            "max_samples": ref.max_samples,
        })
    judge = None
    if ev.judge:
        judge = {"model": ev.judge.model, "endpoint": ev.judge.endpoint, "api_key_env": ev.judge.api_key_env,
                 "temperature": ev.judge.temperature, "top_p": ev.judge.top_p, "max_tokens": ev.judge.max_tokens,
                 "max_concurrent_requests": ev.judge.max_concurrent_requests}
    parameters = "\n".join([
        f"MODE = {ev.mode!r}",
        f"TEMPLATE = {ev.prompt.template!r}",
        f"INSTRUCTION = {ev.prompt.instruction!r}",
        f"MAX_NEW_TOKENS = {ev.sampling.max_new_tokens}",
        f"SEED = {recipe.seed}",
        f"SEED_TORCH = {ev.backend == 'accelerate' and samples(loaded)}",
        f"JUDGE = {judge!r}",
        "BENCHMARKS = [",
        *(f"    {entry!r}," for entry in entries),
        "]",
    ])
    body = "\n\n".join([
        _section("medrecipe.catalog.benchmark_items, embedded verbatim") + _embedded(benchmark_items).strip("\n"),
        _section("medrecipe.grading, embedded verbatim") + _embedded(grading).strip("\n"),
        _section(f"the recipe {recipe.name!r}") + parameters,
        _section("the tasks") + _RUNTIME.read_text(encoding="utf-8").strip("\n"),
    ])
    # The digest names the prompt functions, so lighteval's answer cache never serves answers to other prompts.
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    body = body.replace("\nBENCHMARKS = [", f"\nDIGEST = {digest!r}\nBENCHMARKS = [", 1)
    tasks = ", ".join(f"{task_name(ref.name)}|0" for ref in ev.benchmarks)
    header = (
        f'"""{TOOL} tasks of the recipe {recipe.name!r}, compiled by medrecipe {__version__} '
        f"(recipe sha256 {recipe_sha256(recipe)[:16]}).\n\n"
        f"Tasks: {tasks}.\n"
        "Self-contained: medrecipe's benchmark readers and graders are embedded below, so lighteval loads this file\n"
        "(--custom-tasks) where medrecipe is not installed. Edit the recipe, not this file.\n"
        '"""\n\nfrom __future__ import annotations\n\n'
    )
    return header + body + "\n"


def _section(title: str) -> str:
    return f"# {'=' * 100}\n# {title}\n# {'=' * 100}\n\n"


# ------------------------------------------------------------------------------------------- launch.sh


def launch_script(loaded: LoadedRecipe, layout: Layout, plans: list[DataPlan]) -> str:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    eval_dir = layout.stage_dir("eval")
    model = default_model(loaded, layout)
    model_expression = _shell_path(model, eval_dir) if isinstance(model, Path) else shlex.quote(model)
    lines = [
        "#!/usr/bin/env bash",
        f"# {TOOL} evaluation ({ev.backend} backend) compiled by medrecipe {__version__} from recipe {recipe.name!r}",
        f"# (recipe sha256 {recipe_sha256(recipe)[:16]}). Edit the recipe, not this file.",
        "# Run it in the eval environment (`medrecipe env setup eval" + (" --gpu" if ev.backend == "vllm" else "")
        + "`), or through `medrecipe run RECIPE --stage eval`.",
        "# EVAL_MODEL overrides the evaluated model (a folder or a Hub id), EVAL_OUTPUT the folder lighteval writes to.",
        "set -euo pipefail",
        'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        f'model="${{EVAL_MODEL:-}}"; [ -n "$model" ] || model={model_expression}',
        f'output="${{EVAL_OUTPUT:-$here/{layout.keys["eval"]}}}"',
        "",
    ]
    if any(plan.links for plan in plans):
        lines += ['bash "$here/stage_data.sh"  # the benchmark files tasks.py reads from eval/data/', ""]
    sample = ev.backend == "accelerate" and samples(loaded)
    lines += [
        "# lighteval files its answer cache and results under the model's name: a local model is linked under a",
        "# relative name in $output/models (see prepare_model.py).",
    ]
    if sample:
        lines += [
            "# lighteval's accelerate backend passes temperature and top_p to generate() but never do_sample, which",
            "# transformers reads from the model's generation_config.json (greedy for most checkpoints): with --sample",
            "# the model is a linked copy whose generation config enables sampling.",
        ]
    lines += [
        "# It also says whether the tokenizer adds special tokens: not when the chat template writes them (one BOS).",
        'if [ -d "$model" ]; then model="$(cd "$model" && pwd)"; fi',
        'mkdir -p "$output"',
        'cd "$output"',
        f'model="$(python "$here/prepare_model.py" "$model" models{" --sample" if sample else ""})"',
        'special_tokens="$(python "$here/prepare_model.py" --special-tokens "$model")"',
        "",
    ]
    lines += [
        f"lighteval {ev.backend} \\",
        f'  "{_model_args(loaded)}" \\',
        f'  "{",".join(f"{task_name(ref.name)}|0" for ref in ev.benchmarks)}" \\',
        '  --custom-tasks "$here/tasks.py" \\',
        "  --output-dir . \\",
        "  --save-details",
    ]
    return "\n".join(lines) + "\n"


def stage_data_script(loaded: LoadedRecipe, plans: list[DataPlan]) -> str:
    """eval/stage_data.sh: links the files of benchmarks read as files (local copies, Hub repositories without a
    loadable configuration) into eval/data/<name>/, named by split, where tasks.py reads them. launch.sh runs it
    first; `medrecipe inspect` runs it too."""
    ev = loaded.recipe.eval
    assert ev is not None
    lines = [
        "#!/usr/bin/env bash",
        f"# The benchmark files of recipe {loaded.recipe.name!r}, compiled by medrecipe {__version__}. Run by launch.sh.",
        "set -euo pipefail",
        'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        "",
    ]
    if any(plan.links and not ref.path for ref, plan in zip(ev.benchmarks, plans)):
        lines += [
            "# The local path of a file of a Hub dataset repository (downloaded once into the Hugging Face cache).",
            "hub_file() {",
            "  python -c 'import sys; from huggingface_hub import hf_hub_download; "
            'print(hf_hub_download(sys.argv[1], sys.argv[2], repo_type="dataset", revision=sys.argv[3]))\' "$1" "$2" "$3"',
            "}",
            "",
        ]
    for ref, plan in zip(ev.benchmarks, plans):
        if not plan.links:
            continue
        folder = f'"$here"/data/{shlex.quote(ref.name)}'
        why = ("its Hub repository has no loadable configuration: link the files it needs"
               if not ref.path else "a local copy: link its files")
        lines += [f"# {ref.name}: {why}, named by split.", f"rm -rf {folder}", f"mkdir -p {folder}"]
        for source, name in plan.links:
            lines += [f"file={source}", f'ln -s "$file" {folder}/{shlex.quote(name)}']
        lines.append("")
    return "\n".join(lines)


def _shell_path(path: Path, eval_dir: Path) -> str:
    """A path inside the build as `"$here"/...` (the build folder can move); any other as written; shell-quoted."""
    try:
        path.relative_to(eval_dir.parent)
    except ValueError:
        return shlex.quote(str(path))
    return '"$here"/' + shlex.quote(os.path.relpath(path, eval_dir))


def _model_args(loaded: LoadedRecipe) -> str:
    """lighteval's model arguments: `key=value,...` with `generation_parameters={key:value,...}` last."""
    ev = loaded.recipe.eval
    assert ev is not None
    args = ["model_name=$model", "add_special_tokens=$special_tokens", f"dtype={ev.dtype}"]
    if ev.backend == "vllm":
        args += [f"max_model_length={max_model_length(loaded)}", f"tensor_parallel_size={ev.tensor_parallel_size}",
                 f"seed={loaded.recipe.seed}"]
    else:
        args += [f"max_length={max_model_length(loaded)}", f"batch_size={ev.batch_size}"]
    args.append("cache_dir=cache")  # lighteval's answer cache, inside the content-keyed folder (the working directory)
    if ev.mode == "generative":
        parameters = generation_parameters(loaded)
        if ev.backend == "accelerate":
            # The transformers backend would truncate every prompt to max_new_tokens tokens (it takes that as the
            # tokenizer's max_length); the task's generation_size (tasks.py) bounds the answer instead.
            del parameters["max_new_tokens"]
        args.append("generation_parameters={" + ",".join(f"{key}:{json.dumps(value)}" for key, value in parameters.items()) + "}")
    return ",".join(args)


# ----------------------------------------------------------------------------------------------- check


def check(loaded: LoadedRecipe, layout: Layout) -> list[str]:
    """tasks.py loaded into lighteval's own registry in the eval environment; every recipe benchmark present."""
    from ..envs import tools

    python = tools.require("eval")
    tasks_file = layout.root / TASKS
    if not tasks_file.is_file():
        return [f"{tasks_file} is missing: compile first"]
    ensure_offline_import(python)
    ev = loaded.recipe.eval
    assert ev is not None
    request = {
        "tasks": [task_name(ref.name) for ref in ev.benchmarks],
        "builtins": sorted({b.builtin for ref in ev.benchmarks if (b := benchmarks.get(ref.name)).builtin}),
    }
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([str(python), "-I", str(_REGISTRY_CHECK), str(tasks_file), json.dumps(request)],
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
