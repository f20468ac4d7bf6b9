"""What a generate step's records hold and how the steps after it treat them, against the OpenAI-compatible stub on
127.0.0.1: the endpoint's reasoning kept and laid out, a refused prompt removed with its reason, curation judging the
prompt as the source gave it, records of one id each answered once across a resume, one prompt per representative.
Each was found by review."""

from __future__ import annotations

import asyncio
import gzip
import json
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from medrecipe.compile.layout import Layout
from medrecipe.recipe import RecipeError, load_recipe

from .generate_runs import HoldingServer, killed_mid_request, rerun, write_generate
from .openai_stub import StubServer


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def output_rows(tmp_path, recipe: str) -> tuple[list[dict], object]:
    work = Layout((tmp_path / "build").resolve(), load_recipe(tmp_path / recipe).recipe).work_dir("data")
    return [r for f in sorted((work / "output").glob("*.parquet")) for r in pq.read_table(f).to_pylist()], work


def run(tmp_path, recipe: str):
    from .conftest import run_cli

    return run_cli("run", str(tmp_path / recipe), "--stage", "data", "--out", str(tmp_path / "build"))


@pytest.mark.parametrize("reasoning", ["reasoning_content", "reasoning", "unspaced"])
def test_the_endpoints_reasoning_is_kept_in_a_think_block_laid_out_as_a_sources(tmp_path, reasoning):
    """vLLM's reasoning parser and DeepSeek's API return the reasoning as `reasoning_content`, OpenRouter as
    `reasoning`: the records kept only the answer. A think block in the content is laid out as a source row's is."""
    write_jsonl(tmp_path / "questions.jsonl", [{"q": "Which option is right?", "options": ["first", "second"], "answer": "A"}])
    with StubServer() as server:
        server.reasoning = reasoning
        write_generate(tmp_path, server.url)
        result = run(tmp_path, "gen.yaml")
    assert result.code == 0, result.err + result.out
    [row] = output_rows(tmp_path, "gen.yaml")[0]
    assert row["messages"][-1]["content"] == "<think>\nLet me think about call 1.\n</think>\n\nThe answer is \\boxed{A}."


def test_an_endpoint_on_another_host_that_takes_no_key_is_asked(tmp_path, monkeypatch):
    """vLLM on another node, started without --api-key: datatrove's client for any host but localhost refused to be
    built without a key, and every task failed ("Missing credentials"). 127.0.0.2 is such a host to datatrove."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    write_jsonl(tmp_path / "questions.jsonl", [{"q": "Which option is right?", "options": ["first", "second"], "answer": "A"}])
    with StubServer(host="127.0.0.2") as server:
        write_generate(tmp_path, server.url)
        result = run(tmp_path, "gen.yaml")
    assert result.code == 0, result.err + result.out
    assert len(output_rows(tmp_path, "gen.yaml")[0]) == 1 and server.requests


EXAM = [{"qid": "h1", "stem": "Which electrolyte disturbance classically produces peaked T waves on the electrocardiogram?",
         "choices": ["Hypokalemia", "Hyperkalemia", "Hyponatremia", "Hypercalcemia"], "key": 2}]
TOO_LONG = " ".join(["TOO LONG"] * 20)
NEAR_COPY = "Wich electrolyte disturbance clasically produces peaked T wave on the electrocardiograms?"  # no shared 8-gram


def test_steps_after_generate_judge_the_prompt_as_the_source_gave_it_and_a_refused_prompt_is_removed(tmp_path):
    """The generate step's instruction, appended to the prompt it sends (and trained on), made a near-copy of a
    benchmark question escape fuzzy decontamination (rapidfuzz ratio 97.8 without it, 71.3 with it) and a one-word
    prompt pass min_prompt_words. A prompt the endpoint refuses (400, too long) failed the stage on every rerun."""
    write_jsonl(tmp_path / "exam.jsonl", EXAM)
    write_jsonl(tmp_path / "prompts.jsonl", [{"q": NEAR_COPY}, {"q": "Hyperkalemia?"}, {"q": TOO_LONG},
                                             {"q": "What does a serum potassium of 7.1 mmol/L call for first?"}])
    with StubServer() as server:
        server.refused = lambda prompt: prompt.startswith("TOO LONG")
        (tmp_path / "gen.yaml").write_text(f"""
name: after-generate
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: generated, path: prompts.jsonl, kind: prompts, fields: {{prompt: q}}}}
  steps:
    - {{type: generate, model: stub, endpoint: "{server.url}", samples: 1, max_samples: 1, grader: none}}
    - {{type: min_prompt_words, more_than: 3}}
    - {{type: decontaminate_fuzzy, threshold: 80}}
eval:
  sampling: {{max_new_tokens: 512}}
  benchmarks:
    - {{name: hospital_exam, path: exam.jsonl}}
  custom_benchmarks:
    - name: hospital_exam
      columns: {{id: qid, question: stem, options: choices, gold: key}}
      zero_based: false
compute: {{tasks: 1, workers: 1}}
""")
        result = run(tmp_path, "gen.yaml")
        asked = len(server.requests)
        again = run(tmp_path, "gen.yaml")  # a rerun finds the stage done
    assert result.code == 0 and again.code == 0, result.err + result.out
    assert asked == 4 and len(server.requests) == 4
    rows, work = output_rows(tmp_path, "gen.yaml")
    [kept] = rows
    assert kept["messages"][0]["content"].startswith("What does a serum potassium of 7.1 mmol/L call for first?\n\nPlease reason")
    removed = {e["metadata"].get("source_prompt") or e["metadata"]["messages"][0]["content"]: e["metadata"]["excluded"]["reason"]
               for f in sorted(work.glob("excluded/*/*.jsonl.gz")) for e in map(json.loads, gzip.open(f, "rt"))}
    assert removed == {NEAR_COPY: "contaminated", "Hyperkalemia?": "short_prompt", TOO_LONG: "refused_request"}
    stats = json.loads((work / "stats.json").read_text())
    generate = next(s for s in stats["steps"] if s["type"] == "generate")
    assert (generate["in"], generate["out"], generate["removed_reasons"]) == (4, 3, {"refused_request": 1})


class _NamingItsPrompt(HoldingServer):
    """An answer that begins with its prompt's first word: the answer a record holds says which prompt it answered."""

    def answer(self, prompt: str) -> str:
        return f"For {prompt[:4]}: {super().answer(prompt)}"


def test_records_sharing_an_id_are_each_answered_once_across_a_resume(tmp_path):
    """Two prompts with one id (a source's id column repeats): killed while one was in flight, the rerun never asked it
    (datatrove resumes by document id) and wrote the other's answer twice, with clean stats."""
    write_jsonl(tmp_path / "questions.jsonl", [{"id": 7, "q": f"{word} question: which option fits?", "options": ["first", "second"],
                                                "answer": "A"} for word in ("SLOW", "FAST")])
    with _NamingItsPrompt(holds=lambda prompt: prompt.startswith("SLOW")) as server:
        write_generate(tmp_path, server.url, fields=", id: id")
        killed_mid_request(tmp_path, server, in_flight=lambda: len(server.requests) >= 2)  # FAST answered, SLOW held
        resumed = rerun(tmp_path)
        assert resumed.returncode == 0, resumed.stderr
    asked = [request["messages"][-1]["content"][:4] for request in server.requests]
    assert sorted(asked) == ["FAST", "SLOW", "SLOW"]  # the one in flight is asked again, the answered one is not
    rows, _ = output_rows(tmp_path, "gen.yaml")
    assert sorted((row["id"], row["messages"][-1]["content"][:8]) for row in rows) == [
        ("questions/7#0", "For FAST"), ("questions/7#0", "For SLOW")]


def test_a_clusters_representatives_are_different_prompts():
    """Records sharing a prompt share its vector: each was a representative, and a cluster's vote was one prompt's
    label asked `nearest` times. Two different prompts exactly as far from their centre are two representatives
    (found by review: a cluster of two lost one)."""
    from medrecipe.blocks.domain import nearest_per_cluster

    labels = np.array([0, 0, 0, 0, 1, 1])
    distances = np.array([0.1, 0.1, 0.1, 0.3, 0.2, 0.2], dtype=np.float32)
    vectors = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32)  # rows 0-2: one prompt
    chosen = nearest_per_cluster(labels, distances, vectors, 3)
    assert {cluster: rows.tolist() for cluster, rows in chosen.items()} == {0: [0, 3], 1: [4, 5]}
    # two prompts read twice (two sources carry them), A, B, A, B, all as far from the centre: one record of each
    interleaved = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    chosen = nearest_per_cluster(np.zeros(4, dtype=np.int64), np.full(4, 0.5, dtype=np.float32), interleaved, 3)
    assert sorted(chosen[0].tolist()) == [0, 1]
    # copies assigned in different chunks of the assignment can differ in their distance's last bits
    chosen = nearest_per_cluster(np.zeros(3, dtype=np.int64), np.array([0.1, 0.2, 0.10000001], dtype=np.float32),
                                 interleaved[[0, 1, 0]], 3)
    assert chosen[0].tolist() == [0, 1]


def test_a_second_generate_step_on_prompts_already_answered_is_refused(write):
    """It failed after all its requests (a record has one generate step's responses), or with keep: first_correct
    before it, replaced the first step's responses and sent the instruction twice."""
    write("q.jsonl", '{"q": "Which?", "answer": "A"}\n')
    path = write("r.yaml", """
name: two-generates
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {name: questions, path: q.jsonl, kind: prompts, fields: {prompt: q, answer: answer}}
  steps:
    - {type: generate, name: first, model: stub, endpoint: "http://127.0.0.1:9/v1", keep: first_correct}
    - {type: generate, name: second, model: stub, endpoint: "http://127.0.0.1:9/v1"}
""")
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    assert any(problem.path == "data.steps[1].sources" and "questions already got responses from an earlier generate step"
               in problem.message for problem in raised.value.problems), raised.value.problems


def test_the_endpoint_client_leaves_retrying_to_datatrove():
    """datatrove retries a failed request six times with backoff; the OpenAI client's own two retries made an endpoint
    that never answered hold one request some three hours (600 s x 3 x 6 and the backoff)."""
    from datatrove.pipeline.inference.run_inference import InferenceConfig

    from medrecipe.blocks.llm import OpenAIEndpoint

    async def client():  # built inside the runner's event loop, as datatrove builds it
        config = InferenceConfig(server_type="endpoint", model_name_or_path="stub", endpoint_url="https://api.example.com/v1",
                                 api_key="sk-test")
        return OpenAIEndpoint(config, 0, "https://api.example.com/v1").client

    assert asyncio.run(client()).max_retries == 0


def test_a_refusal_is_told_by_the_errors_own_text_not_the_prompt_it_quotes():
    """datatrove tells a 400 by "BadRequestError" anywhere in the error, whose text quotes the request: a prompt that
    mentions BadRequestError, sent to an endpoint that was down, was removed as refused (found by review)."""
    from datatrove.pipeline.inference.types import InferenceError

    from medrecipe.blocks.llm import Runner

    payload = {"messages": [{"role": "user", "content": "Our lab API raises BadRequestError on potassium 7.1. Why?"}]}
    down = InferenceError(None, "Failed to process request after 6 attempts", payload=payload)
    refused = InferenceError(None, "BadRequestError: Error code: 400 - context length exceeded", payload=payload)
    replayed = InferenceError(None, str(refused), payload=payload)  # as datatrove's request cache gives it back
    assert [Runner._is_bad_request_error(error) for error in (down, refused, replayed)] == [False, True, True]
    assert not Runner._is_bad_request_error(str(down))  # as datatrove's cache stores it: not a refusal to replay


class _AnsweringOutOfOrder(StubServer):
    """Answers each generation after a random delay, so that answers come in another order than asked."""

    def answer(self, prompt: str) -> str:
        import random

        time.sleep(random.uniform(0.0, 0.05))
        return super().answer(prompt)


def test_records_after_an_llm_step_are_in_reading_order_whatever_order_the_answers_came_in(tmp_path):
    """The runner writes each record as its answer comes: two runs of one recipe gave the same records in different
    orders, and SFT's seeded shuffle other batches (found by review)."""
    write_jsonl(tmp_path / "questions.jsonl", [{"q": f"Which option is right for question {i}?", "options": ["a", "b"],
                                                "answer": "A"} for i in range(40)])
    with _AnsweringOutOfOrder() as server:
        write_generate(tmp_path, server.url, options=", max_concurrent_requests: 16")
        result = run(tmp_path, "gen.yaml")
    assert result.code == 0, result.err + result.out
    rows, _ = output_rows(tmp_path, "gen.yaml")
    assert [row["messages"][0]["content"].split("?")[0][-2:].strip() for row in rows] == [str(i) for i in range(40)]


def test_a_failed_request_whose_prompt_quotes_badrequesterror_is_asked_again_on_the_rerun(tmp_path):
    """datatrove's cache stored a failure as a refusal when the request it quotes named BadRequestError, and replayed
    it: every rerun failed without asking the endpoint (found by review)."""
    write_jsonl(tmp_path / "questions.jsonl", [{"q": "Our lab API raises BadRequestError on potassium 7.1. Why?",
                                                "options": ["a", "b"], "answer": "A"}])
    with StubServer() as server:
        server.not_found = 1  # the first request fails, with an error no retry helps
        write_generate(tmp_path, server.url)
        first = run(tmp_path, "gen.yaml")
        again = run(tmp_path, "gen.yaml")
    assert first.code == 2 and "NotFoundError" in first.err, first.err + first.out
    assert again.code == 0, again.err + again.out
    assert len(server.requests) == 2 and len(output_rows(tmp_path, "gen.yaml")[0]) == 1
