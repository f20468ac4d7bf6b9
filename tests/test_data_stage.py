"""The data stage run for real on the quickstart corpus: every planted case meets its fate, counts add up,
an interrupted run resumes to the same output, and the Ray executor produces it too."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

from .conftest import RECIPES, REPO, stat_fields

QUICKSTART = RECIPES / "quickstart.yaml"
PLANTED = json.loads((RECIPES / "data" / "quickstart" / "planted.json").read_text())


def output_rows(work: Path) -> list[dict]:
    rows = []
    for file in sorted((work / "output").glob("*.parquet")):
        rows += pq.read_table(file).to_pylist()
    return sorted(rows, key=lambda row: row["id"])


def excluded(work: Path, step: str) -> dict[str, dict]:
    found = {}
    for file in (work / "excluded" / step).glob("*.jsonl.gz"):
        with gzip.open(file, "rt") as handle:
            for line in handle:
                record = json.loads(line)
                found[record["id"]] = record["metadata"]["excluded"]
    return found


def data_work(out: Path, recipe: Path = QUICKSTART, overrides: tuple[str, ...] = ()) -> Path:
    return Layout(out.resolve(), load_recipe(recipe, overrides).recipe).work_dir("data")


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """One real local run of the quickstart's data stage, shared by the assertions below."""
    from .conftest import run_cli

    out = tmp_path_factory.mktemp("quickstart") / "build"
    result = run_cli("run", str(QUICKSTART), "--stage", "data", "--out", str(out), "--workers", "2")
    assert result.code == 0, result.err + result.out
    return out, data_work(out), result


def ids(source: str, local: list[str]) -> set[str]:
    return {f"{source}/{i}" for i in local}


def source_of(local_id: str) -> str:
    return {"en": "medical-en", "zh": "medical-zh", "r1": "r1-traces"}[local_id.split("-")[0]]


def test_every_planted_duplicate_is_removed_once_and_its_original_kept(quickstart_run):
    _, work, _ = quickstart_run
    kept = {row["id"] for row in output_rows(work)}
    removed = excluded(work, "near_dedup")
    for kind in ("exact_duplicates", "near_duplicates"):
        for original, copy in PLANTED[kind]:
            original_id, copy_id = f"{source_of(original)}/{original}", f"{source_of(copy)}/{copy}"
            assert original_id in kept, f"{kind}: the original {original_id} must be kept"
            assert copy_id in removed and copy_id not in kept, f"{kind}: {copy_id} must be removed"
    planted_copies = {f"{source_of(c)}/{c}" for kind in ("exact_duplicates", "near_duplicates") for _, c in PLANTED[kind]}
    assert set(removed) == planted_copies, "nothing else is a near duplicate in this corpus"
    assert any(c.startswith("medical-zh/") for c in removed), "Chinese near duplicates are found too"


def test_contaminated_samples_are_removed_with_the_item_they_match(quickstart_run):
    _, work, _ = quickstart_run
    ngram, fuzzy = excluded(work, "decontaminate_ngram"), excluded(work, "decontaminate_fuzzy")
    assert {f"medical-en/{i}" for i, _ in PLANTED["contaminated_exact"]} == set(ngram)
    assert {f"medical-en/{i}" for i, _ in PLANTED["contaminated_fuzzy"]} == set(fuzzy)
    for local, benchmark in PLANTED["contaminated_exact"]:
        evidence = ngram[f"medical-en/{local}"]
        assert evidence["benchmark"] == benchmark and evidence["item_id"] and len(evidence["ngram"].split()) == 8
    for local, benchmark in PLANTED["contaminated_fuzzy"]:
        evidence = fuzzy[f"medical-en/{local}"]
        assert evidence["benchmark"] == benchmark and evidence["score"] >= 80 and evidence["item_text"]


def test_filters_remove_incomplete_short_and_wait_heavy_traces(quickstart_run):
    _, work, _ = quickstart_run
    assert set(excluded(work, "complete_generation")) == {f"medical-en/{i}" for i in PLANTED["incomplete"]}
    assert set(excluded(work, "min_prompt_words")) == {f"medical-en/{i}" for i in PLANTED["short_prompts"]}
    waits = excluded(work, "max_word_occurrences")
    assert set(waits) == {f"medical-en/{i}" for i in PLANTED["wait_heavy"]}
    assert all(e["count"] > 47 for e in waits.values())


def test_non_medical_clusters_are_dropped(quickstart_run):
    _, work, _ = quickstart_run
    dropped = excluded(work, "domain_filter")
    assert set(dropped) == {f"r1-traces/{i}" for i in PLANTED["non_medical"]}
    assert {e["cluster_label"] for e in dropped.values()} <= {"Mathematics", "Programming", "History", "Physics"}
    kept_r1 = [row for row in output_rows(work) if row["source"] == "r1-traces"]
    assert kept_r1 and all(json.loads(row["metadata"])["extra"]["topic"] != "mathematics" for row in kept_r1)


def test_stats_add_up(quickstart_run):
    out, work, result = quickstart_run
    stats = json.loads((work / "stats.json").read_text())
    steps = stats["steps"]
    assert [s["name"] for s in steps] == ["domain_filter", "complete_generation", "min_prompt_words", "max_word_occurrences",
                                          "near_dedup", "decontaminate_ngram", "decontaminate_fuzzy"]
    read = sum(s["read"] for s in stats["sources"])
    assert read == 288
    # domain_filter sees only r1-traces; every later step sees all that the previous one kept.
    assert steps[0]["in"] == 86 and steps[1]["in"] == read - steps[0]["removed"]
    for before, after in zip(steps[1:], steps[2:]):
        assert after["in"] == before["out"]
    for step in steps:
        assert step["in"] - step["out"] == step["removed"]
        assert sum(v["in"] for v in step["by_source"].values()) == step["in"]
    assert stats["output"]["records"] == steps[-1]["out"] == len(output_rows(work))
    assert sum(s["kept"] for s in stats["sources"]) == stats["output"]["records"]
    assert steps[3]["resolved"]["max_count"] == 47 and steps[3]["resolved"]["observed_percentile_value"] is not None
    assert "records in and out of each step" in result.out


def test_output_is_chat_parquet(quickstart_run):
    _, work, _ = quickstart_run
    rows = output_rows(work)
    sample = rows[0]
    assert set(sample) == {"id", "source", "messages", "answer", "metadata"}
    assert [m["role"] for m in sample["messages"]] == ["user", "assistant"]
    assert sample["messages"][1]["content"].startswith("<think>")


def test_plan_json_lists_stages_in_order(quickstart_run):
    out, _, _ = quickstart_run
    plan = json.loads((out / "data" / "plan.json").read_text())
    names = [stage["name"] for stage in plan["stages"]]
    assert names == ["segment-0", "resolve-domain_filter-cluster", "resolve-domain_filter", "segment-1",
                     "resolve-max_word_occurrences", "segment-2", "resolve-near_dedup", "segment-3"]
    assert plan["stages"][0]["pipeline"][0]["block"] == "medrecipe.blocks.readers.SourceReader"


def test_a_stage_that_fails_after_others_ran_leaves_their_summary_and_cards(quickstart_run, tmp_path, monkeypatch):
    """`--stage data --stage sft` where SFT cannot start: the data stage's counts and where its output is were lost
    with the error, and the dataset card was not written (review)."""
    from .conftest import run_cli

    out, work, _ = quickstart_run
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "no-environments"))
    monkeypatch.setenv("COLUMNS", "400")
    (out / "cards" / "dataset" / "README.md").unlink()
    result = run_cli("run", str(QUICKSTART), "--out", str(out), "--workers", "2", "--stage", "data", "--stage", "sft")
    assert result.code == 2 and "the sft environment (axolotl) is not set up" in result.err
    assert "records in and out of each step" in result.out and "curated by an earlier run of this recipe" in result.out
    records = json.loads((work / "stats.json").read_text())["output"]["records"]
    assert f"| {records:,} |" in (out / "cards" / "dataset" / "README.md").read_text()  # the card's counts table


def test_the_main_job_writes_what_publish_to_dir_writes(quickstart_run, tmp_path, monkeypatch):
    """The README's quickstart: the main job resumes the finished data stage and writes the dataset repository's
    contents, byte for byte what `publish --stage data --to-dir` writes (no checkpoint exists yet)."""
    from .conftest import run_cli

    out, work, _ = quickstart_run
    monkeypatch.setenv("COLUMNS", "400")  # the summary's notes on one line each
    main = run_cli("run", str(QUICKSTART), "--out", str(out), "--workers", "2")
    assert main.code == 0, main.err + main.out
    published = run_cli("publish", str(QUICKSTART), "--stage", "data", "--out", str(out), "--to-dir", str(tmp_path / "hub"))
    assert published.code == 0, published.err + published.out

    def tree(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    written = tree(out / "hub")
    assert written == tree(tmp_path / "hub")
    shards = len(list((work / "output").glob("*.parquet")))
    assert set(written) == {"quickstart-data/README.md", ".medrecipe-repos.json",  # the folders medrecipe may replace
                            *(f"quickstart-data/data/train-{i:05d}-of-{shards:05d}.parquet" for i in range(shards))}
    # Nothing was curated again, and the summary says so (it said "records written in 0.1 s").
    assert "curated by an earlier run of this recipe" in main.out and "records written in" not in main.out
    assert "quickstart-sft: not yet, run the SFT stage first" in main.out

    # A checkpoint an earlier `--stage sft` left is published by the next run too (only this run's were).
    from .release_fixtures import write_checkpoint

    write_checkpoint(Layout(out, load_recipe(QUICKSTART).recipe).sft_output(), "sft")
    main = run_cli("run", str(QUICKSTART), "--out", str(out), "--workers", "2")
    assert main.code == 0, main.err + main.out
    assert (out / "hub" / "quickstart-sft" / "config.json").is_file()


# ------------------------------------------------------------------------------------------- resuming


LITE = """
extends: {quickstart}
name: quickstart-lite
data:
  steps:
    - type: complete_generation
    - {{type: min_prompt_words, more_than: 3}}
    - {{type: max_word_occurrences, word: Wait, max_count: 47, percentile: 97}}
    - {{type: near_dedup, ngram: 4, threshold: 0.7}}
    - {{type: decontaminate_ngram, n: 8}}
    - {{type: decontaminate_fuzzy, threshold: 80}}
compute: {{tasks: 4}}
"""


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    """The quickstart without its embedding step (fast), and its output from one uninterrupted local run."""
    from .conftest import run_cli

    folder = tmp_path_factory.mktemp("lite")
    recipe = folder / "lite.yaml"
    recipe.write_text(LITE.format(quickstart=QUICKSTART))
    out = folder / "reference"
    result = run_cli("run", str(recipe), "--stage", "data", "--out", str(out), "--workers", "2")
    assert result.code == 0, result.err + result.out
    return recipe, output_rows(data_work(out, recipe))


def started_until(recipe: Path, out: Path, folder: str, pattern: str) -> tuple[list[str], subprocess.Popen, Path]:
    """(the command, its process, the stage's work folder): the data stage of `recipe` started in a session of its own,
    returned once a file matching `pattern` is in `folder` of its logs."""
    command = [sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out", str(out),
               "--workers", "2"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    work = data_work(out, recipe)
    deadline = time.monotonic() + 120
    while not list((work / "logs" / folder).glob(pattern)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return command, process, work


def rerun_gives(command: list[str], work: Path, reference: list[dict]) -> None:
    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert output_rows(work) == reference


def test_killed_run_resumes_to_the_same_output(lite, tmp_path):
    recipe, reference = lite
    # Kill it once the first stage has finished and the second has started: some work done, some not.
    command, process, work = started_until(recipe, tmp_path / "resumed", "resolve-max_word_occurrences/completions", "*")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (work / "output").exists() or not list((work / "logs" / "segment-2" / "completions").glob("*")), \
        "the run must be cut off before the end"
    done_before = sorted(p.name for p in (work / "logs" / "segment-0" / "completions").glob("*"))
    assert done_before, "the first stage finished before the kill"
    rerun_gives(command, work, reference)


def _all_excluded(work: Path) -> dict[str, dict[str, dict]]:
    return {step.name: excluded(work, step.name) for step in sorted((work / "excluded").iterdir())}


def test_a_segment_replayed_gives_the_records_exclusions_and_counts_of_one_written(lite, tmp_path, monkeypatch):
    """The lite recipe's percentile and near-dedup segments leave their records unwritten: the next segment reads the
    sources again and runs the filters again, counting nothing (compile/data.py, _replays). What it gives is what
    writing the records and reading them back gives."""
    from medrecipe.compile import data as plan_module

    from .conftest import run_cli

    recipe, reference = lite
    replayed = data_work(recipe.parent / "reference", recipe)
    plan = json.loads((recipe.parent / "reference" / "data" / "plan.json").read_text())
    assert not any(block["block"].endswith("SegmentWriter") for stage in plan["stages"] for block in stage["pipeline"])
    last = plan["stages"][-1]["pipeline"]
    assert [block["replayed"] for block in last].count(True) == 3 + 3  # the quickstart's three sources, three filters
    assert all(block["args"].get("exclusion_folder") is None for block in last if block["replayed"])
    assert not (replayed / "segments").exists()

    monkeypatch.setattr(plan_module, "_replays", lambda pipeline: None)
    out = tmp_path / "written"
    result = run_cli("run", str(recipe), "--stage", "data", "--out", str(out), "--workers", "2")
    assert result.code == 0, result.err + result.out
    written = data_work(out, recipe)
    assert sorted(p.name for p in (written / "segments").iterdir()) == ["00", "01"]
    assert output_rows(written) == reference
    assert _all_excluded(written) == _all_excluded(replayed) and len(_all_excluded(replayed)) == 6
    assert json.loads((written / "stats.json").read_text()) == json.loads((replayed / "stats.json").read_text())


NGRAM_FIRST = """
extends: {quickstart}
name: ngram-first
data:
  steps:
    - {{type: decontaminate_ngram, n: 8}}
    - {{type: near_dedup, ngram: 4, threshold: 0.7}}
"""


def test_a_segment_with_a_step_too_costly_to_replay_writes_its_records(tmp_path):
    """Decontamination loads its evaluation sets in every task: its segment writes its records for the next to read."""
    from .conftest import run_cli

    recipe = tmp_path / "ngram-first.yaml"
    recipe.write_text(NGRAM_FIRST.format(quickstart=QUICKSTART))
    assert run_cli("compile", str(recipe), "--out", str(tmp_path / "build")).code == 0
    stages = json.loads((tmp_path / "build" / "data" / "plan.json").read_text())["stages"]
    assert [block["block"].rsplit(".", 1)[1] for block in stages[0]["pipeline"]][-2:] == ["MinHashCollector", "SegmentWriter"]
    assert [block["block"].rsplit(".", 1)[1] for block in stages[2]["pipeline"]] == ["SegmentReader", "RemoveDuplicates",
                                                                                     "ChatParquetWriter"]


def test_a_source_changed_before_a_segment_reads_it_again_is_refused(tmp_path, monkeypatch):
    """The segment after near-dedup reads the sources again: a file changed since the run began would give it other
    records than those the decision was made on."""
    from medrecipe.run import data as data_stage

    from .conftest import run_cli

    main, more = tmp_path / "main", tmp_path / "more"
    main.mkdir()
    row = json.dumps({"question": "What does a thiazide treat?", "response": "Hypertension."}) + "\n"
    (main / "a.jsonl").write_text(row)
    recipe = tmp_path / "changing.yaml"
    recipe.write_text(CHANGING.format(main=main, more=more))
    executor = data_stage._executor

    def changing_before_resolve(*args, **kwargs):
        if args[5].startswith("resolve"):  # the stage's name: segment-0 has read the file
            (main / "a.jsonl").write_text(row * 2)
        return executor(*args, **kwargs)

    monkeypatch.setattr(data_stage, "_executor", changing_before_resolve)
    near_dedup = "data.steps=[{type: near_dedup, ngram: 4, threshold: 0.7}]"
    result = run_cli("run", str(recipe), "--set", near_dedup, "--stage", "data", "--out", str(tmp_path / "build"))
    work = data_work(tmp_path / "build", recipe, (near_dedup,))
    assert result.code == 2 and "Traceback" not in result.err
    assert f"the data sources changed since {work} was begun from them (main: {main / 'a.jsonl'} is" in result.err


def descendants(pid: int) -> set[int]:
    """The processes below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for process in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            children.setdefault(int(stat_fields(process.name)[1]), []).append(int(process.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """Not ended: a zombie has ended, whether or not something has reaped it yet."""
    try:
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def test_the_processes_of_a_killed_run_end_with_it(lite, tmp_path):
    """Killing only the main process (the out-of-memory killer's way) left the fork server, its workers and
    datatrove's Manager running for good, a worker still writing a task's files (blocks/parent_death.py)."""
    recipe, reference = lite
    command, process, work = started_until(recipe, tmp_path / "killed", "segment-0/logs", "task_*.log")
    started = descendants(process.pid)
    assert len(started) >= 4, "the fork server, two workers and the resource tracker"
    process.kill()
    process.wait()
    deadline = time.monotonic() + 3  # SIGKILL runs down the chain at once; a worker left alone would finish its task
    while (left := {pid for pid in started if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:120] for pid in left]
    rerun_gives(command, work, reference)


def test_ray_executor_gives_the_local_output(lite, tmp_path):
    recipe, reference = lite
    out = tmp_path / "ray"
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out",
                             str(out), "--executor", "ray", "--workers", "2"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert output_rows(data_work(out, recipe)) == reference


def test_ray_executor_refuses_a_dashboard_address_clearly(lite, tmp_path):
    """compute.ray.address names a dashboard for RL and evaluation jobs; Ray refuses an HTTP address for the data
    stage's driver, which must say so, not fail inside Ray."""
    recipe, _ = lite
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out",
                             str(tmp_path / "ray"), "--executor", "ray", "--set", "compute.ray.address=http://head:8265"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "compute.ray.address is a dashboard address (http://head:8265)" in result.stderr
    assert "compute.ray.address=head:6379" in result.stderr


def test_slurm_executor_gives_the_local_output(lite, tmp_path):
    """The same pipeline submitted as sbatch job arrays to a real one-node Slurm that the test starts."""
    from .slurm_cluster import SlurmUnavailable, slurm_cluster

    recipe, reference = lite
    out = tmp_path / "slurm"
    # no partition: the cluster's default (found by review: datatrove wrote a bare `#SBATCH --partition`)
    overrides = ["--set", "compute.slurm.mem_per_cpu_gb=1", "--set", "compute.slurm.time=00:30:00"]
    if sys.prefix != sys.base_prefix:  # the jobs run medrecipe from this virtual environment
        overrides += ["--set", f"compute.slurm.venv={sys.prefix}"]
    try:
        with slurm_cluster() as environment:
            result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data",
                                     "--out", str(out), "--executor", "slurm", *overrides],
                                    cwd=REPO, capture_output=True, text=True, env=environment, timeout=600)
    except SlurmUnavailable as reason:
        pytest.skip(f"no Slurm here: {reason}")
    assert result.returncode == 0, result.stderr[-3000:]
    work = data_work(out, recipe)
    assert list((work / "logs" / "segment-0").glob("launch_script.slurm")), "the stage went through sbatch"
    assert output_rows(work) == reference


def test_fork_server_preload_leaves_workers_no_start_up_work(tmp_path):
    """A worker forked from the data stage's fork server builds its steps, sketches and writes parquet rows without
    datatrove's scan of every installed distribution (~70 ms a name), importing a module (pandas, ~0.3 s, which the
    fork server no longer imports either) or building the tokenizer's tables (~25 ms)."""
    code = f"""
import sys
import medrecipe.blocks.forkserver_preload
from datatrove.data import Document
from datatrove.utils import _import_utils
from medrecipe.blocks.distribution_check import is_distribution_available
from medrecipe.blocks.output import ChatParquetWriter
from medrecipe.blocks.hashing import _lower_table, _token_classes, _whitespace
from medrecipe.blocks.minhash import batch_sketches
from medrecipe.blocks.segments import SegmentReader, SegmentWriter

assert all(table.cache_info().currsize == 1 for table in (_lower_table, _token_classes, _whitespace))
assert "pandas" not in sys.modules
modules = set(sys.modules)
SegmentReader({str(tmp_path)!r}), SegmentWriter({str(tmp_path)!r}, 'x.jsonl.zst', 'zstd')
batch_sketches(["a b c d e", "a b"], 4, 128)
with ChatParquetWriter({str(tmp_path)!r}, 64) as writer:
    writer.write(Document(text="a", id="s/0", metadata={{"source": "s", "order": 0, "messages": [{{"role": "user", "content": "a"}}]}}))
assert _import_utils._is_distribution_available is is_distribution_available, "datatrove's full scan is still in place"
assert is_distribution_available.cache_info().misses >= 2, "the steps' check did not ask"
assert set(sys.modules) == modules, sorted(set(sys.modules) - modules)[:5]
"""
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("ending, told", [
    ("os.kill(os.getpid(), signal.SIGKILL)", r"was killed by SIGKILL \(the out-of-memory killer sends it when memory runs out\)"),
    ("time.sleep(0.3); os.kill(os.getpid(), signal.SIGTERM)", r"was killed by SIGTERM"),
    ("os._exit(0)", r"exited with code 0"),
])
def test_a_worker_that_ends_during_a_task_fails_the_stage_instead_of_hanging(tmp_path, ending, told):
    """datatrove's local executor waits forever for the task of a worker that ended (its Pool replaces the worker, not
    the task); run/lost_workers.py turns the ending into an error, at once or after a while, by any signal or exit.
    Here a task ends its own worker, under datatrove's executor with the fork server the data stage uses; then a
    stage whose workers all finish is not failed, and the signal handler and the Pool are as they were."""
    script = tmp_path / "ended.py"
    script.write_text(f"""
import os, signal, time
from datatrove.executor import LocalPipelineExecutor
from multiprocess.pool import Pool
from medrecipe.run.lost_workers import INTERRUPT, WorkerLost, failing_when_a_worker_dies


def ended_in_rank_1(data, rank, world_size):
    if rank == 1:
        {ending}
    time.sleep(0.1)
    return data


if __name__ == "__main__":
    reap, handler = Pool.__dict__["_join_exited_workers"], signal.getsignal(INTERRUPT)
    executor = LocalPipelineExecutor([ended_in_rank_1], tasks=3, workers=2, logging_dir={str(tmp_path / "logs")!r})
    assert executor.start_method == "forkserver"
    try:
        with failing_when_a_worker_dies():
            executor.run()
    except WorkerLost as lost:
        print(lost)
    finished = LocalPipelineExecutor([lambda data, rank, world_size: time.sleep(0.3)], tasks=4, workers=2,
                                     logging_dir={str(tmp_path / "finished")!r})
    with failing_when_a_worker_dies():
        finished.run()
    assert Pool.__dict__["_join_exited_workers"] is reap and signal.getsignal(INTERRUPT) is handler
""")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.fullmatch(rf"ForkServerPoolWorker-\d+ \(pid \d+\) {told} while the stage ran\n", result.stdout), result.stdout
    assert "00001" not in {marker.name for marker in (tmp_path / "logs" / "completions").glob("*")}
    assert len(list((tmp_path / "finished" / "completions").glob("*"))) == 4


def test_a_killed_idle_worker_fails_the_stage_and_its_pool_ends(tmp_path):
    """Found by review: a worker waiting for its next task holds the task queue's read lock, and one killed then never
    let go, so the Pool's terminate (datatrove's `with Pool` as the WorkerLost left it) waited for the lock forever."""
    script = tmp_path / "idle.py"
    script.write_text("""
import os, signal, time
from multiprocess import Pool
from medrecipe.run.lost_workers import WorkerLost, failing_when_a_worker_dies


def job(i):
    time.sleep(60 if i == 0 else 0)
    return os.getpid()


if __name__ == "__main__":
    try:
        with failing_when_a_worker_dies():
            with Pool(2) as pool:
                results = pool.imap_unordered(job, [0, 1])
                idle = next(results)  # its worker now waits for a task, holding the queue's read lock
                time.sleep(0.5)
                os.kill(idle, signal.SIGKILL)
                list(results)
    except WorkerLost as lost:
        print("lost:", lost)
""")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("lost: ForkPoolWorker-"), (result.stdout, result.stderr[-2000:])


@pytest.mark.parametrize("watcher, started", [("local", r"\d+"), ("ray_actor", "1")])
def test_a_worker_whose_ending_is_seen_late_still_fails_its_job(tmp_path, watcher, started):
    """A CI run hung so: a killed worker's sentinel fires as its files close, before the kernel lets it be waited for,
    so the watcher's look at its exit code could find it running and the Pool's reap just after find it ended, start
    a worker in its place and lose its task. Here a worker's first look misses its ending every time; both watchers
    (the local executor's and the one in a Ray actor) tell of it, and the one in a Ray actor starts none in its place
    (forked from a process that runs threads, it could hang the Pool's end)."""
    script = tmp_path / "late.py"
    script.write_text(f"""
import contextlib, os, signal
from multiprocess.context import ForkProcess
from multiprocess.pool import Pool
from medrecipe.run.lost_workers import WorkerLost, failing_when_a_worker_dies, pools_fail_when_a_worker_dies


class SeenLate(ForkProcess):
    started = 0

    def start(self):
        SeenLate.started += 1
        super().start()

    @property
    def exitcode(self):
        code = ForkProcess.exitcode.fget(self)
        if code is not None and not getattr(self, "missed", False):
            self.missed = True
            return None
        return code


class LatePool(Pool):
    @staticmethod
    def Process(ctx, *args, **kwds):
        return SeenLate(*args, **kwds)


def job(i):
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    if {watcher!r} == "ray_actor":
        pools_fail_when_a_worker_dies()
    watching = failing_when_a_worker_dies() if {watcher!r} == "local" else contextlib.nullcontext()
    try:
        with watching, LatePool(1) as pool:
            pool.map(job, [0])
    except WorkerLost as lost:
        print("lost:", lost, "| started:", SeenLate.started)
""")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)  # before: no end
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.fullmatch(rf"lost: SeenLate-1 \(pid \d+\) was killed by SIGKILL .* while the stage ran \| started: {started}\n",
                        result.stdout), result.stdout


CHANGING = """
name: changing
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: main, path: {main}, fields: {{prompt: question, response: response}}}}
    - {{name: more, path: {more}, required: false, fields: {{prompt: question, response: response}}}}
compute: {{tasks: 1, workers: 1}}
"""


def test_source_files_changed_since_a_stage_began_are_refused_not_left_out(tmp_path):
    """The stage's folder is keyed by the recipe: files added to a source, or data for an optional source that was
    missing, would be left out of its finished results, which a rerun keeps (run/source_files.py)."""
    from .conftest import run_cli

    main, more = tmp_path / "main", tmp_path / "more"
    main.mkdir(), more.mkdir()
    row = json.dumps({"question": "What does a thiazide treat?", "response": "Hypertension."}) + "\n"
    (main / "a.jsonl").write_text(row)
    recipe = tmp_path / "changing.yaml"
    recipe.write_text(CHANGING.format(main=main, more=more))
    command = ("run", str(recipe), "--stage", "data", "--out", str(tmp_path / "build"))
    assert run_cli(*command).code == 0  # the optional source is skipped: no data
    assert run_cli(*command).code == 0  # unchanged: the finished stage is kept

    work = data_work(tmp_path / "build", recipe)
    for change, told in [(lambda: (main / "b.jsonl").write_text(row), f"main: {main / 'b.jsonl'} added"),
                         (lambda: (more / "x.jsonl").write_text(row), f"more: {more / 'x.jsonl'} added"),
                         (lambda: (main / "a.jsonl").write_text(row * 2), f"main: {main / 'a.jsonl'} is {2 * len(row)} bytes, "
                                                                          f"not {len(row)}")]:
        recorded = {path: path.stat().st_mtime_ns for path in [*main.iterdir(), *more.iterdir()]}
        change()
        result = run_cli(*command)
        assert result.code == 2 and "Traceback" not in result.err
        assert f"the data sources changed since {work} was begun from them ({told})" in result.err
        assert f"hint: to curate the current files, remove that folder and rerun: rm -rf {work}" in result.err
        for path in [*main.iterdir(), *more.iterdir()]:
            path.unlink() if path not in recorded else None
        (main / "a.jsonl").write_text(row)
        os.utime(main / "a.jsonl", ns=(recorded[main / "a.jsonl"], recorded[main / "a.jsonl"]))
        assert run_cli(*command).code == 0  # back to the files it began from
    os.utime(main / "a.jsonl", ns=(1, 1))  # a copy or a checkout: the same size, a new modification time
    assert run_cli(*command).code == 0 and len(output_rows(work)) == 1  # the same contents: the same file
    # an edit that keeps the size (found by review: the finished stage's old output was kept)
    (main / "a.jsonl").write_text(row.replace("thiazide", "Thiazide"))
    edited = run_cli(*command)
    assert edited.code == 2 and f"main: {main / 'a.jsonl'} holds other contents at the same size" in edited.err
    # a record left empty by a run killed as it wrote it (found by review: every rerun was a JSONDecodeError traceback)
    (work / "source_files.json").write_text("")
    damaged = run_cli(*command)
    assert damaged.code == 2 and "Traceback" not in damaged.err
    assert f"{work / 'source_files.json'} is not the record of source files medrecipe wrote there" in damaged.err
    assert f"rm -rf {work}" in damaged.err


def test_the_fork_server_starts_before_the_build_and_serves_the_stage(tmp_path, monkeypatch):
    """The main job starts the data stage's fork server before it writes the build, so that the server's imports
    (~0.5 s) overlap compiling; the stage then uses that server rather than starting another, and a stage run
    without that preparation, or in another environment, starts its own."""
    from medrecipe.run import data, main_job
    from medrecipe.run.stages import RunOptions, run_stage

    events = []
    start, build = data._start_fork_server, main_job.build
    monkeypatch.setattr(data, "_start_fork_server", lambda content: (events.append("fork server"), start(content)))
    monkeypatch.setattr(main_job, "build", lambda *args: (events.append("build"), build(*args))[1])
    main, more = tmp_path / "main", tmp_path / "more"
    main.mkdir(), more.mkdir()
    (main / "a.jsonl").write_text(json.dumps({"question": "What does a thiazide treat?", "response": "Hypertension."}) + "\n")
    recipe = tmp_path / "prepared.yaml"
    recipe.write_text(CHANGING.format(main=main, more=more))
    loaded, out = load_recipe(recipe), tmp_path / "build"
    job = main_job.run(loaded, out, ("data",), RunOptions(), on_warning=lambda *_: None, on_stage=lambda _: None)
    assert job.failure is None and [r.status for r in job.results] == ["done"]
    assert events == ["fork server", "build"]
    assert len(output_rows(data_work(out, recipe))) == 1
    shutil.rmtree(out / "data")
    run_stage(loaded, Layout(out, loaded.recipe), "data", RunOptions())
    assert events == ["fork server", "build", "fork server"]
    assert len(output_rows(data_work(out, recipe))) == 1
    # a server prepared in another environment is not used (found by review: one prepared for a run refused later was)
    data.prepare(loaded, Layout(out, loaded.recipe), RunOptions())
    monkeypatch.setenv("MEDRECIPE_EXPORTED_SINCE", "1")
    shutil.rmtree(out / "data")
    run_stage(loaded, Layout(out, loaded.recipe), "data", RunOptions())
    assert events == ["fork server", "build", "fork server", "fork server", "fork server"]


def test_without_metadata_the_output_holds_the_conversation_and_its_answer_only(tmp_path):
    """Found by review: data.output.keep_metadata: false was accepted and ignored, so ids, sources and the mapped
    metadata columns were published all the same."""
    from .conftest import run_cli

    main, more = tmp_path / "main", tmp_path / "more"
    main.mkdir(), more.mkdir()
    (main / "a.jsonl").write_text(json.dumps({"question": "What does a thiazide treat?", "response": "Hypertension."}) + "\n")
    recipe = tmp_path / "bare.yaml"
    recipe.write_text(CHANGING.format(main=main, more=more).replace("data:\n", "data:\n  output: {keep_metadata: false}\n"))
    assert run_cli("run", str(recipe), "--stage", "data", "--out", str(tmp_path / "build")).code == 0
    files = list((data_work(tmp_path / "build", recipe) / "output").glob("*.parquet"))
    assert [pq.read_schema(file).names for file in files] == [["messages", "answer"]]
    assert pq.read_table(files[0]).to_pylist() == [{"messages": [{"role": "user", "content": "What does a thiazide treat?"},
                                                                 {"role": "assistant", "content": "Hypertension."}], "answer": None}]
