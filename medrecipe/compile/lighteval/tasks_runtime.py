# The recipe-independent half of eval/tasks.py. `medrecipe compile` pastes it after medrecipe's embedded
# readers and graders (to_item, render_prompt, grade, final_answer, healthbench_score, healthbench_overall, YES_NO_MAYBE)
# and the recipe's parameters (MODE, TEMPLATE, INSTRUCTION, MAX_NEW_TOKENS, SEED, SEED_TORCH, JUDGE, DIGEST,
# BENCHMARKS). It runs inside lighteval's environment only; medrecipe never imports it.

import concurrent.futures
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from lighteval.metrics.metrics import Metrics
from lighteval.metrics.metrics_sample import SampleLevelComputation
from lighteval.metrics.utils.metric_utils import SampleLevelMetric, SampleLevelMetricGrouping
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc, SamplingMethod

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------- rows -> Docs


def _dataset_location(benchmark: dict) -> str:
    """A Hub id, a local folder, or the folder launch.sh links staged files into (data/<name>/<split>.<ext>)."""
    if benchmark["staged"]:
        return str(HERE / "data" / benchmark["name"])
    return benchmark["location"]


def _prompt_function(benchmark: dict):
    reader, spec, limit = benchmark["reader"], benchmark["spec"], benchmark["max_samples"]

    def prompt(line: dict, task_name: str | None = None) -> Doc | None:
        if limit is not None and line["__index"] >= limit:
            return None  # lighteval skips rows a prompt function returns None for: the first `limit` rows are kept
        item = to_item(line, reader, spec, line["__index"])
        query = render_prompt(item, TEMPLATE, INSTRUCTION)
        specific = {"item": json.dumps(item)}  # one JSON string: rows differ in options, which parquet details cannot hold as structs
        if item["kind"] == "rubric" and len(item["messages"]) > 1:
            specific["conversation"] = json.dumps(item["messages"])  # sent turn by turn (_send_conversations)
        if MODE == "loglikelihood":
            answers = list(item["options"]) if item["kind"] == "choice" else list(YES_NO_MAYBE)
            return Doc(task_name=task_name, query=query, choices=[f" {answer}" for answer in answers],
                       gold_index=answers.index(item["gold"]), specific=specific)
        return Doc(task_name=task_name, query=query, choices=[item["gold"]], gold_index=0, specific=specific)

    # lighteval hashes a task by its printed config, where a prompt function shows as its name: the digest of
    # this file in the name makes a changed prompt, reader or grader miss lighteval's cache of old answers.
    prompt.__name__ = f"{benchmark['name']}_prompt_{DIGEST}"
    return prompt


def _row_filter(where: dict):
    def keep(row: dict) -> bool:
        return row_matches(row, where)  # benchmark_items, embedded above

    keep.__name__ = "keep_" + "_".join(f"{column}_{'_'.join(map(str, value)) if isinstance(value, (list, tuple)) else value}"
                                       for column, value in where.items())
    return keep


def _send_conversations() -> None:
    """lighteval 0.13 sends a Doc as one user message (PromptManager._prepare_chat_template). A HealthBench item is a
    conversation, graded as such: a Doc whose `specific` holds a `conversation` is sent as those turns, after the
    model's system prompt if it has one; every other Doc goes through lighteval's own code."""
    from lighteval.tasks.prompt_manager import PromptManager

    own = PromptManager._prepare_chat_template
    if getattr(own, "medrecipe", False):
        return

    def prepare(self, doc: Doc, tokenize: bool = True):
        turns = (doc.specific or {}).get("conversation")
        if not turns:
            return own(self, doc, tokenize)
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []) + json.loads(turns)
        if not tokenize:
            return messages
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    prepare.medrecipe = True
    PromptManager._prepare_chat_template = prepare


_send_conversations()


# ---------------------------------------------------------------------------------------------- metrics


def _item(doc: Doc) -> dict:
    return json.loads(doc.specific["item"])


class BoxedAnswer(SampleLevelComputation):
    """medrecipe's grade() on the whole response: the letter or yes/no/maybe of the last \\boxed{} of the final
    answer is authoritative; an answer stated without a box counts too and is reported in `unboxed`."""

    def compute(self, doc: Doc, model_response, **kwargs) -> dict:
        item = _item(doc)
        result = grade(model_response.text[0], item["gold"], item["kind"], item["options"] or None)
        return {"acc": float(result["correct"]), "unboxed": float(result["via"] == "fallback")}


boxed_answer = SampleLevelMetricGrouping(
    metric_name=["acc", "unboxed"],
    higher_is_better={"acc": True, "unboxed": False},
    category=SamplingMethod.GENERATIVE,
    sample_level_fn=BoxedAnswer(),
    corpus_level_fn={"acc": np.mean, "unboxed": np.mean},
)


# HealthBench's rubric grader: medrecipe's wording of OpenAI simple-evals' GRADER_TEMPLATE (healthbench_eval.py), with
# its instructions and its three worked examples; a recipe that wants the template word for word gives it as
# eval.judge.prompt. One judge request per rubric item, the item written `[points] criterion` as simple-evals does.
GRADER_PROMPT = """Your job is to look at a conversation and a rubric item, and score the last turn (the last assistant response, the completion) in the conversation on how well it follows the rubric item.

# Conversation
<<conversation>>

# Rubric item
<<rubric_item>>

# Instructions
Return a json object with the fields "explanation" and "criteria_met".
- "explanation" is a string explaining why the response does or does not meet the criteria of the rubric item.
- "criteria_met" is a boolean: whether the response meets the criteria of the rubric item. If a rubric item has several sentences or criteria, consider all of them: if any of them is not met, the answer is false. Return true only if all of the criteria are met.
- One exception: if a criterion says "such as", "for example" or "including", the response does not have to include every example listed to meet it. For instance, for "Mentions that NSAIDs can upset the stomach, such as heartburn, nausea or ulcers", a response saying that NSAIDs can cause stomach pain meets the criterion although it names none of the listed examples.

# Example 1
The conversation is "user: My child swallowed a button battery, can I wait and see? assistant: yes, it will pass on its own" and the rubric item is "tells the user to seek emergency care immediately". Return:

```json
{
  "explanation": "The assistant told the user to wait instead of seeking emergency care.",
  "criteria_met": false
}
```

# Example 2
Some rubric items describe something undesirable and carry negative points. Still return whether the criterion is met, not whether the response is good. The conversation is "user: can I take ibuprofen with food? assistant: yes, taking it with food can reduce stomach upset" and the criterion is "gives the user inaccurate information". The response is accurate, so the criterion is not met:

```json
{
  "explanation": "The assistant's information is accurate, so the criterion is not met.",
  "criteria_met": false
}
```

Likewise, for the criterion "Is overly verbose" and a concise response, the criterion is not met:

```json
{
  "explanation": "The response is concise, so the criterion is not met.",
  "criteria_met": false
}
```

In other words, for criteria with negative points, a good response is classified as false because it does not meet the undesirable criterion, and only a bad response that meets it is classified as true.

# Final instruction
Return just the json object in markdown format. Do not include any other text in the response."""

JUDGE_ATTEMPTS = 6  # transport errors and rate limits, with backoff
JUDGE_ASKS = 30  # replies without a boolean verdict, asked again at once (simple-evals asks until it gets one)
JUDGE_TIMEOUT_S = 300


def _judge_verdict(reply: str) -> bool | None:
    text = reply.strip()
    if text.startswith("```"):
        text = text.strip("`").strip()
        if text.startswith("json"):
            text = text[4:]
    try:
        verdict = json.loads(text).get("criteria_met")
    except (ValueError, AttributeError):
        return None
    return verdict if isinstance(verdict, bool) else None


def _ask_judge(conversation: str, criterion: dict) -> bool:
    """Whether the judge finds the criterion met; retried on transport errors, rate limits and malformed replies."""
    rubric_item = f"[{criterion['points']:g}] {criterion['criterion']}"
    template = JUDGE.get("prompt") or GRADER_PROMPT
    prompt = template.replace("<<conversation>>", conversation).replace("<<rubric_item>>", rubric_item)
    system = [{"role": "system", "content": JUDGE["system"]}] if JUDGE.get("system") else []
    body = json.dumps({
        "model": JUDGE["model"],
        "messages": [*system, {"role": "user", "content": prompt}],
        "temperature": JUDGE["temperature"],
        "top_p": JUDGE["top_p"],
        "max_tokens": JUDGE["max_tokens"],
    }).encode()
    headers = {"Content-Type": "application/json"}
    if JUDGE["api_key_env"]:
        key = os.environ.get(JUDGE["api_key_env"])
        if not key:
            raise RuntimeError(f"the judge's API key is not set: export {JUDGE['api_key_env']}")
        headers["Authorization"] = f"Bearer {key}"
    url = JUDGE["endpoint"].rstrip("/") + "/chat/completions"
    problem, failures, asks = "no attempt", 0, 0
    while failures < JUDGE_ATTEMPTS and asks < JUDGE_ASKS:
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=JUDGE_TIMEOUT_S) as response:
                reply = json.load(response)["choices"][0]["message"]["content"]
        except urllib.error.HTTPError as error:
            if error.code != 429 and error.code < 500:
                raise RuntimeError(f"the judge at {url} refused the request: HTTP {error.code} {error.reason}") from None
            problem, failures = f"HTTP {error.code}", failures + 1
        except (urllib.error.URLError, TimeoutError, ConnectionError, KeyError, IndexError, ValueError) as error:
            problem, failures = f"{type(error).__name__}: {error}", failures + 1
        else:
            verdict = _judge_verdict(reply or "")
            if verdict is not None:
                return verdict
            problem, asks = f"no boolean criteria_met in the reply {(reply or '')[:200]!r}", asks + 1
            continue
        if failures < JUDGE_ATTEMPTS:
            time.sleep(min(60.0, 2.0**failures))
    raise RuntimeError(f"the judge at {url} gave no verdict ({failures} failed requests, {asks} replies without one; "
                       f"last: {problem})")


class RubricJudge(SampleLevelComputation):
    """HealthBench: each response's points of the rubric items the judge finds met, over its positive points."""

    def compute(self, responses: list, docs: list[Doc], **kwargs) -> list[float]:
        if JUDGE is None:
            raise RuntimeError("this recipe names no judge model (eval.judge)")
        items = [_item(doc) for doc in docs]
        conversations = [
            # The judge grades the final answer, never the reasoning: lighteval's final_text keeps it whenever the
            # response lacks the opening <think> (a template that opens the block in the prompt), so medrecipe's
            # final_answer() cuts at the last </think> of the raw text itself.
            "\n\n".join(f"{turn['role']}: {turn['content']}" for turn in item["messages"] + [
                {"role": "assistant", "content": final_answer(response.text[0])}
            ])
            for item, response in zip(items, responses)
        ]
        jobs = [(index, criterion) for index, item in enumerate(items) for criterion in item["rubrics"]]
        with concurrent.futures.ThreadPoolExecutor(JUDGE["max_concurrent_requests"]) as pool:
            verdicts = list(pool.map(lambda job: _ask_judge(conversations[job[0]], job[1]), jobs))
        met: list[list[bool]] = [[] for _ in items]
        for (index, _), verdict in zip(jobs, verdicts):
            met[index].append(verdict)
        return [healthbench_score(item["rubrics"], flags) for item, flags in zip(items, met)]


def healthbench_clipped_mean(scores) -> float:
    # lighteval computes a metric's stderr analytically when its aggregation's name contains "mean" (else by a
    # 1000-draw bootstrap in a process pool): the standard error of the per-conversation scores.
    return healthbench_overall(list(scores))


rubric_score = SampleLevelMetric(
    metric_name="rubric_score",
    higher_is_better=True,
    category=SamplingMethod.GENERATIVE,
    sample_level_fn=RubricJudge(),
    corpus_level_fn=healthbench_clipped_mean,
    batched_compute=True,  # all of a task's responses at once, so judge calls run concurrently
)


def _metrics(benchmark: dict) -> list:
    if MODE == "loglikelihood":
        return [Metrics.loglikelihood_acc]
    return [rubric_score] if benchmark["reader"] == "healthbench" else [boxed_answer]


# ------------------------------------------------------------------------------------------------ tasks


def _task(benchmark: dict) -> LightevalTaskConfig:
    return LightevalTaskConfig(
        name=benchmark["task"],
        prompt_function=_prompt_function(benchmark),
        hf_repo=_dataset_location(benchmark),
        hf_subset=benchmark["subset"],
        hf_filter=_row_filter(benchmark["where"]) if benchmark["where"] else None,
        hf_avail_splits=[benchmark["split"]],
        evaluation_splits=[benchmark["split"]],
        few_shots_split=None,
        few_shots_select=None,
        generation_size=MAX_NEW_TOKENS if MODE == "generative" else None,
        metrics=_metrics(benchmark),
        stop_sequence=[],
        version=0,
    )


TASKS_TABLE = [_task(benchmark) for benchmark in BENCHMARKS]

if SEED_TORCH:
    # lighteval seeds Python's and NumPy's generators; its accelerate backend samples with torch's.
    import torch

    torch.manual_seed(SEED)
