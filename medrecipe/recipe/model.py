"""The recipe: one typed description of a whole medical-LLM release.

Every field carries a description (it becomes the JSON Schema, the editor hints and `--help` text) and a
default where a sensible one exists. Every model forbids unknown keys, so a misspelt key is an error with
a "did you mean" hint rather than a silently ignored setting. Rules that need more than one field live in
`rules.py`, so that they can name the exact field that is wrong.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# ---------------------------------------------------------------------------------------------- basics


class Strict(BaseModel):
    """Base of every recipe model: unknown keys are errors, defaults are validated, numbers are finite (an
    infinity or NaN would be written into configs, scripts and JSON that cannot hold it)."""

    # defer_build: nested models are compiled once, inside Recipe's schema, not each on its own (import time).
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True, allow_inf_nan=False)


# Names that reach file paths, scripts and URLs follow the rules of the system that owns them, so that a recipe
# written to break out of a path or a script is an error at its line.
_HUB_PART = re.compile(r"[A-Za-z0-9_]([\w.-]{0,94}[A-Za-z0-9_])?", re.ASCII)


def _hub_id(value: str) -> str:
    """The Hub's repository-id rules (huggingface_hub utils/_validators.py, validate_repo_id): alphanumerics, '-', '_'
    and '.', at most 96 on each side of one '/', no '--' or '..', not ending in '.git'."""
    parts = value.split("/")
    if len(parts) > 2 or not all(_HUB_PART.fullmatch(part) for part in parts) or "--" in value or ".." in value \
            or value.endswith(".git"):
        raise ValueError(f"{value!r} is not a Hub repository id (namespace/name: letters, digits, '-', '_', '.')")
    return value


def _namespace(value: str) -> str:
    if "/" in value:
        raise ValueError(f"{value!r} is not a Hub user or organisation name")
    return _hub_id(value)


def _model_reference(value: str) -> str:
    """A Hub model id, or a local path (which may hold anything but control characters)."""
    if value.startswith(("/", ".", "~")) or "/" in value and value.count("/") > 1:
        return value
    return _hub_id(value)


def _repo_path(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/") or "\\" in value:
        raise ValueError(f"{value!r} is not a path inside the repository")
    return value


Slug = Annotated[
    str,
    Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=96, description="Lower-case letters, digits, '.', '_', '-'."),
]
RepoName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=96, description="A Hub repository name (no namespace)."),
    AfterValidator(_hub_id),
]
HubId = Annotated[str, AfterValidator(_hub_id)]
ModelRef = Annotated[str, AfterValidator(_model_reference)]
Namespace = Annotated[str, AfterValidator(_namespace)]
RepoPath = Annotated[str, AfterValidator(_repo_path)]
# datasets' split-name rule (datasets/naming.py, _split_re); configuration names as the Hub shows them.
SplitName = Annotated[str, Field(pattern=r"^\w+(\.\w+)*$", max_length=128)]
ConfigName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)]
Url = Annotated[str, Field(pattern=r"^https?://[^\s<>\"'`]+$", max_length=2048)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
# Slurm names and #SBATCH values go into a batch script, where a shell quote cannot protect them: a safe alphabet.
SlurmName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=128)]
SbatchOption = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]
SbatchValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.,:=/@%+-]*$", max_length=256)]
# Paths and image names datatrove's Slurm executor writes into its batch script unquoted.
ScriptWord = Annotated[str, Field(pattern=r"^[A-Za-z0-9_./~+@:%=,-]+$", max_length=1024)]
# Bounded so that no number reaches a tool that its integers cannot hold.
INT_LIMIT = 2**31 - 1
PositiveInt = Annotated[int, Field(gt=0, le=INT_LIMIT)]
NonNegativeInt = Annotated[int, Field(ge=0, le=INT_LIMIT)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def placeholders(template: str, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> str:
    """Check a str.format template: only `allowed` fields, every `required` one, literal braces doubled. A worker
    that formats it must never fail on a brace the recipe meant as text."""
    try:
        parsed = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"{what}: {error}; write a literal brace as {{{{ or }}}}") from None
    fields = [name for name, _, _ in parsed]
    unknown = sorted({name for name in fields if name not in allowed})
    if unknown:
        raise ValueError(f"{what} has the placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; it takes "
                         f"{', '.join('{' + n + '}' for n in allowed)} (write a literal brace as {{{{ or }}}})")
    if any(spec or conversion for _, spec, conversion in parsed):
        raise ValueError(f"{what}: placeholders take no format (write {{name}}, and a literal brace as {{{{ or }}}})")
    missing = [name for name in required if name not in fields]
    if missing:
        raise ValueError(f"{what} must contain {', '.join('{' + n + '}' for n in missing)}")
    return template


# ------------------------------------------------------------------------------------------------- hub


class Reproduces(Strict):
    """The published artifacts a recipe reproduces. Cards link to them; publishing never pushes there by default."""

    model: HubId | None = Field(None, description="Hub id of the published model, e.g. Intelligent-Internet/II-Medical-8B-1706.")
    dataset: HubId | None = Field(None, description="Hub id of the published training dataset.")
    paper: Url | None = Field(None, description="URL of the paper or report describing the original system.")


class Hub(Strict):
    """Where the release is published on the Hugging Face Hub."""

    namespace: Namespace | None = Field(
        None,
        description="User or organisation to publish under. Unset: `medrecipe publish --namespace`, else the logged-in account.",
    )
    private: bool = Field(True, description="Create repositories as private. Set false to publish openly.")
    model_repo: RepoName | None = Field(None, description="Repository of the final model. Default: the recipe name.")
    sft_repo: RepoName | None = Field(None, description="Repository of the SFT checkpoint. Default: `<name>-sft`.")
    dataset_repo: RepoName | None = Field(None, description="Repository of the curated dataset. Default: `<name>-data`.")
    reproduces: Reproduces | None = Field(None, description="The original published artifacts this recipe reproduces.")


# ------------------------------------------------------------------------------------------------ data


class Fields(Strict):
    """How a source's columns map into one chat record: `messages` plus `source`, `id` and metadata.

    A record is built as: system, the prompt turns (`messages`, or `context` + `prompt` + `options`), then
    one assistant turn of `reasoning` (in think tags) and `response`, when those columns are mapped.
    """

    messages: str | None = Field(
        None, description="Column holding chat turns as a list of {role, content}; with `response` mapped, the prompt turns only."
    )
    role_key: str = Field("role", description="Key of the role inside each turn of `messages` (ShareGPT uses `from`).")
    content_key: str = Field("content", description="Key of the text inside each turn of `messages` (ShareGPT uses `value`).")
    roles: dict[str, str] = Field(
        default_factory=dict,
        description="Renames of roles inside `messages`, e.g. {human: user, gpt: assistant}.",
    )
    turns: str | None = Field(
        None, description="Column (or a file's row) holding alternating user/assistant strings, e.g. [q1, a1, q2, a2]."
    )
    prompt: str | None = Field(None, description="Column with the user prompt (when there is no `messages` column).")
    context: str | None = Field(None, description="Column with a passage placed before the prompt (PubMedQA's abstracts).")
    options: str | list[str] | None = Field(
        None,
        description="Multiple-choice options appended to the prompt as lettered lines: one column (a list, a letter->text "
        "mapping, or text), or one column per option (MedMCQA's opa..opd).",
    )
    reasoning: str | None = Field(
        None, description="Column with the reasoning trace; it is wrapped in the think tags in front of the response."
    )
    response: str | None = Field(None, description="Column with the assistant's final response.")
    system: str | None = Field(None, description="Column with a system prompt.")
    answer: str | None = Field(
        None,
        description="Column with the reference answer, kept as metadata for graders and judges. With options, an integer "
        "answer is a 0-based option index.",
    )
    options_format: Literal["auto", "lettered_lines"] = Field(
        "auto",
        description="How the `options` column is written. `auto`: a list, a letter->text mapping, JSON of either, or other "
        "text kept as written; `lettered_lines`: a text block of `A. text` lines, after an optional heading such as "
        "'Answer Choices:' (MedReason, II-Medical-RL), read into lettered options.",
    )
    answer_format: Literal["auto", "letter", "option_text"] = Field(
        "auto",
        description="How the `answer` column is written. `auto`: kept as written (with options, an integer is a 0-based "
        "option index); `letter`: an option letter such as 'C' or '(C)'; `option_text`: the text of the right option, "
        "possibly followed by 'Explanation: ...' (MedReason), turned into its letter. With `letter` or `option_text` a row "
        "whose answer names no option is dropped and counted.",
    )
    strip_tags: list[str] = Field(
        default_factory=list,
        description="Tags whose wrappers are removed from assistant turns, keeping what they enclose, e.g. [answer] for "
        "`<answer>...</answer>` (the AM distilled sets). The think tags are never stripped.",
    )
    id: str | None = Field(None, description="Column with a stable record id. Default: `<source>/<row index>`.")
    finish_reason: str | None = Field(None, description="Column with the generator's finish reason (`length` marks a cut-off trace).")
    metadata: list[str] = Field(default_factory=list, description="Other columns to keep under `metadata`.")

    @model_validator(mode="after")
    def _one_way_to_the_prompt(self) -> Fields:
        given = [name for name in ("messages", "turns", "prompt") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("map exactly one of `messages`, `turns` or `prompt`")
        if self.turns and (self.response or self.reasoning):
            raise ValueError("`turns` already hold the responses; do not map `response` or `reasoning` too")
        if self.options_format != "auto" and not self.options:
            raise ValueError("`options_format` describes the `options` column; map `options` too")
        if self.answer_format != "auto" and not self.answer:
            raise ValueError("`answer_format` describes the `answer` column; map `answer` too")
        if self.answer_format in ("letter", "option_text") and not (self.options or self.turns or self.messages):
            raise ValueError(f"answer_format {self.answer_format!r} names an option: map `options` too")
        if any(tag.lower() in ("think", "/think") or not tag.replace("_", "").replace("-", "").isalnum() for tag in self.strip_tags):
            raise ValueError("`strip_tags` are tag names such as `answer` (letters, digits, '-', '_'); the think tags stay")
        return self


class DatasetLocation(Strict):
    """Where a dataset is read from: a Hub dataset (a configuration, or some of its files) or local files."""

    hub: HubId | None = Field(None, description="Hub dataset id, e.g. FreedomIntelligence/Medical-R1-Distill-Data.")
    subset: ConfigName | None = Field(None, description="Hub dataset configuration (subset).")
    split: SplitName = Field("train", description="Split to read.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to pin.")
    data_files: list[RepoPath] | None = Field(
        None,
        description="Files inside the Hub repository to read (json/jsonl/jsonl.zst/parquet) instead of a configuration: for "
        "repositories without a loadable one, or files a configuration cannot type (nested columns that vary by row).",
    )
    path: str | None = Field(None, description="Local file, folder or glob of jsonl/json/parquet files, relative to the recipe file.")
    format: Literal["auto", "jsonl", "parquet"] = Field("auto", description="File format of `path`; auto: from the file suffix.")

    @model_validator(mode="after")
    def _one_location(self) -> DatasetLocation:
        if bool(self.hub) == bool(self.path):
            raise ValueError("give exactly one of `hub` or `path`")
        if self.data_files and not self.hub:
            raise ValueError("`data_files` name files of a Hub repository; give `hub` too")
        if self.data_files and self.subset:
            raise ValueError("give `subset` (a configuration) or `data_files`, not both")
        return self


class Source(DatasetLocation):
    """One input dataset: a Hub dataset or local files, mapped into the chat format."""

    name: Slug = Field(description="Unique name of the source; steps select sources by name or group.")
    kind: Literal["conversations", "prompts"] = Field(
        "conversations",
        description="`conversations` carry responses; `prompts` carry only prompts (and answers) for a generation step to complete.",
    )
    group: Slug | None = Field(None, description="Group name shared by related sources, e.g. `r1-traces`; steps may select a group.")
    fields: Fields = Field({"messages": "messages"}, description="Column mapping into the chat format.")
    max_samples: PositiveInt | None = Field(None, description="Read at most this many records from the source.")
    expected_samples: PositiveInt | None = Field(
        None, description="Count the original release reports for this source; the dataset card shows it beside the real count."
    )
    url: Url | None = Field(None, description="Where to read about the source (dataset card link).")
    description: str = Field("", description="One line for the dataset card.")
    required: bool = Field(
        True, description="A missing local `path` is an error. False: the source is skipped with a warning (optional private data)."
    )

    @model_validator(mode="after")
    def _prompts_have_no_responses(self) -> Source:
        if self.kind == "prompts" and (self.fields.response or self.fields.reasoning):
            raise ValueError("a `prompts` source maps no `response` or `reasoning`; its responses come from a generate step")
        return self


class StepBase(Strict):
    """Fields common to every curation step."""

    name: Slug | None = Field(None, description="Name of the step in stats and cards. Default: its type (numbered if repeated).")
    sources: list[Slug] | None = Field(
        None, description="Names or groups of the sources this step applies to; other records pass through. Default: all."
    )


class LLMCall(Strict):
    """A model behind an OpenAI-compatible API: an existing endpoint, or a vLLM server datatrove starts."""

    model: str = Field(description="Model name (Hub id for a vLLM server, or the endpoint's model name).")
    endpoint: Url | None = Field(
        None, description="Base URL of an OpenAI-compatible API (…/v1). Unset: datatrove's InferenceRunner starts vLLM locally."
    )
    api_key_env: EnvName | None = Field(None, description="Environment variable holding the endpoint's API key (never written anywhere).")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: Probability = Field(1.0, description="Nucleus sampling threshold.")
    max_tokens: PositiveInt = Field(1024, description="Maximum tokens generated per request.")
    max_concurrent_requests: PositiveInt = Field(64, description="Requests in flight at once.")
    tensor_parallel_size: PositiveInt = Field(1, description="GPUs per vLLM server when medrecipe starts one.")


class CompleteGeneration(StepBase):
    """Drop traces whose reasoning or answer is cut off."""

    type: Literal["complete_generation"] = Field(description="Step type.")
    think_open: str = Field("<think>", description="Tag that opens the reasoning.")
    think_close: str = Field("</think>", description="Tag that closes the reasoning; an opened but unclosed trace is dropped.")
    require_answer: bool = Field(True, description="Drop traces with no final answer after the reasoning.")
    drop_finish_reasons: list[str] = Field(["length"], description="Finish reasons that mark a cut-off generation.")


class MinPromptWords(StepBase):
    """Keep prompts with more than a number of words (CJK characters count as words)."""

    type: Literal["min_prompt_words"] = Field(description="Step type.")
    more_than: NonNegativeInt = Field(3, description="Keep prompts with strictly more words than this.")


class MaxWordOccurrences(StepBase):
    """Drop traces in which a word occurs too often (e.g. the hesitation marker "Wait")."""

    type: Literal["max_word_occurrences"] = Field(description="Step type.")
    word: str = Field("Wait", min_length=1, description="The word to count (whole-word matches).")
    field: Literal["response", "prompt", "all"] = Field("response", description="Which text to count in.")
    case_sensitive: bool = Field(True, description="Count case-sensitively.")
    max_count: NonNegativeInt | None = Field(None, description="Drop records with more occurrences than this.")
    percentile: float | None = Field(
        None,
        gt=0.0,
        le=100.0,
        description="Percentile of the corpus' counts. Without `max_count` the threshold is resolved from the data; "
        "with it, the observed percentile is recorded beside the fixed threshold in the stats.",
    )

    @model_validator(mode="after")
    def _threshold_given(self) -> MaxWordOccurrences:
        if self.max_count is None and self.percentile is None:
            raise ValueError("give `max_count`, `percentile`, or both")
        return self


class NearDedup(StepBase):
    """Remove near-duplicates by n-gram Jaccard similarity, with MinHash LSH."""

    type: Literal["near_dedup"] = Field(description="Step type.")
    field: Literal["response", "prompt", "conversation"] = Field("response", description="Which text is compared.")
    ngram: PositiveInt = Field(4, description="Shingle size in tokens (words; each CJK character is a token).")
    threshold: float = Field(0.7, gt=0.0, lt=1.0, description="Jaccard similarity at or above which two records are duplicates.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations; LSH bands x rows are derived from it and the threshold.")
    verify: bool = Field(
        True, description="Link an LSH candidate pair only if a 1,024-bin MinHash sketch estimates its Jaccard at or above the "
        "threshold (standard error about 0.015), checking every candidate pair that could join two clusters; off: every "
        "candidate pair is a link, as in datatrove.")


class DecontaminateNgram(StepBase):
    """Remove records whose prompt shares a word n-gram with an evaluation item (open-r1's method), or contains the
    whole of a question shorter than n words."""

    type: Literal["decontaminate_ngram"] = Field(description="Step type.")
    n: PositiveInt = Field(8, description="n-gram size in words (lower case, split on whitespace, as open-r1 does).")
    field: Literal["prompt", "conversation"] = Field("prompt", description="Which text is checked.")
    benchmarks: list[str] | None = Field(None, description="Benchmarks to decontaminate against. Default: every benchmark of `eval`.")
    include_options: bool = Field(True, description="Index the evaluation items' answer options as well as their questions.")
    whole_question_min_words: PositiveInt = Field(
        4, description="A question of fewer than `n` words is matched whole: a record containing all its words in a row, "
        "punctuation aside, is removed. Questions of fewer words than this are not matched (one or two words name a topic).")


class DecontaminateFuzzy(StepBase):
    """Remove records whose prompt is similar to an evaluation item: rapidfuzz's ratio on normalised text, exactly as
    scoring every pair would (the II-Medical cards' "fuzzy decontamination from s1k"; s1's public code publishes
    8-gram decontamination only, so this is medrecipe's reading of it)."""

    type: Literal["decontaminate_fuzzy"] = Field(description="Step type.")
    threshold: float = Field(80.0, gt=0.0, le=100.0, description="Similarity in percent at or above which a record is removed.")
    field: Literal["prompt", "conversation"] = Field("prompt", description="Which text is checked.")
    benchmarks: list[str] | None = Field(None, description="Benchmarks to decontaminate against. Default: every benchmark of `eval`.")
    include_options: bool = Field(
        True, description="Compare with each question alone and with the question plus its options (as the evaluation "
        "prompt shows them), keeping the higher score; off: the question alone.")


class Embedding(Strict):
    """Sentence embeddings of prompts."""

    model: str = Field("sentence-transformers/all-MiniLM-L6-v2", description="sentence-transformers model (Hub id or local path).")
    batch_size: PositiveInt | None = Field(
        None, description="Texts per forward pass. Default: 256 on a GPU, 32 on a CPU (where padding to a batch's longest text costs most).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to encode; auto: a GPU when one is present.")
    max_seq_length: PositiveInt | None = Field(None, description="Truncate inputs to this many tokens. Default: the model's.")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Compute precision; auto: bfloat16 where the hardware computes it natively (recent GPUs, CPUs with "
        "AMX or AVX512-BF16), else float32. bfloat16 embeddings agree with float32 ones to a cosine above 0.9999.")


class KMeans(Strict):
    """K-means clustering of the embeddings."""

    clusters: PositiveInt = Field(50_000, description="Number of clusters K.")
    iterations: PositiveInt = Field(20, description="Lloyd iterations.")
    method: Literal["auto", "lloyd", "two_level"] = Field(
        "auto",
        description="`lloyd`: full K-means; `two_level`: sqrt(K) coarse clusters, then K-means inside each, exactly K in all "
        "(much faster for large K on a CPU); auto: two_level when K > 4096 and the backend runs on a CPU.",
    )
    backend: Literal["auto", "torch", "faiss", "numpy"] = Field(
        "auto", description="Where Lloyd's iterations run; auto: torch on a GPU when one is present, else numpy (which "
        "matched torch and beat faiss on a 2-core CPU).")
    max_training_points: PositiveInt | None = Field(
        None, description="Fit the centres on a random sample of at most this many points, then assign all points."
    )


class LLMClassifier(LLMCall):
    """Classify each selected prompt with an LLM."""

    backend: Literal["llm"] = Field(description="Classifier type.")
    model: str = Field("Qwen/Qwen2.5-32B-Instruct", description="The classifying model.")
    labels: list[str] = Field(min_length=2, description="The label set offered to the model.")
    prompt: str = Field(
        "Classify the domain of the following question. Answer with exactly one label from this list: {labels}.\n\n"
        "Question:\n{prompt}\n\nLabel:",
        description="Prompt template with {prompt} and {labels}.",
    )
    max_tokens: PositiveInt = Field(16, description="Maximum tokens of the answer (a label).")
    synonyms: dict[str, str] = Field(
        {}, description="Other answers that mean a label, e.g. {Medicine: Medical}. An answer counts only if it is a label or "
        "a synonym (case aside), or a sentence naming exactly one of them without a negation: 'not medical', 'Non-medical' "
        "and 'Medical or Biology' name no label.")

    @field_validator("prompt")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return placeholders(value, ("prompt", "labels"), ("prompt", "labels"), "the prompt template")

    @model_validator(mode="after")
    def _synonyms_name_labels(self) -> LLMClassifier:
        unknown = sorted({label for label in self.synonyms.values() if label not in self.labels})
        if unknown:
            raise ValueError(f"`synonyms` map to labels the classifier does not offer: {', '.join(unknown)}")
        return self


class EmbeddingClassifier(Strict):
    """Zero-shot classification by similarity to label descriptions (CPU-friendly)."""

    backend: Literal["embedding"] = Field(description="Classifier type.")
    labels: dict[str, str] = Field(min_length=2, description="Label -> description; a prompt takes the label whose description is nearest.")


Classifier = Annotated[Union[LLMClassifier, EmbeddingClassifier], Field(discriminator="backend")]


class DomainFilter(StepBase):
    """Embed prompts, cluster them, classify the prompts nearest each centre, vote, keep clusters of the wanted domains."""

    type: Literal["domain_filter"] = Field(description="Step type.")
    field: Literal["prompt"] = Field("prompt", description="Which text is embedded.")
    embedding: Embedding = Field({}, description="The embedding model.")
    kmeans: KMeans = Field({}, description="The clustering.")
    nearest: PositiveInt = Field(10, description="Prompts nearest each centre that are classified.")
    classifier: Classifier = Field(description="How the selected prompts are classified.")
    keep: list[str] = Field(["Medical", "Biology"], min_length=1, description="Cluster labels to keep.")
    max_unlabeled_clusters: NonNegativeInt = Field(
        0, description="Clusters whose classified prompts gave no valid label (answers naming no label, failed requests) "
        "that the step accepts; they are removed and listed with their prompts and answers in "
        "decisions/<step>-unlabeled.json. More of them fail the data stage, with the same list.")

    @model_validator(mode="after")
    def _keep_known_labels(self) -> DomainFilter:
        unknown = [label for label in self.keep if label not in self.classifier.labels]
        if unknown:
            raise ValueError(f"`keep` names labels the classifier does not offer: {', '.join(unknown)}")
        return self


class Generate(LLMCall, StepBase):
    """Synthetic generation with rejection sampling: sample responses for prompt-only sources, keep the correct ones."""

    type: Literal["generate"] = Field(description="Step type.")
    model: str = Field("Qwen/Qwen3-235B-A22B", description="The generating model.")
    samples: PositiveInt = Field(6, description="Responses sampled per prompt.")
    max_samples: PositiveInt = Field(
        10, description="If none of the first `samples` responses is correct, keep sampling up to this many."
    )
    temperature: float = Field(0.6, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: Probability = Field(0.95, description="Nucleus sampling threshold.")
    max_tokens: PositiveInt = Field(16384, description="Maximum tokens per response.")
    grader: Literal["auto", "choice", "yes_no_maybe", "boxed", "none"] = Field(
        "auto",
        description="How a response is checked against the reference answer; auto: by the answer's shape. "
        "`none` keeps every response (pair it with a judge_filter).",
    )
    keep: Literal["all_correct", "first_correct"] = Field("all_correct", description="Which correct responses become records.")
    instruction: str = Field(
        "Please reason step-by-step, and put your final answer within \\boxed{}.",
        description="Appended to each prompt so answers can be graded.",
    )

    @model_validator(mode="after")
    def _sample_range(self) -> Generate:
        if self.max_samples < self.samples:
            raise ValueError("`max_samples` must be at least `samples`")
        return self


class JudgeFilter(LLMCall, StepBase):
    """LLM-as-judge: score each response against the reference answer, keep those scoring at least `min_score`."""

    type: Literal["judge_filter"] = Field(description="Step type.")
    model: str = Field("gpt-4o", description="The judge model.")
    api_key_env: EnvName | None = Field("OPENAI_API_KEY", description="Environment variable holding the judge endpoint's API key.")
    min_score: float = Field(8.0, description="Keep responses scoring at least this.")
    max_score: float = Field(10.0, gt=0.0, description="Top of the judge's scale.")
    max_tokens: PositiveInt = Field(512, description="Maximum tokens of the judge's verdict.")
    prompt: str = Field(
        "You are grading an answer to a medical question against a reference answer.\n\n"
        "Question:\n{prompt}\n\nReference answer:\n{answer}\n\nAnswer to grade:\n{response}\n\n"
        "Rate the answer's correctness and completeness compared to the reference on a scale of 0 to {max_score}. "
        "Reply with the score alone, as `Score: <number>`.",
        description="Judge prompt template with {prompt}, {answer}, {response} and {max_score}.",
    )

    @model_validator(mode="after")
    def _score_range(self) -> JudgeFilter:
        if not 0 <= self.min_score <= self.max_score:
            raise ValueError("`min_score` must lie between 0 and `max_score`")
        placeholders(self.prompt, ("prompt", "answer", "response", "max_score"), ("prompt", "answer", "response"), "the judge prompt")
        return self


Step = Annotated[
    Union[
        CompleteGeneration,
        MinPromptWords,
        MaxWordOccurrences,
        NearDedup,
        DecontaminateNgram,
        DecontaminateFuzzy,
        DomainFilter,
        Generate,
        JudgeFilter,
    ],
    Field(discriminator="type"),
]


class DataOutput(Strict):
    """The curated dataset as written by the data stage."""

    max_file_size_mb: PositiveInt = Field(512, description="Start a new parquet shard past this size.")
    keep_metadata: bool = Field(True, description="Keep `source`, `id` and per-record metadata columns beside `messages`.")


class Data(Strict):
    """Data curation: sources mapped into one chat format, then an ordered list of curation steps."""

    sources: list[Source] = Field(min_length=1, description="Input datasets, read in this order (earlier sources win dedup ties).")
    steps: list[Step] = Field(default_factory=list, description="Curation steps, applied in order.")
    output: DataOutput = Field({}, description="How the curated dataset is written.")
    expected_samples: PositiveInt | None = Field(None, description="Size of the original release's dataset, for the card.")


# ------------------------------------------------------------------------------------------------- sft


class Batch(Strict):
    """The global batch, a recipe fact; per-device batch and gradient accumulation are derived from it and the GPUs."""

    global_size: PositiveInt | None = Field(None, description="Sequences per optimizer step across all GPUs.")
    global_tokens: PositiveInt | None = Field(
        None, description="Tokens per optimizer step across all GPUs (packed sequences of `sequence_len` tokens)."
    )
    micro_batch_size: PositiveInt = Field(1, description="Sequences per GPU per forward pass.")
    token_tolerance: float = Field(
        0.05, ge=0.0, lt=1.0, description="How far the achievable token batch may be from `global_tokens` (relative)."
    )

    @model_validator(mode="after")
    def _one_size(self) -> Batch:
        if (self.global_size is None) == (self.global_tokens is None):
            raise ValueError("give exactly one of `global_size` or `global_tokens`")
        return self


class SFTDataset(Strict):
    """An SFT dataset other than the data stage's own output."""

    path: str = Field(description="Hub dataset id or local path.")
    subset: ConfigName | None = Field(None, description="Hub dataset configuration.")
    split: SplitName = Field("train", description="Split to train on.")
    format: Literal["chat", "alpaca"] = Field("chat", description="`chat`: a messages column; `alpaca`: instruction/input/output columns.")
    messages: str = Field("messages", description="Column with the chat turns (`chat` format).")


class SFT(Strict):
    """Supervised fine-tuning, compiled to an Axolotl config."""

    base_model: str | None = Field(None, description="Model to fine-tune. Default: the recipe's `base_model`.")
    chat_template: str = Field(
        "auto",
        description="Axolotl chat template; `auto`: from the base model family; `tokenizer_default`: the tokenizer's own.",
    )
    datasets: list[SFTDataset] | None = Field(None, description="Datasets to train on. Default: the data stage's curated output.")
    roles_to_train: list[str] = Field(["assistant"], min_length=1, description="Roles whose tokens carry the loss.")
    sequence_len: PositiveInt = Field(4096, description="Maximum sequence length in tokens.")
    sample_packing: bool = Field(False, description="Pack several samples into each sequence.")
    epochs: PositiveInt = Field(3, description="Training epochs.")
    learning_rate: float = Field(2e-5, gt=0.0, description="Peak learning rate.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field("cosine", description="Learning-rate schedule.")
    min_lr: float | None = Field(None, ge=0.0, description="Learning rate at the end of a cosine schedule.")
    warmup_steps: NonNegativeInt | None = Field(None, description="Warmup in optimizer steps.")
    warmup_ratio: float | None = Field(None, ge=0.0, lt=1.0, description="Warmup as a fraction of all steps.")
    optimizer: str = Field("adamw_torch_fused", description="Optimizer name as Axolotl knows it.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="Adam beta1 and beta2.")
    adam_epsilon: float = Field(1e-8, gt=0.0, description="Adam epsilon.")
    weight_decay: float = Field(0.0, ge=0.0, description="Weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    neftune_noise_alpha: float | None = Field(None, gt=0.0, description="NEFTune noise alpha; unset disables NEFTune.")
    bf16: bool = Field(True, description="Train in bfloat16.")
    attention: Literal["flash_attention", "sdpa", "eager", "flex"] = Field("flash_attention", description="Attention implementation.")
    gradient_checkpointing: bool = Field(True, description="Recompute activations to save memory.")
    deepspeed: Literal["zero1", "zero2", "zero3", "zero3_offload"] | None = Field(
        "zero3", description="DeepSpeed ZeRO config shipped with medrecipe; unset trains without DeepSpeed."
    )
    batch: Batch = Field({"global_size": 128}, description="The global batch.")
    nodes: PositiveInt | None = Field(None, description="Nodes for this stage. Default: `compute.nodes`.")
    gpus_per_node: PositiveInt | None = Field(None, description="GPUs per node for this stage. Default: `compute.gpus_per_node`.")
    saves_per_epoch: PositiveInt = Field(1, description="Checkpoints saved per epoch.")
    logging_steps: PositiveInt = Field(1, description="Log every this many steps.")
    val_set_size: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction held out for validation.")
    max_steps: PositiveInt | None = Field(None, description="Stop after this many steps (smoke tests).")
    axolotl: dict[str, Any] = Field(
        default_factory=dict,
        description="Further Axolotl keys, passed through verbatim; compile checks each is a key Axolotl knows.",
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> SFT:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give at most one of `warmup_steps` or `warmup_ratio`")
        if self.min_lr is not None and self.min_lr > self.learning_rate:
            raise ValueError("`min_lr` must not exceed `learning_rate`")
        return self


# -------------------------------------------------------------------------------------------------- rl


class PromptData(DatasetLocation):
    """Prompts with reference answers for online RL. medrecipe reads them through `fields`, as it reads a curation
    source, and writes the file OpenRLHF trains on: one chat prompt (the user turn: context, question, lettered
    options, then `instruction`) and its label per row."""

    fields: Fields = Field(
        description="Column mapping, as for a curation source: the prompt (`prompt` with `options`, `context`, or `messages`) "
        "and `answer`, the reference the reward function grades against (an option letter for multiple choice)."
    )
    instruction: str | None = Field(
        None, description="Appended to every user prompt after a blank line, e.g. the request for a \\boxed{} answer."
    )
    apply_chat_template: bool = Field(True, description="Format prompts with the model's chat template.")
    max_samples: PositiveInt | None = Field(None, description="Use at most this many prompts.")
    size: PositiveInt | None = Field(
        None,
        description="Number of prompts in the dataset. OpenRLHF takes warmup as a ratio of all steps: with the size known it is "
        "fixed at compile time, otherwise `launch.sh` counts the prompts before launching.",
    )

    @model_validator(mode="after")
    def _graded(self) -> PromptData:
        if not self.fields.answer:
            raise ValueError("map `fields.answer`: the reward function grades each response against it")
        if self.fields.response or self.fields.reasoning:
            raise ValueError("RL prompts map no `response` or `reasoning`; the policy writes them")
        return self


class PreferenceData(Strict):
    """Preference pairs for DPO or reward-model training, read by OpenRLHF itself."""

    path: ModelRef = Field(description="Hub dataset id or local file or folder (OpenRLHF's --data.dataset).")
    split: SplitName = Field("train", description="Split.")
    prompt_key: str | None = Field(
        None,
        description="Column with the prompt as chat turns. Unset: the prompt is `chosen` without its last turn (OpenRLHF's "
        "DPO default), which is right when `chosen` and `rejected` are whole conversations; a reward model then scores "
        "whole conversations.",
    )
    chosen_key: str = Field("chosen", description="Column with the preferred response (a conversation, or text with `prompt_key`).")
    rejected_key: str = Field("rejected", description="Column with the dispreferred response.")
    apply_chat_template: bool = Field(True, description="Format with the model's chat template.")
    max_samples: PositiveInt | None = Field(None, description="Use at most this many pairs.")
    size: PositiveInt | None = Field(
        None,
        description="Number of pairs in the dataset. OpenRLHF takes warmup as a ratio of all steps: with the size known it is "
        "fixed at compile time, otherwise `launch.sh` counts the pairs before launching.",
    )


class Overlong(Strict):
    """DAPO's soft overlong punishment: a linear penalty in the last `buffer_length` tokens before the limit."""

    buffer_length: PositiveInt = Field(4096, description="Length of the penalty zone in tokens.")
    penalty_factor: float = Field(1.0, ge=0.0, description="Penalty at the limit (scaled linearly across the buffer).")
    filter: bool = Field(
        False,
        description="DAPO's overlong filtering: mask the loss of truncated responses. OpenRLHF 0.11 has no such option; "
        "compile reports it as a warning.",
    )


class RuleReward(Strict):
    """The rule-based verifier's reward: the extracted final answer graded against the reference answer."""

    correct: float = Field(1.0, description="Reward of a correct answer.")
    incorrect: float = Field(-1.0, description="Reward of a wrong or missing answer (DAPO uses -1).")
    require_box: bool = Field(
        True, description="Only an answer inside \\boxed{} counts; an unboxed answer earns `incorrect` (teaches the format)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RuleReward:
        if self.incorrect >= self.correct:
            raise ValueError("`incorrect` must be lower than `correct`")
        return self


class Rollout(Strict):
    """The vLLM engines that generate rollouts."""

    engines: PositiveInt | None = Field(None, description="vLLM engines. Default: all GPUs of the stage / tensor_parallel_size.")
    tensor_parallel_size: PositiveInt = Field(1, description="GPUs per vLLM engine.")
    gpu_memory_utilization: float = Field(0.6, gt=0.0, le=1.0, description="Fraction of GPU memory vLLM may take.")
    enable_prefix_caching: bool = Field(True, description="vLLM prefix caching.")


class RLStageBase(Strict):
    """Fields common to every post-SFT stage."""

    init_from: str = Field("sft", description="`sft` (this recipe's SFT output) or a model id / path.")
    learning_rate: float = Field(gt=0.0, description="Peak learning rate.")
    warmup_steps: NonNegativeInt | None = Field(
        None, description="Warmup in optimizer steps (converted to OpenRLHF's ratio). Unset, with no `warmup_ratio`: none."
    )
    warmup_ratio: float | None = Field(
        None, ge=0.0, lt=1.0, description="Warmup as a fraction of all optimizer steps (OpenRLHF's own form)."
    )
    lr_scheduler: Literal["constant", "cosine"] = Field(
        "constant", description="Learning rate after warmup: `constant`, or `cosine` decay to `min_lr_ratio` x the peak."
    )
    min_lr_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="End of the cosine schedule as a fraction of the peak.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="Adam beta1 and beta2.")
    weight_decay: float = Field(0.0, ge=0.0, description="Weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    epochs: PositiveInt = Field(1, description="Passes over the data.")
    zero_stage: Literal[0, 1, 2, 3] = Field(3, description="DeepSpeed ZeRO stage.")
    bf16: bool = Field(True, description="Train in bfloat16.")
    gradient_checkpointing: bool = Field(True, description="Recompute activations to save memory.")
    flash_attention: bool = Field(True, description="Use FlashAttention.")
    micro_train_batch_size: PositiveInt = Field(1, description="Samples per GPU per training forward pass.")
    nodes: PositiveInt | None = Field(None, description="Nodes for this stage. Default: `compute.nodes`.")
    gpus_per_node: PositiveInt | None = Field(None, description="GPUs per node. Default: `compute.gpus_per_node`.")
    max_steps: PositiveInt | None = Field(None, description="Stop after this many steps (smoke tests).")
    openrlhf: dict[str, Any] = Field(
        default_factory=dict,
        description="Further OpenRLHF flags (dotted names without `--`), passed verbatim and checked by OpenRLHF's own parser.",
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> RLStageBase:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give at most one of `warmup_steps` or `warmup_ratio`")
        return self


class PolicyOptimization(RLStageBase):
    """Online RL with a rule-based verifier: DAPO, or GRPO."""

    algorithm: Literal["dapo", "grpo"] = Field(description="`dapo` (clip-higher, dynamic sampling, overlong shaping) or `grpo`.")
    data: PromptData = Field(description="The RL prompts.")
    save_steps: PositiveInt = Field(
        10,
        description="Save a resumable checkpoint (DeepSpeed states, the last 3 kept) every this many steps; a rerun resumes "
        "from the last one. OpenRLHF's own default is never; each DAPO step generates and trains hundreds of groups.",
    )
    max_prompt_length: PositiveInt = Field(2048, description="Maximum prompt tokens.")
    max_response_length: PositiveInt = Field(8192, description="Maximum generated tokens.")
    overlong: Overlong | None = Field(None, description="Overlong buffer and penalty (DAPO); unset disables it.")
    reward: RuleReward = Field({}, description="Rewards the generated verifier (rl/reward.py) gives.")
    clip_ratio_low: float = Field(0.2, gt=0.0, lt=1.0, description="PPO clip ratio below 1 (epsilon low).")
    clip_ratio_high: float = Field(0.2, gt=0.0, lt=1.0, description="PPO clip ratio above 1 (epsilon high; DAPO's clip-higher).")
    rollout_batch_size: PositiveInt = Field(description="Prompts per training step (the train prompt batch).")
    generation_batch_size: PositiveInt | None = Field(
        None,
        description="Prompts DAPO samples per step so that `rollout_batch_size` groups survive dynamic filtering; the rest "
        "are discarded. OpenRLHF 0.11 reaches the same on-policy batch by replacing each filtered prompt with a fresh one, "
        "so this is recorded, not passed (a larger generate batch there trains the surplus in later steps).",
    )
    mini_batch_size: PositiveInt = Field(description="Prompts per optimizer update (their samples form one train batch).")
    samples_per_prompt: PositiveInt = Field(description="Responses sampled per prompt (the group size).")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="Rollout sampling temperature.")
    top_p: Probability = Field(1.0, description="Rollout nucleus sampling.")
    top_k: int = Field(-1, ge=-1, le=INT_LIMIT, description="Rollout top-k; -1 disables it.")
    loss_aggregation: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"] = Field(
        "token_mean", description="How per-token losses are averaged."
    )
    entropy_coef: float = Field(0.0, ge=0.0, description="Entropy bonus coefficient; 0 leaves entropy out of the loss and its computation.")
    kl_coef: float = Field(0.0, ge=0.0, description="KL penalty coefficient; 0 disables the KL term (and the reference model).")
    dynamic_filtering: bool = Field(
        True, description="Drop groups whose samples are all correct or all wrong (DAPO dynamic sampling)."
    )
    micro_rollout_batch_size: PositiveInt = Field(8, description="Samples per GPU per rollout forward pass.")
    rollout: Rollout = Field({}, description="The vLLM rollout engines.")

    @model_validator(mode="after")
    def _batches_fit(self) -> PolicyOptimization:
        if self.mini_batch_size > self.rollout_batch_size:
            raise ValueError("`mini_batch_size` must not exceed `rollout_batch_size`")
        if self.rollout_batch_size % self.mini_batch_size:
            raise ValueError("`rollout_batch_size` must be a multiple of `mini_batch_size`")
        if self.generation_batch_size is not None and self.generation_batch_size < self.rollout_batch_size:
            raise ValueError("`generation_batch_size` must be at least `rollout_batch_size`")
        if self.overlong is not None and self.overlong.buffer_length >= self.max_response_length:
            raise ValueError("`overlong.buffer_length` must be shorter than `max_response_length`")
        return self


class PreferenceStage(RLStageBase):
    """Offline preference learning: DPO, or a reward model trained on preference pairs."""

    algorithm: Literal["dpo", "reward_model"] = Field(description="`dpo`, or `reward_model` (a Bradley-Terry reward model).")
    data: PreferenceData = Field(description="The preference pairs.")
    save_steps: PositiveInt = Field(
        200,
        description="Save a resumable checkpoint (DeepSpeed states, the last 3 kept) every this many steps; a rerun resumes "
        "from the last one. OpenRLHF's own default is never.",
    )
    beta: float = Field(0.1, gt=0.0, description="DPO beta (ignored by reward-model training).")
    max_len: PositiveInt = Field(4096, description="Maximum tokens of prompt plus response.")
    train_batch_size: PositiveInt = Field(128, description="Pairs per optimizer step across all GPUs.")


RL = Annotated[Union[PolicyOptimization, PreferenceStage], Field(discriminator="algorithm")]


# ------------------------------------------------------------------------------------------------ eval


class BenchmarkRef(Strict):
    """A benchmark of the registry, optionally read from a local copy."""

    name: str = Field(description="Registry name, e.g. `medmcqa` (see `medrecipe plan`).")
    path: str | None = Field(None, description="Local folder or file holding the benchmark (offline runs), relative to the recipe.")
    split: SplitName | None = Field(None, description="Split to evaluate on. Default: the registry's.")
    max_samples: PositiveInt | None = Field(None, description="Evaluate on at most this many items.")


class Sampling(Strict):
    """Generation parameters for evaluation."""

    temperature: float = Field(0.6, ge=0.0, le=2.0, description="Sampling temperature; 0 decodes greedily.")
    top_p: Probability = Field(0.9, description="Nucleus sampling threshold.")
    top_k: int | None = Field(None, ge=-1, le=INT_LIMIT, description="Top-k; unset: the backend's default.")
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


class Published(Strict):
    """A published results table: our reproduction is compared against it."""

    source: str = Field(description="Where the numbers come from (card, paper, table).")
    reproduces: str = Field(description="The row of `scores` this recipe reproduces.")
    scores: dict[str, dict[str, float]] = Field(description="Model name -> benchmark name -> score in percent.")
    averages: dict[str, float] = Field(
        default_factory=dict, description="The table's own average column, by model (checked against the mean of its scores)."
    )

    @model_validator(mode="after")
    def _rows_present(self) -> Published:
        for name in [self.reproduces, *self.averages]:
            if name not in self.scores:
                raise ValueError(f"{name!r} has no row in `scores`")
        for name, average in self.averages.items():
            row = self.scores[name]
            mean = sum(row.values()) / len(row)
            if abs(mean - average) > 0.01 + 0.005 * len(row):
                raise ValueError(f"the average of {name!r} is {average}, but its scores average {mean:.2f}")
        return self


class Eval(Strict):
    """Evaluation, compiled to a lighteval suite."""

    benchmarks: list[BenchmarkRef] = Field(min_length=1, description="Benchmarks to evaluate on (names, or mappings with a local path).")
    model: str = Field("final", description="`final` (last trained stage), `sft`, `rl`, `base`, or a model id / path.")
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
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = Field("bfloat16", description="Model dtype.")
    judge: LLMCall | None = Field(None, description="Judge model for rubric-graded benchmarks (HealthBench).")
    published: Published | None = Field(None, description="The published results table this recipe reproduces.")

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _names_as_refs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value


# --------------------------------------------------------------------------------------------- publish


class Card(Strict):
    """Text of the generated cards that the recipe, not the run, knows."""

    overview: str = Field("", description="Opening paragraph of the model card.")
    limitations: list[str] = Field(default_factory=list, description="Limitations and considerations, one per line.")
    citation: str | None = Field(None, description="BibTeX entry to cite.")
    language: list[str] = Field(["en"], min_length=1, description="Languages (ISO 639-1) for card metadata.")
    tags: list[str] = Field(default_factory=lambda: ["medical"], description="Extra Hub tags.")


class Publish(Strict):
    """What `medrecipe publish` pushes."""

    dataset: bool = Field(True, description="Publish the curated dataset.")
    sft_model: bool = Field(True, description="Publish the SFT checkpoint.")
    model: bool = Field(True, description="Publish the final model.")
    tag_recipe_hash: bool = Field(True, description="Tag every pushed commit `recipe-<hash>` so each artifact names the recipe that made it.")
    card: Card = Field({}, description="Card text.")


# --------------------------------------------------------------------------------------------- compute


class Slurm(Strict):
    """Slurm job settings (datatrove's Slurm executor, sbatch launches of training)."""

    partition: SlurmName | None = Field(None, description="Partition.")
    account: SlurmName | None = Field(None, description="Account to charge.")
    qos: SlurmName | None = Field(None, description="Quality of service.")
    time: str = Field("24:00:00", pattern=r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$", description="Time limit per job, [D-]HH:MM:SS.")
    cpus_per_task: PositiveInt = Field(1, description="CPUs per data task.")
    mem_per_cpu_gb: PositiveInt = Field(2, description="Memory per CPU in GB (whole GB: Slurm's --mem-per-cpu=<n>G).")
    venv: ScriptWord | None = Field(None, description="Virtual environment the jobs activate (must have medrecipe installed).")
    container: ScriptWord | None = Field(None, description="Container image the jobs run in (srun --container-image).")
    sbatch_args: dict[SbatchOption, SbatchValue] = Field(
        default_factory=dict, description="Further #SBATCH options, e.g. {constraint: h100} (no spaces or quotes in a value)."
    )


class Ray(Strict):
    """Ray cluster to run on."""

    address: str | None = Field(None, description="Cluster address; unset: a local Ray is started.")


class Compute(Strict):
    """Where the work runs."""

    gpus_per_node: PositiveInt = Field(8, description="GPUs per node for training and evaluation.")
    nodes: PositiveInt = Field(1, description="Nodes for training.")
    executor: Literal["local", "ray", "slurm"] = Field("local", description="Executor of the data stage.")
    workers: PositiveInt | None = Field(None, description="Data tasks run at once. Default: the CPU count (local).")
    tasks: PositiveInt | None = Field(
        None, description="Shards the data stage is split into (part of its content key). Default: 8; raise it for large corpora."
    )
    slurm: Slurm = Field({}, description="Slurm settings.")
    ray: Ray = Field({}, description="Ray settings.")


# -------------------------------------------------------------------------------------------------- top


class Recipe(Strict):
    """A whole medical-LLM release: data, SFT, RL, evaluation and publishing."""

    name: Slug = Field(description="Name of the recipe; default repository names derive from it.")
    description: str = Field("", description="One line on what the recipe builds.")
    base_model: ModelRef = Field(description="The model everything starts from (Hub id or path).")
    license: str = Field("apache-2.0", description="License of the released artifacts (Hub license id).")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="The one seed every tool receives.")
    hub: Hub = Field({}, description="Hub publishing targets.")
    data: Data | None = Field(None, description="Data curation.")
    sft: SFT | None = Field(None, description="Supervised fine-tuning.")
    rl: RL | None = Field(None, description="Post-SFT stage: DAPO / GRPO, DPO, or a reward model.")
    eval: Eval | None = Field(None, description="Evaluation.")
    publish: Publish = Field({}, description="What is published.")
    compute: Compute = Field({}, description="Where the work runs: GPUs, nodes and the data executor.")

    def evaluated_model(self) -> str:
        """What `eval.model` names once `final` is resolved: "rl", "sft", "base", or a model id / path."""
        assert self.eval is not None
        if self.eval.model == "final":
            return "rl" if self.rl else ("sft" if self.sft else "base")
        return self.eval.model

    def repo_name(self, artifact: Literal["model", "sft", "dataset"]) -> str:
        """The Hub repository name of an artifact (namespace excluded)."""
        explicit = {"model": self.hub.model_repo, "sft": self.hub.sft_repo, "dataset": self.hub.dataset_repo}[artifact]
        return explicit or {"model": self.name, "sft": f"{self.name}-sft", "dataset": f"{self.name}-data"}[artifact]
