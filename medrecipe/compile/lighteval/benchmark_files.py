"""Where each benchmark's rows come from: the Hub through `load_dataset`, or files linked into eval/data/."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ...catalog import benchmarks
from ...recipe import LoadedRecipe
from .names import DATA_SUFFIXES


@dataclass(frozen=True)
class DataPlan:
    """Where a task reads its benchmark: `location` directly, or files launch.sh links into eval/data/<name>/."""

    location: str | None  # a Hub id or a local folder; None when staged
    subset: str
    links: list[tuple[str, str]]  # (shell expression of the source file, link name) when staged
    origin: str  # for `plan`


def data_plan(loaded: LoadedRecipe, index: int) -> DataPlan:
    ev = loaded.recipe.eval
    assert ev is not None
    ref = ev.benchmarks[index]
    bench = benchmarks.of(loaded.recipe, ref.name)
    split = ref.split or bench.split
    if ref.path:
        local = loaded.local_path(("eval", "benchmarks", index, "path"))
        if local.suffix in DATA_SUFFIXES:  # one file (lighteval's loader reads folders: it is linked into one)
            return DataPlan(None, "default", [(shlex.quote(str(local)), f"{split}-00000{local.suffix}")], f"{local} ({split})")
        if bench.data_files:
            links = [(shlex.quote(str(local / name)), f"{split}-{i:05d}{Path(name).suffix}") for i, name in enumerate(bench.data_files)]
            return DataPlan(None, "default", links, f"{local} ({', '.join(bench.data_files)})")
        return DataPlan(str(local), "default", [], f"{local} (split {split})")
    if bench.data_files:
        revision = shlex.quote(bench.revision or "main")
        links = [(f'"$(hub_file {shlex.quote(bench.hub)} {shlex.quote(name)} {revision})"', f"{split}-{i:05d}{Path(name).suffix}")
                 for i, name in enumerate(bench.data_files)]
        return DataPlan(None, "default", links, f"{bench.hub}: {', '.join(bench.data_files)} ({split})")
    where = "".join(f", {column} in {', '.join(map(str, value))}" if isinstance(value, (list, tuple)) else f", {column} = {value}"
                    for column, value in bench.where.items())
    subset = f" {bench.subset}" if bench.subset else ""
    return DataPlan(bench.hub, bench.subset or "default", [], f"{bench.hub}{subset} {split}{where}")
