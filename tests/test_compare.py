"""`medrecipe compare`: our scores against the published table of a recipe, as a table and a PNG chart."""

from __future__ import annotations

import json
import re

import matplotlib.image
import pytest

from medrecipe import compare
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
    assert len(rows) == 1 + 7 + 2  # the header, every published model, ours and the difference
    assert "Avg: over the 3 benchmarks we have a score for: MedMC, MedQA, PubMed" in result.out
    chart = scores.with_name("scores.png")
    assert result.out.strip().endswith(f"chart: {chart}")
    image = matplotlib.image.imread(chart)
    assert image.shape[0] > 300 and image.shape[1] > 600


def test_compare_cli_with_an_explicit_reference_and_png(cli, write, tmp_path):
    scores = write("scores.json", json.dumps({k: v for k, v in SCORES.items() if k != "recipe"}))
    result = cli("compare", str(scores), "--reference", "ii-medical-8b-1706", "--png", "card/chart.png")
    assert result.code == 0, result.err
    assert (tmp_path / "card" / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
