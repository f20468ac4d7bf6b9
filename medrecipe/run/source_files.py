"""The local files a data stage's results are built from, kept beside them, so that a rerun notices a change.

The stage's folder is keyed by the recipe, not by the files it names, and a rerun keeps every finished task. Files
added to a source or removed from it since (or data for an optional source that had none) would be silently left
out of a finished stage, or mixed into a resumed one; a file of another size would be too, and the readers split a
JSON Lines file into byte ranges per task, so a resumed task would read other rows than the finished ones did. The
evaluation sets the decontamination steps read from local copies count as well. Those changes are refused.

A file is known by its size and modification time: reading gigabytes to hash them on every run would cost more than
the check is worth. A new modification time at the same size (`touch`, a copy, a checkout) is noted, not refused.
Hub datasets are not recorded: a pinned `revision` is in the recipe, and so in the folder's key; an unpinned one
reads whatever the dataset's main branch holds on the day, which only pinning makes repeatable.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..errors import UserError

RECORD = "source_files.json"


def _files(path: str) -> dict[str, list[int]]:
    from ..blocks.readers import local_files

    return {str(file): [(stat := file.stat()).st_size, stat.st_mtime_ns] for file in local_files(path)}


def source_files(content: dict) -> dict[str, dict[str, list[int]]]:
    """Local source (and evaluation set) name -> {file: [size, modification time in ns]}, empty without data."""
    found = {source["name"]: _files(source["path"]) for source in content["sources"] if source["path"] is not None}
    for stage in content["stages"]:
        for block in stage["pipeline"]:
            for location in block["args"].get("benchmarks", []):
                if location.get("path"):
                    found[f"eval set {location['name']}"] = _files(location["path"])
    return found


def _changes(recorded: dict, current: dict) -> tuple[list[str], list[str]]:
    """(changes that alter what the stage reads, files only touched)."""
    changed, touched = [], []
    for name in sorted(recorded.keys() | current.keys()):
        before, now = recorded.get(name, {}), current.get(name, {})
        changed += [f"{name}: {file} added" for file in sorted(now.keys() - before.keys())]
        changed += [f"{name}: {file} removed" for file in sorted(before.keys() - now.keys())]
        for file in sorted(now.keys() & before.keys()):
            if now[file][0] != before[file][0]:
                changed.append(f"{name}: {file} is {now[file][0]:,} bytes, not {before[file][0]:,}")
            elif now[file][1] != before[file][1]:
                touched.append(file)
    return changed, touched


def hold_to_recorded(current: dict[str, dict[str, list[int]]], work: Path) -> list[str]:
    """Record the files (`source_files`) for a stage folder that has no record; refuse files that changed since the
    record. Returns notes on files only touched since."""
    record = work / RECORD
    if not record.exists():
        work.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        return []
    changed, touched = _changes(json.loads(record.read_text()), current)
    if changed:
        shown = "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise UserError(
            f"the data sources changed since {work} was begun from them ({shown}), so its results would not be theirs",
            f"to curate the current files, remove that folder and rerun: rm -rf {shlex.quote(str(work))}",
        )
    return [f"{len(touched)} source file(s) have a new modification time but their recorded size, and are taken as "
            f"the files this stage began from ({touched[0]}{', ...' if len(touched) > 1 else ''})"] if touched else []
