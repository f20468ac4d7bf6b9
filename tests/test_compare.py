"""`medrecipe compare`: our scores against the published table of a recipe, as a table and a PNG chart."""

from __future__ import annotations

import io
import json
import re
import sys

import matplotlib.image
import pytest

from medrecipe.report import compare, intervals
from medrecipe.recipe import load_recipe

from .conftest import RECIPES

# Scores as `medrecipe run --stage eval` writes them, for three of II-Medical-8B-1706's ten benchmarks.
SCORES = {
    "recipe": "ii-medical-8b-1706",
    "key": "44a4a1e14f63",
    "model": "build/ii-medical-8b-1706/rl/90d7bcb7d553/model",
    "lighteval": "0.13.0",
    "generation": {"temperature": 0.6, "top_p": 0.9, "top_k": None, "max_new_tokens": 32768, "seed": 42},
    "benchmarks": {
        "medmcqa": {"score": 73.94, "stderr": 0.68, "n": 4183, "metric": "accuracy", "unboxed": 0.004},
        "medqa": {"score": 88.61, "stderr": 0.89, "n": 1273, "metric": "accuracy", "unboxed": 0.0},
        "pubmedqa": {"score": 80.3, "stderr": 1.26, "n": 1000, "metric": "accuracy", "unboxed": 0.012},
    },
}


# scores.json as `medrecipe run --stage eval` wrote it from lighteval 0.13's results on the CPU
# (test_eval_run.test_tiny_model_evaluated_end_to_end): PubMedQA 0 of 3, HealthBench 1/3 ± 1/3 over 2 conversations.
REAL_RUN = {
    "recipe": "tiny-eval", "key": "a0e556c437f9", "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "lighteval": "0.13.0",
    "mode": "generative", "generation": {"temperature": 0.6, "top_p": 0.9, "top_k": None, "max_new_tokens": 32, "seed": 7},
    "benchmarks": {
        "medmcqa": {"score": 50.0, "stderr": 50.0, "n": 2, "metric": "accuracy", "unboxed": 0.5},
        "pubmedqa": {"score": 0.0, "stderr": 0.0, "n": 3, "metric": "accuracy", "unboxed": 0.0},
        "healthbench": {"score": 33.3333, "stderr": 33.3333, "n": 2, "metric": "healthbench_score", "unboxed": None},
    },
}


@pytest.fixture
def published():
    return load_recipe(RECIPES / "ii-medical-8b-1706.yaml").recipe.eval.published


def test_deltas_and_averages_over_the_common_benchmarks(published):
    comparison = compare.compare(SCORES, published)
    assert comparison.common == ["medmcqa", "medqa", "pubmedqa"]
    assert comparison.deltas() == pytest.approx({"medmcqa": 73.94 - 74.44, "medqa": 0.0, "pubmedqa": 80.3 - 79.8})
    assert comparison.average(None) == pytest.approx((73.94 + 88.61 + 80.3) / 3)
    assert comparison.average("II-Medical-8B-1706") == pytest.approx((74.44 + 88.61 + 79.8) / 3)
    assert comparison.average("Qwen3-8B") == pytest.approx((66.53 + 81.38 + 73.9) / 3)
    assert comparison.published_average("II-Medical-8B-1706") is None  # the card's 70.5 spans all ten


def test_the_published_average_is_shown_when_we_cover_every_benchmark(published):
    full = dict(SCORES, benchmarks={name: {"score": value, "stderr": 1.0} for name, value in published.scores["Qwen3-8B"].items()})
    comparison = compare.compare(full, published)
    assert comparison.published_average("II-Medical-8B-1706") == 70.5
    assert comparison.average(None) == pytest.approx(62.89, abs=0.01)  # Qwen3-8B's row scored as ours


def test_a_published_average_over_fewer_benchmarks_than_ours_is_not_shown(cli, write):
    """Found by review: a row with MedMCQA alone showed its own average, 90, beside ours over three benchmarks."""
    write("partial.yaml", """
name: partial-avg
base_model: Qwen/Qwen3-8B
eval:
  benchmarks: [medmcqa, medqa, pubmedqa]
  published:
    source: a paper whose table has a row with one benchmark and an Avg column
    reproduces: Ours-7B
    scores:
      Ours-7B: {medmcqa: 60.0, medqa: 70.0, pubmedqa: 80.0}
      Other-7B: {medmcqa: 90.0}
    averages: {Ours-7B: 70.0, Other-7B: 90.0}
""")
    result = cli("compare", str(write("scores.json", json.dumps(SCORES))), "--reference", "partial.yaml")
    assert result.code == 0, result.err
    averages = {cells[0]: cells[-1] for cells in ([cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
                                                  for line in result.out.splitlines() if line[:1] == "│")}
    assert (averages["Ours-7B (reproduced)"], averages["Other-7B"]) == ("70.00", "–")


def test_the_avg_column_says_which_benchmarks_it_is_over_when_a_row_shows_more(cli, write):
    """Found by review: our row showed PubMedQA, which the reproduced row lacks, and an Avg without it, and said nothing;
    the caption appeared only when we lacked one of the reproduced row's benchmarks, and said "we have a score for"."""
    write("narrow.yaml", """
name: narrow-avg
base_model: Qwen/Qwen3-8B
eval:
  benchmarks: [medmcqa, medqa, pubmedqa]
  published:
    source: a card whose own row has two benchmarks
    reproduces: Ours-7B
    scores:
      Ours-7B: {medmcqa: 60.0, medqa: 70.0}
      Other-7B: {medmcqa: 50.0, medqa: 55.0, pubmedqa: 70.0}
""")
    result = cli("compare", str(write("scores.json", json.dumps(SCORES))), "--reference", "narrow.yaml")
    assert result.code == 0, result.err
    rows = {cells[0]: cells[1:] for cells in ([cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
                                               for line in result.out.splitlines() if line[:1] in "│┃")}
    assert rows["ours"] == ["73.94 ± 0.68", "88.61 ± 0.89", "80.30 ± 1.26", f"{(73.94 + 88.61) / 2:.2f}"]
    assert "Avg: over the 2 benchmarks both ours and Ours-7B have: MedMC, MedQA" in result.out


def test_published_row_names_are_shown_as_written_not_as_terminal_markup(cli, write):
    """Found by review: a recipe's row names went into the table as rich markup: `[reported]` vanished, `[/]` ended
    compare in a MarkupError traceback and `[link=...]` printed a terminal hyperlink to the recipe author's URL."""
    write("marked.yaml", """
name: marked-rows
base_model: Qwen/Qwen3-8B
eval:
  benchmarks: [medmcqa]
  published:
    source: a paper
    reproduces: "Ours-7B [reported]"
    scores:
      "Ours-7B [reported]": {medmcqa: 60.0}
      "Other [/]": {medmcqa: 50.0}
      "[link=https://example.org/x]Third[/link]": {medmcqa: 40.0}
""")
    result = cli("compare", str(write("scores.json", json.dumps(SCORES))), "--reference", "marked.yaml")
    assert result.code == 0 and "Traceback" not in result.err, result.err
    rows = [line.split("│")[1].strip() for line in result.out.splitlines() if line[:1] == "│"]
    assert rows[:3] == ["Ours-7B [reported] (reproduced)", "Other [/]", "[link=https://example.org/x]Third[/link]"]
    assert rows[4:] == ["Δ vs Ours-7B [reported]", "95 % interval", "ours vs Ours-7B [reported]"]


def test_compare_cli_prints_the_table_and_writes_the_chart(cli, write, tmp_path):
    scores = write("build/ii-medical-8b-1706/eval/scores.json", json.dumps(SCORES))
    result = cli("compare", str(scores))
    assert result.code == 0, result.err
    rows = {cells[0]: cells[1:] for cells in ([cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
                                               for line in result.out.splitlines() if line[:1] in "│┃")}
    assert rows["Model"] == ["MedMC", "MedQA", "PubMed", "MMLU-P", "HealthBench", "Lancet", "MedB-4", "MedB-5", "MedX", "NEJM", "Avg"]
    assert rows["ours"] == ["73.94 ± 0.68", "88.61 ± 0.89", "80.30 ± 1.26"] + ["–"] * 7 + ["80.95"]
    assert rows["Δ vs II-Medical-8B-1706"] == ["-0.50", "+0.00", "+0.50"] + ["–"] * 7 + ["+0.00"]
    assert rows["II-Medical-8B-1706 (reproduced)"][:3] == ["74.44", "88.61", "79.80"]
    assert rows["Qwen3-8B"][-1] == "73.94"  # its mean over the three common benchmarks
    assert rows["95 % interval"][:4] == ["[72.6, 75.2]", "[86.7, 90.2]", "[77.7, 82.6]", "–"]
    assert rows["ours vs II-Medical-8B-1706"][:3] == ["consistent"] * 3
    assert len(rows) == 1 + 7 + 4  # the header, every published model, ours, the difference, intervals, verdicts
    assert "MedQA: 88.61, 95 % interval [86.75, 90.24] (wilson, n=1273); II-Medical-8B-1706 88.61: consistent" in result.out
    assert "Avg: over the 3 benchmarks both ours and II-Medical-8B-1706 have: MedMC, MedQA, PubMed" in result.out
    chart = scores.with_name("scores.png")
    assert result.out.strip().endswith(f"chart: {chart}")
    image = matplotlib.image.imread(chart)
    assert image.shape[0] > 300 and image.shape[1] > 600


def test_without_matplotlib_compare_prints_its_table_and_says_how_to_get_the_chart(cli, write, monkeypatch):
    """matplotlib is the `plot` extra: compare (and publish, whose card then has no chart) works without it."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    scores = write("build/ii-medical-8b-1706/eval/scores.json", json.dumps(SCORES))
    result = cli("compare", str(scores))
    assert result.code == 0, result.err
    assert "MedQA: 88.61" in result.out and "chart: none, matplotlib is not installed: pip install 'medrecipe[plot]'" in result.out
    assert not scores.with_name("scores.png").exists()


def test_a_score_without_a_measured_standard_error_shows_none(published):
    """scores.json says `stderr: null` where lighteval measured none (one item, run/eval.py): no "± 0.00" (review)."""
    one = dict(SCORES, benchmarks={"medqa": {"score": 100.0, "stderr": None, "n": 1, "metric": "accuracy"}})
    comparison = compare.compare(one, published)
    rows = {cells[0]: cells[1:] for cells in ([cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
                                               for line in _printed(compare.table(comparison)).splitlines() if line[:1] == "│")}
    assert rows["ours"][1] == "100.00" and rows["95 % interval"][1] == "[20.7, 100.0]"


def _printed(renderable) -> str:
    from rich.console import Console

    console = Console(width=240, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_intervals_are_wilson_for_accuracies_and_normal_otherwise():
    from scipy.stats import binomtest

    for correct, items in ((1128, 1273), (0, 40), (40, 40), (3093, 4183)):
        expected = binomtest(correct, items).proportion_ci(0.95, method="wilson")
        found = intervals.wilson(100 * correct / items, items)
        assert (found.low, found.high) == pytest.approx((100 * expected.low, 100 * expected.high), abs=1e-9)
    assert intervals.wilson(0.0, 40).low == 0.0 and intervals.wilson(100.0, 40).high == 100.0
    rubric = intervals.interval({"score": 46.2, "stderr": 1.5, "n": 5000, "metric": "healthbench_score"})
    assert rubric.method == "normal" and (rubric.low, rubric.high) == pytest.approx((46.2 - 1.96 * 1.5, 46.2 + 1.96 * 1.5), abs=1e-3)
    assert intervals.interval({"score": 60.0, "stderr": 0.0}) is None  # nothing measures its noise
    assert intervals.interval({"score": 60.0, "stderr": 2.0}).method == "normal"  # accuracy, items not counted


def test_a_real_runs_scores_at_the_edges_are_compared_and_charted(cli, write):
    """Found by review: the 0 of 3's Wilson bound was 5.55e-15, above the score, and the chart's negative error bar
    ended `compare` in a matplotlib traceback; the normal interval reached below 0."""
    scores = write("scores.json", json.dumps(REAL_RUN))
    result = cli("compare", str(scores), "--reference", "ii-medical-8b-1706")
    assert result.code == 0, result.err
    assert "PubMed: 0.00, 95 % interval [0.00, 56.15] (wilson, n=3); II-Medical-8B-1706 79.80: ours lower" in result.out
    # HealthBench's 33.33 ± 1.96 × 33.33 over 2 conversations, within what a score can be (it was [-32.00, 98.67])
    assert "HealthBench: 33.33, 95 % interval [0.00, 98.67] (normal, n=2); II-Medical-8B-1706 46.80: consistent" in result.out
    assert matplotlib.image.imread(scores.with_name("scores.png")).shape[0] > 300


def test_the_wilson_interval_holds_its_score_at_0_and_100_percent():
    # statsmodels' proportion_confint(0, 3, method="wilson") is (0.0, 0.5615), of 10 of 10 (0.7225, 1.0)
    assert (intervals.wilson(0.0, 3).low, intervals.wilson(100.0, 10).high) == (0.0, 100.0)
    for score, n in ((0.0, 2), (0.0, 3), (100.0, 2), (100.0, 10), (100.0, 1273)):
        assert intervals.wilson(score, n).verdict(score) == "consistent"


def test_verdicts_say_whether_the_published_score_is_within_our_interval(published):
    scores = dict(SCORES, benchmarks={
        "medmcqa": {"score": 73.94, "stderr": 0.68, "n": 4183, "metric": "accuracy"},  # published 74.44 inside
        "medqa": {"score": 85.0, "stderr": 1.0, "n": 1273, "metric": "accuracy"},  # [82.9, 86.9]: 88.61 above it
        "pubmedqa": {"score": 84.0, "stderr": 1.2, "n": 1000, "metric": "accuracy"},  # [81.6, 86.1]: 79.8 below it
        "mmlu_pro_medical": {"score": 70.0, "stderr": 0.0, "metric": "accuracy"},
    })
    comparison = compare.compare(scores, published)
    assert comparison.verdicts() == {"medmcqa": "consistent", "medqa": "lower", "pubmedqa": "higher", "mmlu_pro_medical": "no interval"}
    lines = compare.verdict_lines(comparison)
    assert lines[1] == "MedQA: 85.00, 95 % interval [82.93, 86.86] (wilson, n=1273); II-Medical-8B-1706 88.61: ours lower"
    assert lines[3].endswith("no interval: scores.json gives neither items nor a standard error; II-Medical-8B-1706 "
                             f"{published.scores['II-Medical-8B-1706']['mmlu_pro_medical']:.2f}: no interval")


def test_the_chart_names_a_row_with_dollar_signs_as_written(published, tmp_path, monkeypatch):
    """Found by review: matplotlib reads `$...$` in a legend as mathematics: a row named "Cost $5 vs $10" lost its
    dollars and spaces, and one named "A $\\foo{$ B" ended compare in a ValueError."""
    import matplotlib.pyplot as plt
    from matplotlib.cbook import is_math_text

    name = "A $\\foo{$ B"
    table = published.model_copy(update={"reproduces": name, "scores": {name: published.scores["II-Medical-8B-1706"]}})
    legends, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda figure: legends.append(figure.axes[0].get_legend().get_texts()) or close(figure))
    compare.plot(compare.compare(SCORES, table), tmp_path / "chart.png", "Cost $5 vs $10")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    [texts] = legends
    assert not any(is_math_text(text.get_text()) for text in texts)
    assert [text.get_text().replace("\\$", "$") for text in texts] == [f"{name} (published)", "Cost $5 vs $10 (ours, 95 % interval)"]


def test_compare_cli_with_an_explicit_reference_and_png(cli, write, tmp_path):
    scores = write("scores.json", json.dumps({k: v for k, v in SCORES.items() if k != "recipe"}))
    result = cli("compare", str(scores), "--reference", "ii-medical-8b-1706", "--png", "card/chart.png")
    assert result.code == 0, result.err
    assert (tmp_path / "card" / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_charts_legend_names_a_local_model_as_a_card_does(cli, write, tmp_path, published):
    """Found by review: the legend named the checkpoint by its absolute path, which a model card hides (public_path)."""
    scores = dict(SCORES, model=str(tmp_path / "home" / "me" / "build" / "rl" / "model"))
    assert cli("compare", str(write("scores.json", json.dumps(scores)))).code == 0
    compare.plot(compare.compare(scores, published), tmp_path / "expected.png", ".../model")
    assert (tmp_path / "scores.png").read_bytes() == (tmp_path / "expected.png").read_bytes()


def test_compare_errors(cli, write):
    no_recipe = write("a.json", json.dumps({k: v for k, v in SCORES.items() if k != "recipe"}))
    result = cli("compare", str(no_recipe))
    assert result.code == 2 and "names no recipe" in result.err and "--reference" in result.err
    assert "does not exist" in cli("compare", "missing.json", "--reference", "ii-medical-8b-1706").err
    write("plain.yaml", "name: plain\nbase_model: Qwen/Qwen3-8B\neval: {benchmarks: [medmcqa]}\n")
    result = cli("compare", str(no_recipe), "--reference", "plain.yaml")
    assert result.code == 2 and "no published results table" in result.err
    other = write("b.json", json.dumps(dict(SCORES, benchmarks={"mmlu_anatomy": {"score": 60.0, "stderr": 1.0}})))
    result = cli("compare", str(other))
    assert result.code == 2 and "share no benchmark" in result.err
    utf16 = write("utf16.json", "")
    utf16.write_bytes(json.dumps(SCORES).encode("utf-16"))  # as PowerShell's `>` writes (found by review: a traceback)
    result = cli("compare", str(utf16))
    assert result.code == 2 and f"{utf16} is not UTF-8 text (byte 0)" in result.err and "save it as UTF-8" in result.err


@pytest.mark.parametrize("entry", [{"score": float("nan"), "stderr": 1.0}, {"score": 150.0, "stderr": 1.0},
                                   {"score": 70.0, "stderr": 1.0, "n": 1e999}, {"score": 70.0, "stderr": 1.0, "n": -5},
                                   {"score": 70.0, "stderr": float("inf")}])
def test_a_score_that_is_no_percentage_is_refused_not_compared(cli, write, entry):
    """A NaN score was called "consistent" with the published one; n=1e999 and a score of 150 ended in tracebacks."""
    scores = write("s.json", json.dumps(dict(SCORES, benchmarks={**SCORES["benchmarks"], "medmcqa": entry})))
    result = cli("compare", str(scores))
    assert result.code == 2 and "benchmarks.medmcqa is not a score" in result.err and "Traceback" not in result.err


def test_names_from_a_scores_file_reach_the_terminal_without_its_escapes(cli, write):
    scores = write("s.json", json.dumps(dict(SCORES, model="\x1b[2Jmine [bold red]x[/]")))
    result = cli("compare", str(scores))
    assert result.code == 0, result.err
    assert "\x1b[2J" not in result.out and "[bold red]x[/]" in result.out
