"""A recipe's dataset mappings held against the catalog's layouts of the Hub datasets they name.

For every curation source, the RL prompts and the preference pairs that name a dataset of the catalog: the
configuration, files and split exist; every mapped column exists; conversation columns are read with their
real turn keys and every role they hold ends up as system, user or assistant; and a column written in a way
its type does not say (choices in a text block, an answer given as option text, <answer> tags) is read with
the matching declaration. A local file of preference pairs is read with its one split. Each problem is placed at
the recipe line that causes it and names the evidence.
"""

from __future__ import annotations

from pathlib import Path

from ..recipe import LoadedRecipe, Problem
from ..recipe.model import DatasetLocation, Fields, PolicyOptimization, PreferenceStage
from .datasets import HubDataset, Table, get

CHAT_ROLES = {"system", "user", "assistant"}


def check(loaded: LoadedRecipe) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    recipe = loaded.recipe
    if recipe.data:
        for index, source in enumerate(recipe.data.sources):
            _location(loaded, ("data", "sources", index), source, source.fields, errors, warnings)
    rl = recipe.rl
    if isinstance(rl, PolicyOptimization):
        _location(loaded, ("rl", "data"), rl.data, rl.data.fields, errors, warnings)
    elif isinstance(rl, PreferenceStage):
        _preference(loaded, rl, errors)
    return errors, warnings


def _evidence(dataset: HubDataset) -> str:
    return f"see {dataset.evidence[0].split(': ', 1)[-1]}" if dataset.evidence else "see medrecipe/catalog/datasets.py"


def _table(loaded: LoadedRecipe, at: tuple, location: DatasetLocation, dataset: HubDataset,
           errors: list[Problem]) -> list[Table]:
    """The tables the location reads (one per data file, or its configuration); [] after reporting a problem."""
    if location.data_files:
        tables = []
        for position, name in enumerate(location.data_files):
            table = dataset.files.get(name)
            if table is None:
                known = ", ".join(dataset.files) or "none listed"
                errors.append(loaded.problem((*at, "data_files", position), f"{dataset.repo} has no file {name!r} medrecipe knows of",
                                             f"known files: {known}; {_evidence(dataset)}"))
                continue
            if dataset.files_revision and location.revision != dataset.files_revision:
                errors.append(loaded.problem((*at, "data_files", position), f"{name} is on the {dataset.files_revision} revision of {dataset.repo}",
                                             f"set revision: {dataset.files_revision}"))
            tables.append(table)
        return tables
    if not dataset.configs:
        errors.append(loaded.problem((*at, "hub"), f"{dataset.repo} has no configuration a dataset loader can read",
                                     f"read its files with data_files: {', '.join(dataset.files)}; {_evidence(dataset)}"))
        return []
    table = dataset.table(location.subset, None)
    if table is None:
        where = (*at, "subset") if location.subset else (*at, "hub")
        what = f"no configuration {location.subset!r}" if location.subset else "several configurations and no default"
        errors.append(loaded.problem(where, f"{dataset.repo} has {what}",
                                     f"configurations: {', '.join(dataset.configs)}; {_evidence(dataset)}"))
        return []
    if location.split not in table.splits:
        errors.append(loaded.problem((*at, "split"), f"{dataset.repo} ({location.subset or dataset.default_config}) has no split {location.split!r}",
                                     f"splits: {', '.join(table.splits)}"))
        return []
    return [table]


def _location(loaded: LoadedRecipe, at: tuple, location: DatasetLocation, fields: Fields, errors: list[Problem],
              warnings: list[Problem]) -> None:
    dataset = get(location.hub) if location.hub else None
    if dataset is None:
        return
    if dataset.gated:
        warnings.append(loaded.problem((*at, "hub"), f"{dataset.repo} is gated: accept its terms on the Hub first",
                                       "medrecipe preflight checks your access"))
    for table in _table(loaded, at, location, dataset, errors):
        _fields(loaded, (*at, "fields"), fields, table, dataset, errors)


def _fields(loaded: LoadedRecipe, at: tuple, fields: Fields, table: Table, dataset: HubDataset, errors: list[Problem]) -> None:
    def problem(name: str, message: str, hint: str) -> None:
        errors.append(loaded.problem((*at, name), message, hint))

    columns = ", ".join(table.columns)
    mapped: list[tuple[str, str]] = [(name, getattr(fields, name)) for name in
                                     ("messages", "turns", "prompt", "context", "reasoning", "response", "system", "answer", "id",
                                      "finish_reason") if getattr(fields, name)]
    options = fields.options
    mapped += [("options", column) for column in ([options] if isinstance(options, str) else options or [])]
    missing = False
    for name, column in mapped:
        if column not in table.columns:
            missing = True
            problem(name, f"column {column!r} is not in {dataset.repo}: its columns are {columns}", _evidence(dataset))
    for position, column in enumerate(fields.metadata):
        if column not in table.columns:
            missing = True
            errors.append(loaded.problem((*at, "metadata", position), f"column {column!r} is not in {dataset.repo}: its columns are {columns}",
                                         _evidence(dataset)))
    if missing:
        return
    formats = table.formats
    if fields.messages:
        _turns(loaded, at, fields, table, dataset, errors)
    if fields.prompt and formats.get(fields.prompt) == "stem" and not fields.options:
        choices = next((column for column, kind in formats.items() if kind == "lettered_lines"), None)
        problem("prompt", f"{dataset.repo}'s {fields.prompt!r} holds the question without its choices" + (f"; they are in {choices!r}" if choices else ""),
                f"map options: {choices}" + (", options_format: lettered_lines" if choices else ""))
    if isinstance(options, str) and formats.get(options) == "lettered_lines" and fields.options_format != "lettered_lines":
        problem("options", f"{dataset.repo}'s {options!r} is one text block of 'A. ...' lines", "set options_format: lettered_lines")
    if fields.answer:
        written = formats.get(fields.answer)
        if written == "option_text" and fields.answer_format != "option_text":
            letter = next((column for column, kind in formats.items() if kind == "letter"), None)
            hint = f"map answer: {letter} (the letter), answer_format: letter" if letter else "set answer_format: option_text"
            problem("answer", f"{dataset.repo}'s {fields.answer!r} is the right option's text, not its letter", hint)
        if written in ("letter", "index") and fields.answer_format == "option_text":
            problem("answer_format", f"{dataset.repo}'s {fields.answer!r} is an option {written}, not its text",
                    "set answer_format: letter" if written == "letter" else "remove answer_format")


def _turns(loaded: LoadedRecipe, at: tuple, fields: Fields, table: Table, dataset: HubDataset, errors: list[Problem]) -> None:
    column = fields.messages
    kind = table.columns[column]
    if kind != "messages":
        errors.append(loaded.problem((*at, "messages"), f"{dataset.repo}'s {column!r} is {kind}, not a list of chat turns", _evidence(dataset)))
        return
    turns = table.turns.get(column)
    if turns is None:
        return
    if (fields.role_key, fields.content_key) != (turns.role_key, turns.content_key):
        errors.append(loaded.problem((*at, "messages"), f"{dataset.repo}'s {column!r} turns are {{{turns.role_key}, {turns.content_key}}}",
                                     f"set role_key: {turns.role_key}, content_key: {turns.content_key}"))
        return
    unmapped = sorted(role for role in turns.roles if fields.roles.get(role, role) not in CHAT_ROLES)
    if unmapped:
        errors.append(loaded.problem((*at, "roles"), f"{dataset.repo}'s turns have the roles {', '.join(turns.roles)}; "
                                     f"{', '.join(map(repr, unmapped))} would not be a chat role",
                                     "map them, e.g. roles: {" + ", ".join(f"{role}: ..." for role in unmapped) + "}"))
    if table.formats.get(column) == "answer_tags" and "answer" not in fields.strip_tags:
        errors.append(loaded.problem((*at, "messages"), f"{dataset.repo}'s assistant turns wrap the answer in <answer>...</answer>, "
                                     "which would be trained as text", "set strip_tags: [answer]"))


def _preference(loaded: LoadedRecipe, rl: PreferenceStage, errors: list[Problem]) -> None:
    at = ("rl", "data")
    local = loaded.local_or_hub((*at, "path"))
    if isinstance(local, Path) and local.is_file() and rl.data.split != "train":
        # OpenRLHF reads a file with datasets' loader, which names its one split `train`; asked for another, it keeps
        # the DatasetDict and fails selecting from it, after loading the models (openrlhf/datasets/utils.py)
        errors.append(loaded.problem((*at, "split"), f"{local.name} is one file, whose only split is 'train'",
                                     "set split: train (or give a folder with a file per split: test.jsonl, ...)"))
    dataset = get(rl.data.path)
    if dataset is None:
        return
    table = dataset.table(None, None)
    if table is None:
        return
    for name in ("prompt_key", "chosen_key", "rejected_key"):
        column = getattr(rl.data, name)
        if column and column not in table.columns:
            errors.append(loaded.problem((*at, name), f"column {column!r} is not in {dataset.repo}: its columns are "
                                         f"{', '.join(table.columns)}", _evidence(dataset)))
            return
    if rl.data.split not in table.splits:
        errors.append(loaded.problem((*at, "split"), f"{dataset.repo} has no split {rl.data.split!r}", f"splits: {', '.join(table.splits)}"))
    chosen_is_conversation = table.columns[rl.data.chosen_key] == "messages"
    if chosen_is_conversation and not rl.data.apply_chat_template:
        errors.append(loaded.problem((*at, "apply_chat_template"), f"{dataset.repo}'s {rl.data.chosen_key!r} is a conversation, "
                                     "which OpenRLHF reads as text only through the chat template (without it, it joins prompt "
                                     "and response as strings: reward_dataset.py)", "remove apply_chat_template: false"))
    if rl.data.prompt_key and chosen_is_conversation and rl.data.apply_chat_template:
        kind = table.columns[rl.data.prompt_key]
        why = ("a string, which OpenRLHF's chat template cannot take (reward_dataset.preprocess_data)" if kind != "messages" else
               "a conversation, and `chosen` already holds the user turn: it would be sent twice")
        errors.append(loaded.problem((*at, "prompt_key"), f"{dataset.repo}'s {rl.data.prompt_key!r} is {why}",
                                     f"remove prompt_key: `{rl.data.chosen_key}` is a whole conversation and OpenRLHF takes "
                                     "its turns before the last as the prompt"))
