"""Run the data stage: the plan's datatrove pipelines in order, on the local, Ray or Slurm executor.

Each stage keeps datatrove's completion markers in its logging folder under the content-keyed work
folder, so a rerun after a crash skips finished tasks and redoes only the interrupted ones; a changed
recipe gets a new key and starts clean, and changed source files are refused (run/source_files.py). At the
end the per-step counts are gathered into stats.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

from ..compile.data import instantiate, plan
from ..compile.layout import Layout
from ..errors import NotRunnableHere, UserError
from ..recipe import LoadedRecipe
from ..recipe.rules import READ_STEP
from . import jobs, source_files
from .lost_workers import failing_when_a_worker_dies
from .stages import RunOptions, StageResult

OUTPUT_STEP = "output"  # blocks/output.py's ChatParquetWriter: the name its counts are kept under
CONSOLE_LOG, WORKERS_LOG = "console.log", "workers.log"  # a stage's own output; that of the local workers of all stages


def _preflight(content: dict, files: dict[str, dict], notes: list[str]) -> dict:
    """Missing local sources (`files`: source_files.source_files): a required one stops the run, an optional one is
    dropped with a note. The readers of the others are given their files, those the run holds to its record."""
    missing = {}
    for source in content["sources"]:
        if source["path"] is None:
            continue
        if not files[source["name"]]:
            if source["required"]:
                raise UserError(
                    f"source {source['name']!r}: no data at {source['path']}",
                    "supply the data there, or point the recipe at it: --set data.sources.<index>.path=/your/copy",
                )
            missing[source["name"]] = source["path"]
            notes.append(f"optional source {source['name']} skipped: no data at {source['path']}")
    for stage in content["stages"]:
        stage["pipeline"] = [b for b in stage["pipeline"]
                             if not (b["block"].endswith("SourceReader") and b["args"]["source"]["name"] in missing)]
        for block in stage["pipeline"]:
            if block["block"].endswith("SourceReader") and block["args"]["source"]["path"] is not None:
                block["args"]["files"] = list(files[block["args"]["source"]["name"]])
    return content


def _require_vllm(content: dict) -> None:
    """LLM steps without an endpoint start vLLM where their tasks run: checked only where that is this machine."""
    needs_vllm = [b for s in content["stages"] for b in s["pipeline"]
                  if b["block"].endswith("InferenceStep") and not b["args"]["endpoint"]]
    if needs_vllm:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise NotRunnableHere(
                f"{needs_vllm[0]['args']['name']} runs {needs_vllm[0]['args']['model']} on a local vLLM server, "
                "and vLLM is not installed here",
                "run on a GPU machine with `pip install vllm`, or set the step's `endpoint` to an OpenAI-compatible server",
            )


def _executor(kind: str, pipeline: list, tasks: int, workers: int | None, logging_dir: str, name: str, loaded: LoadedRecipe,
              depends=None):
    """The stage's executor; `workers` None: as many at once as the machine has CPUs (here), or Slurm allows."""
    if kind == "slurm":
        from . import data_slurm  # datatrove's executors import its io stack (0.2 s): only the one in use is imported

        return data_slurm.stage_jobs(pipeline, tasks, workers, logging_dir, name, loaded, depends)
    workers = min(workers or os.cpu_count() or 1, tasks)
    if kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir)
    from .data_ray import RayStageExecutor

    return RayStageExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir)


@contextlib.contextmanager
def _output_to(log_file: Path, descriptors: tuple[int, ...] = (2,)):
    """Send what this process, and every process it starts meanwhile, writes to these file descriptors (stderr by
    default: datatrove logs every task at INFO) to a log file; the terminal keeps medrecipe's progress."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(descriptor) for descriptor in descriptors]
    with log_file.open("a") as handle:
        for descriptor in descriptors:
            os.dup2(handle.fileno(), descriptor)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for descriptor, copy in zip(descriptors, saved):
                os.dup2(copy, descriptor)
                os.close(copy)


def _local_processes_watched(kind: str) -> contextlib.AbstractContextManager:
    """Around a local executor's run: a worker that dies fails the stage, and the processes it forks (datatrove's
    Manager) die with this one; the fork server and its workers do already (blocks/forkserver_preload.py)."""
    watched = contextlib.ExitStack()
    if kind == "local":
        from ..blocks.parent_death import forks_die_with_this_process

        watched.enter_context(failing_when_a_worker_dies())
        watched.enter_context(forks_die_with_this_process())
    return watched


# What the fork server prepare() started was started for (the work folder, the environment), until run() uses it.
_prepared: tuple[str, int] | None = None


def _for(content: dict) -> tuple[str, int]:
    """A server serves a run of the same plan (modules, log) in the same environment (an endpoint's key exported in
    between must reach the workers): found by review, a server prepared for a run refused later was reused."""
    return content["work_dir"], hash(frozenset(os.environ.items()))


def _start_fork_server(content: dict) -> None:
    """Start datatrove's fork server now, with the blocks' modules to import there once: a stage's workers then
    fork from it in milliseconds instead of each importing datatrove, numpy and medrecipe again (and doing what
    `blocks.forkserver_preload` does). The server's imports take ~0.5 s, which overlap what this process does
    meanwhile (see prepare)."""
    import multiprocess
    import multiprocess.forkserver

    # A server an earlier run in this process started (a test session, a notebook) has that run's environment (an
    # endpoint's key exported since was missing in the workers), log file and modules: this run starts its own.
    multiprocess.forkserver._forkserver._stop()
    modules = sorted({b["block"].rsplit(".", 1)[0] for s in content["stages"] for b in s["pipeline"]})
    multiprocess.set_forkserver_preload([*modules, "medrecipe.blocks.forkserver_preload"])
    # The server's output, and so its workers' (datatrove's logs, tracebacks, model-loading bars), goes to a log.
    with _output_to(Path(content["work_dir"]) / "logs" / WORKERS_LOG, (1, 2)):
        multiprocess.forkserver.ensure_running()


def prepare(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> None:
    """Called before the build is written: the local executor's fork server starts importing while this process
    compiles the recipe (0.1 s for the quickstart, 0.3 s for II-Medical-8B, more on a first run) and imports
    datatrove."""
    global _prepared
    if (options.executor or loaded.recipe.compute.executor) == "local" and not options.dry_run:
        content = plan(loaded, layout)
        _start_fork_server(content)
        _prepared = _for(content)


def missing_input(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> None:
    """The data stage reads sources, which no stage makes (their files are checked as the stage starts)."""
    return None


def run(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> StageResult:
    global _prepared
    notes: list[str] = []
    content = plan(loaded, layout)
    kind = options.executor or loaded.recipe.compute.executor
    if kind == "local" and not options.dry_run and _prepared != _for(content):
        _start_fork_server(content)
    _prepared = None  # a later run in this process starts its own, unless prepared again
    files = source_files.source_files(content)
    content = _preflight(content, files, notes)
    work = Path(content["work_dir"])
    workers = options.workers or loaded.recipe.compute.workers
    if options.dry_run:
        for before, stage in zip([None, *content["stages"]], content["stages"]):
            blocks = " -> ".join(b["block"].rsplit(".", 1)[1] + (" (again)" if b["replayed"] else "") for b in stage["pipeline"])
            print(f"{stage['name']} ({stage['tasks']} tasks, {kind}): {blocks}")
            if kind == "slurm":
                from . import data_slurm

                print(data_slurm.batch_script(stage["tasks"], workers, str(work / "logs" / stage["name"]), stage["name"], loaded,
                                              before and before["name"]))
        return StageResult("data", "dry-run", outputs=[("plan", str(layout.stage_dir("data") / "plan.json"))], notes=notes)

    address = jobs.recipe_ray_address(loaded) if kind == "ray" else None
    # Slurm and a Ray cluster run the tasks, and so vLLM, on other machines; a Ray instance started here (no address) here
    if kind == "local" or (kind == "ray" and not (address or os.environ.get("RAY_ADDRESS"))):
        _require_vllm(content)
    if kind == "ray":
        from . import data_ray

        data_ray.start(address, workers)
        data_ray.check_keys_reach_workers(content)
    source_files.hold_to_recorded(files, work)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    previous = None
    redone = False  # whether any task was still to run: datatrove skips the tasks a run before completed
    with Progress(TextColumn("[bold]data[/] {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), transient=False) as progress:
        bar = progress.add_task("stages", total=len(content["stages"]))
        for stage in content["stages"]:
            progress.update(bar, description=stage["name"])
            if kind != "slurm" and any(block["replayed"] for block in stage["pipeline"]):
                # it reads the sources again (compile/data.py, _replays): a file changed meanwhile is refused
                source_files.hold_to_recorded(source_files.source_files(content), work)
            pipeline = [instantiate(block) for block in stage["pipeline"]]
            logs = work / "logs" / stage["name"]
            executor = _executor(kind, pipeline, stage["tasks"], workers, str(logs), stage["name"],
                                 loaded, depends=previous if kind == "slurm" else None)
            redone = redone or bool(executor.get_incomplete_ranks(range(executor.world_size)))
            try:
                with _output_to(logs / CONSOLE_LOG), _local_processes_watched(kind):
                    executor.run()
            except Exception as exc:  # a failed task, or sbatch refusing a job: reported with its log, no traceback
                raise _stage_failure(stage["name"], work, str(exc)) from None
            if kind == "slurm":
                previous = executor  # jobs are chained with dependencies; they finish in order
            elif executor.get_incomplete_ranks(range(executor.world_size)):
                raise _stage_failure(stage["name"], work, "some tasks did not complete")
            progress.advance(bar)
    if kind == "slurm":
        from . import data_slurm

        data_slurm.wait_for_stages(content["stages"], work, content["recipe"])
    stats = gather_stats(content, work)
    Path(layout.data_stats()).write_text(json.dumps(stats, indent=2) + "\n")
    counts = [(step["name"], step["in"], step["out"], step["removed"]) for step in stats["steps"]]
    return StageResult(
        "data", "done",
        outputs=[("curated dataset", content["output"]), ("stats", str(layout.data_stats())),
                 ("exclusions", str(work / "excluded"))],
        counts=counts,
        notes=notes + _rejected_note(stats) + [
            f"{stats['output']['records']} records written in {time.monotonic() - started:.1f} s" if redone else
            f"{stats['output']['records']} records, curated by an earlier run of this recipe (delete {work} to curate again)"],
    )


def _rejected_note(stats: dict) -> list[str]:
    """One line per source whose rows could not all become records, with the reasons."""
    return [f"{source['name']}: {sum(source['rejected'].values()):,} rows rejected while reading ("
            + ", ".join(f"{reason} {count:,}" for reason, count in sorted(source["rejected"].items()))
            + "), listed in excluded/read" for source in stats["sources"] if source["rejected"]]


def _stage_failure(name: str, work: Path, reason: str) -> UserError:
    """The failure, with the last error lines of the log that tells why: the first failed task's own log (datatrove
    writes each task's, traceback included), else the stage's console log."""
    logs = work / "logs" / name
    completed = {marker.name for marker in (logs / "completions").glob("*")}
    unfinished = [log for log in sorted((logs / "logs").glob("task_*.log")) if log.stem.removeprefix("task_") not in completed]
    failed = [log for log in unfinished if "| ERROR" in log.read_text(errors="replace")]
    log = failed[0] if failed else logs / CONSOLE_LOG
    text = log.read_text(errors="replace") if log.exists() else ""
    errors = [line for line in text.splitlines() if ("Error" in line or "error:" in line) and not (reason and reason in line)][-3:]
    return UserError(
        f"data stage {name} failed: {reason}" + ("".join(f"\n  {line}" for line in errors)),
        f"full log: {log}; rerun the same command to resume (finished tasks are kept)",
    )


# --------------------------------------------------------------------------------------------------- stats


def _stage_counts(logging_dir: Path) -> dict[str, dict[str, int]]:
    """datatrove's per-task stats of one stage, summed: step name -> label -> total."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for file in sorted((logging_dir / "stats").glob("*.json")):
        for step in json.loads(file.read_text()):
            name = step["name"].split(": ", 1)[-1]
            for label, value in step.get("stats", {}).items():
                if isinstance(value, int):  # counters; timings and distributions are dicts
                    totals[name][label] += value
    return totals


def _by_reason(labels: dict[str, int], kind: str) -> dict[str, int]:
    """The counts a step labels `<kind>:<reason>` (removed:near_duplicate, rejected:not_text), by reason."""
    return {label.split(":", 1)[1]: value for label, value in labels.items() if label.startswith(f"{kind}:")}


def gather_stats(content: dict, work: Path) -> dict:
    """stats.json: counts in and out of every step and source, resolved thresholds, the output's size."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for stage in content["stages"]:
        for name, labels in _stage_counts(work / "logs" / stage["name"]).items():
            for label, value in labels.items():
                counts[name][label] += value
    read = {label.split("/", 1)[1]: value for name in counts for label, value in counts[name].items() if label.startswith("read/")}
    # rows the readers could not turn into records, by source and reason (listed in excluded/read)
    rejected = {s["name"]: reasons for s in content["sources"] if (reasons := _by_reason(counts.get(s["name"], {}), "rejected"))}
    files = sorted(Path(content["output"]).glob("*.parquet"))
    kept_by_source = {label.split("/", 1)[1]: value for label, value in counts.get(OUTPUT_STEP, {}).items() if label.startswith("kept/")}
    steps = []
    for step in content["steps"]:
        labels = counts.get(step["name"], {})
        by_source = {}
        for label, value in labels.items():
            direction, _, source = label.partition("/")
            if direction in ("in", "out") and source:
                by_source.setdefault(source, {"in": 0, "out": 0})[direction] = value
        total_in = sum(v["in"] for v in by_source.values())
        total_out = sum(v["out"] for v in by_source.values())
        decision_file = work / "decisions" / f"{step['name']}.json"
        resolved = {}
        if decision_file.exists():
            resolved = {k: v for k, v in json.loads(decision_file.read_text()).items() if k not in ("remove",)}
        reasons = _by_reason(labels, "removed")
        # every removal is counted with its reason: generation's out counts records, several per kept prompt
        steps.append({"name": step["name"], "type": step["type"], "params": step["params"], "in": total_in,
                      "out": total_out, "removed": sum(reasons.values()), "by_source": by_source,
                      "resolved": resolved, "removed_reasons": reasons})
    excluded = {s["name"]: f"excluded/{s['name']}" for s in content["steps"] if (work / "excluded" / s["name"]).exists()}
    if (work / "excluded" / READ_STEP).exists():
        excluded[READ_STEP] = f"excluded/{READ_STEP}"
    return {
        "recipe": content["recipe"],
        "key": content["key"],
        "sources": [{"name": s["name"], "location": s["location"], "read": read.get(s["name"], 0),
                     "rejected": rejected.get(s["name"], {}), "kept": kept_by_source.get(s["name"], 0),
                     "expected": s["expected"]} for s in content["sources"]],
        "rejected": sum(n for reasons in rejected.values() for n in reasons.values()),
        "steps": steps,
        "output": {"records": sum(kept_by_source.values()), "files": [f"output/{f.name}" for f in files],
                   "bytes": sum(f.stat().st_size for f in files)},
        "decontamination": {"benchmarks": content["benchmarks"],
                            "excluded": {k: v for k, v in excluded.items() if k.startswith("decontaminate")}},
        "excluded": excluded,
    }
