"""The shipped recipes against datasets laid out as the real Hub datasets are (tests/fixtures/hub/, the evidence in
medrecipe/catalog/datasets.py): the catalog matches the fixtures, every mapping of a shipped recipe matches the
catalog, the known wrong mappings are caught at their recipe line, and `medrecipe preflight` reads every dataset of
every shipped recipe from a local Hub through the real `datasets` and huggingface_hub clients."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medrecipe.catalog import benchmarks, datasets
from medrecipe.recipe import RecipeError

from . import hub_fixtures
from .conftest import RECIPES
from .judge_server import JudgeServer

TOKEN = "hf_test"


# ------------------------------------------------------------------------------------ catalog and fixtures


def test_every_catalog_dataset_has_a_fixture_in_its_layout():
    assert sorted(datasets.DATASETS) == hub_fixtures.repos()
    for repo in hub_fixtures.repos():
        dataset = datasets.get(repo)
        fixture = hub_fixtures.fixture(repo)
        assert dataset.evidence, repo
        for branch, files in fixture["branches"].items():
            for path, rows in files.items():
                if path.endswith((".md", ".py")):
                    continue
                where = fixture["tables"][path]
                table = dataset.files[path] if where == "file" else dataset.configs[where]
                for row in rows:
                    columns = ["turns"] if isinstance(row, list) else sorted(row)  # a bare list row is the column `turns`
                    assert columns == sorted(table.columns), f"{repo} {path}"
                for column, turns in table.turns.items():
                    roles = {turn[turns.role_key] for row in rows for turn in row[column] or []}
                    assert roles <= set(turns.roles), f"{repo} {column}: {roles}"
                    assert all(turns.content_key in turn for row in rows for turn in row[column] or [])


def test_every_registry_benchmark_reads_columns_its_dataset_has():
    for bench in benchmarks.BENCHMARKS.values():
        dataset = datasets.get(bench.hub)
        assert dataset is not None, bench.name
        # a file read directly has no split of its own: the benchmark's split only names where it is staged
        table = dataset.files[bench.data_files[0]] if bench.data_files else dataset.table(bench.subset, None)
        assert table is not None and (bench.data_files or bench.split in table.splits), bench.name
        named = [value for key, value in bench.spec.items() if key != "zero_based"] + list(bench.where)
        assert set(named) <= set(table.columns), bench.name
        if bench.data_files:
            assert bench.revision == dataset.files_revision, bench.name


def _problems(write, recipe: str) -> list[str]:
    from medrecipe.cli.common import load

    try:
        load(str(write("r.yaml", recipe)), warn=False)
    except RecipeError as error:
        return [str(problem) for problem in error.problems]
    return []


BASE = """
name: probe
base_model: Qwen/Qwen3-8B
"""


@pytest.mark.parametrize(
    "mapping, expected",
    [
        # the shipped II-Medical mappings before this fix, each against the real layout
        ("{name: s, hub: FreedomIntelligence/Medical-R1-Distill-Data, subset: en, fields: {prompt: question, reasoning: reasoning, response: response}}",
         "r.yaml:5:117: data.sources[0].fields.reasoning: column 'reasoning' is not in FreedomIntelligence/Medical-R1-Distill-Data: "
         "its columns are question, reasoning (reasoning_content), response (content)"),
        ("{name: s, hub: UCSC-VLAA/MedReason, kind: prompts, fields: {prompt: question, options: options, answer: answer}}",
         "data.sources[0].fields.options: UCSC-VLAA/MedReason's 'options' is one text block of 'A. ...' lines"),
        ("{name: s, hub: UCSC-VLAA/MedReason, kind: prompts, fields: {prompt: question, options: options, options_format: lettered_lines, answer: answer}}",
         "data.sources[0].fields.answer: UCSC-VLAA/MedReason's 'answer' is the right option's text, not its letter"),
        ("{name: s, hub: a-m-team/AM-DeepSeek-R1-Distilled-1.4M, subset: am_0.9M, fields: {messages: messages}}",
         "data.sources[0].fields.messages: a-m-team/AM-DeepSeek-R1-Distilled-1.4M's assistant turns wrap the answer in <answer>"),
        ("{name: s, hub: a-m-team/AM-Qwen3-Distilled, data_files: [if.jsonl], fields: {messages: conversations, role_key: from, "
         "content_key: value, roles: {gpt: assistant}, strip_tags: [answer]}}",
         "a-m-team/AM-Qwen3-Distilled's turns have the roles human, assistant; 'human' would not be a chat role"),
        ("{name: s, hub: open-thoughts/OpenThoughts2-1M, fields: {messages: conversations}}",
         "open-thoughts/OpenThoughts2-1M's 'conversations' turns are {from, value}"),
        ("{name: s, hub: bigbio/med_qa, data_files: [med_qa_en_4options_source/train/0000.parquet], kind: prompts, "
         "fields: {prompt: question, options: options, answer: answer_idx}}",
         "med_qa_en_4options_source/train/0000.parquet is on the refs/convert/parquet revision of bigbio/med_qa"),
        ("{name: s, hub: FreedomIntelligence/ApolloCorpus, kind: prompts, fields: {turns: turns}}",
         "FreedomIntelligence/ApolloCorpus has no configuration a dataset loader can read"),
        ("{name: s, hub: nvidia/Llama-Nemotron-Post-Training-Dataset, subset: SFT, fields: {messages: input, response: output}}",
         "nvidia/Llama-Nemotron-Post-Training-Dataset (SFT) has no split 'train'"),
    ],
)
def test_a_mapping_that_does_not_match_the_real_layout_is_an_error_at_its_line(write, mapping, expected):
    found = _problems(write, BASE + f"data:\n  sources:\n    - {mapping}\n")
    assert any(expected in problem for problem in found), found


def test_the_ii_medical_rl_mapping_before_the_fix_is_caught(write):
    rl = """
rl:
  algorithm: dapo
  init_from: Qwen/Qwen3-8B
  data: {hub: Intelligent-Internet/II-Medical-RL, fields: {prompt: question, answer: answer}}
  rollout_batch_size: 8
  mini_batch_size: 8
  samples_per_prompt: 4
  learning_rate: 1.0e-6
"""
    found = _problems(write, BASE + rl)
    assert any("rl.data.fields.prompt: Intelligent-Internet/II-Medical-RL's 'question' holds the question without its choices; "
               "they are in 'options'" in problem for problem in found), found
    assert any("rl.data.fields.answer: Intelligent-Internet/II-Medical-RL's 'answer' is the right option's text, not its letter"
               in problem and "map answer: label" in problem for problem in found), found


@pytest.mark.parametrize("algorithm", ["dpo", "reward_model"])
@pytest.mark.parametrize("mapping, problem", [
    ("prompt_key: prompt", "rl.data.prompt_key: TsinghuaC3I/UltraMedical-Preference's 'prompt' is a string"),
    # OpenRLHF joins prompt and response as strings without the template (reward_dataset.py: `prompt + chosen`), a
    # TypeError on UltraMedical-Preference's conversations after the models have loaded (found by review)
    ("apply_chat_template: false", "rl.data.apply_chat_template: TsinghuaC3I/UltraMedical-Preference's 'chosen' is a conversation"),
])
def test_preference_columns_read_as_openrlhf_cannot_read_them_are_caught(write, algorithm, mapping, problem):
    rl = f"""
rl:
  algorithm: {algorithm}
  init_from: meta-llama/Meta-Llama-3-8B
  data: {{path: TsinghuaC3I/UltraMedical-Preference, {mapping}}}
  learning_rate: 5.0e-7
"""
    found = _problems(write, BASE + rl)
    assert any(problem in found_problem for found_problem in found), found


def test_a_local_pair_file_is_read_with_its_one_split(write):
    """datasets' loader names a file's one split `train`; OpenRLHF asked for another keeps the DatasetDict and fails
    (openrlhf/datasets/utils.py: `data.select`), after the models have loaded (found by review)."""
    write("pairs.jsonl", '{"chosen": [], "rejected": []}\n')
    rl = """
rl:
  algorithm: reward_model
  init_from: meta-llama/Meta-Llama-3-8B
  data: {path: pairs.jsonl, split: test}
  learning_rate: 5.0e-7
"""
    found = _problems(write, BASE + rl)
    assert any("rl.data.split: pairs.jsonl is one file, whose only split is 'train'" in problem for problem in found), found
    assert not any("rl.data.split" in problem for problem in _problems(write, BASE + rl.replace("split: test", "split: train")))


# ------------------------------------------------------------------------------------ preflight on a local Hub


@pytest.fixture
def hub(fixture_hub):
    return fixture_hub


def preflight(hub, recipe: Path, *args: str, token: str = TOKEN, cwd: Path | None = None,
              env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """`medrecipe preflight` in its own process (huggingface_hub reads HF_ENDPOINT when it is imported)."""
    out = (cwd or recipe.parent) / "preflight.json"
    env = {**os.environ, **hub.client_env(token, hub.home), "COLUMNS": "200", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "preflight", str(recipe), "--json", str(out), *args],
                            env=env, capture_output=True, text=True, cwd=cwd or recipe.parent, timeout=600)
    report = json.loads(out.read_text()) if out.is_file() else {}
    return result, report


def samples(report: dict, kind: str) -> dict[str, dict]:
    return {sample["name"]: sample["data"] for sample in report["samples"] if sample["kind"] == kind}


HUB_RECIPES = ["ii-medical-8b-1706", "internist-7b", "ultramedical-llama3-8b", "ultramedical-rm-llama3-8b"]
JUDGE_KEY = "sk-medrecipe-preflight-key"


@pytest.fixture
def judge():
    """II-Medical's two OpenAI endpoints (GPT-4o judging curated answers, GPT-4.1 grading HealthBench) stand in here
    as one local OpenAI-compatible server that lists both models to the right key."""
    with JudgeServer(key=JUDGE_KEY, models=("gpt-4o", "gpt-4.1", "gpt-4.1-2025-04-14")) as server:
        yield server


def judged(judge) -> dict:
    """preflight's arguments for II-Medical with its endpoints on the local server, and the key in its variable."""
    overrides = ["--set", f"data.steps.3.endpoint={judge.endpoint}", "--set", f"eval.judge.endpoint={judge.endpoint}"]
    return {"args": overrides, "env": {"OPENAI_API_KEY": JUDGE_KEY}}


@pytest.mark.parametrize("name", HUB_RECIPES)
def test_preflight_reads_every_dataset_of_every_shipped_recipe(hub, judge, tmp_path, name):
    endpoints = judged(judge) if name == "ii-medical-8b-1706" else {"args": [], "env": {}}
    result, report = preflight(hub, RECIPES / f"{name}.yaml", *endpoints["args"], cwd=tmp_path, env=endpoints["env"])
    failed = [check for check in report.get("checks", []) if not check["ok"]]
    if name == "internist-7b":  # its physician-curated sources are private: a local copy must be supplied
        assert result.returncode == 2 and {check["name"] for check in failed} == {"guidelines", "textbooks", "synthetic"}
        assert "internist-7b.yaml:36:13: data.sources[1].path: no data files at" in result.stderr
        return
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not failed and "Traceback" not in result.stderr


def test_preflight_checks_each_endpoint_with_its_key_and_places_the_problem(hub, judge, tmp_path, monkeypatch):
    from medrecipe.run.endpoints import endpoint_problem

    monkeypatch.setenv("MEDRECIPE_TEST_KEY", JUDGE_KEY)
    assert endpoint_problem(judge.endpoint, "gpt-4.1", "MEDRECIPE_TEST_KEY") is None
    assert "does not serve 'gpt-5'; it lists gpt-4o, gpt-4.1, gpt-4.1-2025-04-14" in endpoint_problem(judge.endpoint, "gpt-5", "MEDRECIPE_TEST_KEY")[0]
    monkeypatch.setenv("MEDRECIPE_TEST_KEY", "sk-wrong")
    assert endpoint_problem(judge.endpoint, "gpt-4.1", "MEDRECIPE_TEST_KEY")[0].endswith("refused the key in $MEDRECIPE_TEST_KEY")
    assert "cannot be reached" in endpoint_problem("http://127.0.0.1:9/v1", "gpt-4.1", None)[0]
    # II-Medical without its key: both endpoints fail at the lines that name them, and nothing was generated
    endpoints = judged(judge)
    result, report = preflight(hub, RECIPES / "ii-medical-8b-1706.yaml", *endpoints["args"], cwd=tmp_path, env={"OPENAI_API_KEY": ""})
    assert result.returncode == 2
    failed = {check["name"]: check["result"] for check in report["checks"] if not check["ok"]}
    assert set(failed) == {f"gpt-4o at {judge.endpoint}", f"gpt-4.1-2025-04-14 at {judge.endpoint}"}
    assert "data.steps[3].endpoint: $OPENAI_API_KEY is not set" in result.stderr and "eval.judge.endpoint: $OPENAI_API_KEY is not set" in result.stderr
    assert not judge.requests  # a model listing at most, never a completion


def test_ii_medical_reads_what_the_published_run_trained_on(hub, judge, tmp_path):
    endpoints = judged(judge)
    result, report = preflight(hub, RECIPES / "ii-medical-8b-1706.yaml", *endpoints["args"], cwd=tmp_path, env=endpoints["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    sources = samples(report, "source")
    # Medical-R1-Distill: the reasoning column sits in the think tags, the response after them
    turns = sources["medical-r1-distill"]["messages"]
    row = hub_fixtures.rows("FreedomIntelligence/Medical-R1-Distill-Data", "medical_r1_distill_sft.json")[0]
    assert turns[-1]["content"] == f"<think>\n{row['reasoning (reasoning_content)']}\n</think>\n\n{row['response (content)']}"
    assert sources["medical-r1-distill-chinese"]["messages"][-1]["content"].startswith("<think>\n")
    # the AM sets: the <answer> wrapper is gone, the think block stays
    for name in ("am-deepseek-r1", "am-qwen3-instruction-following"):
        content = sources[name]["messages"][-1]["content"]
        assert "<answer>" not in content and "</answer>" not in content and content.startswith("<think>"), name
    # every source's think block laid out as Qwen3's template renders one (the AM sets' rows read
    # "<think>Okay...</think>\n<answer>...", which SFT would have trained as it stood)
    thinking = {name: sample["messages"][-1]["content"] for name, sample in sources.items()
                if "</think>" in sample["messages"][-1]["content"]}
    assert {"am-deepseek-r1", "am-qwen3-instruction-following", "medical-r1-distill", "dolphin-r1"} <= set(thinking)
    for name, content in thinking.items():
        assert re.fullmatch(r"<think>\n(\S(.*\S)?\n|\n)</think>\n\n\S.*", content, re.DOTALL), (name, content[:80])
    # MedReason: the "Answer Choices:" block read as lettered options, the option text as its letter
    medreason = sources["medreason-prompts"]
    assert medreason["options"] == {"A": "Vitamin C", "B": "Vitamin D", "C": "Vitamin K", "D": "Vitamin B12"}
    assert medreason["answer"] == "A" and "A. Vitamin C\nB. Vitamin D" in medreason["messages"][-1]["content"]
    # bigbio/med_qa's parquet conversion: [{key, value}] options, the letter as the answer
    assert sources["medqa-prompts"]["answer"] == "C" and "C. IgA nephropathy" in sources["medqa-prompts"]["messages"][-1]["content"]
    assert "system" not in {turn["role"] for turn in sources["nemotron-science"]["messages"]}  # not its "detailed thinking on"
    # the DAPO prompt: the choices are in the prompt, the label is the gold letter, the instruction asks for a box
    rl = samples(report, "rl_prompt")["rl.data"]
    assert json.loads(rl["label"]) == {"answer": "A", "options": {"A": "Vitamin C", "B": "Vitamin D", "C": "Vitamin K",
                                                                  "D": "Vitamin B12"}}
    assert rl["prompt"] == [{"role": "user", "content": "Scurvy is caused by deficiency of which vitamin?\n\nA. Vitamin C\nB. Vitamin D\n"
                             "C. Vitamin K\nD. Vitamin B12\n\nPlease reason step-by-step, and put your final answer within \\boxed{}."}]
    evaluation = samples(report, "eval_prompt")
    assert set(evaluation) == {"medmcqa", "medqa", "pubmedqa", "mmlu_pro_medical", "healthbench", "lancet", "medbullets_op4",
                               "medbullets_op5", "medxpertqa", "nejm"}
    assert evaluation["lancet"]["item"]["options"]["B"] == "Central diabetes insipidus"  # options decoded from their JSON text
    assert evaluation["mmlu_pro_medical"]["item"]["options"]["J"] and evaluation["mmlu_pro_medical"]["gold"] == "C"


def test_ultramedical_preference_pairs_hold_one_user_turn(hub, tmp_path):
    result, report = preflight(hub, RECIPES / "ultramedical-llama3-8b.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    pair = samples(report, "preference_pair")["TsinghuaC3I/UltraMedical-Preference"]
    assert [turn["role"] for turn in pair["prompt"]] == ["user"]
    assert [turn["role"] for turn in pair["chosen"]] == ["assistant"] == [turn["role"] for turn in pair["rejected"]]


def test_preflight_refuses_conversation_pairs_without_the_chat_template(hub, tmp_path):
    """A local pair file, which validate cannot look into: its conversations need the chat template."""
    pair = {"chosen": [{"role": "user", "content": "Scurvy?"}, {"role": "assistant", "content": "Vitamin C."}],
            "rejected": [{"role": "user", "content": "Scurvy?"}, {"role": "assistant", "content": "Vitamin D."}]}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(pair) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent("""\
        name: probe
        base_model: meta-llama/Meta-Llama-3-8B
        rl:
          algorithm: reward_model
          init_from: meta-llama/Meta-Llama-3-8B
          data: {path: pairs.jsonl, apply_chat_template: false}
          learning_rate: 5.0e-7
        """))
    result, _ = preflight(hub, recipe)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "rl.data.apply_chat_template: 'chosen' is a conversation: OpenRLHF reads it only through the chat template" in result.stderr


def test_preflight_names_the_line_of_a_planted_wrong_column(hub, tmp_path):
    # A dataset the catalog does not know: only the Hub can tell that the column is missing.
    hub.seed("dataset", "someone/own-traces", {"main": {"data/train-00000-of-00001.parquet": hub_fixtures.encoded(
        "x.parquet", [{"question": "What causes scurvy?", "answer": "Vitamin C deficiency."}])}})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent("""\
        name: probe
        base_model: Qwen/Qwen3-8B
        data:
          sources:
            - name: own
              hub: someone/own-traces
              fields: {prompt: question, response: response}
        """))
    result, report = preflight(hub, recipe)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "r.yaml:7:44: data.sources[0].fields.response: column 'response' not found; the rows have: answer, question" in result.stderr


def test_preflight_reports_gated_missing_and_wrong_revisions_at_their_lines(hub, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent("""\
        name: probe
        base_model: meta-llama/Meta-Llama-3-8B
        data:
          sources:
            - name: missing
              hub: someone/no-such-dataset
              fields: {prompt: question, response: answer}
            - name: pinned
              hub: TsinghuaC3I/UltraMedical
              revision: v9
              fields: {messages: conversations, role_key: from, content_key: value, roles: {human: user, gpt: assistant}}
        """))
    result, _ = preflight(hub, recipe, token="hf_other")  # a user who has not accepted Llama 3's licence
    assert result.returncode == 2
    err = result.stderr
    assert "r.yaml:2:13: base_model: meta-llama/Meta-Llama-3-8B is gated and your token has no access to it" in err
    assert "r.yaml:6:12: data.sources[0].hub: no dataset someone/no-such-dataset on the Hub" in err
    assert "r.yaml:9:12: data.sources[1].hub: TsinghuaC3I/UltraMedical has no revision 'v9'" in err
    result, _ = preflight(hub, recipe)  # the token that was granted access
    assert "base_model" not in result.stderr


def test_preflight_without_the_hub_checks_the_local_files_and_names_what_it_could_not(tmp_path):
    """It refused outright: a local recipe's mapping mistakes went unchecked (review)."""
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    (tmp_path / "r.yaml").write_text("name: local\nbase_model: Qwen/Qwen3-8B\n"
                                     "data:\n  sources:\n    - name: local\n"
                                     f"      path: {RECIPES / 'data' / 'quickstart' / 'medical_en.jsonl'}\n"
                                     "      fields: {prompt: question, response: nosuchcolumn}\n")
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "preflight", "r.yaml"],
                            env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"r\.yaml:\d+:\d+: data\.sources\[0\]\.fields.*nosuchcolumn", result.stderr), result.stderr
    assert re.search(r"r\.yaml:\d+:\d+: base_model: .* is on the Hub, which cannot be reached at http://127\.0\.0\.1:9: "
                     "not checked", result.stderr), result.stderr


@pytest.mark.parametrize(("rows", "mapping", "said"), [
    ([{"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": "An answer."}]} for i in range(3)],
     "{messages: conversations, role_key: from, content_key: value}", "turns with role 'gpt', 'human': map them"),
    ([{"messages": [{"role": "user", "content": f"Question {i}?"}]} for i in range(3)],
     "{messages: messages}", "the conversation does not end with an assistant turn"),
    ([{"conversations": [{"from": "user", "text": f"Question {i}?"}, {"from": "assistant", "text": "An answer."}]} for i in range(3)],
     "{messages: conversations, role_key: from}", "the prompt is empty"),
])
def test_preflight_and_inspect_refuse_a_mapping_whose_every_row_the_data_stage_drops(tmp_path, rows, mapping, said):
    """Found by review: preflight said "3 rows read and mapped" and inspect exited 0 on ShareGPT rows without `roles`
    (the sample showed [human] and [gpt] turns), on conversations ending in a user turn and on a wrong content_key,
    and the data stage then dropped every row: they built records without the reader's rejections."""
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "r.yaml").write_text("name: local\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n"
                                     f"data:\n  sources:\n    - name: local\n      path: rows.jsonl\n      fields: {mapping}\n"
                                     "sft: {}\n")
    for command in ("preflight", "inspect"):
        result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", command, "r.yaml"],
                                env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (command, result.stdout, result.stderr)
        assert re.search(r"r\.yaml:7:\d+: data\.sources\[0\]\.fields: none of the first 3 rows can be read: " + re.escape(said),
                         result.stderr), (command, result.stderr)


def test_inspect_without_the_hub_says_so_at_once(tmp_path):
    """Found by review: `inspect` did not ask whether the Hub could be reached, and the datasets library retried each
    Hub dataset five times with backoff: two minutes for UltraMedical's recipe, some twelve for II-Medical's, before
    exit 2. It now reports each Hub dataset as not checked, as preflight does, and still reads the local ones."""
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "inspect", str(RECIPES / "ultramedical-llama3-8b.yaml")],
                            env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "Retrying" not in result.stderr
    assert re.search(r"ultramedical-llama3-8b\.yaml:\d+:\d+: data\.sources\[0\]\.hub: TsinghuaC3I/UltraMedical is on the Hub, "
                     r"which cannot be reached at http://127\.0\.0\.1:9: not checked", result.stderr), result.stderr


READ_EVERY_SOURCE = """
import json, sys
from pathlib import Path
from medrecipe.blocks.readers import SourceReader
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe
from medrecipe.run import rl_prompts

loaded = load_recipe(sys.argv[1])
found = {}
for index, source in enumerate(loaded.recipe.data.sources):
    if source.hub:
        records = list(SourceReader(source.model_dump(mode="json"), index).run(None, 0, 1))
        found[source.name] = [record.metadata for record in records]
prompts = rl_prompts.write(loaded, Layout(Path(sys.argv[2]), loaded.recipe), log=lambda line: None)
print(json.dumps({"sources": found, "prompts": [json.loads(line) for line in prompts.read_text().splitlines()]}))
"""


def test_the_data_and_rl_stages_read_every_hub_dataset_of_ii_medical(hub, tmp_path):
    """The data stage's reader (whole files of `data_files`, streamed configurations) and the RL prompt writer on the
    real layouts, through the real `datasets` and huggingface_hub clients."""
    env = {**os.environ, **hub.client_env(TOKEN, hub.home)}
    result = subprocess.run([sys.executable, "-c", READ_EVERY_SOURCE, str(RECIPES / "ii-medical-8b-1706.yaml"), str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    read = json.loads(result.stdout.splitlines()[-1])
    sources = read["sources"]
    assert {name: len(records) for name, records in sources.items()} == {name: 2 for name in sources}
    # MedReason's PubMedQA row answers "The final decision is: yes. <long answer>" (its dataset.py): option A, Yes
    assert [r["answer"] for r in sources["medreason-prompts"]] == ["A", "A"]
    for name in ("am-deepseek-r1", "am-qwen3-instruction-following"):
        assert all("<answer>" not in r["messages"][-1]["content"] for r in sources[name])
    assert [r["answer"] for r in sources["medmcqa-prompts"]] == ["C", "A"]  # cop, 0-based
    assert [r["answer"] for r in sources["medqa-prompts"]] == ["C", "A"]
    assert read["prompts"][0] == {
        "prompt": [{"role": "user", "content": "Scurvy is caused by deficiency of which vitamin?\n\nA. Vitamin C\nB. Vitamin D\n"
                    "C. Vitamin K\nD. Vitamin B12\n\nPlease reason step-by-step, and put your final answer within \\boxed{}."}],
        "label": read["prompts"][0]["label"], "id": "rl-prompts/0"}
    assert [json.loads(row["label"])["answer"] for row in read["prompts"]] == ["A", "B"]


def test_preflight_checks_lengths_against_the_config_of_a_model_the_catalog_does_not_know(hub, tmp_path):
    """A fork onto Phi-3-mini-4k trained 16,378-token sequences on its 4,096 positions: validate said ok, and preflight
    only saw that config.json existed (review). validate now says the limits are unknown; preflight reads them."""
    hub.seed("model", "someone/tiny-chat-600", {"main": {"tokenizer_config.json": b"{}", "config.json": json.dumps(
        {"max_position_embeddings": 600, "num_attention_heads": 8, "num_key_value_heads": 8}).encode()}})
    recipe = tmp_path / "fork.yaml"
    recipe.write_text(f"extends: {RECIPES / 'quickstart.yaml'}\nname: fork\nbase_model: someone/tiny-chat-600\nhub: {{reproduces: ~}}\n")
    env = {**os.environ, **hub.client_env(TOKEN, hub.home)}
    validated = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "validate", str(recipe)], env=env,
                               capture_output=True, text=True, timeout=120)
    assert validated.returncode == 0, validated.stderr
    assert ("fork.yaml:3:13: base_model: medrecipe does not know someone/tiny-chat-600's positions and attention heads"
            in validated.stderr), validated.stderr
    result, report = preflight(hub, recipe, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # quickstart's RL prompt and response (256 + 512) pass its sequence_len (512) and the eval context: RL's does not fit
    assert "rl.max_response_length: prompt 256 + response 512 = 768 tokens exceed someone/tiny-chat-600's 600 positions" \
        in result.stderr, result.stderr
    assert [check["what"] for check in report["checks"] if not check["ok"]] == ["model limits"]


def test_preflight_reads_a_local_benchmark_copy_by_the_split_evaluated(tmp_path):
    """Found by review: preflight read a local copy of openlifescienceai/medmcqa from its first file, the test split
    (cop -1, no answer), and called its rows unreadable; a copy without the split evaluated passed unremarked, and
    the data stage then stopped on it."""
    from medrecipe.recipe import load_recipe
    from medrecipe.run.preflight import read_samples

    for path, content in hub_fixtures.fixture("openlifescienceai/medmcqa")["branches"]["main"].items():
        (tmp_path / "medmcqa" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "medmcqa" / path).write_bytes(hub_fixtures.encoded(path, content))
    copy = f"eval.benchmarks=[{{name: medmcqa, path: {tmp_path / 'medmcqa'}, split: %s}}]"
    report = read_samples(load_recipe(RECIPES / "quickstart.yaml", [copy % "validation"]))
    assert report.problems == []
    [sample] = [sample for sample in report.samples if sample.kind == "eval_prompt"]
    assert hub_fixtures.rows("openlifescienceai/medmcqa", "data/validation-00000-of-00001.parquet")[0]["question"] in sample.text
    report = read_samples(load_recipe(RECIPES / "quickstart.yaml", [copy % "dev2"]))
    assert ["has no 'dev2' split" in str(problem) for problem in report.problems] == [True]


def test_preflight_places_a_refused_local_benchmark_copy_at_its_path(tmp_path):
    """A local copy of the whole qiaojin/PubMedQA repository (its card declares three configurations, evaluation reads
    'default') is refused at the recipe's path line, with the hint, as every other preflight problem is."""
    from medrecipe.recipe import load_recipe
    from medrecipe.run.preflight import read_samples

    for path, content in hub_fixtures.fixture("qiaojin/PubMedQA")["branches"]["main"].items():
        (tmp_path / "pubmedqa" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pubmedqa" / path).write_bytes(hub_fixtures.encoded(path, content))
    report = read_samples(load_recipe(RECIPES / "quickstart.yaml", [f"eval.benchmarks=[{{name: pubmedqa, path: {tmp_path / 'pubmedqa'}}}]"]))
    [problem] = report.problems
    assert problem.path == "eval.benchmarks[0].path" and "pqa_artificial, pqa_labeled, pqa_unlabeled" in str(problem)
    assert "point path at the folder of the configuration evaluated" in str(problem)
