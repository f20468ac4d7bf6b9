"""Source rows the data stage cannot turn into records, and runs where no record is left: every rejected row is
counted by reason and listed in excluded/read, a file that is not JSON Lines is named with its line, and a segment
that receives no record reads as empty instead of failing the stage."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

ROWS = [
    {"id": "good", "question": "What is the first-line treatment of uncomplicated hypertension?", "response": "A thiazide."},
    {"id": "list-response", "question": "Name two beta blockers.", "response": ["atenolol", "metoprolol"]},
    {"id": "dict-prompt", "question": {"text": "What is aspirin?"}, "response": "An NSAID."},
    {"id": "broken-escape", "question": "Which emoji is this?", "response": "It is \ud83d"},
    {"id": "empty-response", "question": "What is the normal sodium range?", "response": "   "},
    {"id": "big-number", "question": "Which vitamin deficiency causes scurvy?", "response": "Vitamin C.",
     "serial": 123456789012345678901234567890},
    {"id": 7, "question": 12345, "response": 6789},
]

RECIPE = """
name: odd-rows
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: odd, path: {path}, fields: {{prompt: question, response: response, id: id, metadata: [serial]}}}}
  steps:
    - {{type: min_prompt_words, more_than: {words}}}
    - {{type: near_dedup, ngram: 4, threshold: 0.7}}
compute: {{tasks: 2, workers: 2}}
"""


def run(tmp_path, words: int) -> tuple[subprocess.CompletedProcess, object]:
    source = tmp_path / "odd.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))  # json.dumps writes \ud83d as its escape
    recipe = tmp_path / "odd.yaml"
    recipe.write_text(RECIPE.format(path=source, words=words))
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out",
                             str(tmp_path / "build")], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "COLUMNS": "250"})  # the summary table's notes on one line each
    return result, Layout((tmp_path / "build").resolve(), load_recipe(recipe).recipe).work_dir("data")


def test_rows_that_cannot_become_records_are_counted_and_listed(tmp_path):
    result, work = run(tmp_path, words=0)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((work / "stats.json").read_text())
    source = stats["sources"][0]
    assert source["rejected"] == {"not_text": 2, "invalid_text": 1, "empty_text": 1} and stats["rejected"] == 4
    assert source["read"] == 3 and source["read"] + stats["rejected"] == len(ROWS)
    listed = {}
    for file in (work / "excluded" / "read").glob("*.jsonl.gz"):
        for line in gzip.open(file, "rt"):
            record = json.loads(line)
            listed[record["id"]] = (record["metadata"]["excluded"]["reason"], json.loads(record["text"])["id"])
    assert listed == {"odd/1": ("not_text", "list-response"), "odd/2": ("not_text", "dict-prompt"),
                      "odd/3": ("invalid_text", "broken-escape"), "odd/4": ("empty_text", "empty-response")}
    assert "odd: 4 rows rejected while reading (empty_text 1, invalid_text 1, not_text 2), listed in excluded/read" in result.stdout
    import pyarrow.parquet as pq

    rows = {r["id"]: r for f in (work / "output").glob("*.parquet") for r in pq.read_table(f).to_pylist()}
    assert sorted(rows) == ["odd/7", "odd/big-number", "odd/good"]
    assert rows["odd/7"]["messages"][0]["content"] == "12345"  # numbers are read as their text


def test_a_run_that_removes_every_record_ends_with_an_empty_dataset(tmp_path):
    """min_prompt_words removes all before near_dedup's segment boundary: datatrove's writer leaves no file there."""
    result, work = run(tmp_path, words=100)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = {s["name"]: s for s in json.loads((work / "stats.json").read_text())["steps"]}
    assert (steps["min_prompt_words"]["in"], steps["min_prompt_words"]["removed"]) == (3, 3)
    assert (steps["near_dedup"]["in"], steps["near_dedup"]["out"]) == (0, 0)


def test_a_line_that_is_not_json_names_its_file_and_line(tmp_path):
    source = tmp_path / "broken.jsonl"
    source.write_text('{"question": "one", "response": "two"}\n{"question": "three", "response": "four"\n')
    recipe = tmp_path / "broken.yaml"
    recipe.write_text(f"""
name: broken
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: broken, path: {source}, fields: {{prompt: question, response: response}}}}
compute: {{tasks: 1, workers: 1}}
""")
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out",
                             str(tmp_path / "build")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{source}:2:" in result.stderr and "not a JSON line" in result.stderr


def test_workers_write_to_their_logs_and_a_failed_task_names_its_own(tmp_path):
    """The fork server's workers (every task of a local stage) log to files, not the terminal: a run prints its
    progress and tables, a failed task its error, and the hint names the task's log, which holds the traceback."""
    folder = tmp_path / "rows"
    folder.mkdir()
    (folder / "a.jsonl").write_text("".join(json.dumps({"question": f"question {i} here", "response": "r"}) + "\n" for i in range(20)))
    (folder / "b.jsonl").write_text('{"question": "one two three four", "response": "r"}\n{"question": "five"\n')
    recipe = tmp_path / "two.yaml"
    recipe.write_text(RECIPE.replace("{path}", str(folder)).replace("{words}", "0").replace("{{", "{").replace("}}", "}")
                      .replace(", id: id, metadata: [serial]", ""))
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out",
                             str(tmp_path / "build")], capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if "| INFO" in line or "| ERROR" in line or "Traceback" in line] == []
    error, hint = [line for line in result.stderr.splitlines() if line.startswith(("error:", "  hint:"))]
    assert f"segment-0 failed: {folder / 'b.jsonl'}:2:" in error and "not a JSON line" in error
    task_log = hint.split("full log: ")[1].split(";")[0]
    assert task_log.endswith("/logs/segment-0/logs/task_00001.log") and "Traceback" in open(task_log).read()
    workers_log = tmp_path.joinpath(task_log).parents[2] / "workers.log"
    assert "Launching pipeline for rank=" in workers_log.read_text()


def test_a_column_the_mapping_names_and_the_rows_lack_fails_the_stage_at_once(tmp_path):
    """The review's: a worker's MappingError could not be rebuilt in the parent, the Pool's result handler died, and
    the stage waited forever at 100 % CPU."""
    source = tmp_path / "renamed.jsonl"
    source.write_text("".join(json.dumps({"q": f"question {i} here", "response": "r"}) + "\n" for i in range(20)))
    recipe = tmp_path / "renamed.yaml"
    recipe.write_text(RECIPE.format(path=source, words=0).replace(", id: id, metadata: [serial]", ""))
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out",
                             str(tmp_path / "build")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "column 'question' not found; the rows have: q, response" in result.stderr


def test_a_crafted_row_costs_what_its_length_does():
    """Rows are untrusted. Found by review: `strip_tags`' pattern backtracked cubically over an unclosed tag before a
    run of whitespace (4,000 newlines: 18 s, one 40 kB row: hours) and option_text's cut of an explanation
    quadratically over a run of spaces (40,000: 5 s). These rows are far longer and come back at once, unwrapped and
    cut as before."""
    from medrecipe.blocks.record import AnswerNotAnOption, build_record

    unclosed = "<answer>" + "\n" * 200_000 + "done"
    fields = {"prompt": "q", "response": "r", "strip_tags": ["answer"]}
    record = build_record({"q": "What is it?", "r": unclosed}, fields, "s", "conversations", "0", 0)
    assert record["metadata"]["messages"][1]["content"] == unclosed.strip()  # no closing tag: left as it was
    record = build_record({"q": "What is it?", "r": "<answer> \n gout \n</answer> and <answer>urate</answer>"}, fields, "s",
                          "conversations", "0", 0)
    assert record["metadata"]["messages"][1]["content"] == "gout and urate"
    fields = {"prompt": "q", "options": "o", "answer": "a", "answer_format": "option_text"}
    row = {"q": "Which crystal?", "o": ["Urate", "Calcium pyrophosphate"], "a": "urate" + " " * 1_000_000 + "x"}
    record = build_record({**row, "a": "Urate." + " " * 1_000_000 + "Explanation: needle-shaped."}, fields, "s", "prompts", "0", 0)
    assert record["metadata"]["answer"] == "A"
    with pytest.raises(AnswerNotAnOption, match="names none of the options"):
        build_record(row, fields, "s", "prompts", "0", 0)


def _run_folder(tmp_path, split: str = "train", fields: str = "{prompt: question, response: response, system: system}"):
    recipe = tmp_path / "folder.yaml"
    recipe.write_text(f"""
name: folder
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: hub-copy, path: {tmp_path / 'hub-copy'}, split: {split}, fields: {fields}}}
compute: {{tasks: 2, workers: 2}}
""")
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--stage", "data", "--out",
                             str(tmp_path / "build")], capture_output=True, text=True, timeout=600)
    return result, Layout((tmp_path / "build").resolve(), load_recipe(recipe).recipe).work_dir("data")


def test_a_folder_laid_out_as_a_hub_repository_is_read_as_the_datasets_library_reads_it(tmp_path):
    """Found by review: a local folder source read every file in it, its test split included, whatever `split` said;
    a `.json` file of JSON Lines (Hub repositories name some so) failed or
    read as no rows; and a row leaving out a key its file's first row has (`system`) failed the whole stage. The
    datasets library reads the folder's splits from its names (data_files.get_data_patterns), a `.json` that is no
    array as JSON Lines, and a missing key as null."""
    import pyarrow.parquet as pq
    from datasets import load_dataset

    data = tmp_path / "hub-copy" / "data"
    data.mkdir(parents=True)
    train = [{"question": f"What does drug {i} treat?", "response": f"Condition {i}.", "system": "Be brief."} for i in range(6)]
    del train[3]["system"]
    (data / "train.json").write_text("".join(json.dumps(row) + "\n" for row in train))
    (data / "test.jsonl").write_text(json.dumps({"question": "TEST question?", "response": "TEST answer.", "system": "x"}) + "\n")
    result, work = _run_folder(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["id"]: r["messages"] for f in sorted((work / "output").glob("*.parquet")) for r in pq.read_table(f).to_pylist()}
    assert len(rows) == 6 and not any("TEST" in m["content"] for messages in rows.values() for m in messages)
    assert [[m["role"] for m in messages] for messages in rows.values()].count(["user", "assistant"]) == 1  # row 3
    expected = load_dataset(str(tmp_path / "hub-copy"), split="train")  # what the datasets library makes of the folder
    assert sorted(row["question"] for row in expected) == sorted(m[-2]["content"] for m in rows.values())
    assert [row["system"] for row in expected].count(None) == 1
    # the run resolves the split once and holds the stage to its files alone: a file of another split is not its input
    assert list(json.loads((work / "source_files.json").read_text())["hub-copy"]) == [str(data / "train.json")]
    (data / "test-2.jsonl").write_text((data / "test.jsonl").read_text())
    assert _run_folder(tmp_path)[0].returncode == 0
    (data / "test-2.jsonl").unlink()

    result, work = _run_folder(tmp_path, split="test")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["messages"][-1]["content"] for f in (work / "output").glob("*.parquet") for r in pq.read_table(f).to_pylist()] == ["TEST answer."]
    result, _ = _run_folder(tmp_path, split="validation")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "has no 'validation' split: the datasets library reads it as train, test" in result.stderr
    result, _ = _run_folder(tmp_path, fields="{prompt: question, response: answer}")  # a column no row has: a mapping mistake
    assert result.returncode == 2 and "column 'answer' not found" in result.stderr


def test_a_json_line_that_is_not_a_row_names_its_file_and_line(tmp_path):
    """Found by review: a line of `null`, a list or a string ended the stage in a TypeError naming no file."""
    data = tmp_path / "hub-copy"
    data.mkdir()
    (data / "rows.jsonl").write_text('{"question": "What is it?", "response": "This."}\nnull\n')
    result, _ = _run_folder(tmp_path, fields="{prompt: question, response: response}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{data / 'rows.jsonl'}:2: a JSON null where a row, an object, belongs" in result.stderr, result.stderr


def test_an_answer_that_is_a_list_is_refused_not_graded_as_its_python_text():
    """Found by review: ["A", "C"] reached the RL reward as the label "['A', 'C']": \\boxed{A, C} scored 1 and
    \\boxed{C, A} -1."""
    from medrecipe.blocks.record import NotText, build_record

    for answer in (["A", "C"], {"A": True}):
        with pytest.raises(NotText, match="an answer is one text, letter or number"):
            build_record({"q": "Which two?", "a": answer}, {"prompt": "q", "answer": "a"}, "s", "prompts", "0", 0)
    assert build_record({"q": "How many?", "a": 3}, {"prompt": "q", "answer": "a"}, "s", "prompts", "0", 0)["metadata"]["answer"] == "3"


def test_a_folder_named_with_brackets_gives_its_files_and_a_key_later_rows_have_reads_as_null(tmp_path):
    """Found by review: `datasets`' split patterns are globs joined to the folder, so `proj [2024]` matched no file (0
    records, exit 0); and a key the first row lacked and a later row had failed the stage, where the datasets library
    reads it as null (pyarrow's schema is the union of a block's keys)."""
    from medrecipe.blocks.data_files import local_files
    from medrecipe.blocks.readers import SourceReader
    from medrecipe.blocks.record import MappingError

    folder = tmp_path / "proj [2024]" / "data"
    folder.mkdir(parents=True)
    rows = [{"q": "What is a?", "r": "A1"}, {"q": "What is b?", "r": "B1", "system": "Be brief."}]
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert local_files(str(tmp_path / "proj [2024]"), "train") == [folder / "train.jsonl"]
    source = {"name": "s", "path": str(tmp_path / "proj [2024]"), "split": "train",
              "fields": {"prompt": "q", "response": "r", "system": "system"}}
    records = [doc.metadata["messages"] for doc in SourceReader(source, 0).run()]
    assert records == [[{"role": "user", "content": "What is a?"}, {"role": "assistant", "content": "A1"}],
                       [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is b?"},
                        {"role": "assistant", "content": "B1"}]]
    source["fields"]["system"] = "sytem"  # a key no row has: a mistake in the mapping, which fails at once
    with pytest.raises(MappingError, match="column 'sytem' not found"):
        list(SourceReader(source, 0).run())
