"""LLM steps through datatrove's InferenceRunner: rejection-sampled generation, judging, domain classification.

InferenceRunner ends a pipeline (it writes documents, it does not pass them on), so an LLM step closes a
segment: its rollout function records results in `rollout_results`, and an apply step at the start of the
next segment turns them into records (the correct generations) or verdicts (the judge's scores).

The endpoint's API key is read from the environment inside the worker, when the runner is built: the
step that is pickled for Slurm or Ray holds only the variable's name.

An endpoint is spoken to as the OpenAI client speaks to a base URL (…/v1), with its key on every request, by
`OpenAIEndpoint`: datatrove 0.10.1's EndpointServer (pipeline/inference/servers/endpoint_server.py and base.py)
checks readiness with GET <url>/v1/models without the key, sends http://localhost requests with no
Authorization header, and hands the OpenAI client the URL without its /v1, so a hosted API was asked at
<url>/chat/completions (a 404), and a local vLLM started with --api-key refused every request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.inference.run_inference import InferenceConfig, InferenceRunner
from datatrove.pipeline.inference.servers import EndpointServer
from datatrove.pipeline.inference.types import InferenceError, ServerError

from ..grading import grade
from ..recipe.untrusted import REDACTED, redact
from .base import CurationFilter, CurationStep, StepFailed, exclusion_writer
from .domain import final_answer, parse_label
from .record import generated_turn, prompt_text, response_text, with_response
from .segments import RUNNER_KEPT_ID

_SCORE = re.compile(r"score[*_]*\s*[:=]?[*_]*\s*(\d+(?:\.\d+)?)", re.IGNORECASE)  # "Score: 9", "**Score:** 9"
# A request is bounded to REQUEST_TIMEOUT s, the OpenAI client's default (datatrove's `request_timeout: None` turned
# that off, and an endpoint that took a request and never answered held the stage forever: found by review), long
# enough for 16k tokens at 30 a second; datatrove tries a request 6 times, 5 to 160 s apart, so a silent endpoint
# fails the stage within the hour (the client's own retries made it three). An endpoint must list its models within
# READY_PROBES probes READY_DELAY s apart, each bounded to READY_TIMEOUT s (2 to 7 minutes, where a stopped endpoint
# was waited for some 24 minutes without a word); a vLLM server datatrove starts here has 600 probes 1 s apart, to
# load its model.
REQUEST_TIMEOUT, READY_PROBES, READY_DELAY, READY_TIMEOUT = 600.0, 60, 2.0, 5.0


class InferenceStep(CurationStep):
    """Runs one rollout function over the records with an InferenceRunner writing `output_filename` files (datatrove
    placeholders ${rank} and ${chunk_index}) to `output_folder`."""

    type = "🤖 - LLM"

    def __init__(self, name: str, output_folder: str, output_filename: str, compression: str | None, checkpoint_folder: str,
                 model: str, endpoint: str | None, api_key_env: str | None, tensor_parallel_size: int,
                 max_concurrent_requests: int, generation: dict, rollout: str, rollout_args: dict,
                 sources: list[str] | None = None):
        super().__init__(name, sources)
        self.output_folder, self.checkpoint_folder = output_folder, checkpoint_folder
        self.output_filename, self.compression = output_filename, compression
        self.model, self.endpoint, self.api_key_env = model, endpoint, api_key_env
        self.tensor_parallel_size, self.max_concurrent_requests = tensor_parallel_size, max_concurrent_requests
        self.generation, self.rollout, self.rollout_args = generation, rollout, rollout_args

    def _runner(self):
        from datatrove.pipeline.writers import JsonlWriter

        endpoint = (self.endpoint or "").rstrip("/") or None
        config = InferenceConfig(
            server_type="endpoint" if endpoint else "vllm",
            model_name_or_path=self.model,
            endpoint_url=endpoint,
            api_key=os.environ.get(self.api_key_env) if self.api_key_env else None,
            tp=self.tensor_parallel_size,
            default_generation_params=self.generation,
            max_concurrent_generations=self.max_concurrent_requests,
            metric_interval=60,
            request_timeout=REQUEST_TIMEOUT,
            server_ready_delay_sec=READY_DELAY if endpoint else 1.0,
            server_ready_max_attempts=READY_PROBES if endpoint else 600,
        )
        writer = JsonlWriter(self.output_folder, output_filename=self.output_filename, compression=self.compression)
        rollout = ROLLOUTS[self.rollout]
        selected, arguments = self.sources, self.rollout_args

        async def bound(document, generate):
            if selected is not None and document.metadata["source"] not in selected:
                return {"skipped": True}
            return await rollout(document, generate, **arguments)

        return Runner(rollout_fn=bound, config=config, output_writer=writer, endpoint=endpoint,
                      checkpoints_local_dir=self.checkpoint_folder, records_per_chunk=2000)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        runner = self._runner()
        runner.stats = self.stats  # its request and token counts land in this step's stats
        try:
            return runner.run(_known_by_order(data), rank, world_size)
        except Exception as error:
            # datatrove's InferenceError cannot be unpickled (its __init__ takes two arguments): raised in a worker
            # process, it would leave the local executor's pool waiting for a result forever. A plain error crosses.
            raise StepFailed(redact(f"{self.name} (task {rank}): {type(error).__name__}: {error}")) from None


def _known_by_order(data: DocumentsPipeline) -> DocumentsPipeline:
    """The records as datatrove's runner is to know them: by their place in reading order, which is unique. The runner
    knows a document by its id (a resumed task skips the ids its checkpoints hold; its request cache answers by id),
    and a record's id is its source's id column, which may repeat: after a resume, one of two records of an id was
    never asked and the other's answer was written twice (found by review). The next segment reads each record back
    with its own id (segments.SegmentReader's `runner_output`)."""
    for doc in data:
        doc.metadata[RUNNER_KEPT_ID] = doc.id
        doc.id = str(doc.metadata["order"])
        yield doc


class OpenAIEndpoint(EndpointServer):
    """datatrove's EndpointServer asking `endpoint`, the API's base URL, through the OpenAI client with the key, for
    readiness as for every request (see the module's docstring).

    A request is sent here rather than by datatrove's EndpointServer (found by review):
    - its answer keeps the reasoning an endpoint returns beside the content (`reasoning_content`: vLLM with a
      reasoning parser, DeepSeek's API; `reasoning`: OpenRouter), which datatrove reads into its result but its
      EndpointServer dropped: distilled traces lost their reasoning without a word;
    - the client does not retry (datatrove retries a failed request itself, six times with backoff: with the client's
      own two retries, an endpoint that never answered held one request some three hours);
    - an error's text has the key taken out: an endpoint that refuses a key may quote it back (LiteLLM's proxy
      does), and datatrove writes the errors it retries or fails on into the build's task logs;
    - the payload is a copy: datatrove takes `model` out of the payload it sends, and a retry sent it without one.
    """

    def __init__(self, config: InferenceConfig, rank: int, endpoint: str):
        # EndpointServer builds a client of its own for any host but localhost, which refuses to be built without a
        # key: an endpoint that takes none (vLLM on another node) failed every task ("Missing credentials")
        super().__init__(dataclasses.replace(config, api_key=config.api_key or "unused"), rank)
        self.config = config
        from openai import AsyncOpenAI

        self.endpoint = endpoint
        self.client = AsyncOpenAI(api_key=config.api_key or "unused", base_url=endpoint, timeout=config.request_timeout,
                                  max_retries=0)

    def _scrubbed(self, error: Exception) -> str:
        text = str(error)
        return redact(text.replace(self.config.api_key, REDACTED) if self.config.api_key else text)

    async def _make_request(self, payload: dict) -> dict:
        import openai

        request = dict(payload)
        model = request.pop("model")
        try:
            response = await self.client.chat.completions.create(model=model, **request)
        except openai.BadRequestError as error:  # named so that Runner._is_bad_request_error knows it
            raise InferenceError(None, f"BadRequestError: {self._scrubbed(error)}", payload=request) from None
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as error:
            raise ConnectionError(self._scrubbed(error)) from None  # datatrove retries these
        except openai.APITimeoutError as error:
            raise TimeoutError(self._scrubbed(error)) from None  # and these
        except Exception as error:  # a refused key, an unknown model, an unreadable answer: no retry helps
            raise InferenceError(None, f"{type(error).__name__}: {self._scrubbed(error)}", payload=request) from None
        choice, usage = response.choices[0], response.usage
        extra = choice.message.model_extra or {}
        return {
            "choices": [{"message": {"content": choice.message.content or "",
                                     "reasoning": extra.get("reasoning_content") or extra.get("reasoning") or ""},
                         "finish_reason": choice.finish_reason}],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.total_tokens} if usage else {},
        }

    async def is_ready(self) -> bool:
        """Whether the endpoint lists its models (or answers that it lists none), as `preflight` asks, in one bounded
        try (the client's own retries made each of datatrove's probes ~2.4 s); a refused key fails at once, where
        datatrove would wait out its readiness probes."""
        import openai

        try:
            await self.client.with_options(timeout=READY_TIMEOUT, max_retries=0).models.list()
        except openai.NotFoundError:
            return True
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise ServerError(f"{self.endpoint} refused the key: {self._scrubbed(error)}") from None
        except openai.APIError:
            return False
        return True


class Runner(InferenceRunner):
    """datatrove's InferenceRunner, with an endpoint served by `OpenAIEndpoint`."""

    def __init__(self, *args, endpoint: str | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.endpoint = endpoint

    @staticmethod
    def _is_bad_request_error(error: str | Exception) -> bool:
        """A 400: the error's own text names it BadRequestError, as datatrove's servers and `OpenAIEndpoint` write it,
        not the payload it quotes, as datatrove's own test reads it (found by review: a prompt that mentions
        BadRequestError, sent to an endpoint that was down, was removed as refused, and then, datatrove's cache storing
        and replaying what this test calls a refusal, every rerun failed without asking the endpoint again)."""
        return "BadRequestError" in str(error).split(". Payload: ", 1)[0]

    def _init_server(self, rank: int):
        return OpenAIEndpoint(self.config, rank, self.endpoint) if self.endpoint else super()._init_server(rank)


def _chat(doc: Document, prompt: str) -> list[dict]:
    system = [m for m in doc.metadata["messages"] if m["role"] == "system"]
    return [*system, {"role": "user", "content": prompt}]


async def generate_and_grade(doc: Document, generate, *, samples: int, max_samples: int, grader: str,
                             instruction: str, seed: int) -> dict:
    """Sample `samples` responses, grade them against the reference; sample more (up to `max_samples`) while
    none is correct.

    Sample i is requested with seed `seed + i`. datatrove's request cache, which a resumed task replays, finds a
    response by its payload: identical payloads would replay one response for every sample. The seeds also let a
    server that honours them (vLLM does) draw the same samples again on a rerun.

    A prompt the endpoint refuses (400: too long for the model, or filtered) gets no responses and is removed with
    the reason, where it failed the stage on every rerun, the refusal being replayed from the cache (found by
    review)."""
    prompt = f"{prompt_text(doc).rstrip()}\n\n{instruction}" if instruction else prompt_text(doc)
    messages = _chat(doc, prompt)
    answer, options = doc.metadata.get("answer"), doc.metadata.get("options") or None
    kind = {"auto": None, "choice": "choice", "yes_no_maybe": "yes_no_maybe", "boxed": "free", "none": None}[grader]
    graded = grader != "none" and bool(answer)
    drawn: list[dict] = []
    while len(drawn) < max_samples:
        first, count = len(drawn), samples if not drawn else max_samples - len(drawn)
        requests = (generate({"messages": messages, "seed": seed + index}) for index in range(first, first + count))
        results = await asyncio.gather(*requests, return_exceptions=True)
        failed = next((result for result in results if isinstance(result, BaseException)), None)
        if failed is not None:
            if isinstance(failed, InferenceError) and Runner._is_bad_request_error(failed):
                return {"prompt": prompt, "responses": drawn, "refused": str(failed.error)}
            raise failed
        for result in results:
            correct = grade(result.text, answer, kind=kind, options=options)["correct"] if graded else None
            drawn.append({"text": generated_turn(result.reasoning, result.text), "finish_reason": result.finish_reason,
                          "correct": correct})
        if not graded or any(d["correct"] for d in drawn):
            break
    return {"prompt": prompt, "responses": drawn}


async def judge(doc: Document, generate, *, template: str, max_score: float) -> dict:
    """The judge's score of the record's response; a record whose request the endpoint refuses has none (see
    generate_and_grade)."""
    prompt = template.format(prompt=prompt_text(doc), answer=doc.metadata.get("answer") or "",
                             response=response_text(doc), max_score=max_score)
    try:
        result = await generate({"messages": [{"role": "user", "content": prompt}]})
    except InferenceError as error:
        if not Runner._is_bad_request_error(error):
            raise
        return {"score": None, "refused": str(error.error)}
    return {"score": judge_score(result.text, max_score), "verdict": result.text}


def judge_score(verdict: str, max_score: float) -> float | None:
    """The score a verdict gives after its reasoning (`final_answer`), or None (the record is removed as unparsed).

    Found by review: the last "Score: n" anywhere was read, so a reasoning cut off by max_tokens ("...a score: 9
    seems") kept a record no verdict had scored, "Score: 3. A perfect answer would get Score: 10" kept a 3, and a score
    off the scale ("Score: 72" of 10) passed any min_score. Now a verdict that names two different scores, or one
    beyond 0..max_score, has none."""
    answer = final_answer(verdict)
    scores = {float(score) for score in _SCORE.findall(answer)} if answer is not None else set()
    if len(scores) != 1:
        return None
    score = scores.pop()
    return score if score <= max_score else None


async def classify(doc: Document, generate, *, template: str, labels: list[str], synonyms: dict[str, str]) -> dict:
    """The label the answer names. A prompt the endpoint refuses (400: too long for the model, or filtered) has no
    answer, and counts as one that names no label (`max_unlabeled_clusters`), where it failed the stage on every
    rerun (found by review); other failures (the endpoint down, a refused key) fail the stage, whose rerun resumes."""
    prompt = template.format(prompt=prompt_text(doc), labels=", ".join(labels))
    try:
        result = await generate({"messages": [{"role": "user", "content": prompt}]})
    except InferenceError as error:
        if not Runner._is_bad_request_error(error):
            raise
        return {"label": None, "answer": f"(no answer: the endpoint refused the request: {error})"}
    return {"label": parse_label(result.text, labels, synonyms), "answer": result.text, "finish_reason": result.finish_reason}



ROLLOUTS = {"generate": generate_and_grade, "judge": judge, "classify": classify}


class KeepGenerations(CurationStep):
    """Turns each prompt record into one record per kept response (apply part of generate); a prompt with none
    kept is removed, with what was drawn for it, to the exclusion folder."""

    def __init__(self, name: str, keep: str, grader: str, sources=None, exclusion_folder: str | None = None):
        super().__init__(name, sources)
        self.keep, self.grader, self.exclusion_folder = keep, grader, exclusion_folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with exclusion_writer(self.exclusion_folder, f"{rank:05d}.jsonl.gz") as excluded:
            for doc in data:
                results = doc.metadata.pop("rollout_results", None) or [{}]
                if not self.selected(doc) or results[0].get("skipped"):
                    yield doc
                    continue
                source = doc.metadata["source"]
                self.stat_update(f"in/{source}")
                generated = results[0]
                responses = generated["responses"]
                refusal = generated.get("refused")  # the endpoint refused the prompt: nothing to keep
                kept = [] if refusal else responses if self.grader == "none" else [r for r in responses if r["correct"]]
                if self.keep == "first_correct":
                    kept = kept[:1]
                self.stat_update("sampled", value=len(responses))
                if not kept:
                    reason = "refused_request" if refusal else "no_correct_response"
                    self.stat_update(f"removed:{reason}")
                    if excluded is not None:
                        doc.metadata["excluded"] = {"step": self.name, "reason": reason, "sampled": len(responses),
                                                    "finish_reasons": [r["finish_reason"] for r in responses],
                                                    **({"refusal": refusal} if refusal else {})}
                        excluded.write(doc, rank)
                    continue
                for number, response in enumerate(kept):
                    self.stat_update(f"out/{source}")  # one record per kept response: a step's out may exceed its in
                    record = with_response(doc, generated["prompt"], response["text"], number)
                    record.metadata["finish_reason"] = response["finish_reason"] or ""
                    yield record


class JudgeVerdicts(CurationFilter):
    """Keeps records the judge scored at least `min_score` (apply part of judge_filter)."""

    def __init__(self, name: str, min_score: float, sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.min_score = min_score

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in super().run(data, rank, world_size):
            doc.metadata.pop("rollout_results", None)
            yield doc

    def verdict(self, doc: Document) -> dict | None:
        result = (doc.metadata.get("rollout_results") or [{}])[0]
        if "refused" in result:
            return {"reason": "refused_request", "refusal": result["refused"]}
        score = result.get("score")
        if score is None:
            return {"reason": "unparsed_judgement", "verdict": result.get("verdict", "")}
        return None if score >= self.min_score else {"reason": "low_judge_score", "score": score}
