"""A local folder's splits are those the `datasets` library reads in it (load_dataset(folder)); a folder none of whose
paths can name a split is all train without importing `datasets` (blocks/data_files.py, `_all_train`)."""

from __future__ import annotations

import random
import subprocess
import sys

from medrecipe.blocks import data_files
from medrecipe.errors import UserError


def test_the_split_hints_are_in_every_pattern_but_all_train_of_the_installed_datasets():
    from datasets import data_files as theirs

    patterns = [*theirs.ALL_SPLIT_PATTERNS] + [p for split_patterns in theirs.ALL_DEFAULT_PATTERNS
                                               if split_patterns != theirs.DEFAULT_PATTERNS_ALL
                                               for names in split_patterns.values() for p in names]
    assert patterns and all(any(hint in p.lower() for hint in data_files._SPLIT_HINTS) for p in patterns), patterns
    assert theirs.ALL_DEFAULT_PATTERNS[-1] == theirs.DEFAULT_PATTERNS_ALL == {"train": ["**"]}
    assert data_files._NOT_DATA == set(theirs.FILES_TO_IGNORE)


# Paths a folder may hold: plain data files; names that tell a split (in any case, as a folder or a file, sharded Hub
# names, logs); and what holds no such name but `datasets` may read otherwise than pathlib's rglob finds it (a
# `__special__` folder, the files it ignores, hidden ones, a link to a folder that holds a split's name).
_PLAIN = ["a.jsonl", "b/c.jsonl", "rows.json", "part.parquet", "readme.txt", "interval.jsonl", "devices/d.jsonl"]
_TELLING = ["train.jsonl", "Train.jsonl", "data/test.jsonl", "dev/x.jsonl", "validation_set.json", "EVAL/a.jsonl",
            "data/train-00000-of-00001.parquet", "data/random-00000-of-00001.parquet", "notes.eval", "task.toml",
            "x/training/t.jsonl"]
_READ_OTHERWISE = ["__pycache__/y.jsonl", "x/__init__/z.jsonl", "config.json", "dataset_info.json", "README.md",
                   ".hidden/test.jsonl", "sub/.test.jsonl", "link"]


def _layout(folder, names):
    for name in names:
        if name == "link":
            target = folder.parent / f"{folder.name}-linked"
            (target / "test").mkdir(parents=True)
            (target / "test" / "t.jsonl").write_text("{}\n")
            (folder / "linked").symlink_to(target, target_is_directory=True)
            continue
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("{}\n")


def _resolved(folder, split):
    try:
        return [str(p) for p in data_files.local_files(str(folder), split)]
    except UserError as error:
        return f"error: {error}"


def test_a_folder_resolves_to_the_files_datasets_puts_in_each_split(tmp_path, monkeypatch):
    """On layouts of plain names with each other name, then on random ones, each split's files (or the error for a
    split the folder has not) are the same whether the folder may be read as all train without asking `datasets` or
    `datasets` is always asked."""
    generator = random.Random(7)
    layouts = [["a.jsonl", name] for name in _TELLING + _READ_OTHERWISE]
    layouts += [generator.sample(_PLAIN, generator.randint(1, 3)) + generator.sample(_TELLING, generator.randint(0, 1))
                + generator.sample(_READ_OTHERWISE, generator.randint(0, 1)) for _ in range(100)]
    without_datasets = 0
    for case, names in enumerate(layouts):
        folder = tmp_path / f"case-{case}"
        folder.mkdir()
        _layout(folder, names)
        without_datasets += data_files._all_train(folder, sorted(folder.rglob("*")))
        for split in ("train", "test", "validation"):
            fast = _resolved(folder, split)
            with monkeypatch.context() as asked:
                asked.setattr(data_files, "_all_train", lambda *_: False)
                assert _resolved(folder, split) == fast, (names, split)
    assert without_datasets >= 25


def test_a_plain_folder_is_resolved_without_importing_datasets(tmp_path):
    (tmp_path / "docs").mkdir()
    for part in range(2):
        (tmp_path / "docs" / f"{part}.jsonl").write_text("{}\n")
    code = ("import sys; from medrecipe.blocks.data_files import local_files; "
            f"print(len(local_files({str(tmp_path / 'docs')!r}, 'train')), 'datasets' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["2", "False"]
