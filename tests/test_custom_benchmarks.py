"""A recipe's own benchmark, declared in `eval.custom_benchmarks`: checked like the registry's, evaluated by lighteval
on the CPU (SmolLM2, the accelerate backend), and decontaminated against by the data stage; the same code reads
it as reads the registry's benchmarks, with the columns the recipe names."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import pytest

from medrecipe.catalog import benchmarks
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

from .conftest import run_cli

# an exam laid out unlike any registry benchmark: `stem`, a list of `choices`, the answer as a 1-based number
EXAM = [
    {"qid": "h1", "stem": "Which electrolyte disturbance classically produces peaked T waves on the electrocardiogram?",
     "choices": ["Hypokalemia", "Hyperkalemia", "Hyponatremia", "Hypercalcemia"], "key": 2},
    {"qid": "h2", "stem": "Which vitamin deficiency causes the triad of dermatitis, diarrhea and dementia in adults?",
     "choices": ["Thiamine", "Riboflavin", "Niacin", "Cobalamin"], "key": 3},
    {"qid": "h3", "stem": "Which organism is the most common cause of community-acquired lobar pneumonia in adults?",
     "choices": ["Streptococcus pneumoniae", "Klebsiella pneumoniae", "Mycoplasma pneumoniae", "Legionella"], "key": 1},
]

OWN = """
  custom_benchmarks:
    - name: hospital_exam
      title: Our hospital's exam
      columns: {id: qid, question: stem, options: choices, gold: key}
      zero_based: false
"""

EVAL_RECIPE = """
name: own-benchmark
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
seed: 7
eval:
  model: base
  backend: accelerate
  dtype: float32
  batch_size: 4
  max_model_length: 1024
  sampling: {temperature: 0.6, top_p: 0.9, max_new_tokens: 16}
  benchmarks:
    - {name: hospital_exam, path: hospital_exam.jsonl}
""" + OWN

DATA_RECIPE = """
name: own-benchmark-data
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {name: notes, path: notes.jsonl, fields: {prompt: question, response: response, id: id}}
  steps:
    - {type: decontaminate_ngram, n: 8}
eval:
  benchmarks:
    - {name: hospital_exam, path: hospital_exam.jsonl}
  sampling: {max_new_tokens: 1024}   # SmolLM2 has 8,192 positions
""" + OWN


def _exam(folder) -> None:
    (folder / "hospital_exam.jsonl").write_text("".join(json.dumps(row) + "\n" for row in EXAM))


def test_it_is_read_with_its_own_columns_like_a_registry_benchmark(write, tmp_path):
    _exam(tmp_path)
    loaded = load_recipe(write("own.yaml", EVAL_RECIPE))
    exam = benchmarks.of(loaded.recipe, "hospital_exam")
    assert (exam.title, exam.reader, exam.kind) == ("Our hospital's exam", "multiple_choice", "choice")
    from medrecipe.blocks.evalsets import benchmark_rows, items_of
    from medrecipe.catalog.benchmark_items import to_item

    rows = list(benchmark_rows({"name": "hospital_exam", "path": str(tmp_path / "hospital_exam.jsonl"), "split": exam.split}))
    assert [to_item(row, exam.reader, exam.spec)["gold"] for row in rows] == ["B", "C", "A"]
    assert [item.item_id for item in items_of("hospital_exam", rows, exam.reader, exam.spec, False)] == ["h1", "h2", "h3"]


@pytest.mark.parametrize("change, message", [
    (lambda text: text.replace("name: hospital_exam\n      title", "name: medqa\n      title"), "'medqa' is a benchmark of the registry"),
    (lambda text: text.replace("- {name: hospital_exam, path: hospital_exam.jsonl}", "- hospital_exam"),
     "hospital_exam has no Hub dataset and no local copy"),
    (lambda text: text.replace("- {name: hospital_exam, path: hospital_exam.jsonl}", "- hospital_exams"),
     "unknown benchmark 'hospital_exams'"),
])
def test_validation_places_its_mistakes(write, tmp_path, change, message):
    _exam(tmp_path)
    result = run_cli("validate", str(write("own.yaml", change(EVAL_RECIPE))))
    assert result.code == 2 and message in result.err, result.err


def test_the_data_stage_decontaminates_against_it(write, tmp_path):
    _exam(tmp_path)
    notes = [{"id": "copied", "question": "Revise: " + EXAM[1]["stem"], "response": "Niacin."},
             {"id": "clean", "question": "How is iron-deficiency anemia treated in pregnancy?", "response": "Oral iron."}]
    (tmp_path / "notes.jsonl").write_text("".join(json.dumps(row) + "\n" for row in notes))
    recipe = write("own-data.yaml", DATA_RECIPE)
    result = run_cli("run", str(recipe), "--stage", "data", "--out", "build", "--workers", "1")
    assert result.code == 0, result.err
    work = Layout((tmp_path / "build").resolve(), load_recipe(recipe).recipe).work_dir("data")
    kept = [row["id"] for file in sorted((work / "output").glob("*.parquet")) for row in pq.read_table(file).to_pylist()]
    assert kept == ["notes/clean"]
    with gzip.open(work / "excluded" / "decontaminate_ngram" / "00000.jsonl.gz", "rt") as handle:
        [excluded] = [json.loads(line) for line in handle]
    evidence = excluded["metadata"]["excluded"]
    assert (excluded["id"], evidence["benchmark"], evidence["item_id"]) == ("notes/copied", "hospital_exam", "h2")


@pytest.mark.slow
def test_lighteval_evaluates_it_on_the_cpu(cli, write, tool_python, monkeypatch, tmp_path):
    tool_python("eval")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _exam(tmp_path)
    result = cli("run", str(write("own.yaml", EVAL_RECIPE)), "--stage", "eval", "--out", "build")
    assert result.code == 0, result.err[-3000:]
    scores = json.loads((tmp_path / "build" / "eval" / "scores.json").read_text())
    entry = scores["benchmarks"]["hospital_exam"]
    assert entry["n"] == 3 and entry["metric"] == "accuracy" and 0 <= entry["score"] <= 100


def test_it_compiles_into_the_lighteval_tasks_and_the_cards(write, tmp_path):
    _exam(tmp_path)
    recipe = write("own-data.yaml", DATA_RECIPE)
    result = run_cli("compile", str(recipe), "--out", "build")
    assert result.code == 0, result.err
    build = tmp_path / "build"
    tasks = (build / "eval" / "tasks.py").read_text()
    assert "'name': 'hospital_exam'" in tasks and "'gold': 'key'" in tasks and "'zero_based': False" in tasks
    card = (build / "cards" / "dataset" / "README.md").read_text()
    assert "Our hospital's exam" in card  # named, without a Hub link it does not have
