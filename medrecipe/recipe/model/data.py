"""The recipe's `data` section: its sources, how their columns map into chat records, and the output."""

from typing import Literal, Self

from pydantic import Field, model_validator

from .basics import ColumnName, ConfigName, DataPath, HubId, PositiveInt, RepoPath, Slug, SplitName, Strict, Url
from .steps import Step


class Fields(Strict):
    """How a source's columns map into one chat record: `messages` plus `source`, `id` and metadata.

    A record is built as: system, the prompt turns (`messages`, or `context` + `prompt` + `options`), then
    one assistant turn of `reasoning` (in think tags) and `response`, when those columns are mapped.
    """

    messages: ColumnName | None = Field(
        None, description="Column holding chat turns as a list of {role, content}; with `response` mapped, the prompt turns only."
    )
    role_key: ColumnName = Field("role", description="Key of the role inside each turn of `messages` (ShareGPT uses `from`).")
    content_key: ColumnName = Field("content", description="Key of the text inside each turn of `messages` (ShareGPT uses `value`).")
    roles: dict[str, str] = Field(
        {},
        description="Renames of roles inside `messages`, e.g. {human: user, gpt: assistant}.",
    )
    turns: ColumnName | None = Field(
        None, description="Column (or a file's row) holding alternating user/assistant strings, e.g. [q1, a1, q2, a2]."
    )
    prompt: ColumnName | None = Field(None, description="Column with the user prompt (when there is no `messages` column).")
    context: ColumnName | None = Field(None, description="Column with a passage placed before the prompt (PubMedQA's abstracts).")
    options: ColumnName | list[ColumnName] | None = Field(
        None,
        description="Multiple-choice options appended to the prompt as lettered lines: one column (a list, a letter->text "
        "mapping, or text), or one column per option (MedMCQA's opa..opd).",
    )


    reasoning: ColumnName | None = Field(
        None, description="Column with the reasoning trace; it is wrapped in the think tags in front of the response."
    )
    response: ColumnName | None = Field(None, description="Column with the assistant's final response.")
    system: ColumnName | None = Field(None, description="Column with a system prompt.")
    answer: ColumnName | None = Field(
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
        [],
        description="Tags whose wrappers are removed from assistant turns, keeping what they enclose, e.g. [answer] for "
        "`<answer>...</answer>` (the AM distilled sets). The think tags are never stripped.",
    )
    id: ColumnName | None = Field(None, description="Column with a stable record id. Default: `<source>/<row index>`.")
    finish_reason: ColumnName | None = Field(None, description="Column with the generator's finish reason (`length` marks a cut-off trace).")
    metadata: list[ColumnName] = Field([], description="Other columns to keep under `metadata`.")

    @model_validator(mode="after")
    def _one_way_to_the_prompt(self) -> Self:
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
    path: DataPath | None = Field(
        None, description="Local file, folder (searched recursively, hidden files and folders left out) or glob of "
        "jsonl/json/parquet files, relative to the recipe file; not in a hidden folder.")
    format: Literal["auto", "jsonl", "parquet"] = Field("auto", description="File format of `path`; auto: from the file suffix.")

    @model_validator(mode="after")
    def _one_location(self) -> Self:
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
    def _prompts_have_no_responses(self) -> Self:
        if self.kind == "prompts" and (self.fields.response or self.fields.reasoning):
            raise ValueError("a `prompts` source maps no `response` or `reasoning`; its responses come from a generate step")
        return self


class DataOutput(Strict):
    """The curated dataset as written by the data stage."""

    max_file_size_mb: PositiveInt = Field(512, description="Start a new parquet shard past this size.")
    keep_metadata: bool = Field(True, description="Keep the `id`, `source` and `metadata` columns beside `messages` and "
                                "`answer` (false: the published dataset holds no record's provenance).")


class Data(Strict):
    """Data curation: sources mapped into one chat format, then an ordered list of curation steps."""

    # at most blocks/record.py's MAX_SOURCES: a record's place in reading order holds its source's number in 7 bits
    sources: list[Source] = Field(min_length=1, max_length=128, description="Input datasets, read in this order (earlier sources win dedup ties).")
    steps: list[Step] = Field([], description="Curation steps, applied in order.")
    output: DataOutput = Field({}, description="How the curated dataset is written.")
    expected_samples: PositiveInt | None = Field(None, description="Size of the original release's dataset, for the card.")
