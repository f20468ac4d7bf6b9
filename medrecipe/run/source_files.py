"""The local files a data stage's results are built from, kept beside them, so that a rerun notices a change (the RL
stage's prompt file is held to its local prompt dataset the same way: run/rl_prompts.py).

The stage's folder is keyed by the recipe, not by the files it names, and a rerun keeps every finished task. Files
added to a source or removed from it since (or data for an optional source that had none) would be silently left
out of a finished stage, or mixed into a resumed one; a file of another size would be too, and the readers split a
JSON Lines file into byte ranges per task, so a resumed task would read other rows than the finished ones did. The
evaluation sets the decontamination steps read from local copies count as well. Those changes are refused.

A file is known by its size and modification time, and by a digest of its contents taken when the stage begins
(one more read of the data, once). A rerun reads a file again only when its modification time is new at the same size
(`touch`, a copy, a checkout, or an edit that kept the size): the same contents are the same file, other contents are
refused like any other change (found by review: an evaluation item edited at the same size left a contaminated
record in a finished stage's output, and two same-size edits mid-stage gave an output of neither version).
Hub datasets are not recorded: a pinned `revision` is in the recipe, and so in the folder's key; an unpinned one
reads whatever the dataset's main branch holds on the day, which only pinning makes repeatable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

from ..errors import UserError

RECORD = "source_files.json"


def file_states(path: str, split: str | None = None) -> dict[str, list[int]]:
    """{file: [size, modification time in ns]} of the local files at `path` (of `split`: data_files.local_files)."""
    from ..blocks.data_files import local_files

    return {str(file): [(stat := file.stat()).st_size, stat.st_mtime_ns] for file in local_files(path, split)}


def source_files(content: dict) -> dict[str, dict[str, list[int]]]:
    """Local source (and evaluation set) name -> {file: [size, modification time in ns]}, empty without data."""
    # the readers' sources: the plan's summary of each source names no split, and a folder's other splits are not read
    readers = [block["args"]["source"] for stage in content["stages"] for block in stage["pipeline"]
               if block["block"].endswith("SourceReader")]
    found = {source["name"]: file_states(source["path"], source.get("split")) for source in readers if source.get("path")}
    for stage in content["stages"]:
        for block in stage["pipeline"]:
            for location in block["args"].get("benchmarks", []):
                if location.get("path"):
                    found[f"eval set {location['name']}"] = file_states(location["path"])
    return found


def _digest(file: str) -> str:
    with open(file, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()


def _changes(recorded: dict, current: dict) -> list[str]:
    """The changes that alter what the stage reads: files added, removed, resized, or (read again only when their
    modification time is new) with other contents."""
    changed = []
    for name in sorted(recorded.keys() | current.keys()):
        before, now = recorded.get(name, {}), current.get(name, {})
        changed += [f"{name}: {file} added" for file in sorted(now.keys() - before.keys())]
        changed += [f"{name}: {file} removed" for file in sorted(before.keys() - now.keys())]
        for file in sorted(now.keys() & before.keys()):
            if now[file][0] != before[file][0]:
                changed.append(f"{name}: {file} is {now[file][0]:,} bytes, not {before[file][0]:,}")
            elif now[file][1] != before[file][1] and _digest(file) != before[file][2]:
                changed.append(f"{name}: {file} holds other contents at the same size")
    return changed


def hold_to_recorded(current: dict[str, dict[str, list[int]]], work: Path) -> None:
    """Record the files (`source_files`, with a digest of each) for a stage folder that has no record; refuse files
    that changed since the record."""
    record = work / RECORD
    if not record.exists():
        work.mkdir(parents=True, exist_ok=True)
        digested = {name: {file: [*known, _digest(file)] for file, known in files.items()} for name, files in current.items()}
        # whole or not at all: a run killed as it wrote the record left it empty, and every rerun failed on it (review)
        partial = record.with_name(record.name + ".partial")
        partial.write_text(json.dumps(digested, indent=1, sort_keys=True) + "\n")
        os.replace(partial, record)
        return
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        recorded = None
    if not isinstance(recorded, dict):
        raise UserError(f"{record} is not the record of source files medrecipe wrote there, so what {work} was begun "
                        "from is unknown", f"remove that folder and rerun: rm -rf {shlex.quote(str(work))}")
    changed = _changes(recorded, current)
    if changed:
        shown = "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise UserError(
            f"the data sources changed since {work} was begun from them ({shown}), so its results would not be theirs",
            f"to curate the current files, remove that folder and rerun: rm -rf {shlex.quote(str(work))}",
        )
