"""Run the eval stage: the compiled `eval/launch.sh` (lighteval) in the eval environment, then its results
read back into `eval/scores.json`.

lighteval writes `results/<model>/results_<time>.json` (each task's metrics and standard errors) and, with
`--save-details`, `details/<model>/<time>/details_<task>_<time>.parquet` (one row per evaluated item) into
the stage's content-keyed folder; the newest run is the one read. A finished evaluation of the same model
is skipped (its scores.json names the stage key and the model); lighteval's answer cache, in the same
folder, makes a rerun after an interruption regenerate nothing it already has.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq

from .. import offline_models
from ..catalog import benchmarks
from ..compile import lighteval
from ..compile.layout import Layout
from ..errors import NotRunnableHere, UserError
from ..recipe import LoadedRecipe
from . import envs, jobs
from .stages import RunOptions, StageResult


def run(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> StageResult:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    scores_file = layout.eval_scores()
    outputs = [("eval scores", str(scores_file))]
    launch = jobs.compiled(loaded, layout.root, lighteval.LAUNCH)
    if options.launcher != "local":
        raise UserError("the eval stage runs lighteval on this machine (--launcher local)",
                        f"to use a cluster, run {launch} in a job from the eval environment")
    model = _evaluated_model(loaded, layout, options)
    if _already_scored(scores_file, layout, model):
        return StageResult("eval", "skipped", outputs, notes=[f"{model} is already evaluated (delete {scores_file} to evaluate again)"])
    _check_inputs(loaded, options)

    gpu = options.gpu or ev.backend == "vllm"  # lighteval's vLLM backend is in the GPU build only
    if ev.backend == "vllm" and envs.python("eval", gpu=True) is None:
        raise NotRunnableHere("eval.backend is vllm, and the eval environment's GPU build (with vLLM) is not set up",
                        "run: medrecipe env setup eval --gpu; or evaluate on CPU: --set eval.backend=accelerate")
    python = envs.require("eval", gpu=gpu)
    output = layout.work_dir("eval")
    env = {
        "EVAL_MODEL": model,
        "EVAL_OUTPUT": str(output),
        "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # lighteval and python of the environment
        "HF_HUB_DISABLE_TELEMETRY": "1",
        **offline_models.tool_environment([model], python),
    }
    job = jobs.Job(f"lighteval {ev.backend} evaluation", ["bash", str(launch)], env)
    if options.dry_run:
        jobs.show(job)
        return StageResult("eval", "dry-run", outputs)
    if ev.backend == "vllm" and (visible := jobs.visible_gpus(python)) < ev.tensor_parallel_size:
        raise NotRunnableHere(f"vLLM needs {ev.tensor_parallel_size} GPU(s) (eval.tensor_parallel_size); the eval environment sees {visible}",
                        "run on a GPU machine, or --set eval.backend=accelerate for a CPU run")
    lighteval.ensure_offline_import(python)
    output.mkdir(parents=True, exist_ok=True)
    jobs.run_local(job, f"rerun the same command: answers lighteval already generated are cached in {output / 'cache'}")

    version = envs.installed("eval", True if gpu else None)["lighteval"]  # the build `require` chose
    scores = read_scores(output, loaded, layout, model, version)
    scores_file.parent.mkdir(parents=True, exist_ok=True)
    scores_file.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    notes = [f"{name}: {entry['score']:.2f} ± {entry['stderr']:.2f} (n={entry['n']})" for name, entry in scores["benchmarks"].items()]
    return StageResult("eval", "done", outputs, notes=notes)


def _evaluated_model(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> str:
    """`--model` (a folder or a Hub id), else what eval.model names; a stage's model must exist."""
    if options.model:
        local = Path(options.model).expanduser()
        return str(local.resolve()) if local.exists() else options.model
    model = lighteval.default_model(loaded, layout)
    if isinstance(model, Path):
        if not (model / "config.json").is_file() and not options.dry_run:
            outputs = {"sft": layout.sft_output, "rl": layout.rl_output}
            stage = next((name for name, output in outputs.items() if getattr(loaded.recipe, name) and model == output()), None)
            hint = f"run the {stage} stage first: medrecipe run {loaded.file} --stage {stage}" if stage else "check eval.model"
            raise NotRunnableHere(f"the model to evaluate is missing: {model}", f"{hint}, or pass --model PATH_OR_REPO")
        return str(model)
    return model


def _already_scored(scores_file: Path, layout: Layout, model: str) -> bool:
    if not scores_file.is_file():
        return False
    scores = json.loads(scores_file.read_text(encoding="utf-8"))
    return scores.get("key") == layout.keys["eval"] and scores.get("model") == model


def _check_inputs(loaded: LoadedRecipe, options: RunOptions) -> None:
    """What would fail only after hours of generation: a missing local benchmark copy, an unset judge key."""
    ev = loaded.recipe.eval
    assert ev is not None
    for index, ref in enumerate(ev.benchmarks):
        if ref.path and not loaded.local_path(("eval", "benchmarks", index, "path")).exists():
            raise UserError(f"eval.benchmarks[{index}].path: {loaded.local_path(('eval', 'benchmarks', index, 'path'))} does not exist",
                            "point it at the benchmark's local copy, or remove `path` to read it from the Hub")
    rubric = [ref.name for ref in ev.benchmarks if benchmarks.get(ref.name).kind == "rubric"]
    if rubric and ev.judge and ev.judge.api_key_env and not os.environ.get(ev.judge.api_key_env) and not options.dry_run:
        raise NotRunnableHere(f"{', '.join(rubric)} is graded by {ev.judge.model}, and ${ev.judge.api_key_env} is not set",
                        f"export {ev.judge.api_key_env}=... (the key is read from the environment, never written)")


# ------------------------------------------------------------------------------------------ reading back


def read_scores(output: Path, loaded: LoadedRecipe, layout: Layout, model: str, version: str) -> dict:
    """The newest lighteval run under `output` as scores.json: per benchmark its score and standard error in
    percent, the items evaluated, what the score measures and, for boxed answers, the fraction found unboxed."""
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    found = sorted(output.glob("results/**/results_*.json"), key=lambda path: path.name)  # the name holds the time
    if not found:
        raise UserError(f"lighteval wrote no results under {output / 'results'}", "see lighteval's output above")
    results_file = found[-1]
    results = json.loads(results_file.read_text(encoding="utf-8"))["results"]
    counts = _items_per_task(output, results_file.stem.removeprefix("results_"))
    scores = {}
    for ref in ev.benchmarks:
        task = f"{lighteval.task_name(ref.name)}|0"
        if task not in results:
            raise UserError(f"{results_file} has no results for {task}", "see lighteval's output above")
        score = lighteval.score_of(benchmarks.get(ref.name), ev.mode, ev.judge and ev.judge.model)
        values = results[task]
        scores[ref.name] = {
            "score": round(100 * values[score.key], 4),
            "stderr": round(100 * values.get(f"{score.key}_stderr", 0.0), 4),
            "n": counts.get(task, 0),
            "metric": score.metric,
            "scoring": score.description,
            "unboxed": round(values["unboxed"], 4) if score.unboxed else None,
        }
    sampling = ev.sampling
    return {
        "recipe": recipe.name,
        "key": layout.keys["eval"],
        "model": model,
        "lighteval": version,
        "mode": ev.mode,  # loglikelihood: nothing was generated, the generation parameters went unused
        "generation": {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                       "max_new_tokens": sampling.max_new_tokens, "seed": recipe.seed},
        "benchmarks": scores,
        "results": str(results_file),
    }


def _items_per_task(output: Path, timestamp: str) -> dict[str, int]:
    """Rows of each task's details file of one run (`details_<task>_<time>.parquet`)."""
    counts = {}
    for path in output.glob(f"details/**/{timestamp}/details_*_{timestamp}.parquet"):
        task = path.name.removeprefix("details_").removesuffix(f"_{timestamp}.parquet")
        counts[task] = pq.read_metadata(path).num_rows
    return counts
