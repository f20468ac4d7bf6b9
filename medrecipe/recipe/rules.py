"""Rules that span several fields or sections, each naming the exact field that breaks it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from . import derive
from .model import (
    DecontaminateFuzzy,
    DecontaminateNgram,
    Generate,
    PolicyOptimization,
    PreferenceStage,
    Recipe,
)
from .model.basics import hub_id_problem


@dataclass(frozen=True)
class Violation:
    path: tuple
    message: str
    hint: str | None = None


# excluded/<name> holds each step's removals; excluded/read, the source rows the readers could not turn into records
READ_STEP = "read"


def step_names(recipe: Recipe) -> list[str]:
    """Each curation step's name: its own, else its type, numbered when a type repeats."""
    if recipe.data is None:
        return []
    types = Counter(step.type for step in recipe.data.steps)
    seen: Counter = Counter()
    names = []
    for step in recipe.data.steps:
        seen[step.type] += 1
        names.append(step.name or (step.type if types[step.type] == 1 else f"{step.type}-{seen[step.type]}"))
    return names


def check(recipe: Recipe) -> list[Violation]:
    found: list[Violation] = []
    found += _data_rules(recipe)
    found += _training_rules(recipe)
    found += _eval_rules(recipe)
    found += _hub_rules(recipe)
    return found


def _hub_rules(recipe: Recipe) -> list[Violation]:
    """The release's repositories need names the Hub takes, checked here and not when the first of them has been
    pushed: a name derived from the recipe's (`<name>-sft`) can break rules the name alone keeps. And distinct names:
    a model pushed as the SFT checkpoint's repository would replace it, and `publish --to-dir` writes each into a
    folder of its name."""
    names = {artifact: recipe.repo_name(artifact) for artifact in ("dataset", "sft", "model")}
    found = []
    for artifact in recipe.published():
        problem = hub_id_problem(names[artifact])
        if problem and getattr(recipe.hub, f"{artifact}_repo") is None:
            found.append(Violation(("name",), f"the {artifact} repository would be named {names[artifact]!r}, which the Hub "
                                   f"refuses: {problem}", f"rename the recipe, or name the repository: --set hub.{artifact}_repo=..."))
    for artifact, name in names.items():
        others = [other for other, same in names.items() if same == name and other != artifact]
        # blamed: a name the recipe sets, not the default it collides with (both set: each is blamed)
        if others and getattr(recipe.hub, f"{artifact}_repo") is not None:
            found.append(Violation(("hub", f"{artifact}_repo"), f"the {artifact} repository is named {name!r}, as the "
                                   f"{others[0]} repository is", f"give it another name: --set hub.{artifact}_repo=..."))
    return found


def _data_rules(recipe: Recipe) -> list[Violation]:
    data = recipe.data
    if data is None:
        return []
    found = []
    names = [s.name for s in data.sources]
    for name, count in Counter(names).items():
        if count > 1:
            found.append(Violation(("data", "sources", names.index(name), "name"), f"source name {name!r} is used {count} times"))
    groups = {s.group for s in data.sources if s.group}
    for index, source in enumerate(data.sources):
        if source.group and source.group in names:
            found.append(Violation(("data", "sources", index, "group"), f"group {source.group!r} is also a source name"))
    selectable = set(names) | groups
    eval_names = [b.name for b in recipe.eval.benchmarks] if recipe.eval else []
    for name, count in Counter(step_names(recipe)).items():
        if count > 1:
            found.append(Violation(("data", "steps"), f"step name {name!r} is used {count} times", "give the steps distinct `name`s"))
    for index, name in enumerate(step_names(recipe)):
        if name == READ_STEP:
            found.append(Violation(("data", "steps", index, "name"), f"step name {READ_STEP!r} names the rows the readers "
                                   "reject (excluded/read)", "give the step another name"))

    generated: set[str] = set()
    for index, step in enumerate(data.steps):
        selected = set(step.sources or names)
        unknown = sorted(selected - selectable)
        if unknown:
            found.append(
                Violation(
                    ("data", "steps", index, "sources"),
                    f"no source or group named {', '.join(map(repr, unknown))}",
                    f"sources: {', '.join(names)}" + (f"; groups: {', '.join(sorted(groups))}" if groups else ""),
                )
            )
        selected_sources = {s.name for s in data.sources if s.name in selected or s.group in selected}
        if isinstance(step, Generate):
            not_prompts = sorted(s.name for s in data.sources if s.name in selected_sources and s.kind != "prompts")
            if not_prompts:
                found.append(
                    Violation(
                        ("data", "steps", index, "sources"),
                        f"generate completes `prompts` sources only; {', '.join(not_prompts)} already carry responses",
                        "select the prompt-only sources with `sources:`",
                    )
                )
            again = sorted(selected_sources & generated)
            if again:  # its prompts already have responses: it failed after every request, or replaced the first's
                found.append(
                    Violation(
                        ("data", "steps", index, "sources"),
                        f"{', '.join(again)} already got responses from an earlier generate step",
                        "one generate step per prompt source: sample more with its `samples` and `max_samples`",
                    )
                )
            generated |= selected_sources
            if step.grader != "none":
                missing = sorted(s.name for s in data.sources if s.name in selected_sources and not s.fields.answer)
                if missing:
                    found.append(
                        Violation(
                            ("data", "steps", index, "grader"),
                            f"grading needs a reference answer; {', '.join(missing)} map no `fields.answer`",
                            "map the answer column, or set grader: none and add a judge_filter",
                        )
                    )
        elif isinstance(step, (DecontaminateNgram, DecontaminateFuzzy)):
            if step.benchmarks is None and not eval_names:
                found.append(
                    Violation(
                        ("data", "steps", index, "benchmarks"),
                        "decontamination needs evaluation sets: list `benchmarks`, or add an `eval` section",
                    )
                )
        else:
            # A step that reads responses must come after the generation that writes them.
            ungenerated = sorted(
                s.name for s in data.sources if s.kind == "prompts" and s.name in selected_sources and s.name not in generated
            )
            if ungenerated and step.type in ("complete_generation", "max_word_occurrences", "near_dedup", "judge_filter"):
                found.append(
                    Violation(
                        ("data", "steps", index, "sources"),
                        f"{step.type} reads responses, but {', '.join(ungenerated)} get theirs from a later or missing generate step",
                    )
                )
    for index, source in enumerate(data.sources):
        if source.kind == "prompts" and source.name not in generated:
            found.append(
                Violation(
                    ("data", "sources", index, "kind"),
                    f"source {source.name!r} has prompts only, and no generate step completes it",
                    "add a `type: generate` step selecting it, or map its responses and use kind: conversations",
                )
            )
    return found


def _training_rules(recipe: Recipe) -> list[Violation]:
    found = []
    if recipe.sft is not None:
        try:
            derive.sft_batch(recipe.sft, recipe.compute)
        except derive.DerivationError as exc:
            found.append(Violation(tuple(exc.field.split(".")), str(exc), exc.hint))
        if recipe.sft.datasets is None and recipe.data is None:
            found.append(
                Violation(("sft", "datasets"), "SFT has no data: add a `data` section or list `sft.datasets`")
            )
    rl = recipe.rl
    if rl is not None:
        if rl.init_from == "sft" and recipe.sft is None:
            found.append(Violation(("rl", "init_from"), "init_from: sft, but the recipe has no `sft` section", "name a model id instead"))
        try:
            if isinstance(rl, PolicyOptimization):
                derive.rollout_plan(rl, recipe.compute)
            elif isinstance(rl, PreferenceStage):
                derive.preference_gpus(rl, recipe.compute)
        except derive.DerivationError as exc:
            found.append(Violation(tuple(exc.field.split(".")), str(exc), exc.hint))
    return found


def _eval_rules(recipe: Recipe) -> list[Violation]:
    ev = recipe.eval
    if ev is None:
        return []
    found = []
    sections = {"sft": recipe.sft, "rl": recipe.rl}
    if ev.model in sections and sections[ev.model] is None:
        found.append(Violation(("eval", "model"), f"eval.model is {ev.model!r}, but the recipe has no `{ev.model}` section"))
    engines, gpus = derive.eval_gpus(ev, recipe.compute)
    if ev.backend != "vllm" and ev.data_parallel_size:
        found.append(Violation(("eval", "data_parallel_size"), "data_parallel_size is the vLLM backend's: lighteval's "
                               "accelerate backend runs one process on one GPU", "leave it out, or --set eval.backend=vllm"))
    elif gpus > recipe.compute.gpus_per_node:
        field = "data_parallel_size" if ev.data_parallel_size else "tensor_parallel_size"
        found.append(Violation(("eval", field), f"the eval stage runs on one node: {engines} vLLM engine(s) x tensor_parallel_size "
                               f"{ev.tensor_parallel_size} = {gpus} GPUs, but compute.gpus_per_node is {recipe.compute.gpus_per_node}",
                               f"at most {recipe.compute.gpus_per_node} GPUs in all: lower eval.{field}"))
    names = [b.name for b in ev.benchmarks]
    for name, count in Counter(names).items():
        if count > 1:
            found.append(Violation(("eval", "benchmarks", names.index(name)), f"benchmark {name!r} is listed {count} times"))
    if ev.published:
        for model, scores in ev.published.scores.items():
            for benchmark in scores:
                if benchmark not in names:
                    found.append(
                        Violation(
                            ("eval", "published", "scores", model, benchmark),
                            f"published score for {benchmark!r}, which eval.benchmarks does not list",
                        )
                    )
    return found
