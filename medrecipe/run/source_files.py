"""The local source files a data stage's results were built from, kept beside them, so that a rerun notices a change.

The stage's folder is keyed by the recipe, not by the files its sources name, and a rerun keeps every finished task.
Files added, removed or rewritten since (or an optional source that was missing and now has data) would otherwise
be silently left out of a finished stage, or mixed into a resumed one: the readers split a JSON Lines file into byte
ranges per task, so a resumed task would read other rows than the finished ones did. Each file is known by its
size and modification time; reading gigabytes to hash them on every run would cost more than the check is worth.
Hub sources are left out: their id and revision are in the recipe, and so in the folder's key.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..errors import UserError

RECORD = "source_files.json"


def source_files(content: dict) -> dict[str, dict[str, list[int]]]:
    """Local source name -> {file: [size, modification time in ns]} (empty where a source has no data)."""
    from ..blocks.readers import local_files

    found: dict[str, dict[str, list[int]]] = {}
    for source in content["sources"]:
        if source["path"] is not None:
            found[source["name"]] = {str(file): [(stat := file.stat()).st_size, stat.st_mtime_ns]
                                     for file in local_files(source["path"])}
    return found


def _changes(recorded: dict, current: dict) -> list[str]:
    changes = []
    for name in sorted(recorded.keys() | current.keys()):
        before, now = recorded.get(name, {}), current.get(name, {})
        changes += [f"{name}: {file} added" for file in sorted(now.keys() - before.keys())]
        changes += [f"{name}: {file} removed" for file in sorted(before.keys() - now.keys())]
        changes += [f"{name}: {file} rewritten" for file in sorted(now.keys() & before.keys()) if now[file] != before[file]]
    return changes


def hold_to_recorded(content: dict, work: Path) -> None:
    """Record the source files for a stage folder that has none; refuse one whose record differs from them."""
    current = source_files(content)
    record = work / RECORD
    if not record.exists():
        work.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        return
    changes = _changes(json.loads(record.read_text()), current)
    if changes:
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
        raise UserError(
            f"the data sources changed since {work} was begun from them ({shown}), so its results would not be theirs",
            f"to curate the current files, remove that folder and rerun: rm -rf {shlex.quote(str(work))}",
        )
