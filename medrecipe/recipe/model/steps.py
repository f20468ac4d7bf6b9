"""The curation steps of `data.steps`, one model per step type, joined by `type` in `Step`."""

from typing import Annotated, Literal, Self, Union

from pydantic import Field, field_validator, model_validator

from .basics import ApiKeyEnv, ModelName, NonNegativeInt, PositiveInt, Probability, Slug, Strict, Url, placeholders

class StepBase(Strict):
    """Fields common to every curation step."""

    name: Slug | None = Field(None, description="Name of the step in stats and cards. Default: its type (numbered if repeated).")
    sources: list[Slug] | None = Field(
        None, description="Names or groups of the sources this step applies to; other records pass through. Default: all."
    )

    def summary(self) -> str:
        """What the step does, in one line (the dataset card's): its class docstring's first paragraph, its lines joined
        (its first line alone ended the decontamination steps' sentences mid-way: "..., or contains the")."""
        return " ".join(line.strip() for line in (type(self).__doc__ or "").strip().split("\n\n", 1)[0].splitlines())


class LLMCall(Strict):
    """A model behind an OpenAI-compatible API: an existing endpoint, or a vLLM server datatrove starts."""

    model: ModelName = Field(description="Model name (Hub id for a vLLM server, or the endpoint's model name).")
    endpoint: Url | None = Field(
        None, description="Base URL of an OpenAI-compatible API (…/v1). Unset: datatrove's InferenceRunner starts vLLM locally."


    )
    api_key_env: ApiKeyEnv | None = Field(None, description="Environment variable holding the endpoint's API key (never written anywhere).")
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
    def _threshold_given(self) -> Self:
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
    n: PositiveInt = Field(8, description="n-gram size in words (lower case, split on whitespace, as open-r1 does; NFKC first).")
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
    iterations: Annotated[int, Field(gt=0, le=1000)] = Field(
        20, description="Lloyd iterations, at most (fewer once no point changes cluster).")
    method: Literal["auto", "lloyd", "two_level"] = Field(
        "auto",
        description="`lloyd`: full K-means; `two_level`: sqrt(K) coarse clusters, then K-means inside each, exactly K in all "
        "(much faster for large K on a CPU); auto: two_level when K > 4096 and the backend runs on a CPU.",
    )
    backend: Literal["auto", "torch", "faiss", "numpy"] = Field(
        "auto", description="Where Lloyd's iterations run; auto: torch on a GPU when one is present, else numpy (which "
        "matched torch and beat faiss on a 2-core CPU).")
    max_training_points: PositiveInt | None = Field(
        None, description="Fit the centres on a random sample of at most this many points (at least `clusters`), then "
        "assign all points."
    )

    @model_validator(mode="after")
    def _sample_holds_the_clusters(self) -> "KMeans":
        if self.max_training_points is not None and self.max_training_points < self.clusters:
            # A sample of fewer points than K fits fewer centres than K: the clusters came out fewer, unsaid (review).
            raise ValueError(f"max_training_points ({self.max_training_points:,}) is fewer than clusters ({self.clusters:,}): "
                             "K centres are fitted on at least K points")
        return self


class LLMClassifier(LLMCall):
    """Classify each selected prompt with an LLM."""

    backend: Literal["llm"] = Field(description="Classifier type.")
    model: ModelName = Field("Qwen/Qwen2.5-32B-Instruct", description="The classifying model.")
    labels: list[str] = Field(min_length=2, description="The label set offered to the model.")
    prompt: str = Field(
        "Classify the domain of the following question. Answer with exactly one label from this list: {labels}.\n\n"
        "Question:\n{prompt}\n\nLabel:",
        description="Prompt template with {prompt} and {labels}.",
    )
    max_tokens: PositiveInt = Field(16, description="Maximum tokens of the answer (a label).")
    synonyms: dict[str, str] = Field(
        {}, description="Other answers that mean a label, e.g. {Medicine: Medical}. An answer counts only if its first line is "
        "a label or a synonym (case, 'Label:', quotes and asterisks aside), or it is one line saying 'The domain (label, "
        "category, topic) is <label>': 'not medical', 'Anything but Medical' and 'Medical or Biology' name no label.")

    @field_validator("prompt")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return placeholders(value, ("prompt", "labels"), ("prompt", "labels"), "the prompt template")

    @model_validator(mode="after")
    def _synonyms_name_labels(self) -> Self:
        unknown = sorted({label for label in self.synonyms.values() if label not in self.labels})
        if unknown:
            raise ValueError(f"`synonyms` map to labels the classifier does not offer: {', '.join(unknown)}")
        # Answers are read case aside: two labels, or two synonyms, one case apart were one answer, and a synonym
        # spelled as a label took that label's answers to another (review: {Biology: Medical} counted "Biology" as
        # Medical, unsaid).
        labels = {label.lower() for label in self.labels}
        if len(labels) < len(self.labels):
            raise ValueError("`labels` differ only in case; an answer is read case aside")
        meaning: dict[str, str] = {}
        for word, label in self.synonyms.items():
            if word.lower() in labels and word.lower() != label.lower():
                raise ValueError(f"`synonyms` give {word!r} a meaning, but it is a label (an answer is read case aside)")
            if meaning.setdefault(word.lower(), label) != label:
                raise ValueError(f"`synonyms` map {word!r} to both {meaning[word.lower()]} and {label} (case aside)")
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
        0, description="Clusters whose classified prompts gave no valid label (answers naming no label, requests the "
        "endpoint refused as bad) that the step accepts; they are removed and listed with their prompts and answers in "
        "decisions/<step>-unlabeled.json. More of them fail the data stage, with the same list. An endpoint that is down "
        "fails the stage; its rerun asks what was not answered.")

    @model_validator(mode="after")
    def _keep_known_labels(self) -> Self:
        unknown = [label for label in self.keep if label not in self.classifier.labels]
        if unknown:
            raise ValueError(f"`keep` names labels the classifier does not offer: {', '.join(unknown)}")
        return self


class Generate(LLMCall, StepBase):
    """Synthetic generation with rejection sampling: sample responses for prompt-only sources, keep the correct ones.
    Sample i of a prompt is requested with seed `seed + i` (the recipe's seed); a prompt with no correct response is
    removed to the step's exclusion folder."""

    type: Literal["generate"] = Field(description="Step type.")
    model: ModelName = Field("Qwen/Qwen3-235B-A22B", description="The generating model.")
    samples: PositiveInt = Field(6, description="Responses sampled per prompt.")
    # At most blocks/record.py's MAX_RESPONSES: each kept response has its own place. The bound is in the type:
    # `PositiveInt = Field(..., le=32)` let PositiveInt's own upper bound override it (found by review: 33 passed).
    max_samples: Annotated[int, Field(gt=0, le=32)] = Field(
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

    def summary(self) -> str:
        if self.grader == "none":  # nothing is checked: a card that said "keep the correct ones" claimed a check
            return (f"Synthetic generation, ungraded: sample {self.samples} response{'s' if self.samples != 1 else ''} "
                    "for each prompt of a prompt-only source and keep every one (no reference answer is checked).")
        return super().summary()

    @model_validator(mode="after")
    def _sample_range(self) -> Self:
        if self.max_samples < self.samples:
            raise ValueError("`max_samples` must be at least `samples`")
        return self


class JudgeFilter(LLMCall, StepBase):
    """LLM-as-judge: score each response against the reference answer, keep those scoring at least `min_score`."""

    type: Literal["judge_filter"] = Field(description="Step type.")
    model: ModelName = Field("gpt-4o", description="The judge model.")
    api_key_env: ApiKeyEnv | None = Field("OPENAI_API_KEY", description="Environment variable holding the judge endpoint's API key.")
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
    def _score_range(self) -> Self:
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
