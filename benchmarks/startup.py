"""How long `medrecipe validate` takes beside the imports it cannot do without (`import pydantic, ruamel.yaml`),
each in a fresh process, run interleaved in one invocation so both see the same machine; medians of N runs.

    python benchmarks/startup.py            # the shipped recipes, 11 runs each
    python benchmarks/startup.py --runs 21

The goal (issue "Architecture"): validate within 3x of the bare imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


# Both sides run from cached bytecode, as an installed package does: with PYTHONDONTWRITEBYTECODE set (some shells
# set it) medrecipe's modules would be compiled from source on every run, and the bare imports' would not.
ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENVIRONMENT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    bare = [sys.executable, "-c", "import pydantic, ruamel.yaml"]
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    samples: dict[str, list[float]] = {"bare imports": []} | {recipe.name: [] for recipe in recipes}
    validate = [str(Path(sys.executable).with_name("medrecipe")), "validate"]
    for recipe in recipes:  # writes the bytecode the measured runs read
        timed([*validate, str(recipe)])
    for _ in range(args.runs):
        samples["bare imports"].append(timed(bare))
        for recipe in recipes:
            samples[recipe.name].append(timed([*validate, str(recipe)]))
    baseline = statistics.median(samples["bare imports"])
    print(f"| what ran | median of {args.runs} (s) | ratio to the bare imports |\n| --- | ---: | ---: |")
    for name, times in samples.items():
        label = "`import pydantic, ruamel.yaml`" if name == "bare imports" else f"`medrecipe validate recipes/{name}`"
        print(f"| {label} | {statistics.median(times):.3f} | {statistics.median(times) / baseline:.1f}x |")


if __name__ == "__main__":
    main()
