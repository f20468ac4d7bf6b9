"""The chat record every curation step sees: a datatrove Document whose metadata holds the conversation.

    doc.id                   "<source>/<row id>"
    doc.text                 the final response (the prompt, for a prompt-only record); what datatrove's own blocks read
    doc.metadata["source"]   the source name
    doc.metadata["order"]    the record's place in the recipe's reading order (earlier sources win dedup ties)
    doc.metadata["messages"] [{role, content}, ...]; reasoning sits in the assistant turn inside think tags
    doc.metadata["answer"]   the reference answer, or None
    doc.metadata["options"]  {letter: text} for multiple-choice prompts, else {}
    doc.metadata["extra"]    other mapped columns
"""

from __future__ import annotations

import json
import re
from typing import Any

from datatrove.data import Document

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# order = (source << 51 | part << 31 | row) << 5 | response: unique and sortable across sources, the parts of a source
# (its files' row groups, a Hub dataset's shards), their rows and the responses a generate step keeps for a row's
# prompt, within the int64 the steps sort and store orders in. Every record needs a place of its own: near_dedup and
# the domain filter decide by it (found by review: a prompt's generated responses shared its place, and near_dedup
# removed them all as duplicates of one another).
_SOURCE_BITS, _PART_BITS, _ROW_BITS, _RESPONSE_BITS = 7, 20, 31, 5
MAX_SOURCES, MAX_RESPONSES = 1 << _SOURCE_BITS, 1 << _RESPONSE_BITS  # recipe.model's limits on sources and max_samples


class MappingError(ValueError):
    """A source row does not have the columns its recipe mapping names."""

    def __init__(self, message: str, column: str):
        super().__init__(message)
        self.column = column

    def __reduce__(self):  # raised in a worker, it is pickled to the parent and rebuilt there with both arguments
        return type(self), (str(self), self.column)


class RowRejected(ValueError):
    """A source row that cannot become a record; the reader removes it with `reason` (stats and excluded/read)."""

    reason = "rejected"


class AnswerNotAnOption(RowRejected):
    """A row whose answer, declared as a letter or an option's text, names none of its options."""

    reason = "answer_not_an_option"


class NotText(RowRejected):
    """A row whose mapped text column holds a list or a mapping (numbers are read as their text)."""

    reason = "not_text"


class EmptyText(RowRejected):
    """A row whose prompt, or whose response where the source holds conversations, is empty."""

    reason = "empty_text"


class UnknownRole(RowRejected):
    """A row with a turn whose role, after the recipe's `roles` mapping, is not system, user or assistant (ShareGPT's
    human and gpt unmapped): no chat template trains it, and its prompt or response would read as empty."""

    reason = "unknown_role"


class InvalidText(RowRejected):
    """A row whose text holds a lone surrogate (a broken escape such as "\\ud83d"): it is not Unicode text."""

    reason = "invalid_text"


_INT64 = 1 << 63


def _text(value: Any, column: str) -> str:
    """A text column's value as text: None is empty, numbers and booleans their text, lists and mappings refused."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        raise NotText(f"column {column!r} holds a {type(value).__name__}, not text")
    return str(value)


def _text_column(row: dict, name: str, source: str) -> str:
    return _text(_column(row, name, source), name)


def _portable(value: Any) -> Any:
    """A metadata value every writer can store: integers beyond 64 bits and text with lone surrogates as escaped text."""
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _portable(v) for k, v in value.items()}
    return value


def order_key(source_index: int, part: int, row: int) -> int:
    """A record's place in reading order: `row` of `part` of the recipe's source number `source_index`."""
    if part >> _PART_BITS or row >> _ROW_BITS or source_index >> _SOURCE_BITS:
        raise ValueError(f"source {source_index}, part {part}, row {row}: past the {MAX_SOURCES} sources of "
                         f"{1 << _PART_BITS:,} parts of {1 << _ROW_BITS:,} rows a recipe may have (records would share a "
                         "place in reading order)")
    return ((((source_index << _PART_BITS) | part) << _ROW_BITS) | row) << _RESPONSE_BITS


def response_order(order: int, number: int) -> int:
    """The place of response `number` (from 0) generated for the prompt at `order`: after the prompt's own place, before
    the next row's. A record takes one generate step's responses (recipe.rules: generate completes prompts only)."""
    if order % MAX_RESPONSES or not 0 <= number < MAX_RESPONSES:
        raise ValueError(f"response {number} of the record at {order}: a record has one generate step's responses, at most "
                         f"{MAX_RESPONSES}")
    return order | number


def _column(row: dict, name: str, source: str) -> Any:
    if name not in row:
        raise MappingError(f"source {source!r}: column {name!r} not found; the rows have: {', '.join(sorted(row))}", name)
    return row[name]


_LETTERED_LINE = re.compile(r"^\(?([A-Z])[.):]\s*(.*)$")


def lettered_lines(text: str) -> dict[str, str]:
    """`A. text` lines (or `(A) text`, `A) text`) after an optional heading such as 'Answer Choices:'; a line that
    starts no option continues the previous one. {} when the block has no lettered lines."""
    options: dict[str, str] = {}
    letter = None
    for line in text.splitlines():
        match = _LETTERED_LINE.match(line.strip())
        if match:
            letter = match.group(1)
            options[letter] = match.group(2).strip()
        elif letter is not None and line.strip():
            options[letter] += " " + line.strip()
    return options


def _options(row: dict, mapping: str | list[str], source: str, format: str = "auto") -> dict[str, str]:
    if isinstance(mapping, list):
        values = [_column(row, name, source) for name in mapping]
        return {LETTERS[i]: str(v) for i, v in enumerate(values) if v not in (None, "")}
    value = _column(row, mapping, source)
    if format == "lettered_lines":
        return lettered_lines(str(value or ""))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            try:
                value = json.loads(text)
            except ValueError:
                return {"": text}
        else:
            return {"": text}  # a ready-made block of lettered options (MedReason), kept as written
    if isinstance(value, dict):
        return {str(k).strip().upper(): str(v) for k, v in value.items() if v not in (None, "")}
    if isinstance(value, list) and value and isinstance(value[0], dict) and "key" in value[0]:
        return {str(o["key"]).strip().upper(): str(o["value"]) for o in value if o.get("value")}
    if isinstance(value, list):
        return {LETTERS[i]: str(v) for i, v in enumerate(value) if v not in (None, "")}
    return {}


_EXPLANATION = re.compile(r"Explanation\s*:", re.IGNORECASE)
# MedReason writes PubMedQA's answer as "The final decision is: yes. <long answer>" (catalog: UCSC-VLAA/MedReason)
_DECISION = re.compile(r"^\s*The final decision is:\s*(yes|no|maybe)\b.*$", re.DOTALL | re.IGNORECASE)


def _comparable(text: str) -> str:
    return " ".join(text.split()).rstrip(".").strip().lower()


def _answer(value: Any, options: dict[str, str], format: str = "auto") -> str | None:
    """The reference answer as the recipe declares it is written; None when it names no option (letter and
    option_text formats)."""
    if value is None or value == "":
        return None
    if format == "letter":
        letter = str(value).strip().strip("()").strip().upper()
        return letter if letter in options else None
    if format == "option_text":
        text = _comparable(_DECISION.sub(r"\1", _without_explanation(str(value))))
        matches = [letter for letter, option in options.items() if _comparable(option) == text]
        return matches[0] if len(matches) == 1 else None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and options and "" not in options:
        # By position among the options as listed: an empty option is left out but keeps its letter (A, C).
        return LETTERS[value] if 0 <= value < len(LETTERS) and LETTERS[value] in options else None
    return str(value).strip()


def _without_explanation(text: str) -> str:
    """The text before its first "Explanation:" and the whitespace and full stop before that. Found, then cut, rather
    than matched as `\\.?\\s*Explanation\\s*:.*$`, whose backtracking over a run of spaces grew with its square (a row
    of 40,000 spaces took 5 s: rows are untrusted)."""
    found = _EXPLANATION.search(text)
    if not found:
        return text
    before = text[: found.start()].rstrip()
    return before[:-1] if before.endswith(".") else before


def _strip_tags(content: str, tags: list[str]) -> str:
    """Each `<tag> ... </tag>` replaced by what it wraps, stripped: `<tag>\\s*(.*?)\\s*</tag>` scanned with find, which the
    regex's backtracking made cubic on an unclosed tag before a run of whitespace (4,000 newlines took 18 s)."""
    for tag in tags:
        opening, closing = f"<{tag}>", f"</{tag}>"
        kept, position = [], 0
        while (start := content.find(opening, position)) != -1 and (end := content.find(closing, start + len(opening))) != -1:
            kept += [content[position:start], content[start + len(opening) : end].strip()]
            position = end + len(closing)
        content = "".join(kept) + content[position:]
    return content


def _context(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("contexts", list(value.values()))
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return str(value or "")


def prompt_with_options(question: str, options: dict[str, str], context: str = "") -> str:
    text = question.strip()
    if context.strip():
        text = f"{context.strip()}\n\n{text}"
    if options:
        lines = [text_ if letter == "" else f"{letter}. {text_}" for letter, text_ in options.items()]
        text += "\n\n" + "\n".join(lines)
    return text


def _thinking_turn(reasoning: str, response: str) -> str:
    """An assistant turn with its reasoning laid out as Qwen3's chat template renders it:
    "<think>\n{reasoning}\n</think>\n\n{answer}" (reasoning_content.strip("\n"), content.lstrip("\n")); an empty
    block as it renders thinking switched off, "<think>\n\n</think>\n\n"."""
    return f"<think>\n{reasoning.strip()}\n</think>\n\n{response.strip()}"


def assistant_content(reasoning: str, response: str) -> str:
    """An assistant turn from a reasoning column and a response column; without reasoning, the answer alone."""
    return _thinking_turn(reasoning, response) if reasoning.strip() else response.strip()


def generated_turn(reasoning: str, content: str) -> str:
    """The assistant turn of a generated response, laid out as a source row's is: its reasoning, where the endpoint
    returns it apart from the content, in a think block (found by review: it was dropped), and a think block the
    content opens with laid out as `_think_layout` lays out a source's."""
    return _think_layout(assistant_content(reasoning, content))


def _think_layout(content: str) -> str:
    """An assistant turn that opens with a think block, laid out as `_thinking_turn` lays one out. Sources differ (no
    newline inside the tags, one newline after them: am-deepseek-r1's "<think>Okay...</think>\n<answer>"), and SFT
    trains each layout as it is, so a model would learn every one."""
    opened = content.lstrip()  # str methods, not a regular expression: its lazy scan to "</think>" cost 10 % of a read
    if not opened.startswith("<think>"):
        return content
    end = opened.find("</think>")
    return content if end < 0 else _thinking_turn(opened[len("<think>"):end], opened[end + len("</think>"):])


def build_record(row: dict, fields: dict, source: str, kind: str, row_id: str, order: int) -> dict:
    """A source row as Document fields (text, id, metadata), following the recipe's field mapping; a row that
    cannot become one raises RowRejected (an empty prompt, a conversation without a response, roles left unmapped
    among them): the data stage removes it, and preflight and inspect, which build records with this too, see it."""
    messages: list[dict] = []
    options: dict[str, str] = {}
    answer = None
    if fields.get("system"):
        system = _text_column(row, fields["system"], source)
        if system:
            messages.append({"role": "system", "content": system})
    if fields.get("messages"):
        roles = fields.get("roles") or {}
        turns = _column(row, fields["messages"], source) or []
        if not isinstance(turns, list) or not all(isinstance(turn, dict) for turn in turns):
            raise NotText(f"column {fields['messages']!r} is not a list of turns")
        for turn in turns:
            role = str(turn.get(fields.get("role_key", "role"), ""))
            content = _text(turn.get(fields.get("content_key", "content")), fields["messages"])
            messages.append({"role": roles.get(role, role), "content": content})
    elif fields.get("turns"):
        turns = [_text(t, fields["turns"]) for t in (_column(row, fields["turns"], source) or [])]
        if kind == "prompts":
            messages.append({"role": "user", "content": turns[0] if turns else ""})
            answer = turns[1] if len(turns) > 1 else None
        else:
            messages += [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    else:
        if fields.get("options"):
            options = _options(row, fields["options"], source, fields.get("options_format", "auto"))
        context = _context(_column(row, fields["context"], source)) if fields.get("context") else ""
        question = _text_column(row, fields["prompt"], source)
        messages.append({"role": "user", "content": prompt_with_options(question, options, context)})
    if fields.get("response") or fields.get("reasoning"):
        reasoning = _text_column(row, fields["reasoning"], source) if fields.get("reasoning") else ""
        response = _text_column(row, fields["response"], source) if fields.get("response") else ""
        messages.append({"role": "assistant", "content": assistant_content(reasoning, response)})
    if fields.get("strip_tags"):
        messages = [{**m, "content": _strip_tags(m["content"], fields["strip_tags"])} if m["role"] == "assistant" else m
                    for m in messages]
    messages = [{**m, "content": _think_layout(m["content"])} if m["role"] == "assistant" else m for m in messages]
    if fields.get("answer"):
        answer_format = fields.get("answer_format", "auto")
        value = _column(row, fields["answer"], source)
        if isinstance(value, (list, tuple, dict)):  # ["A", "C"] graded as its Python text, by element order: refused
            raise NotText(f"column {fields['answer']!r} holds a {type(value).__name__}: an answer is one text, letter or number")
        answer = _answer(value, options, answer_format)
        if answer is None and answer_format != "auto":
            raise AnswerNotAnOption(f"answer {str(value)[:80]!r} names none of the options {', '.join(options) or '(none)'}")
    for message in messages:
        if not message["content"].isascii():
            try:
                message["content"].encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidText(f"the {message['role']} text holds a lone surrogate") from None
    unknown = sorted({m["role"] for m in messages} - {"system", "user", "assistant"})
    if unknown:
        raise UnknownRole(f"turns with role {', '.join(map(repr, unknown))}: map them to user or assistant with "
                          "fields.roles (ShareGPT: {human: user, gpt: assistant})")
    if not prompt_text_of(messages).strip():
        raise EmptyText("the prompt is empty")
    if kind == "conversations" and not response_text_of(messages).strip():
        raise EmptyText("the response is empty" if messages[-1]["role"] == "assistant" else
                        "the conversation does not end with an assistant turn")
    metadata = {
        "source": source,
        "order": order,
        "messages": messages,
        "answer": answer,
        "options": {k: v for k, v in options.items() if k},
        "finish_reason": str(row.get(fields["finish_reason"]) or "") if fields.get("finish_reason") else "",
        "extra": {name: _portable(row.get(name)) for name in fields.get("metadata") or []},
    }
    record_id = _portable(f"{source}/{row.get(fields['id']) if fields.get('id') and row.get(fields['id']) is not None else row_id}")
    return {"id": record_id, "text": record_text(messages), "metadata": metadata}


def prompt_text_of(messages: list[dict]) -> str:
    """The user's side of a conversation: every user turn before the final assistant turn."""
    last = len(messages)
    if messages and messages[-1]["role"] == "assistant":
        last -= 1
    return "\n".join(m["content"] for m in messages[:last] if m["role"] == "user")


def response_text_of(messages: list[dict]) -> str:
    return messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""


def record_text(messages: list[dict]) -> str:
    """A record's doc.text: its final response, or its prompt when it has none."""
    return response_text_of(messages) or prompt_text_of(messages)


def prompt_text(doc: Document) -> str:
    """The prompt curation judges: a generated record's as its source gave it (`with_response`), else its user side."""
    return doc.metadata.get("source_prompt") or prompt_text_of(doc.metadata["messages"])


def response_text(doc: Document) -> str:
    return response_text_of(doc.metadata["messages"])


def field_text(doc: Document, field: str) -> str:
    """`prompt`, `response`, or the whole `conversation` / `all` of a record."""
    if field == "prompt":
        return prompt_text(doc)
    if field == "response":
        return response_text(doc)
    return "\n".join(m["content"] for m in doc.metadata["messages"])


def with_response(doc: Document, prompt: str, response: str, number: int) -> Document:
    """A copy of a prompt-only record completed with its generated response `number` (and the prompt as it was sent,
    which SFT trains on), at a place of its own in reading order. The prompt as the source gave it stays beside it
    (`source_prompt`), for the steps after: the generate step's instruction appended to every prompt made a copy of
    a benchmark question escape fuzzy decontamination (ratio 97.8 without it, 71.3 with it) and a one-word prompt
    pass min_prompt_words (found by review)."""
    messages = [m for m in doc.metadata["messages"] if m["role"] == "system"]
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return Document(text=response, id=f"{doc.id}#{number}",
                    metadata={**doc.metadata, "messages": messages, "source_prompt": prompt_text(doc),
                              "order": response_order(doc.metadata["order"], number)})

