"""Which lighteval metric of a task is its score, and what that score measures."""

from __future__ import annotations

from dataclasses import dataclass

from ...catalog import benchmarks


@dataclass(frozen=True)
class Score:
    """Which lighteval metric of a task is its score, and what it measures (for scores.json)."""

    key: str  # in lighteval's results
    metric: str  # the metric's type in scores.json and the model card's model-index
    description: str
    unboxed: bool  # the task also reports the fraction of answers found without \boxed{}


def score_of(benchmark: benchmarks.Benchmark, mode: str, judge: str | None) -> Score:
    if mode == "loglikelihood":
        return Score("acc", "accuracy", "accuracy of the most likely option (log-likelihood of its letter)", False)
    if benchmark.kind == "rubric":
        return Score("rubric_score", "healthbench_score",
                     f"rubric points met over positive points, judged by {judge}; mean clipped to [0, 1]", False)
    answer = "yes/no/maybe" if benchmark.kind == "yes_no_maybe" else "option letter"
    return Score("acc", "accuracy", f"accuracy of the {answer} in the final \\boxed{{}} (unboxed answers counted too)", True)
