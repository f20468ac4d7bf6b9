"""lighteval 0.13 as medrecipe drives it: the pinned version, the compiled files' names, the task names, and the
setting of lighteval's own task for each benchmark (none of which is run)."""

from __future__ import annotations

from pathlib import Path


VERSION = "0.13.0"
TOOL = f"lighteval {VERSION}"
TASKS = "eval/tasks.py"
LAUNCH = "eval/launch.sh"
STAGE_DATA = "eval/stage_data.sh"
PREPARE_MODEL = "eval/prepare_model.py"
TASK_PREFIX = "medrecipe:"
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
_HERE = Path(__file__).parent
RUNTIME = _HERE / "tasks_runtime.py"
PREPARE_MODEL_SOURCE = _HERE / "prepare_model.py"
REGISTRY_CHECK = _HERE / "registry_check.py"


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
