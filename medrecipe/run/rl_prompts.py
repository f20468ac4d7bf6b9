"""The RL prompts as OpenRLHF trains on them, written by medrecipe before the RL stage starts.

The recipe's prompt dataset is read through its field mapping by the same reader as a curation source (so an
'Answer Choices:' block becomes lettered options, and an answer given as option text becomes its letter), and
each row becomes one JSON line: `prompt` (the chat turns up to the last user turn, with the recipe's instruction
appended to it; plain text without a chat template), `label` (what rl/reward.py grades against:
`reference_label`) and `id`. OpenRLHF reads the file with --data.input_key prompt --data.label_key label, and hands
each sample's label to the reward as it is (openrlhf/datasets/prompts_dataset.py, preprocess_data). A row without a
reference answer is left out: every sample of it would score 0, and DAPO would spend its rollouts for nothing.

The file is written once per content key, which holds the recipe but not the data: a local prompt file that
changed since is refused, as the data stage refuses its sources (run/source_files.py; found by review: a corrected
answer key was never read, and rollouts were graded against the old one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..blocks.readers import SourceReader
from ..catalog.benchmark_items import YES_NO_MAYBE_OPTIONS
from ..compile.layout import Layout
from ..compile.openrlhf import LABEL_COLUMN, PROMPT_COLUMN
from ..errors import UserError
from ..grading import answer_kind
from ..recipe import LoadedRecipe
from ..recipe.model import PolicyOptimization
from . import source_files

READER_NAME = "rl-prompts"


def source(loaded: LoadedRecipe) -> dict:
    """The recipe's RL prompt dataset as a curation source (prompts only), for the reader."""
    rl = loaded.recipe.rl
    assert isinstance(rl, PolicyOptimization)
    spec = rl.data.model_dump(mode="json")
    if rl.data.path:
        spec["path"] = str(loaded.local_path(("rl", "data", "path")))
    spec.update({"name": READER_NAME, "kind": "prompts", "max_samples": rl.data.max_samples})
    return spec


def reader(loaded: LoadedRecipe) -> SourceReader:
    return SourceReader(source(loaded), 0)


def rows(loaded: LoadedRecipe, limit: int | None = None, step: SourceReader | None = None) -> Iterator[dict]:
    """The prompt file's rows, in the dataset's order (at most `limit`), read by `step` (whose stats count the rows
    it rejects) or a new reader."""
    rl = loaded.recipe.rl
    assert isinstance(rl, PolicyOptimization)
    step = step or reader(loaded)
    count = 0
    for document in step.run(None, 0, 1):
        if limit is not None and count >= limit:
            return
        if not has_answer(document.metadata):
            step.stat_update(f"rejected:{NO_ANSWER}")
            continue
        count += 1
        yield prompt_row(document.metadata, document.id, rl.data.instruction, rl.data.apply_chat_template)


NO_ANSWER = "no_answer"


def has_answer(metadata: dict) -> bool:
    """Whether a record (blocks/record.py's metadata) has a reference answer to grade against."""
    return bool((metadata["answer"] or "").strip())


def prompt_row(metadata: dict, record_id: str, instruction: str | None, chat: bool) -> dict:
    """A record (blocks/record.py's metadata) as one line of the prompt file: a conversation's turns up to its last
    user turn, earlier answers included (found by review: every assistant turn was dropped, so a follow-up answered
    nothing), and without the answer that ends it. (The reader leaves out a conversation without a user turn: its
    prompt text is empty.) A prompt graded as yes/no/maybe says so before the instruction, in evaluation's words
    (found by review: a PubMedQA-layout prompt never named the answer space, and "\\boxed{Probably}" scored 0)."""
    messages = metadata["messages"]
    last_user = max((index for index, turn in enumerate(messages) if turn["role"] == "user"), default=len(messages) - 1)
    turns = [dict(turn) for turn in messages[: last_user + 1]]
    asked = [YES_NO_MAYBE_OPTIONS] if answer_kind(metadata["answer"] or "") == "yes_no_maybe" else []
    for line in [*asked, instruction] if instruction else asked:
        turns[-1]["content"] = f"{turns[-1]['content'].rstrip()}\n\n{line}"
    prompt: list[dict] | str = turns if chat else "\n\n".join(turn["content"] for turn in turns)
    return {PROMPT_COLUMN: prompt, LABEL_COLUMN: reference_label(metadata["answer"], metadata["options"]), "id": record_id}


def reference_label(answer: str, options: dict[str, str]) -> str:
    """The `label` of a prompt: its reference answer and its options ({letter: text}, {} for none) as JSON text, which
    rl/reward.py reads back (compile/openrlhf/reward_entry.py, `reference`) to grade as evaluation and rejection
    sampling do, where the right option's text, boxed, is that option. Text rather than an object, because the
    `datasets` library OpenRLHF reads the file with would give every row's options one struct type."""
    return json.dumps({"answer": answer, "options": options}, ensure_ascii=False)


def write(loaded: LoadedRecipe, layout: Layout, log=print) -> Path:
    """Write layout.rl_prompts() once per content key (a rerun reuses it, while its local prompt file is unchanged);
    returns its path."""
    target = layout.rl_prompts()
    spec = source(loaded)
    if spec.get("path"):  # the files the reader reads: the split's, of a folder (data_files.local_files)
        source_files.hold_to_recorded({READER_NAME: source_files.file_states(spec["path"], spec.get("split"))}, target.parent)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    count, step = 0, reader(loaded)
    with partial.open("w", encoding="utf-8") as handle:
        for row in rows(loaded, step=step):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    rejected = {str(label).split(":", 1)[1]: int(value.total) for label, value in step.stats.stats.items()
                if str(label).startswith("rejected:")}
    if count == 0:  # a mapping that finds no answer in any row (a misnamed column) is caught here
        partial.unlink()
        raise UserError("the RL prompt dataset gave no prompts with a usable answer",
                        "check rl.data and its fields with: medrecipe preflight RECIPE")
    partial.replace(target)
    reasons = ", ".join(f"{reason} {number:,}" for reason, number in sorted(rejected.items()))
    log(f"rl: {count:,} prompts written to {target}" + (f"; rows left out: {reasons}" if rejected else ""))
    return target
