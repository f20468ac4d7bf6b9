"""Run the eval stage: the compiled `eval/launch.sh` (lighteval) in the eval environment, on this machine, as a
one-node Slurm job or as a job on a running Ray cluster, then its results read back into `eval/scores.json`.

lighteval writes `results/<model>/results_<time>.json` (each task's metrics and standard errors) and, with
`--save-details`, `details/<model>/<time>/details_<task>_<time>.parquet` (one row per evaluated item) into
the stage's content-keyed folder; the newest run is the one read. A finished evaluation of the same model
is skipped (its scores.json names the stage key and the model); lighteval's answer cache, in the same
folder, makes a rerun after an interruption regenerate nothing it already has. The results are read back by
`write_scores`, a self-contained function run with the eval environment's Python, here or at the end of the job.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from ..envs import offline_models
from ..catalog import benchmarks
from ..compile import lighteval
from ..compile.build import run_command
from ..compile.layout import Layout
from ..errors import NotRunnableHere, UserError
from ..recipe import LoadedRecipe
from ..recipe.derive import eval_gpus
from ..report.compare import score_text
from ..envs import tools
from . import jobs
from .stages import RunOptions, StageResult


def run(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> StageResult:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    scores_file = layout.eval_scores()
    outputs = [("eval scores", str(scores_file))]
    launch = jobs.compiled(loaded, layout.root, lighteval.LAUNCH)
    model = _evaluated_model(loaded, layout, options)
    if lighteval.scores_of_model(layout, model) is not None:
        return StageResult("eval", "skipped", outputs, notes=[f"{model} is already evaluated (delete {scores_file} to evaluate again)"])
    _check_inputs(loaded, options)

    gpu = options.gpu or ev.backend == "vllm"  # lighteval's vLLM backend is in the GPU build only
    python = _python(gpu, options)
    output = layout.work_dir("eval")
    engines, gpus = eval_gpus(ev, recipe.compute)
    env = {
        "EVAL_MODEL": model,
        "EVAL_OUTPUT": str(output),
        "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # lighteval and python of the environment
        "HF_HUB_DISABLE_TELEMETRY": "1",
        **offline_models.tool_environment([model], python, options.dry_run),
    }
    if options.launcher != "ray" and engines > 1:
        # lighteval's engines are Ray tasks (ray.init() on the first of them): a Ray of their own on this node, with
        # the GPUs the job sees, not a cluster that $RAY_ADDRESS or a running `ray start` names. A Ray job's is set by Ray.
        env["RAY_ADDRESS"] = "local"
    # Results already there (another model's, a run before) are not this run's: one that wrote none fails.
    spec = {**scores_spec(loaded, layout, model), "earlier": sorted(str(path) for path in output.glob("results/**/results_*.json"))}
    if options.launcher in ("slurm", "ray"):
        return _batch(loaded, layout, options, python, launch, env, spec, gpu, outputs)
    job = jobs.Job(f"lighteval {ev.backend} evaluation", ["bash", str(launch)], env)
    if options.dry_run:
        jobs.show(job)
        return StageResult("eval", "dry-run", outputs)
    if ev.backend == "vllm" and (visible := jobs.visible_gpus(python)) < gpus:
        raise NotRunnableHere(f"vLLM needs {gpus} GPU(s) ({engines} engine(s) x eval.tensor_parallel_size "
                              f"{ev.tensor_parallel_size}); the eval environment sees {visible}",
                              "run on a GPU machine, set eval.data_parallel_size to the GPUs you have, "
                              "or --set eval.backend=accelerate for a CPU run")
    lighteval.ensure_offline_import(python)
    with jobs.stage_lock("eval", output / "eval.log") as lock:
        jobs.run_local(job, f"rerun the same command: answers lighteval already generated are cached in {output / 'cache'}",
                       "eval", output / "eval.log", options.verbose, lock)
        read_back = subprocess.run([str(python), "-I", "-c", readback_program(str(output), spec, str(scores_file))],
                                   capture_output=True, text=True)
    if read_back.returncode != 0:
        raise UserError(f"reading lighteval's results back failed: {read_back.stderr.strip()[-2000:]}", "see lighteval's output above")
    scores = json.loads(scores_file.read_text(encoding="utf-8"))
    notes = [f"{name}: {score_text(entry['score'], entry['stderr'])} (n={entry['n']})" for name, entry in scores["benchmarks"].items()]
    return StageResult("eval", "done", outputs, notes=notes)


def _python(gpu: bool, options: RunOptions) -> Path:
    """The eval environment's interpreter (its GPU build for vLLM); a dry run's, set up or not (tools.interpreter)."""
    if gpu and not options.dry_run and tools.python("eval", gpu=True) is None:
        raise NotRunnableHere("the eval environment's GPU build (with vLLM) is not set up",
                              "run: medrecipe env setup eval --gpu; or evaluate on CPU: --set eval.backend=accelerate")
    return tools.interpreter("eval", gpu, options.dry_run)


def _batch(loaded: LoadedRecipe, layout: Layout, options: RunOptions, python: Path, launch: Path, env: dict[str, str],
           spec: dict, gpu: bool, outputs: list[tuple[str, str]]) -> StageResult:
    """One node as a Slurm job or a Ray job: vLLM's engines on `eval_gpus` GPUs (one GPU for the accelerate backend
    with --gpu, none otherwise), then the results read back into scores.json by the same function a local run uses.
    The eval environment and the build folder are on storage the nodes share. Several engines are Ray tasks that
    lighteval starts, each holding its GPUs (lighteval 0.13 models/vllm/vllm_model.py:437): on a Slurm node, a Ray of
    their own; a Ray job runs one engine, in its entrypoint."""
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    work = layout.work_dir("eval")
    engines, gpus = eval_gpus(ev, recipe.compute)
    gpus = gpus if ev.backend == "vllm" else int(gpu)
    program = readback_program(env["EVAL_OUTPUT"], spec, str(layout.eval_scores()))
    body = [*(f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items()) if name != "PATH"),
            f"export PATH={shlex.quote(str(python.parent))}:\"$PATH\""]
    key = ev.judge and ev.judge.api_key_env
    slurm = options.launcher == "slurm"
    address = "" if slurm else jobs.ray_dashboard(loaded)
    if key and slurm:
        body.append(f"# ${key} (the judge's key) reaches the job from the submitting shell: sbatch exports it.")
    elif key and _rubric_benchmarks(loaded):
        # A Ray job gets the environment its cluster was started with, not the submitting shell's.
        body.append(f': "${{{key}:?the judge\'s key: set it where the Ray cluster was started (ray start)}}"')
    body += [
        f"mkdir -p {shlex.quote(env['EVAL_OUTPUT'])}",
        f"{jobs.srun(recipe) + ' ' if slurm else ''}bash {shlex.quote(str(launch))}",
        f"{shlex.quote(str(python))} -I - <<'PY'",
        *program.rstrip("\n").splitlines(),
        "PY",
    ]
    if not options.dry_run:
        lighteval.ensure_offline_import(python)  # the environment is on the storage the node shares
    if slurm:
        script_text = jobs.slurm_script(recipe, "eval", 1, gpus, layout.stage_dir("eval"), body)
        return jobs.submit_stage("eval", layout.stage_dir("eval") / "eval.sbatch", script_text, work, outputs, options.dry_run)
    if engines > 1:  # found by review: lighteval's engines would be Ray tasks of the cluster, which start in no folder of
        # the job's (launch.sh hands lighteval the model as models/<name>, relative) and with none of its environment
        raise UserError(f"--launcher ray runs one vLLM engine: eval.data_parallel_size {engines} makes lighteval's engines "
                        "Ray tasks of the cluster, which get neither the job's folder nor its environment",
                        "--set eval.data_parallel_size=1, or run the evaluation with --launcher slurm or on the node itself")
    script_text = "\n".join(["#!/bin/bash", "set -euo pipefail", *body]) + "\n"
    submission = f"{recipe.name}-eval-{layout.keys['eval'][:12]}-{time.strftime('%Y%m%d-%H%M%S')}"
    return jobs.submit_ray("eval", layout.stage_dir("eval") / "eval.ray.sh", script_text, address, submission, gpus,
                           work, outputs, options.dry_run)


def missing_input(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> tuple[str | None, UserError] | None:
    """What the model to evaluate lacks before anything runs: (the stage that makes it, or None for `--model`, the
    error), or None. `--model` is a folder or a Hub id (org/name: one slash at most, never starting with / . ~)."""
    if options.model:
        local = Path(options.model).expanduser()
        if not (local.exists() or options.model.startswith(("/", ".", "~")) or options.model.count("/") > 1):
            return None
        if not (local / "config.json").is_file():
            return None, UserError(f"--model {options.model}: "
                                   f"{'no model folder there' if not local.is_dir() else 'the folder has no config.json'}",
                                   "pass a model folder (config.json and weights) or a Hub id such as org/model")
        return None
    model = lighteval.default_model(loaded, layout)
    if isinstance(model, Path) and not (model / "config.json").is_file():
        outputs = {"sft": layout.sft_output, "rl": layout.rl_output}
        stage = next((name for name, output in outputs.items() if getattr(loaded.recipe, name) and model == output()), None)
        hint = f"run the {stage} stage first: {run_command(loaded, layout.root, stage)}" if stage else "check eval.model"
        return stage, NotRunnableHere(f"the model to evaluate is missing: {model}", f"{hint}, or pass --model PATH_OR_REPO")
    return None


def _evaluated_model(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> str:
    """`--model` (a folder or a Hub id), else what eval.model names; a stage's model must exist."""
    missing = missing_input(loaded, layout, options)
    if missing and (missing[0] is None or not options.dry_run):  # a stage may have trained it by the time it runs
        raise missing[1]
    if options.model:
        local = Path(options.model).expanduser()
        return str(local.resolve()) if local.exists() else options.model
    return str(lighteval.default_model(loaded, layout))


def _check_inputs(loaded: LoadedRecipe, options: RunOptions) -> None:
    """What would fail only after hours of generation: a missing local benchmark copy, an unset judge key."""
    ev = loaded.recipe.eval
    assert ev is not None
    for index, ref in enumerate(ev.benchmarks):
        if ref.path and not loaded.local_path(("eval", "benchmarks", index, "path")).exists():
            raise UserError(f"eval.benchmarks[{index}].path: {loaded.local_path(('eval', 'benchmarks', index, 'path'))} does not exist",
                            "point it at the benchmark's local copy, or remove `path` to read it from the Hub")
    rubric = _rubric_benchmarks(loaded)
    # A Ray job's key is the cluster's: its script checks it there.
    if (rubric and ev.judge and ev.judge.api_key_env and not os.environ.get(ev.judge.api_key_env) and not options.dry_run
            and options.launcher != "ray"):
        raise NotRunnableHere(f"{', '.join(rubric)} is graded by {ev.judge.model}, and ${ev.judge.api_key_env} is not set",
                        f"export {ev.judge.api_key_env}=... (the key is read from the environment, never written)")


def _rubric_benchmarks(loaded: LoadedRecipe) -> list[str]:
    """The benchmarks a judge grades."""
    ev = loaded.recipe.eval
    assert ev is not None
    return [ref.name for ref in ev.benchmarks if benchmarks.of(loaded.recipe, ref.name).kind == "rubric"]


# ------------------------------------------------------------------------------------------ reading back


def scores_spec(loaded: LoadedRecipe, layout: Layout, model: str) -> dict:
    """What `write_scores` needs to know of the recipe: scores.json's header, and per benchmark its lighteval task,
    the metric that is its score and what that measures."""
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    scores = {}
    for ref in ev.benchmarks:
        score = lighteval.score_of(benchmarks.of(loaded.recipe, ref.name), ev.mode, ev.judge and ev.judge.model)
        scores[ref.name] = {"task": f"{lighteval.task_name(ref.name)}|0", "key": score.key, "metric": score.metric,
                            "scoring": score.description, "unboxed": score.unboxed}
    sampling = ev.sampling
    return {
        "recipe": recipe.name,
        "key": layout.keys["eval"],
        "model": model,
        "mode": ev.mode,  # loglikelihood: nothing was generated, the generation parameters went unused
        "generation": {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                       "max_new_tokens": sampling.max_new_tokens, "seed": recipe.seed},
        "benchmarks": scores,
    }


def write_scores(output: str, spec: dict, target: str) -> None:
    """The newest lighteval run under `output` written to `target` as scores.json: per benchmark its score and
    standard error in percent (None where lighteval measured none), the items evaluated (rows of its details file), what the score measures and, for
    boxed answers, the fraction found unboxed. Results listed in `spec["earlier"]` were there before this run
    (another model's, say) and are not read. Self-contained: it runs with the eval environment's Python, on this
    machine or at the end of a Slurm job."""
    import glob
    import json
    import os
    from importlib.metadata import version

    import pyarrow.parquet as pq

    # The folder is a name, not a pattern (found by review: in a build at glob[1] a finished evaluation found no results).
    folder = glob.escape(output)
    found = sorted(set(glob.glob(os.path.join(folder, "results", "**", "results_*.json"), recursive=True)) - set(spec["earlier"]),
                   key=os.path.basename)
    if not found:  # the name holds the time: the last is the newest
        raise SystemExit(f"lighteval wrote no results of this run under {os.path.join(output, 'results')}")
    results_file = found[-1]
    timestamp = os.path.basename(results_file)[len("results_"):-len(".json")]
    with open(results_file, encoding="utf-8") as handle:
        results = json.load(handle)["results"]
    counts = {}
    for path in glob.glob(os.path.join(folder, "details", "**", timestamp, f"details_*_{timestamp}.parquet"), recursive=True):
        counts[os.path.basename(path)[len("details_"):-len(f"_{timestamp}.parquet")]] = pq.read_metadata(path).num_rows
    scores = {}
    for name, score in spec["benchmarks"].items():
        if score["task"] not in results:
            raise SystemExit(f"{results_file} has no results for {score['task']}")
        values = results[score["task"]]
        # lighteval writes no standard error for one item, and NaN where computing it overflowed: none was measured
        # (found by review: 0.0 was printed as "± 0.00" for one item, and NaN made compare refuse the file)
        stderr = values.get(f"{score['key']}_stderr")
        scores[name] = {
            "score": round(100 * values[score["key"]], 4),
            "stderr": round(100 * stderr, 4) if stderr is not None and stderr == stderr else None,
            "n": counts.get(score["task"], 0),
            "metric": score["metric"],
            "scoring": score["scoring"],
            "unboxed": round(values["unboxed"], 4) if score["unboxed"] else None,
        }
    written = {**{key: spec[key] for key in ("recipe", "key", "model")}, "lighteval": version("lighteval"),
               "mode": spec["mode"], "generation": spec["generation"], "benchmarks": scores, "results": results_file}
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target + ".partial", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(written, indent=2) + "\n")
    os.replace(target + ".partial", target)


def readback_program(output: str, spec: dict, target: str) -> str:
    """Python source that runs `write_scores` on these arguments (each a Python literal)."""
    call = f"write_scores({output!r}, json.loads({json.dumps(spec, allow_nan=False)!r}), {target!r})"
    return "import json\n\n" + inspect.getsource(write_scores) + "\n" + call + "\n"
