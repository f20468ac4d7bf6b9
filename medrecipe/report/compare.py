"""Our evaluation scores beside a recipe's published results table: a rich table and a bar chart, each of our
scores with its 95 % interval and whether the reproduced row's score lies within it (`intervals`).

The published table (`eval.published`) holds the row the recipe reproduces and the other models the original
report compared against. Averages are over the benchmarks both we and the reproduced row have a score for, so
every row is averaged over the same columns; a published row's own average column is shown as published when it
covers the same benchmarks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..catalog import benchmarks
from ..errors import UserError
from ..recipe.model import Published
from ..recipe.untrusted import printable
from .intervals import Interval, interval


@dataclass
class Comparison:
    model: str  # the model our scores are of
    published: Published
    columns: list[str]  # benchmark names: the published table's, in its order, then any only we have
    ours: dict[str, tuple[float, float | None]]  # benchmark -> (score, stderr or None when unmeasured), percent
    items: dict[str, int]  # benchmark -> the items scored (0 when scores.json does not say)
    intervals: dict[str, Interval | None]  # benchmark -> our score's 95 % interval, None when nothing measures it

    @property
    def reference(self) -> dict[str, float]:
        return self.published.scores[self.published.reproduces]

    @property
    def common(self) -> list[str]:
        """Benchmarks both we and the reproduced row have."""
        return [name for name in self.columns if name in self.ours and name in self.reference]

    def deltas(self) -> dict[str, float]:
        return {name: self.ours[name][0] - self.reference[name] for name in self.common}

    def verdicts(self) -> dict[str, str]:
        """Per common benchmark: `consistent` when the reproduced score lies in our interval, else whether ours is
        `higher` or `lower`; `no interval` when scores.json gives neither the items nor a standard error."""
        return {name: self.intervals[name].verdict(self.reference[name]) if self.intervals[name] else "no interval"
                for name in self.common}

    def average(self, row: str | None) -> float | None:
        """The mean over the common benchmarks of our row (None) or a published row; None when it lacks one."""
        values = self.ours if row is None else self.published.scores[row]
        picked = [values[name][0] if row is None else values[name] for name in self.common if name in values]
        if not picked or len(picked) < len(self.common):
            return None
        return sum(picked) / len(picked)

    def published_average(self, row: str) -> float | None:
        """The table's own average column for a row, when it is over the benchmarks ours is over (the common ones).
        Found by review: a row with MedMCQA alone showed its own average beside ours over three benchmarks."""
        if row not in self.published.averages or set(self.published.scores[row]) != set(self.common):
            return None
        return self.published.averages[row]


def load_scores(path: Path) -> dict:
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist", "evaluate first: medrecipe run RECIPE --stage eval") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not JSON: {error}") from None
    except UnicodeDecodeError as error:  # found by review: a UTF-16 file (PowerShell's `>`) ended in a traceback
        raise UserError(f"{path} is not UTF-8 text (byte {error.start})", "save it as UTF-8") from None
    hint = "pass the eval/scores.json that `medrecipe run --stage eval` writes"
    if not isinstance(scores, dict) or not isinstance(scores.get("benchmarks"), dict):
        raise UserError(f"{path} has no `benchmarks` mapping", hint)
    for name, entry in scores["benchmarks"].items():
        # A percentage with its standard error and item count, as run/eval.py writes them: a NaN score compared as
        # "consistent", and a huge n or a score of 150 ended in a traceback (review).
        if not (isinstance(entry, dict) and _is_number(entry.get("score")) and 0 <= entry["score"] <= 100
                and _is_number(stderr := entry.get("stderr", 0.0) or 0.0) and 0 <= stderr <= 100
                and (entry.get("n") is None or (type(entry["n"]) is int and 0 <= entry["n"] < 10**12))):
            raise UserError(f"{path}: benchmarks.{printable(str(name))} is not a score (a mapping with a `score` from 0 "
                            "to 100, its `stderr` and the count of items `n`)", hint)
    return scores


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def compare(scores: dict, published: Published) -> Comparison:
    entries = scores["benchmarks"]
    ours = {name: (float(entry["score"]), None if entry.get("stderr") is None else float(entry["stderr"]))
            for name, entry in entries.items()}
    columns = list(dict.fromkeys(name for row in published.scores.values() for name in row))
    columns += [name for name in ours if name not in columns]
    if not set(ours) & set(published.scores[published.reproduces]):
        raise UserError(
            f"the scores ({', '.join(ours)}) share no benchmark with the published row {published.reproduces!r}",
            "compare against the recipe whose benchmarks these scores are of (--reference)",
        )
    return Comparison(printable(str(scores.get("model", "ours"))), published, columns, ours,
                      {name: int(entry.get("n") or 0) for name, entry in entries.items()},
                      {name: interval(entry) for name, entry in entries.items()})


def score_text(score: float, stderr: float | None) -> str:
    """A score in percent with its standard error; none when lighteval measured none (one item): not "± 0.00"."""
    return f"{score:.2f}" if stderr is None else f"{score:.2f} ± {stderr:.2f}"


def header(name: str) -> str:
    """A benchmark's short name; one medrecipe does not know, as it is, less what a terminal would obey."""
    return benchmarks.BENCHMARKS[name].short if name in benchmarks.BENCHMARKS else printable(name)


def table(comparison: Comparison):
    """A rich Table: the published rows, ours, and our difference to the reproduced row, with averages."""
    from rich.markup import escape
    from rich.table import Table

    published = comparison.published
    result = Table(title=f"ours ({escape(comparison.model)}) vs {escape(published.source)}", title_justify="left")
    # Every Avg is over the common benchmarks: said whenever a row shows more (found by review: our row's extra
    # benchmark was left out of its Avg unsaid, and the caption named the benchmarks "we have a score for").
    if len(comparison.common) < len(comparison.columns):
        result.caption = escape(f"Avg: over the {len(comparison.common)} benchmarks both ours and {published.reproduces} have: "
                                + ", ".join(map(header, comparison.common)))
        result.caption_justify = "left"
    result.add_column("Model")
    for name in comparison.columns:
        result.add_column(escape(header(name)), justify="right")
    result.add_column("Avg", justify="right")
    for row, values in published.scores.items():
        cells = [_number(values.get(name)) for name in comparison.columns]
        average = comparison.published_average(row)
        average = comparison.average(row) if average is None else average
        style = "bold" if row == published.reproduces else None
        # A row's name is the recipe's text, not markup (found by review: `[/]` ended compare in a traceback)
        result.add_row(escape(row) + (" (reproduced)" if row == published.reproduces else ""), *cells, _number(average), style=style)
    result.add_section()
    ours = [score_text(*comparison.ours[name]) if name in comparison.ours else "–" for name in comparison.columns]
    result.add_row("ours", *ours, _number(comparison.average(None)), style="bold cyan")
    deltas = comparison.deltas()
    mean_delta = None
    if comparison.common:
        mean_delta = comparison.average(None) - comparison.average(published.reproduces)
    reproduced = escape(published.reproduces)
    result.add_row(f"Δ vs {reproduced}", *[_delta(deltas.get(name)) for name in comparison.columns], _delta(mean_delta))
    result.add_row("95 % interval", *[_interval(comparison.intervals.get(name)) for name in comparison.columns], "")
    verdicts = comparison.verdicts()
    result.add_row(f"ours vs {reproduced}", *[_verdict(verdicts.get(name)) for name in comparison.columns], "")
    return result


def verdict_lines(comparison: Comparison) -> list[str]:
    """One line per common benchmark: our score, its interval and items, the published score and the verdict."""
    lines = []
    for name, verdict in comparison.verdicts().items():
        score, found = comparison.ours[name][0], comparison.intervals[name]
        measured = "no interval: scores.json gives neither items nor a standard error" if found is None else (
            f"95 % interval [{found.low:.2f}, {found.high:.2f}] ({found.method}, n={comparison.items[name] or '?'})")
        published = f"{comparison.published.reproduces} {comparison.reference[name]:.2f}"
        lines.append(f"{header(name)}: {score:.2f}, {measured}; {published}: {_SAID[verdict]}")
    return lines


def can_plot() -> bool:
    """Whether matplotlib (the `plot` extra) is installed: without it there is no chart."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def plot(comparison: Comparison, path: Path | BinaryIO, ours: str) -> None:
    """A grouped bar chart for the model card, as PNG into a file or a buffer: ours (with its 95 % intervals), named
    `ours` in the legend, beside the reproduced row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = comparison.common
    reference = comparison.reference
    positions = range(len(names))
    width = 0.38
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2), dpi=150)
    axes.bar([x - width / 2 for x in positions], [reference[name] for name in names], width,
             label=f"{_unmath(comparison.published.reproduces)} (published)", color="#9aa5b1")
    scores = [comparison.ours[name][0] for name in names]
    found = [comparison.intervals[name] for name in names]
    # matplotlib refuses a negative error bar: one, a rounding's, ended `compare` on a real run's 0 of 3 (found by review).
    below = [max(score - i.low, 0.0) if i else 0.0 for score, i in zip(scores, found)]
    above = [max(i.high - score, 0.0) if i else 0.0 for score, i in zip(scores, found)]
    axes.bar([x + width / 2 for x in positions], scores, width, yerr=[below, above], capsize=3,
             label=f"{_unmath(ours)} (ours, 95 % interval)", color="#1f77b4")
    axes.set_xticks(list(positions), [_unmath(header(name)) for name in names], rotation=30, ha="right")
    axes.set_ylabel("score (%)")
    axes.set_ylim(0, 100)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, fontsize=8, frameon=False)
    figure.tight_layout()
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)


def _unmath(text: str) -> str:
    """Text as matplotlib shows it as written: it reads `$...$` as mathematics (found by review: a row named
    "A $\\foo{$" ended compare in a ValueError, and "Cost $5 vs $10" lost its dollars)."""
    return text.replace("$", r"\$")


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


_SAID = {"consistent": "consistent", "higher": "ours higher", "lower": "ours lower", "no interval": "no interval"}


def _interval(found: Interval | None) -> str:
    return "–" if found is None else f"[{found.low:.1f}, {found.high:.1f}]"


def _verdict(verdict: str | None) -> str:
    colour = {"consistent": "green", "higher": "cyan", "lower": "red"}.get(verdict or "")
    return "–" if verdict is None else f"[{colour}]{verdict}[/]" if colour else verdict


def _delta(value: float | None) -> str:
    if value is None:
        return "–"
    colour = "green" if value >= 0 else "red"
    return f"[{colour}]{value:+.2f}[/]"
