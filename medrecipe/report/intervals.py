"""95 % intervals for benchmark scores, and whether a published score lies within them.

A benchmark is a sample of the questions its domain could ask, so a score measured on n items is known only to
within sampling noise. For an accuracy (each item right or wrong) the interval is Wilson's score interval, which
stays inside [0, 100] and keeps its coverage near 0 % and 100 %, where the normal interval does not. For any other
score (HealthBench's rubric fraction) it is the normal interval from lighteval's standard error over items, cut to
[0, 100]. A published score inside our interval is "consistent": the difference is within the noise of our own
measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Interval:
    low: float  # percent
    high: float
    method: str  # "wilson" or "normal"

    def verdict(self, published: float) -> str:
        """`consistent` when `published` lies in the interval, else whether ours is `higher` or `lower`."""
        if published < self.low:
            return "higher"
        if published > self.high:
            return "lower"
        return "consistent"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def wilson(score: float, n: int, z: float = Z_95) -> Interval:
    """Wilson's score interval for an accuracy of `score` percent over `n` items."""
    if n <= 0:
        raise ValueError("an interval needs at least one item")
    p = min(max(score / 100.0, 0.0), 1.0)
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denominator
    # The interval holds the score it is of. At 0 % and 100 % the formula's bound is the score only up to rounding
    # (found by review: [5.55e-15, 56.15] for 0 of 3, 99.99999999999999 for 10 of 10): our own score fell outside its
    # interval, a published 100 % was called "lower" than ours, and the chart's error bar went negative.
    low, high = min(centre - half, p), max(centre + half, p)
    return Interval(100.0 * max(low, 0.0), 100.0 * min(high, 1.0), "wilson")


def normal(score: float, stderr: float, z: float = Z_95) -> Interval:
    """score ± z standard errors, in percent, within [0, 100]: a score cannot leave it (found by review: HealthBench's
    33.33 ± 33.33 over 2 conversations showed as [-32.00, 98.67])."""
    return Interval(max(score - z * stderr, 0.0), min(score + z * stderr, 100.0), "normal")


def interval(entry: dict) -> Interval | None:
    """The interval of a scores.json entry (`score`, `stderr`, `n`, `metric`), or None when nothing measures its
    noise (no items counted and no standard error)."""
    score, n = float(entry["score"]), int(entry.get("n") or 0)
    if entry.get("metric", "accuracy") == "accuracy" and n > 0:
        return wilson(score, n)
    stderr = float(entry.get("stderr") or 0.0)
    return normal(score, stderr) if stderr > 0 else None
