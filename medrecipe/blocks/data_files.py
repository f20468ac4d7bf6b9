"""The data files a recipe source names and the rows in them, as the `datasets` library reads them: the files of a
local path (a file, a folder's split, a glob), the parts a task reads of each (an uncompressed JSON Lines file in byte
ranges of `PART_BYTES` at line boundaries, a Parquet file in runs of row groups of about that size; a compressed file
whole), and the rows of a file: Parquet, JSON Lines (plain, .gz or .zst) or a top-level JSON array.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from ..errors import UserError
from ..recipe.untrusted import hidden_part, links_into_hidden

_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".parquet")
_COMPRESSED = (".gz", ".zst")
PART_BYTES = 64 << 20  # fixed, not derived from the task count, so that record ids never depend on it


def local_files(path: str, split: str | None = None) -> list[Path]:
    """The data files a source path names: a file, a folder (searched recursively) or a glob, sorted. What a folder or a
    glob finds in hidden files and folders is left out, as the `datasets` library leaves it out of data files: that is
    where credentials are kept (a recipe's `path: ~` would otherwise read ~/.kaggle/kaggle.json). So is what a link
    leads into there, and a path that is itself such a link is refused.

    With `split`, a folder gives that split's files as `datasets` tells them (`load_dataset(folder)`: `train.jsonl`,
    `data/test-00000-of-00001.parquet`, `dev/`, as data_files.get_data_patterns resolves them; a folder whose names
    tell no split is all train), and a file or a glob is one split, train, as `datasets` reads data files."""
    target = Path(path)
    folder, exists = target.is_dir(), target.exists()
    pattern = not exists and any(char in target.name for char in "*?[")  # `proj [2024]` is a folder's name
    one_file = not folder and not pattern
    if one_file:
        if not (exists and target.name.endswith(_SUFFIXES)):
            return []
        if links_into_hidden(target):
            raise UserError(f"{path} leads to {target.resolve()}, a hidden file or folder where credentials and settings are "
                            "kept: a recipe does not read data there", "point the source at a copy of the data outside it")
    if split not in (None, "train") and not folder:
        raise UserError(f"{path} is read as one split, train (as the datasets library reads data files), not {split!r}",
                        f"leave split out, or give the folder that holds the {split} files")
    if one_file:
        return [target]
    root, entries = (target, sorted(target.rglob("*"))) if folder else (target.parent, sorted(target.parent.glob(target.name)))
    found = [p for p in entries if p.is_file() and p.name.endswith(_SUFFIXES) and not hidden_part(p.relative_to(root))
             and not links_into_hidden(p)]
    return _of_split(target, found, split, entries) if folder and split is not None else found


# Text that a path under a folder holds, lower-cased, where `datasets` may read a split from it: every split pattern
# of its data_files.py but the last (DEFAULT_PATTERNS_ALL: `**`, all train) has one of these literally (datasets 5.2.0:
# the keywords of SPLIT_KEYWORDS, `-of-` of sharded names, `*.eval` logs, the harbor task files). And the files it
# leaves out of any split (FILES_TO_IGNORE). tests/test_folder_splits.py holds both to the installed library.
_SPLIT_HINTS = ("train", "val", "dev", "test", "eval", "-of-", "task.toml", "instruction.md")
_NOT_DATA = frozenset({"README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dummy_data.zip",
                       "dataset_dict.json"})


def _all_train(folder: Path, entries: list[Path]) -> bool:
    """Whether `datasets` reads the folder, whose files and folders are `entries`, as one split, train, of every data
    file found in it: no path it reads (hidden ones it does not) hints at a split, and none is one it leaves out where
    rglob finds it (in a `__special__` folder, or a file it ignores). Asking `datasets` means importing it, ~0.3 s of
    a small run's start."""
    for entry in entries:
        relative = entry.relative_to(folder)
        if hidden_part(relative):
            continue
        text = str(relative).lower()
        if (any(hint in text for hint in _SPLIT_HINTS) or entry.name in _NOT_DATA
                or any(part.startswith("__") for part in relative.parts)):
            return False
    return True


def _of_split(folder: Path, found: list[Path], split: str, entries: list[Path]) -> list[Path]:
    """The files of `found` that `datasets` puts in `split` of the folder, whose files and folders are `entries`. Its
    patterns are globs joined to the folder, which is escaped: a folder named `proj [2024]` matched nothing (found by
    review)."""
    if not found:
        return []
    base = glob.escape(str(folder))
    if _all_train(folder, entries):
        patterns = {"train": None}  # every file found
    else:
        from datasets.data_files import get_data_patterns

        patterns = {str(name): names for name, names in get_data_patterns(base).items()}
    if split not in patterns:
        raise UserError(f"{folder} has no {split!r} split: the datasets library reads it as {', '.join(patterns)}",
                        f"set split to one of {', '.join(patterns)}")
    if patterns[split] is None:
        return found
    from datasets.data_files import resolve_pattern

    chosen = set()
    for pattern in patterns[split]:
        try:
            chosen |= {os.path.abspath(name) for name in resolve_pattern(pattern, base)}
        except FileNotFoundError:  # a pattern of the split that matches nothing here
            continue
    return [file for file in found if os.path.abspath(file) in chosen]


def kind_of(path: Path, format: str) -> str:
    return format if format != "auto" else ("parquet" if path.suffix == ".parquet" else "json" if path.suffix == ".json" else "jsonl")


def parts_of(path: Path, format: str, whole: bool) -> list[tuple[int, int] | None]:
    """The parts to read `path` in: byte ranges of a JSON Lines file, ranges of row groups of a Parquet file
    (None: the whole file at once)."""
    kind = kind_of(path, format)
    if whole or kind == "json" or path.name.endswith(_COMPRESSED):
        return [None]
    if kind == "parquet":
        import pyarrow.parquet as pq

        metadata, parts, first, size = pq.ParquetFile(path).metadata, [], 0, 0
        for group in range(metadata.num_row_groups):
            size += metadata.row_group(group).total_byte_size
            if size >= PART_BYTES or group == metadata.num_row_groups - 1:
                parts.append((first, group + 1))
                first, size = group + 1, 0
        return parts or [None]
    size = path.stat().st_size
    return [(start, min(start + PART_BYTES, size)) for start in range(0, max(size, 1), PART_BYTES)]


class BadSourceFile(ValueError):
    """A source file that is not what its name says (a line that is not JSON); the message names the file and line."""


def _line_of(path: Path, offset: int) -> int:
    """The 1-based number of the line at byte `offset` of `path` (counted only when an error needs it)."""
    with path.open("rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def _json_row(line: bytes | str, where) -> dict:
    """One JSON line, an object (a row); `where()` names its file and line in the error when it is not."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise BadSourceFile(f"{where()}:{error.colno}: not a JSON line ({error.msg})") from None
    if not isinstance(row, dict):
        raise BadSourceFile(f"{where()}: a JSON {type(row).__name__ if row is not None else 'null'} where a row, an object, "
                            "belongs")
    return row


def _json_lines(path: Path, start: int, end: int) -> Iterator[dict]:
    """The JSON lines that start in [start, end)."""
    with path.open("rb") as handle:
        if start:
            handle.seek(start - 1)
            handle.readline()  # the end of the line that began in the previous part (or just its newline)
        position = handle.tell()
        while position < end:
            line = handle.readline()
            if not line:
                return
            began, position = position, position + len(line)
            if line.strip():
                yield _json_row(line, lambda: f"{path}:{_line_of(path, began)}")


def rows_of_file(path: Path, format: str, part: tuple[int, int] | None = None) -> Iterator[dict]:
    kind = kind_of(path, format)
    if part is not None and kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024, row_groups=range(*part)):
            yield from batch.to_pylist()
    elif part is not None:
        yield from _json_lines(path, *part)
    else:
        with path.open("rb") as handle:
            yield from rows_of_stream(handle, str(path), kind)


def rows_of_stream(handle: BinaryIO, name: str, kind: str) -> Iterator[dict]:
    """The rows of one open file, read as they are needed: Parquet batches, JSON lines (plain, .gz or .zst), or
    the items of a top-level JSON array (a list row becomes the column `turns`). A `.json` file that is no array holds
    JSON Lines, as the `datasets` library reads one (packaged_modules/json: a file not starting with `[` goes to
    pyarrow's JSON Lines reader): Hub repositories name JSON Lines files `.json`."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(handle).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    elif kind == "json":
        for item in _json_array_items(io.TextIOWrapper(handle, encoding="utf-8-sig"), name):
            yield item if isinstance(item, dict) else {"turns": item}
    else:
        for number, line in enumerate(_decompressed(handle, name), 1):
            if line.strip():
                yield _json_row(line, lambda: f"{name}:{number}")


def _decompressed(handle: BinaryIO, name: str):
    """A JSON Lines file as text lines, plain, gzipped or zstd-compressed (the AM distilled sets ship as .jsonl.zst).
    A UTF-8 byte order mark at its start (Windows tools write one) is not part of its first line: json.loads reads
    bytes so, and so the byte-range parts did."""
    if name.endswith(".gz"):
        return gzip.open(handle, "rt", encoding="utf-8-sig")
    if name.endswith(".zst"):
        try:
            from compression import zstd  # Python 3.14
        except ImportError:
            from backports import zstd
        return zstd.open(handle, "rt", encoding="utf-8-sig")
    return io.TextIOWrapper(handle, encoding="utf-8-sig")


def _json_array_items(text: io.TextIOBase, name: str, chunk: int = 1 << 20) -> Iterator:
    """The items of a top-level JSON array, decoded one at a time: a 1 GB file (ApolloCorpus) never sits in memory
    whole; the rows of JSON Lines where the file is no array."""
    decoder = json.JSONDecoder()
    buffer, position, exhausted = "", 0, False

    def fill() -> bool:
        nonlocal buffer, position, exhausted
        more = text.read(chunk)
        buffer, position, exhausted = buffer[position:] + more, 0, not more
        return bool(more)

    def skip(chars: str) -> None:
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in chars:
                position += 1
            if position < len(buffer) or not fill():
                return

    skip(" \t\r\n")
    if position >= len(buffer):
        return
    if buffer[position] != "[":  # JSON Lines, as `datasets` reads a .json file that is no array
        number, pending = buffer[:position].count("\n"), buffer[position:]
        while True:
            *lines, pending = pending.split("\n")
            for line in lines:
                number += 1
                if line.strip():
                    yield _json_row(line, lambda: f"{name}:{number}")
            more = text.read(chunk)
            if not more:
                break
            pending += more
        if pending.strip():
            yield _json_row(pending, lambda: f"{name}:{number + 1}")
        return
    position += 1
    while True:
        skip(" \t\r\n,")
        if position >= len(buffer) or buffer[position] == "]":
            return
        while True:
            try:
                item, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError:
                if exhausted or not fill():
                    raise
                continue
            after = end
            while after < len(buffer) and buffer[after] in " \t\r\n":
                after += 1
            # An item is whole once a delimiter follows it: "12" may go on as "12.5e3" in the next chunk.
            if (after == len(buffer) or buffer[after] not in ",]") and not exhausted and fill():
                continue
            position = end
            yield item
            break


def first_rows(location: dict, count: int) -> list[dict]:
    """The first `count` rows of a source (or of the RL prompts) as its files hold them, reading little more than
    that: byte ranges of Hub files, streaming of a Hub configuration. `preflight` reads with it."""
    format = location.get("format", "auto")
    if location.get("path"):
        found = []
        for file in local_files(location["path"], location.get("split")):
            with file.open("rb") as handle:
                found += islice(rows_of_stream(handle, file.name, kind_of(file, format)), count - len(found))
            if len(found) >= count:
                break
        return found
    if location.get("data_files"):
        from huggingface_hub import HfFileSystem

        system = HfFileSystem()
        revision = quote(location.get("revision") or "main", safe="")
        found = []
        for name in location["data_files"]:
            with system.open(f"datasets/{location['hub']}@{revision}/{name}", "rb") as handle:
                found += islice(rows_of_stream(handle, name, kind_of(Path(name), format)), count - len(found))
            if len(found) >= count:
                break
        return found
    from datasets import load_dataset

    dataset = load_dataset(location["hub"], location.get("subset"), split=location.get("split", "train"),
                           revision=location.get("revision"), streaming=True)
    return list(islice(dataset, count))
