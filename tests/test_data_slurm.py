"""The data stage's Slurm jobs as they are submitted: dependencies over every array job, the batch script's options,
folders a script cannot carry (the real one-node Slurm run is in test_data_stage.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medrecipe.compile.data import instantiate, plan
from medrecipe.compile.layout import Layout
from medrecipe.errors import UserError
from medrecipe.recipe import load_recipe
from medrecipe.run.data_slurm import stage_jobs

RECIPE = """
name: slurm-jobs
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources: [{name: s, path: s.jsonl, fields: {prompt: q, response: r}}]
  steps: [{type: near_dedup}]
compute: {executor: slurm, tasks: 4}
"""


def _stages(write, folder: str = "build", *overrides: str):
    write("s.jsonl", '{"q": "a", "r": "b"}\n')
    loaded = load_recipe(write("r.yaml", RECIPE), overrides)
    layout = Layout((write.root / folder).resolve(), loaded.recipe)
    content = plan(loaded, layout)
    return loaded, [(stage, [instantiate(block) for block in stage["pipeline"]]) for stage in content["stages"]], content


@pytest.fixture
def write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(name: str, text: str):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    write.root = tmp_path
    return write


def test_a_stage_waits_for_every_array_job_of_the_stage_before(write):
    """datatrove splits a stage of more than 1,001 tasks into array jobs and handed the next stage the last one's id
    alone: a failed task in an earlier array let the later stages run, and records were lost (found by review)."""
    loaded, stages, content = _stages(write)
    (first, first_pipeline), (second, second_pipeline) = stages[:2]
    before = stage_jobs(first_pipeline, first["tasks"], None, str(write.root / "logs0"), first["name"], loaded, None)
    before.job_id, before.job_id = "11", "12"  # as datatrove's launch loop assigns each array it submits
    after = stage_jobs(second_pipeline, second["tasks"], None, str(write.root / "logs1"), second["name"], loaded, before)
    after.depends_job_ids = list(before.job_ids)
    assert before.job_ids == ["11", "12"] and after.dependency == "afterok:11:12"
    after.job_id = "13"  # its own second array waits for its first, as datatrove chains them
    assert after.dependency == "afterok:11:12,afterany:13"


def test_the_batch_script_sends_no_empty_partition_or_qos_and_cancels_what_cannot_run(write):
    """datatrove wrote a bare `#SBATCH --partition` (it swallowed the next line: 'invalid partition specified') and
    `--qos=normal` where the recipe set none; Slurm keeps a job whose dependency failed pending forever."""
    loaded, stages, _ = _stages(write)
    stage, pipeline = stages[0]
    jobs = stage_jobs(pipeline, stage["tasks"], None, str(write.root / "logs"), stage["name"], loaded, None)
    args = jobs.get_sbatch_args(4)
    assert "partition" not in args and "qos" not in args and args["kill-on-invalid-dep"] == "yes"
    assert args["array"] == "0-3"  # as many at once as Slurm allows, not this machine's CPU count
    script = jobs.get_launch_file_contents(args, "true")
    assert "#SBATCH --partition\n" not in script and "#SBATCH --kill-on-invalid-dep=yes" in script
    loaded, stages, _ = _stages(write, "build", "compute.slurm.partition=debug", "compute.slurm.qos=high", "compute.workers=2")
    stage, pipeline = stages[0]
    args = stage_jobs(pipeline, stage["tasks"], 2, str(write.root / "logs"), stage["name"], loaded, None).get_sbatch_args(4)
    assert (args["partition"], args["qos"], args["array"]) == ("debug", "high", "0-3%2")


def test_a_build_folder_a_batch_script_cannot_carry_is_refused_before_anything_is_submitted(write):
    """A space split the `#SBATCH --output` line ('Invalid directive found in batch script'), a quote ended sbatch with
    an error only its log showed (found by review)."""
    loaded, stages, _ = _stages(write)
    stage, pipeline = stages[0]
    for folder in ("sp ace/logs", "o'neil/logs"):
        with pytest.raises(UserError, match="a batch script cannot carry safely") as raised:
            stage_jobs(pipeline, stage["tasks"], None, str(write.root / folder), stage["name"], loaded, None)
        assert "a build folder without spaces" in raised.value.hint


def test_a_rerun_while_the_stages_jobs_are_queued_is_refused(write, monkeypatch):
    """A rerun while an earlier run's jobs were queued (a dropped login session) submitted the same tasks again: two
    jobs wrote one file, and the rerun reported done with its own jobs pending (found by review)."""
    import subprocess

    from .slurm_cluster import SlurmUnavailable, slurm_cluster

    loaded, stages, _ = _stages(write)
    stage, pipeline = stages[0]
    logs = write.root / "logs"
    logs.mkdir()
    try:
        with slurm_cluster() as environment:
            for name, value in environment.items():
                monkeypatch.setenv(name, value)
            held = subprocess.run(["sbatch", "--parsable", "--hold", "--wrap", "sleep 60"], capture_output=True, text=True,
                                  check=True).stdout.strip().split(";")[0]
            (logs / "submitted_jobs.json").write_text(json.dumps([held]))
            with pytest.raises(UserError, match=f"Slurm jobs {held} of an earlier run of it are still queued") as raised:
                stage_jobs(pipeline, stage["tasks"], None, str(logs), stage["name"], loaded, None)
            assert f"scancel {held}" in raised.value.hint
            subprocess.run(["scancel", held], check=True)
            subprocess.run(["bash", "-c", f"while squeue -h -j {held} | grep -q .; do sleep 0.2; done"], timeout=60)
            stage_jobs(pipeline, stage["tasks"], None, str(logs), stage["name"], loaded, None)  # gone: no refusal
    except SlurmUnavailable as reason:
        pytest.skip(f"no Slurm here: {reason}")


def test_a_dry_run_prints_each_stages_batch_script(write, cli):
    """It printed only each stage's steps (found by review: the bare `#SBATCH --partition` it would have shown was
    found by submitting); a complete stage submits nothing."""
    write("s.jsonl", '{"q": "a", "r": "b"}\n')
    write("r.yaml", RECIPE)
    result = cli("run", "r.yaml", "--stage", "data", "--out", "build", "--dry-run")
    assert result.code == 0, result.err
    first, rest = result.out.split("segment-0 (4 tasks, slurm): SourceReader -> MinHashCollector\n", 1)[1].split(
        "resolve-near_dedup (1 tasks, slurm)", 1)
    assert "segment-1 (4 tasks, slurm): SourceReader (again) -> RemoveDuplicates -> ChatParquetWriter\n" in rest
    assert first.startswith("#!/bin/bash\n") and "#SBATCH --array=0-3\n" in first and "#SBATCH --kill-on-invalid-dep=yes" in first
    assert "launch_pickled_pipeline " in first and "/logs/segment-0/executor.pik" in first
    assert "# sbatch --dependency=afterok:<the jobs of segment-0>\n#!/bin/bash" in rest
    made = list(Path("build").rglob("logs"))
    assert not made, f"a dry run made the run's folders (datatrove's slurm_logs): {made}"


def test_a_failed_task_in_an_earlier_array_job_stops_the_run_on_a_real_slurm(write):
    """End to end on a one-node Slurm, with arrays of two tasks (compute.slurm.max_array_size: a cluster's
    MaxArraySize): a bad row in the second task of four, in the stage's first array job, fails the run, naming the
    stage, and no later stage runs (datatrove's next stage waited only for the last array, ran on what was left, and
    the run reported success with records missing)."""
    import subprocess
    import sys

    from .slurm_cluster import SlurmUnavailable, slurm_cluster

    rows = [f'{{"q": "question {i} about the kidney", "r": "answer {i}"}}' for i in range(400)]
    rows[130] = '{"q": "a row cut short'  # in the second quarter of the file: task 1 of 4
    write("s.jsonl", "\n".join(rows) + "\n")
    write("r.yaml", RECIPE)
    overrides = ["compute.slurm.max_array_size=2", "compute.slurm.mem_per_cpu_gb=1", "compute.slurm.time=00:10:00"]
    if sys.prefix != sys.base_prefix:  # the jobs run medrecipe from this virtual environment
        overrides.append(f"compute.slurm.venv={sys.prefix}")
    try:
        with slurm_cluster() as environment:
            result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", "r.yaml", "--stage", "data", "--out",
                                     "build", *(f"--set={override}" for override in overrides)],
                                    capture_output=True, text=True, env=environment, timeout=600)
    except SlurmUnavailable as reason:
        pytest.skip(f"no Slurm here: {reason}")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "segment-0" in result.stderr, result.stderr[-3000:]
    work = next(Path("build/data").glob("*/"))
    submitted = json.loads((work / "logs" / "segment-0" / "submitted_jobs.json").read_text())
    assert len(submitted) == 2, submitted  # four tasks in arrays of two
    assert not list((work / "logs").glob("resolve-*/completions/*")) and not list((work / "logs").glob("segment-1/completions/*"))
    assert not list(work.glob("output/*.parquet"))
