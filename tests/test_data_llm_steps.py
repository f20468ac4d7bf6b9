"""The LLM steps (rejection-sampled generation, judge filter, LLM domain classifier) through datatrove's
InferenceRunner, against an OpenAI-compatible server on 127.0.0.1 that the test starts and stops."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

from .generate_runs import HoldingServer, killed_mid_request, rerun, write_generate
from .openai_stub import StubServer

RECIPE = """
name: llm-steps
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: questions, path: questions.jsonl, kind: prompts, fields: {{prompt: q, options: options, answer: answer}}}}
    - {{name: answers, path: answers.jsonl, fields: {{prompt: q, response: r, answer: ref}}}}
    - {{name: traces, path: traces.jsonl, fields: {{prompt: q, response: r}}}}
  steps:
    - type: generate
      sources: [questions]
      model: stub
      endpoint: {url}
      api_key_env: STUB_KEY
      samples: 2
      max_samples: 4
      grader: auto
    - type: judge_filter
      sources: [answers]
      model: stub
      endpoint: {url}
      api_key_env: STUB_KEY
    - type: domain_filter
      sources: [traces]
      embedding: {{batch_size: 16}}
      kmeans: {{clusters: 2, iterations: 10}}
      nearest: 2
      classifier: {{backend: llm, model: stub, endpoint: {url}, api_key_env: STUB_KEY, labels: [Medical, Mathematics],
                    synonyms: {{Maths: Mathematics}}}}
      keep: [Medical]
compute: {{tasks: 2}}
"""

# The domain filter alone; `synonyms` is empty or ", synonyms: {...}", `accepted` its max_unlabeled_clusters.
DOMAIN_ONLY = """
name: llm-domain
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: traces, path: traces.jsonl, fields: {{prompt: q, response: r}}}}
  steps:
    - type: domain_filter
      embedding: {{batch_size: 16}}
      kmeans: {{clusters: 2, iterations: 10}}
      nearest: 2
      classifier: {{backend: llm, model: stub, endpoint: {url}, api_key_env: STUB_KEY, labels: [Medical, Mathematics]{synonyms}}}
      keep: [Medical]
      max_unlabeled_clusters: {accepted}
compute: {{tasks: 2}}
"""
MATHS_SYNONYM = ", synonyms: {Maths: Mathematics}"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_traces(path):
    medical = [f"A patient aged {40 + i} presents with chest pain and fever, what is the diagnosis number {i}?" for i in range(6)]
    maths = [f"Compute the sum of the integers from one to {10 + i} and explain each algebra step" for i in range(6)]
    write_jsonl(path, [{"q": q, "r": "<think>\nok\n</think>\n\ndone"} for q in medical + maths])


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory):
    from .conftest import run_cli

    tmp_path = tmp_path_factory.mktemp("llm")
    os.environ["STUB_KEY"] = "not-a-real-key"
    write_jsonl(tmp_path / "questions.jsonl", [
        {"q": f"[wrong={wrong}] Which option is right for question {index}?", "options": ["first", "second"], "answer": "A"}
        for index, wrong in enumerate((0, 1, 3, 9))
    ])
    write_jsonl(tmp_path / "answers.jsonl", [
        {"q": f"Explain treatment number {i} of a patient in detail", "r": ("GOOD answer " if i % 2 else "weak answer ") + str(i),
         "ref": "reference"} for i in range(6)
    ])
    write_traces(tmp_path / "traces.jsonl")
    with StubServer(key="not-a-real-key") as server:
        recipe = tmp_path / "llm.yaml"
        recipe.write_text(RECIPE.format(url=server.url))
        out = tmp_path / "build"
        result = run_cli("run", str(recipe), "--stage", "data", "--out", str(out), "--workers", "2")
        assert result.code == 0, result.err + result.out
        work = Layout(out.resolve(), load_recipe(recipe).recipe).work_dir("data")
        rows = [r for f in sorted((work / "output").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
        yield server, work, rows
    del os.environ["STUB_KEY"]


def test_generation_keeps_only_correct_answers_and_resamples_when_none_is(llm_run):
    server, work, rows = llm_run
    generated = sorted(r["id"] for r in rows if r["source"] == "questions")
    # wrong=0: both first samples right; wrong=1: one of two; wrong=3: two more drawn, one right; wrong=9: none.
    assert generated == ["questions/0#0", "questions/0#1", "questions/1#0", "questions/2#0"]
    generation_calls = {prompt.split("]")[0]: n for prompt, n in server.calls.items()}
    assert generation_calls == {"[wrong=0": 2, "[wrong=1": 2, "[wrong=3": 4, "[wrong=9": 4}
    for row in rows:
        if row["source"] == "questions":
            assert row["messages"][-1]["content"].endswith("\\boxed{A}.")
            assert row["messages"][0]["content"].endswith("put your final answer within \\boxed{}.")
    stats = json.loads((work / "stats.json").read_text())
    generate = next(s for s in stats["steps"] if s["type"] == "generate")
    # 4 prompts in, 4 records out (2 from the first prompt), and the prompt with no correct answer is removed
    assert (generate["in"], generate["out"], generate["removed"]) == (4, 4, 1)
    assert generate["removed_reasons"] == {"no_correct_response": 1}
    excluded = [json.loads(line) for f in (work / "excluded" / "generate").glob("*.jsonl.gz")
                for line in gzip.open(f, "rt")]
    assert [e["metadata"]["excluded"] for e in excluded] == [
        {"step": "generate", "reason": "no_correct_response", "sampled": 4, "finish_reasons": ["stop"] * 4}]
    assert excluded[0]["metadata"]["messages"][0]["content"].startswith("[wrong=9]")
    # each sample of a prompt is its own request (its own seed): datatrove's request cache tells them apart
    seeds = sorted(r["seed"] for r in server.requests if r["messages"][-1]["content"].startswith("[wrong=3]"))
    assert seeds == [42, 43, 44, 45]


def test_each_generated_response_has_its_own_place_and_near_dedup_keeps_the_distinct_ones(tmp_path):
    """Found by review: a prompt's kept responses shared its place in reading order, by which near_dedup decides, so
    near_dedup after generate (II-Medical's order of steps) removed every response of a prompt as a duplicate of
    itself. Here prompt 0's responses are A, B and A again, prompt 1's one C: only the second A goes."""
    from datatrove.data import Document

    from medrecipe.blocks.llm import KeepGenerations
    from medrecipe.blocks.minhash import MinHashCollector, RemoveDuplicates, ResolveDuplicates
    from medrecipe.blocks.record import order_key

    a = "The patient has community acquired pneumonia so start amoxicillin and review the chest film in two days time"
    b = "Iron deficiency anaemia is microcytic so check ferritin first then look for a source of chronic blood loss"
    c = "Koplik spots are seen in measles during the prodrome before the rash appears on the face"

    def prompt(row, texts):
        return Document(text="", id=f"s/{row}", metadata={
            "source": "s", "order": order_key(0, 0, row), "messages": [{"role": "user", "content": f"q{row}"}], "options": {},
            "answer": None, "finish_reason": "", "extra": {},
            "rollout_results": [{"prompt": f"q{row}", "responses": [{"text": t, "correct": True, "finish_reason": "stop"}
                                                                    for t in texts]}]})

    records = list(KeepGenerations("generate", "all_correct", "choice").run(iter([prompt(0, [a, b, a]), prompt(1, [c])])))
    assert len({r.metadata["order"] for r in records}) == 4
    collected = list(MinHashCollector("dedup", str(tmp_path / "side"), "response", 4, 128).run(iter(records)))
    list(ResolveDuplicates("dedup", str(tmp_path / "side"), str(tmp_path / "decision.json"), 0.7, True).run())
    kept = [r.id for r in RemoveDuplicates("dedup", str(tmp_path / "decision.json")).run(iter(collected))]
    assert kept == ["s/0#0", "s/0#1", "s/1#0"]


def test_judge_keeps_high_scores(llm_run):
    _, work, rows = llm_run
    kept = sorted(r["id"] for r in rows if r["source"] == "answers")
    assert kept == ["answers/1", "answers/3", "answers/5"]


def test_a_judge_score_is_read_from_the_verdict_after_its_reasoning_and_on_its_scale():
    """Found by review: the last "score n" anywhere was read, reasoning and all."""
    from medrecipe.blocks.llm import judge_score

    scored = {"Score: 9": 9.0, "**Score:** 7.5": 7.5, "Score: 8/10": 8.0,
              "<think>A score: 2 at first glance.</think>\nScore: 9": 9.0,
              "It matches, a score: 2 would be harsh.\n</think>\n\nScore: 9": 9.0}  # a template-opened reasoning
    for verdict, score in scored.items():
        assert judge_score(verdict, 10.0) == score, verdict
    for verdict in ("<think>Comparing with the reference, a score: 9 seems", "Score: 3. A perfect answer gets Score: 10",
                    "Score: 72", "<think>Score: 9</think>\nThe answer is incomplete.", "No score."):
        assert judge_score(verdict, 10.0) is None, verdict


def test_llm_classifier_votes_clusters(llm_run):
    server, _, rows = llm_run
    kept = [r for r in rows if r["source"] == "traces"]
    assert len(kept) == 6 and all("patient" in r["messages"][0]["content"] for r in kept)
    assert sum(1 for r in server.requests if r["messages"][-1]["content"].startswith("Classify")) == 4  # 2 clusters x 2 nearest


def test_a_cluster_whose_answers_name_no_label_stops_the_stage_with_its_prompts(llm_run, tmp_path):
    server, _, _ = llm_run
    write_traces(tmp_path / "traces.jsonl")
    (tmp_path / "unlabeled.yaml").write_text(DOMAIN_ONLY.format(url=server.url, synonyms="", accepted=0))
    # in its own process, as a user runs it: datatrove's log (and any traceback) goes to the stage's log file
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", "unlabeled.yaml", "--stage", "data", "--out",
                             "build", "--workers", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert "1 of 2 clusters got no valid label (the recipe accepts 0)" in result.stderr
    listing = next((tmp_path / "build").rglob("decisions/domain_filter-unlabeled.json"))
    representatives = json.loads(listing.read_text())["clusters"][0]["representatives"]
    assert [r["answer"] for r in representatives] == ["Maths.", "Maths."]
    assert all("algebra" in r["prompt"] for r in representatives)


def test_the_api_key_is_written_nowhere(llm_run):
    _, work, _ = llm_run
    for path in work.rglob("*"):
        if path.is_file():
            assert b"not-a-real-key" not in path.read_bytes(), path


def test_every_request_carries_the_key_to_the_api_paths(llm_run):
    server, _, _ = llm_run
    assert {(method, path) for method, path, _ in server.seen} == {("GET", "/v1/models"), ("POST", "/v1/chat/completions")}
    assert {authorization for _, _, authorization in server.seen} == {"Bearer not-a-real-key"}


HOSTED = """
name: llm-hosted
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: answers, path: answers.jsonl, fields: {{prompt: q, response: r, answer: ref}}}}
  steps:
    - {{type: judge_filter, model: stub, endpoint: {url}, api_key_env: STUB_KEY}}
compute: {{tasks: 1}}
"""


def _judge_at(tmp_path, host: str, key: str, *options: str):
    """A judge_filter stage against a stub on `host` that takes the key `key` (the environment holds STUB_KEY)."""
    from .conftest import run_cli

    write_jsonl(tmp_path / "answers.jsonl", [{"q": f"Treat patient {i}?", "r": ("GOOD " if i % 2 else "weak ") + str(i),
                                              "ref": "reference"} for i in range(4)])
    with StubServer(host=host, key=key) as server:
        (tmp_path / "hosted.yaml").write_text(HOSTED.format(url=server.url))
        result = run_cli("run", str(tmp_path / "hosted.yaml"), "--stage", "data", "--out", str(tmp_path / "build"), *options)
    return server, result


def test_a_hosted_api_is_asked_at_its_base_url_with_the_key(tmp_path, monkeypatch):
    # 127.0.0.2 is loopback, but not localhost to datatrove, which speaks to it as to a hosted API: through the OpenAI
    # client, which datatrove 0.10.1 gave the URL without its /v1 (requests went to /chat/completions)
    monkeypatch.setenv("STUB_KEY", "sk-hosted")
    server, result = _judge_at(tmp_path, "127.0.0.2", "sk-hosted")
    assert result.code == 0, result.err + result.out
    assert ("POST", "/v1/chat/completions", "Bearer sk-hosted") in server.seen
    assert all(path.startswith("/v1/") and authorization == "Bearer sk-hosted" for _, path, authorization in server.seen)
    stats = json.loads(next((tmp_path / "build").glob("data/*/stats.json")).read_text())
    assert stats["output"]["records"] == 2  # the two GOOD answers


def test_a_refused_key_stops_the_stage_with_the_reason(tmp_path, monkeypatch):
    """The stub quotes the key it refuses back, as LiteLLM's proxy does: it reached the build's task log (found by
    review), which datatrove writes beside the work."""
    monkeypatch.setenv("STUB_KEY", "sk-wrong-but-secret")
    server, result = _judge_at(tmp_path, "127.0.0.2", "sk-right")
    assert result.code == 2, result.err + result.out
    assert "refused the key" in result.err and "sk-wrong-but-secret" not in result.err + result.out
    assert not [seen for seen in server.seen if seen[0] == "POST"]  # nothing was sent to be judged
    written = [path for path in (tmp_path / "build").rglob("*") if path.is_file()]
    assert any(path.name.startswith("task_") for path in written)
    assert not [path for path in written if b"sk-wrong-but-secret" in path.read_bytes()]


def test_a_key_exported_after_an_earlier_run_in_this_process_reaches_the_workers(tmp_path, monkeypatch):
    """The data stage's workers fork from a server process: one that an earlier run in this process started kept that
    run's environment, so a key exported since never reached them (found in CI, where test order decided it)."""
    for key in ("sk-first", "sk-second"):
        monkeypatch.setenv("STUB_KEY", key)
        (tmp_path / key).mkdir()
        # two tasks in two workers: one task runs in this process, where the key always was
        server, result = _judge_at(tmp_path / key, "127.0.0.2", key, "--set", "compute.tasks=2", "--workers", "2")
        assert result.code == 0, result.err + result.out
        assert ("POST", "/v1/chat/completions", f"Bearer {key}") in server.seen


def test_a_generation_killed_mid_prompt_resumes_with_each_sample_its_own(tmp_path):
    """Killed while the third sample of a prompt is in flight, the rerun replays the two finished samples from
    datatrove's request cache and asks only for the third: three different responses, as in an unbroken run."""
    write_jsonl(tmp_path / "questions.jsonl", [{"q": "[wrong=0] Which option is right?", "options": ["first", "second"],
                                                "answer": "A"}])
    with HoldingServer(holds=lambda prompt: sum(server.calls.values()) > 2) as server:  # answers two, holds the third
        write_generate(tmp_path, server.url, samples=3)
        killed_mid_request(tmp_path, server, in_flight=lambda: sum(server.calls.values()) >= 3)
        assert sum(server.calls.values()) == 3
        resumed = rerun(tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert sum(server.calls.values()) == 4  # only the unfinished sample is asked again
    work = Layout((tmp_path / "build").resolve(), load_recipe(tmp_path / "gen.yaml").recipe).work_dir("data")
    responses = [r["messages"][-1]["content"] for f in sorted((work / "output").glob("*.parquet"))
                 for r in pq.read_table(f).to_pylist()]
    assert len(responses) == 3 and len(set(responses)) == 3


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_a_local_model_needs_vllm_only_where_the_tasks_run(tmp_path, cli, monkeypatch):
    """A generate step without an endpoint starts vLLM where its tasks run: on this machine with the local executor,
    which refuses to start without it; elsewhere with Slurm, and in a dry run, which run nothing here."""
    write_jsonl(tmp_path / "questions.jsonl", [{"q": "Which option is right?", "options": ["first", "second"], "answer": "A"}])
    recipe = tmp_path / "local.yaml"
    recipe.write_text("""
name: local-model
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {name: questions, path: questions.jsonl, kind: prompts, fields: {prompt: q, options: options, answer: answer}}
  steps:
    - {type: generate, model: Qwen/Qwen3-8B, samples: 2}
""")
    out = str(tmp_path / "build")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for here in ([], ["--executor", "ray"]):  # with no Ray address, Ray starts here and runs the tasks here
        refused = cli("run", str(recipe), "--stage", "data", "--out", out, *here)
        assert refused.code == 2 and "runs Qwen/Qwen3-8B on a local vLLM server, and vLLM is not installed here" in refused.err
    for executor in ("local", "slurm"):
        planned = cli("run", str(recipe), "--stage", "data", "--out", out, "--executor", executor, "--dry-run")
        assert planned.code == 0, planned.err
        assert f"tasks, {executor}): " in planned.out and "InferenceStep" in planned.out


def test_a_brief_outage_of_the_endpoint_is_retried_with_the_same_request(tmp_path, monkeypatch):
    """Found by review: datatrove takes `model` out of the request it sends through the OpenAI client, so its retry
    after a 500 (a rate limit, a dropped connection) sent the request without it: KeyError 'model' failed the stage."""
    from .conftest import run_cli

    monkeypatch.setenv("STUB_KEY", "sk-hosted")
    write_jsonl(tmp_path / "answers.jsonl", [{"q": f"Treat patient {i}?", "r": ("GOOD " if i % 2 else "weak ") + str(i),
                                              "ref": "reference"} for i in range(4)])
    with StubServer(host="127.0.0.2", key="sk-hosted") as server:
        server.failing = 1
        (tmp_path / "hosted.yaml").write_text(HOSTED.format(url=server.url))
        result = run_cli("run", str(tmp_path / "hosted.yaml"), "--stage", "data", "--out", str(tmp_path / "build"))
    assert result.code == 0, result.err + result.out
    assert len(server.requests) == 5 and all(request["model"] == "stub" for request in server.requests)
    assert json.loads(next((tmp_path / "build").glob("data/*/stats.json")).read_text())["output"]["records"] == 2


def test_a_prompt_the_endpoint_refuses_counts_as_unlabeled_and_the_step_says_how_to_ask_again(tmp_path, monkeypatch):
    """Found by review: a 400 for one cluster's prompts (too long for the model) failed the stage on every rerun,
    though max_unlabeled_clusters said failed requests count as unlabeled; and the step's advice, "rerun once the
    endpoint answers", asked nothing again (the answers are kept)."""
    from .conftest import run_cli

    monkeypatch.setenv("STUB_KEY", "not-a-real-key")
    write_traces(tmp_path / "traces.jsonl")
    with StubServer(key="not-a-real-key") as server:
        server.refused = lambda prompt: "algebra" in prompt
        for accepted in (1, 0):
            (tmp_path / f"r{accepted}.yaml").write_text(DOMAIN_ONLY.format(url=server.url, synonyms=MATHS_SYNONYM, accepted=accepted))
            result = run_cli("run", str(tmp_path / f"r{accepted}.yaml"), "--stage", "data", "--out", str(tmp_path / f"b{accepted}"))
            listing = next((tmp_path / f"b{accepted}").rglob("decisions/domain_filter-unlabeled.json"))
            answers = [r["answer"] for r in json.loads(listing.read_text())["clusters"][0]["representatives"]]
            assert all(a.startswith("(no answer: the endpoint refused the request") for a in answers), answers
            if accepted:
                assert result.code == 0, result.err + result.out
                stats = json.loads(next((tmp_path / "b1").glob("data/*/stats.json")).read_text())
                assert stats["output"]["records"] == 6  # the medical cluster's records
    assert result.code == 2  # (datatrove logs to stderr in this process; a user's run keeps it in the stage's log)
    work = listing.parents[1]
    assert "1 of 2 clusters got no valid label (the recipe accepts 0)" in result.err
    assert (f"or ask every representative again (the embeddings and clusters are kept): rm -rf {work / 'classified' / 'domain_filter'} "
            f"{work / 'checkpoints' / 'domain_filter-classify'} {work / 'logs' / 'classify-domain_filter'}, then rerun") in result.err
    # doing so asks them again: an endpoint that now answers them is heard
    server_requests = len(server.requests)
    with StubServer(key="not-a-real-key") as server:
        (tmp_path / "r0.yaml").write_text(DOMAIN_ONLY.format(url=server.url, synonyms=MATHS_SYNONYM, accepted=0))
        for folder in ("classified/domain_filter", "checkpoints/domain_filter-classify", "logs/classify-domain_filter"):
            shutil.rmtree(work / folder)
        again = run_cli("run", str(tmp_path / "r0.yaml"), "--stage", "data", "--out", str(tmp_path / "b0"))
    assert server_requests and again.code == 0, again.err + again.out
    assert len(server.requests) == 4  # 2 clusters x 2 representatives


def test_an_endpoint_that_is_down_or_silent_is_probed_in_bounded_time(tmp_path, monkeypatch):
    """Found by review: each readiness probe took ~2.4 s against a stopped endpoint (the OpenAI client's own retries),
    so datatrove's probes waited some 24 minutes without a word, and requests to an endpoint that took them and never
    answered had no timeout at all."""
    import asyncio
    import socket

    from medrecipe.blocks import llm

    monkeypatch.setattr(llm, "READY_TIMEOUT", 0.5)
    silent = socket.socket()  # takes connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    stopped = socket.socket()
    stopped.bind(("127.0.0.1", 0))
    stopped_port = stopped.getsockname()[1]
    stopped.close()
    step = llm.InferenceStep("judge", str(tmp_path / "out"), "${rank}_chunk_${chunk_index}.jsonl", None, str(tmp_path / "checkpoints"),
                             model="stub", endpoint="http://127.0.0.1:1/v1",
                             api_key_env=None, tensor_parallel_size=1, max_concurrent_requests=4, generation={},
                             rollout="judge", rollout_args={})
    config = step._runner().config
    assert config.request_timeout == llm.REQUEST_TIMEOUT
    assert config.server_ready_max_attempts * (config.server_ready_delay_sec + llm.READY_TIMEOUT) <= 7 * 60

    async def ready(port: int) -> bool:
        return await llm.OpenAIEndpoint(config, 0, f"http://127.0.0.1:{port}/v1").is_ready()

    try:
        for port, bound in ((silent.getsockname()[1], 2.0), (stopped_port, 1.0)):  # one try each, not three
            started = time.monotonic()
            assert asyncio.run(ready(port)) is False
            assert time.monotonic() - started < bound
    finally:
        silent.close()
