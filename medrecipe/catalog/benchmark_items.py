"""Benchmark rows -> items -> prompts: one reading of every benchmark, for evaluation and decontamination alike.

Standard library only: `compile` embeds this module's source into `eval/tasks.py`, which runs inside
lighteval's environment where medrecipe is not installed.
"""

from __future__ import annotations

import ast
import json
import re

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_QUESTION_KEYS = ("question", "Question", "problem", "query")
_OPTION_LISTS = ("options", "choices", "Options")
_GOLD_KEYS = ("answer_idx", "cop", "answer_index", "label", "answer", "final_decision", "correct_answer")
# What a yes/no/maybe item shows in place of lettered options: the answer space grading accepts. The RL prompts say it
# too (run/rl_prompts.py), so that training and evaluation ask alike.
YES_NO_MAYBE_OPTIONS = "Answer with yes, no, or maybe."


def _parse_options(value) -> dict[str, str]:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return {}
    if isinstance(value, dict):
        return {str(k).strip().upper(): str(v) for k, v in value.items() if v is not None and str(v).strip()}
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) and "key" in v for v in value):
        return {str(v["key"]).strip().upper(): str(v["value"]) for v in value if v.get("value")}  # [{key, value}] (bigbio)
    if isinstance(value, (list, tuple)):
        return {LETTERS[i]: str(v) for i, v in enumerate(value) if v is not None and str(v).strip()}
    return {}


def _options(row: dict, key: str | None) -> dict[str, str]:
    if key:
        return _parse_options(row.get(key))
    for name in _OPTION_LISTS:
        if row.get(name) is not None:
            found = _parse_options(row[name])
            if found:
                return found
    # Column-per-option layouts: opa..ope (MedMCQA), A..J, option_a..
    for prefix, keys in (("op", "abcdefghij"), ("", LETTERS[:10]), ("option_", "abcdefghij")):
        found = {LETTERS[i]: str(row[prefix + k]) for i, k in enumerate(keys) if row.get(prefix + k) not in (None, "")}
        if found:
            return found
    return {}


def _gold_letter(row: dict, key: str | None, options: dict[str, str], zero_based: bool) -> str:
    keys = (key,) if key else _GOLD_KEYS
    for name in keys:
        value = row.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            index = value if zero_based else value - 1
            # letters keep their positions when a blank option is dropped: the gold is the index's letter, if shown
            if 0 <= index < len(LETTERS) and LETTERS[index] in options:
                return LETTERS[index]
            continue
        text = str(value).strip()
        if len(text) == 1 and text.upper() in options:
            return text.upper()
        if text.startswith("(") and text.endswith(")") and text[1:-1].upper() in options:
            return text[1:-1].upper()
        matches = [letter for letter, option in options.items() if option.strip().lower() == text.lower()]
        if len(matches) == 1:
            return matches[0]
    raise ValueError(f"no gold answer found in row (looked at {', '.join(keys)})")


def row_matches(row: dict, where: dict) -> bool:
    """Whether a benchmark row is kept by a registry's or recipe's filter: each column equals the value, or one of the
    values when it is a list (MMLU-Pro's medical questions are two categories)."""
    return all(row.get(column) in value if isinstance(value, (list, tuple)) else row.get(column) == value
               for column, value in where.items())


def to_item(row: dict, reader: str, spec: dict | None = None, index: int = 0) -> dict:
    """A benchmark row as an item: {id, question, options, gold, kind, context, messages, rubrics}.

    `reader` is one of `multiple_choice`, `pubmedqa`, `healthbench`; `spec` gives column names where the
    defaults do not find them (question, options, gold, id) and `zero_based` for integer golds.
    """
    spec = spec or {}
    item_id = str(row.get(spec.get("id") or "id", row.get("question_id", row.get("pubid", row.get("prompt_id", index)))))
    if reader == "multiple_choice":
        question_key = spec.get("question") or next((k for k in _QUESTION_KEYS if k in row), "question")
        options = _options(row, spec.get("options"))
        if len(options) < 2:
            raise ValueError(f"row {item_id}: fewer than two options found")
        gold = _gold_letter(row, spec.get("gold"), options, spec.get("zero_based", True))
        return {"id": item_id, "kind": "choice", "question": str(row[question_key]).strip(), "options": options, "gold": gold}
    if reader == "pubmedqa":
        context = row.get("context") or {}
        passages = context.get("contexts", []) if isinstance(context, dict) else [str(context)]
        gold = str(row.get(spec.get("gold") or "final_decision", "")).strip().lower()
        return {
            "id": item_id,
            "kind": "yes_no_maybe",
            "question": str(row["question"]).strip(),
            "context": "\n".join(str(p) for p in passages),
            "options": {},
            "gold": gold,
        }
    if reader == "healthbench":
        messages = row.get("prompt") or row.get("messages") or []
        if isinstance(messages, str):
            messages = json.loads(messages)
        rubrics = row.get("rubrics") or []
        if isinstance(rubrics, str):
            rubrics = json.loads(rubrics)
        last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        return {
            "id": item_id,
            "kind": "rubric",
            "question": last_user,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "rubrics": [{"criterion": r["criterion"], "points": float(r["points"])} for r in rubrics],
            "options": {},
            "gold": "",
        }
    raise ValueError(f"unknown benchmark reader {reader!r}")


def options_block(options: dict[str, str]) -> str:
    return "\n".join(f"{letter}. {text}" for letter, text in options.items())


def render_prompt(item: dict, template: str, instruction: str) -> str:
    """The user prompt of an item: the recipe's template filled with question, lettered options and instruction."""
    if item["kind"] == "rubric":
        turns = item["messages"]
        if len(turns) == 1:
            return turns[0]["content"]
        return "\n\n".join(f"{t['role']}: {t['content']}" for t in turns)
    question = item["question"]
    if item.get("context"):
        question = f"Context: {item['context']}\n\nQuestion: {question}"
    if item["kind"] == "yes_no_maybe" and "{options}" in template:
        options = YES_NO_MAYBE_OPTIONS
    else:
        options = options_block(item["options"])
    # One pass over the three placeholders: other braces in the template (\boxed{}) stay as written, and a
    # question that happens to contain "{options}" is not filled in again.
    values = {"question": question, "options": options, "instruction": instruction}
    text = re.sub(r"\{(question|options|instruction)\}", lambda match: values[match.group(1)], template)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def item_text(item: dict, include_options: bool) -> str:
    """What decontamination compares against: the question, with its options when asked."""
    text = item["question"]
    if include_options and item["options"]:
        text += "\n" + options_block(item["options"])
    return text
