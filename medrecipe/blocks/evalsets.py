"""Evaluation items for decontamination, read exactly as evaluation reads them (benchmark_items.to_item)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..catalog.benchmark_items import item_text, row_matches, to_item
from ..errors import UserError
from ..recipe.untrusted import hidden_part
from .data_files import local_files, rows_of_file


@dataclass(frozen=True)
class EvalItem:
    benchmark: str
    item_id: str
    text: str  # what decontamination indexes: the question, and its options when the step includes them
    question: str  # the question alone


def local_copy(path: str, split: str, data_files=()) -> list[tuple[str, str | None]]:
    """The parts of a benchmark's local copy that evaluation reads (compile/lighteval/benchmark_files.data_plan), as
    (path, split) for data_files.local_files: a file is the evaluated split itself; in a folder, the registry's
    `data_files` when it names some (HealthBench), else the evaluated split, as lighteval reads a folder
    (`load_dataset(folder)[split]`: the split `datasets` infers from the file names). The other splits are not
    evaluated: a train split is training data, not a copy of the benchmark."""
    folder = Path(path)
    if not folder.is_dir():
        return [(path, None)]
    if data_files:
        # A recipe's own benchmark names them: not a hidden file (data_files: [.kaggle/kaggle.json] beside path: ~),
        # as no folder a source reads gives one (data_files.local_files, which refuses a link into one).
        for name in data_files:
            if hidden := hidden_part(name):
                raise UserError(f"data_files names {name}, in the hidden {hidden}, where credentials and settings are kept: "
                                "a recipe does not read data there", "name the benchmark's data files")
        return [(str(folder / name), None) for name in data_files]
    if (folder / "README.md").is_file():
        from huggingface_hub import DatasetCard

        # The datasets library reads a folder whose card declares configurations by them, and evaluation asks for
        # 'default' (benchmark_files.data_plan): a whole repository (qiaojin/PubMedQA) fails there, and its file names
        # would make one train split of every configuration here.
        configs = [str(c.get("config_name")) for c in DatasetCard.load(folder / "README.md").data.get("configs") or []]
        if configs and "default" not in configs:
            raise UserError(f"{path} declares the configurations {', '.join(configs)} in its README.md, and evaluation "
                            "reads a local copy as the configuration 'default'",
                            "point path at the folder of the configuration evaluated")
    return [(path, split)]


def benchmark_rows(location: dict):
    """Rows of one benchmark: a local copy (`path`) or its Hub dataset, with the registry's row filter."""
    where = location.get("where") or {}
    if location.get("path"):
        parts = local_copy(location["path"], location["split"], location.get("data_files") or ())
        found = [local_files(path, split) for path, split in parts]
        missing = [path for (path, _), files in zip(parts, found) if not files]
        if missing:
            raise FileNotFoundError(f"benchmark {location['name']}: no data files at {', '.join(missing)}")
        rows = (row for files in found for file in files for row in rows_of_file(file, "auto"))
    elif location.get("data_files"):  # a repository without a configuration for them (HealthBench)
        from huggingface_hub import hf_hub_download

        files = [Path(hf_hub_download(location["hub"], name, repo_type="dataset", revision=location.get("revision")))
                 for name in location["data_files"]]
        rows = (row for file in files for row in rows_of_file(file, "auto"))
    else:
        from datasets import load_dataset

        rows = load_dataset(location["hub"], location.get("subset"), split=location["split"], revision=location.get("revision"))
    for row in rows:
        if row_matches(row, where):
            yield row


def items_of(benchmark: str, rows, reader: str, spec: dict | None, include_options: bool) -> list[EvalItem]:
    """One benchmark's rows as the text decontamination compares against."""
    items = []
    for index, row in enumerate(rows):
        item = to_item(row, reader, spec, index)
        items.append(EvalItem(benchmark, item["id"], item_text(item, include_options), item_text(item, False)))
    return items


def load_items(locations: list[dict], include_options: bool) -> list[EvalItem]:
    """Every item of the given benchmarks, as the text decontamination compares against."""
    return [item for location in locations for item in items_of(location["name"], benchmark_rows(location),
                                                                   location["reader"], location.get("spec"), include_options)]
