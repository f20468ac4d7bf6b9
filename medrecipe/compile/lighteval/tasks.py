"""eval/tasks.py: a self-contained custom-task module, medrecipe's readers and graders embedded verbatim."""

from __future__ import annotations

import hashlib
import inspect

from ... import __version__, grading
from ...catalog import benchmark_items, benchmarks
from ...recipe import LoadedRecipe
from ..layout import recipe_sha256
from .benchmark_files import DataPlan
from .evaluated_model import samples
from .names import RUNTIME, TOOL, task_name


def _embedded(module) -> str:
    """A medrecipe module's source for pasting into tasks.py (its `from __future__` import goes to the top)."""
    source = inspect.getsource(module)
    return "".join(line for line in source.splitlines(keepends=True) if line.strip() != "from __future__ import annotations")


def tasks_module(loaded: LoadedRecipe, plans: list[DataPlan]) -> str:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    entries = []
    for ref, plan in zip(ev.benchmarks, plans):
        bench = benchmarks.of(recipe, ref.name)
        entries.append({
            "name": ref.name,
            "task": task_name(ref.name),
            "reader": bench.reader,
            "spec": bench.spec,
            "where": bench.where,
            "location": plan.location,
            "staged": plan.location is None,
            "subset": plan.subset,
            "split": ref.split or bench.split,
            "max_samples": ref.max_samples,
        })
    judge = None
    if ev.judge:
        judge = {"model": ev.judge.model, "endpoint": ev.judge.endpoint, "api_key_env": ev.judge.api_key_env,
                 "temperature": ev.judge.temperature, "top_p": ev.judge.top_p, "max_tokens": ev.judge.max_tokens,
                 "max_concurrent_requests": ev.judge.max_concurrent_requests, "system": ev.judge.system,
                 "prompt": ev.judge.prompt}
    parameters = "\n".join([
        f"MODE = {ev.mode!r}",
        f"TEMPLATE = {ev.prompt.template!r}",
        f"INSTRUCTION = {ev.prompt.instruction!r}",
        f"MAX_NEW_TOKENS = {ev.sampling.max_new_tokens}",
        f"SEED = {recipe.seed}",
        f"SEED_TORCH = {ev.backend == 'accelerate' and samples(loaded)}",
        f"JUDGE = {judge!r}",
        "BENCHMARKS = [",
        *(f"    {entry!r}," for entry in entries),
        "]",
    ])
    body = "\n\n".join([
        _section("medrecipe.catalog.benchmark_items, embedded verbatim") + _embedded(benchmark_items).strip("\n"),
        _section("medrecipe.grading, embedded verbatim") + _embedded(grading).strip("\n"),
        _section(f"the recipe {recipe.name!r}") + parameters,
        _section("the tasks") + RUNTIME.read_text(encoding="utf-8").strip("\n"),
    ])
    # The digest names the prompt functions, so lighteval's answer cache never serves answers to other prompts.
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    body = body.replace("\nBENCHMARKS = [", f"\nDIGEST = {digest!r}\nBENCHMARKS = [", 1)
    tasks = ", ".join(f"{task_name(ref.name)}|0" for ref in ev.benchmarks)
    header = (
        f'"""{TOOL} tasks of the recipe {recipe.name!r}, compiled by medrecipe {__version__} '
        f"(recipe sha256 {recipe_sha256(recipe)[:16]}).\n\n"
        f"Tasks: {tasks}.\n"
        "Self-contained: medrecipe's benchmark readers and graders are embedded below, so lighteval loads this file\n"
        "(--custom-tasks) where medrecipe is not installed. Edit the recipe, not this file.\n"
        '"""\n\nfrom __future__ import annotations\n\n'
    )
    return header + body + "\n"


def _section(title: str) -> str:
    return f"# {'=' * 100}\n# {title}\n# {'=' * 100}\n\n"
