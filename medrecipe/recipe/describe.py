"""Recipe parts described in words, for `plan`: where a dataset is read from and what its field mapping does."""

from __future__ import annotations

from .model import DatasetLocation, Fields


def describe_location(location: DatasetLocation) -> str:
    """Where a source (or the RL prompts) is read from, in one line."""
    if location.path:
        return location.path
    where = location.hub + "".join(f" [{x}]" for x in (location.subset, location.split) if x)
    if location.revision:
        where += f" @{location.revision}"
    if location.data_files:
        where += f" files: {', '.join(location.data_files)}"
    return where


def describe_mapping(fields: Fields) -> str:
    """What the reader does with a row, in words, for `plan`: the columns it reads and every reshaping."""
    parts = []
    if fields.messages:
        renames = ", roles " + ", ".join(f"{a}->{b}" for a, b in fields.roles.items()) if fields.roles else ""
        parts.append(f"turns from `{fields.messages}` ({fields.role_key}/{fields.content_key}{renames})")
    elif fields.turns:
        parts.append(f"alternating user/assistant strings from `{fields.turns}`")
    else:
        prompt = f"prompt `{fields.prompt}`"
        if fields.context:
            prompt = f"context `{fields.context}` + " + prompt
        if fields.options:
            columns = fields.options if isinstance(fields.options, str) else "/".join(fields.options)
            how = " (its `A. text` lines read as options)" if fields.options_format == "lettered_lines" else ""
            prompt += f" + lettered options from `{columns}`{how}"
        parts.append(prompt)
    if fields.system:
        parts.append(f"system `{fields.system}`")
    if fields.reasoning:
        parts.append(f"reasoning `{fields.reasoning}` in think tags")
    if fields.response:
        parts.append(f"response `{fields.response}`")
    if fields.strip_tags:
        parts.append("unwrapping " + ", ".join(f"<{tag}>" for tag in fields.strip_tags))
    if fields.answer:
        how = {"letter": "an option letter", "option_text": "an option's text (an 'Explanation:' dropped), as its letter",
               "auto": "as written"}[fields.answer_format]
        parts.append(f"answer `{fields.answer}` {how}")
    return "; ".join(parts)
