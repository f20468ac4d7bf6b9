"""The recipe's `eval` section: the benchmarks, the generation and the published table reproduced."""

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from .basics import INT_LIMIT, ConfigName, DataPath, HubId, PositiveInt, Probability, RepoPath, SplitName, Strict, model_choice
from .steps import LLMCall


# `eval.model` values that name a model of the recipe's own (a stage's output, or its base), not a model id or path
RECIPE_MODELS = ("final", "sft", "rl", "base")
EvaluatedModel = model_choice(RECIPE_MODELS)


class BenchmarkRef(Strict):
    """A benchmark of the registry or of `eval.custom_benchmarks`, optionally read from a local copy."""

    name: str = Field(description="Registry name, e.g. `medmcqa` (see `medrecipe plan`), or a name from `eval.custom_benchmarks`.")
    path: DataPath | None = Field(None, description="Local folder or file holding the benchmark (offline runs), relative to the recipe.")
    split: SplitName | None = Field(None, description="Split to evaluate on. Default: the registry's.")
    max_samples: PositiveInt | None = Field(None, description="Evaluate on at most this many items.")


class BenchmarkColumns(Strict):
    """The columns a benchmark's rows are read from, where the reader's defaults (`question`, `options`, `answer`
    and their usual variants) do not find them."""

    id: str | None = Field(None, max_length=128, description="Column with the item id. Default: `id`, else the row number.")
    question: str | None = Field(None, max_length=128, description="Column with the question.")
    options: str | None = Field(
        None, max_length=128, description="Column with the options: a list, a {letter: text} mapping, or lettered lines."
    )
    gold: str | None = Field(
        None, max_length=128,
        description="Column with the right answer: a letter, an index into the options (see `zero_based`), or the "
        "option's text; `pubmedqa` reader: yes, no or maybe.",
    )


class CustomBenchmark(Strict):
    """A benchmark of the recipe's own: evaluated when `eval.benchmarks` names it, and decontaminated against like the
    registry's, read and scored by the same code. The registry's entries are the same objects
    (medrecipe/catalog/benchmarks.py), each with the evidence for its columns."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="Name `eval.benchmarks` and decontamination steps use.")
    title: str | None = Field(None, max_length=200, description="Title in cards and reports. Default: the name.")
    hub: HubId | None = Field(
        None, description="Hub dataset it lives in. Unset: only a local copy (`path` in its `eval.benchmarks` entry)."
    )
    subset: ConfigName | None = Field(None, description="Hub dataset configuration.")
    split: SplitName = Field("test", description="Split evaluated.")
    revision: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", max_length=256, description="Hub revision.")
    data_files: list[RepoPath] = Field(
        [], description="Files of the Hub repository to read, for repositories without a loadable configuration."
    )
    reader: Literal["multiple_choice", "pubmedqa"] = Field(
        "multiple_choice",
        description="How a row becomes an item and is scored: `multiple_choice` (a question, lettered options, the letter "
        "of the answer's \\boxed{} against the gold letter) or `pubmedqa` (yes / no / maybe).",
    )
    columns: BenchmarkColumns = Field({}, description="Column names, where the reader's defaults do not find them.")
    zero_based: bool = Field(True, description="An integer gold answer counts options from 0 (MedMCQA's `cop`), else from 1.")
    where: dict[str, str | int | bool | list[str | int]] = Field(
        {}, description="Keep only rows whose column equals the value, or one of a list of values, e.g. "
        "{category: [health, biology]}.",
    )


class Sampling(Strict):
    """Generation parameters for evaluation."""

    temperature: float = Field(0.6, ge=0.0, le=2.0, description="Sampling temperature; 0 decodes greedily.")
    top_p: Probability = Field(0.9, description="Nucleus sampling threshold.")
    top_k: int | None = Field(None, ge=-1, le=INT_LIMIT, description="Top-k; unset or -1: none, every token is a candidate.")
    max_new_tokens: PositiveInt = Field(32768, description="Maximum generated tokens per answer.")


class EvalPrompt(Strict):
    """How a benchmark item becomes a prompt."""

    instruction: str = Field(
        "Please reason step-by-step, and put your final answer within \\boxed{}.",
        description="Instruction appended to every question.",
    )


    template: str = Field(
        "{question}\n\n{options}\n\n{instruction}",
        description="Prompt template with {question}, {options} (lettered lines, empty when none) and {instruction}.",
    )

    @field_validator("template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        for name in ("{question}", "{instruction}"):
            if name not in value:
                raise ValueError(f"the template must contain {name}")
        return value


class RubricJudge(LLMCall):
    """The model that grades HealthBench's rubric items, one request per item. The defaults are OpenAI simple-evals'
    grader (healthbench_eval.py: ChatCompletionSampler(model="gpt-4.1-2025-04-14", system_message="You are a helpful
    assistant.", max_tokens=2048), whose temperature defaults to 0.5)."""

    temperature: float = Field(0.5, ge=0.0, le=2.0, description="Sampling temperature (simple-evals' grader: 0.5).")
    max_tokens: PositiveInt = Field(2048, description="Maximum tokens per verdict (simple-evals' grader: 2048).")
    system: str | None = Field("You are a helpful assistant.", max_length=4096,
                               description="System message before each grading request (simple-evals'); null sends none.")
    prompt: str | None = Field(
        None, max_length=65536,
        description="The grading prompt, with <<conversation>> and <<rubric_item>> where the conversation and the item go. "
        "Unset: medrecipe's wording of simple-evals' GRADER_TEMPLATE (the same instructions and worked examples).",
    )

    @field_validator("prompt")
    @classmethod
    def _grader_placeholders(cls, value: str | None) -> str | None:
        for name in ("<<conversation>>", "<<rubric_item>>"):
            if value is not None and name not in value:
                raise ValueError(f"the prompt must contain {name}")
        return value


Percent = Annotated[float, Field(ge=0.0, le=100.0)]


class Published(Strict):
    """A published results table: our reproduction is compared against it."""

    source: str = Field(description="Where the numbers come from (card, paper, table).")
    reproduces: str = Field(description="The row of `scores` this recipe reproduces.")
    scores: dict[str, dict[str, Percent]] = Field(description="Model name -> benchmark name -> score in percent (0 to 100).")
    averages: dict[str, Percent] = Field(
        {}, description="The table's own average column, by model (checked against the mean of its scores)."
    )

    @field_validator("scores")
    @classmethod
    def _in_percent(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Scores are percentages (found by review: 0.7444, 150 and -5 were compared as they were): each is within
        [0, 100] (Percent), and a table of fractions, copied as 0.7444, is refused with how to write it. The whole
        table, not a row: a weak baseline's row, or a row of one hard benchmark, can be at most 1 % (review)."""
        every = [score for row in value.values() for score in row.values()]
        if every and max(every) <= 1:
            raise ValueError(f"every score is at most 1, fractions rather than percentages: write each in percent "
                             f"({100 * every[0]:g} for {every[0]:g})")
        return value

    @model_validator(mode="after")
    def _rows_present(self) -> Self:
        for name in [self.reproduces, *self.averages]:
            if name not in self.scores:
                raise ValueError(f"{name!r} has no row in `scores`")
        for name, average in self.averages.items():
            row = self.scores[name]
            mean = sum(row.values()) / len(row)
            if abs(mean - average) > 0.01 + 0.005 * len(row):
                raise ValueError(f"the average of {name!r} is {average}, but its scores average {mean:.2f}")
        return self


PROMPT_ROOM = 4096  # prompt tokens assumed when eval.max_model_length is unset


class Eval(Strict):
    """Evaluation, compiled to a lighteval suite."""

    benchmarks: list[BenchmarkRef] = Field(min_length=1, description="Benchmarks to evaluate on (names, or mappings with a local path).")
    custom_benchmarks: list[CustomBenchmark] = Field(
        [], description="Benchmarks of the recipe's own, named in `benchmarks` like the registry's."
    )
    model: EvaluatedModel = Field("final", description="`final` (last trained stage), `sft`, `rl`, `base`, or a model id / path.")
    backend: Literal["vllm", "accelerate"] = Field("vllm", description="lighteval backend; accelerate for CPU and small runs.")
    mode: Literal["generative", "loglikelihood"] = Field(
        "generative",
        description="`generative`: the model answers (reasoning allowed) and the letter or yes/no/maybe of its final "
        "\\boxed{} is scored; `loglikelihood`: the option letter the model finds most likely after the prompt is its "
        "answer (multiple choice without generation; rubric-graded benchmarks need `generative`).",
    )
    sampling: Sampling = Field({}, description="Generation parameters.")
    prompt: EvalPrompt = Field({}, description="Prompt construction.")
    max_model_length: PositiveInt | None = Field(
        None, description="Context length (prompt plus answer). Default: 4096 prompt tokens plus `max_new_tokens`."
    )
    batch_size: PositiveInt = Field(
        8, description="Sequences per batch on the accelerate backend (unset, lighteval would probe from 512). vLLM batches by itself."
    )
    tensor_parallel_size: PositiveInt = Field(1, description="GPUs per vLLM engine.")
    data_parallel_size: PositiveInt | None = Field(
        None,
        description="vLLM engines that share the items between them, each on `tensor_parallel_size` GPUs of the stage's one "
        "node (lighteval's data parallelism: each engine a Ray task; not with --launcher ray, whose tasks get neither "
        "the job's folder nor its environment). Default: 1, one engine without Ray. A change starts lighteval's answer "
        "cache afresh (its folder is named after the model's settings).",
    )
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = Field("bfloat16", description="Model dtype.")
    judge: RubricJudge | None = Field(None, description="Judge model for rubric-graded benchmarks (HealthBench).")
    published: Published | None = Field(None, description="The published results table this recipe reproduces.")

    def context_length(self) -> int:
        """The context lighteval is given: `max_model_length`, else room for the prompt plus the answer budget."""
        return self.max_model_length or PROMPT_ROOM + (self.sampling.max_new_tokens if self.mode == "generative" else 0)

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _names_as_refs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value
