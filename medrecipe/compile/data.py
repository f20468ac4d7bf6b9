"""The data section as datatrove pipelines: `data/plan.json`, the stages in order, each a list of blocks.

Per-record steps run inside one pipeline. A step that needs the whole corpus first (near-duplicates,
domain clusters, a percentile) splits into collect / resolve / apply: its collector runs at the end of a
segment, a one-task resolve stage decides over the whole corpus, and the next segment applies the decision
to the same records: it reads what the segment wrote to an intermediate folder or, where reading the
segment's input and running its cheap steps again costs less (`_replays`), does that. Each record is known
by its place in the sources' reading order, never by its position in a stream. An LLM step ends a segment
too: datatrove's InferenceRunner writes the records it annotated.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field

from ..catalog import benchmarks
from ..recipe import LoadedRecipe
from ..recipe.describe import describe_location
from ..recipe.model import DomainFilter, EmbeddingClassifier, Generate, JudgeFilter, MaxWordOccurrences
from ..recipe.rules import READ_STEP, step_names
from .build import Artifact, StageBuild
from .layout import Layout

TOOL = "datatrove 0.10.1"
DEFAULT_TASKS = 8
# Segments hand their records to the next one: zstd writes them ~13x faster than gzip's default, and smaller.
SEGMENT_SUFFIX, SEGMENT_COMPRESSION = ".jsonl.zst", "zstd"
_B = "medrecipe.blocks."


@dataclass
class Block:
    block: str  # import path of a datatrove PipelineStep
    args: dict = field(default_factory=dict)
    replayed: bool = False  # run again by a later segment, counting nothing (blocks/base.py, CountedStep)


# What a segment that ends at a whole-corpus step may leave unwritten: the next one reads its input again and runs
# its steps again (without their counts and exclusions), as datatrove's own MinHash pipeline reads its input twice.
# Reading a record and running these steps on it costs less than writing it and reading it back (~25 µs against
# ~100 µs a record, 10,000 Chinese traces of ~2,400 characters), and they decide the same each time: reading a local
# file (the run holds it to its record, run/source_files.py) or an earlier segment, and cheap filters that apply a
# decision. Collectors saved their arrays for the resolve stage and are left out. Any other step (a Hub dataset
# streamed again, decontamination's evaluation sets loaded again, an LLM) makes the segment write its records.
_REPLAYED = {_B + name for name in ("segments.SegmentReader", "filters.CompleteGenerationFilter",
                                     "filters.MinPromptWordsFilter", "filters.MaxWordOccurrencesFilter",
                                     "minhash.RemoveDuplicates", "domain.RemoveDomains", "llm.KeepGenerations",
                                     "llm.JudgeVerdicts")}
_COLLECTORS = {_B + name for name in ("minhash.MinHashCollector", "filters.WordCountCollector", "domain.EmbeddingCollector")}


def _replayable(block: Block) -> bool:
    if block.block == _B + "readers.SourceReader":
        return bool(block.args["source"].get("path") or block.args["source"].get("data_files"))  # files, not a stream
    return block.block in _REPLAYED


def _replays(pipeline: list[Block]) -> list[Block] | None:
    """The blocks a next segment runs to give the records `pipeline` passes on, or None where it must write them."""
    if not all(_replayable(block) or block.block in _COLLECTORS for block in pipeline):
        return None
    return [Block(block.block, block.args | ({"exclusion_folder": None} if "exclusion_folder" in block.args else {}), True)
            for block in pipeline if block.block not in _COLLECTORS]


@dataclass
class Stage:
    name: str
    tasks: int
    pipeline: list[Block]


def _benchmark_locations(loaded: LoadedRecipe, names: list[str] | None) -> list[dict]:
    """Where each evaluation set lives: the recipe's local copy if it names one, else the registry's Hub location."""
    recipe = loaded.recipe
    refs = {ref.name: (index, ref) for index, ref in enumerate(recipe.eval.benchmarks)} if recipe.eval else {}
    locations = []
    for name in names or list(refs):
        entry = benchmarks.of(recipe, name)
        index, ref = refs.get(name, (None, None))
        # the split evaluated: of a local copy too, whose other splits are not evaluated (evalsets.local_copy)
        location = {"name": name, "reader": entry.reader, "spec": entry.spec, "where": entry.where,
                    "split": (ref and ref.split) or entry.split, "data_files": list(entry.data_files)}
        if ref is not None and ref.path:
            location["path"] = str(loaded.local_path(("eval", "benchmarks", index, "path")))
        else:
            location.update(hub=entry.hub, subset=entry.subset, revision=entry.revision)
        locations.append(location)
    return locations


def plan(loaded: LoadedRecipe, layout: Layout) -> dict:
    recipe = loaded.recipe
    data = recipe.data
    assert data is not None
    work = layout.work_dir("data")
    tasks = recipe.compute.tasks or DEFAULT_TASKS
    names = step_names(recipe)
    groups: dict[str, list[str]] = {}
    for source in data.sources:
        groups.setdefault(source.name, []).append(source.name)
        if source.group:
            groups.setdefault(source.group, []).append(source.name)

    def chosen(step) -> list[str] | None:
        return None if step.sources is None else sorted({s for name in step.sources for s in groups[name]})

    stages: list[Stage] = []
    readers = []
    for index, source in enumerate(data.sources):
        spec = source.model_dump(mode="json")
        if source.path:
            spec["path"] = str(loaded.local_path(("data", "sources", index, "path")))
        readers.append(Block(_B + "readers.SourceReader", {"source": spec, "source_index": index,
                                                             "exclusion_folder": str(work / "excluded" / READ_STEP)}))
    segment = {"number": 0, "pipeline": readers}

    def folder(*parts: str) -> str:
        return str(work.joinpath(*parts))

    def close(write: bool = True, replay: bool = False) -> str | None:
        """End the current segment; the next one starts by reading what it wrote, the folder returned (or, `write`
        False, what its LLM step's runner wrote: SegmentReader's `runner_output`), or, `replay` and its steps all
        replayable, by running them again (None returned)."""
        replays = _replays(segment["pipeline"]) if replay else None
        if replays is not None:
            stages.append(Stage(f"segment-{segment['number']}", tasks, segment["pipeline"]))
            segment["number"] += 1
            segment["pipeline"] = replays
            return None
        out = folder("segments", f"{segment['number']:02d}")
        if write:
            segment["pipeline"].append(Block(_B + "segments.SegmentWriter",
                                             {"output_folder": out, "output_filename": "${rank}" + SEGMENT_SUFFIX,
                                              "compression": SEGMENT_COMPRESSION}))
        stages.append(Stage(f"segment-{segment['number']}", tasks, segment["pipeline"]))
        segment["number"] += 1
        reader = {"data_folder": out, "glob_pattern": "*" + SEGMENT_SUFFIX} | ({} if write else {"runner_output": True})
        segment["pipeline"] = [Block(_B + "segments.SegmentReader", reader)]
        return out

    def resolve(name: str, block: str, args: dict) -> None:
        stages.append(Stage(f"resolve-{name}", 1, [Block(_B + block, {"name": name, **args})]))

    def llm(model, name: str, role: str, rollout: str, rollout_args: dict, generation: dict, sources: list[str] | None,
            into: str | None = None) -> Block:
        """An InferenceStep calling `model` (an LLMCall of the recipe) for the records of `sources`."""
        target = into or folder("segments", f"{segment['number']:02d}")
        return Block(_B + "llm.InferenceStep", {
            "name": f"{name}-{role}", "output_folder": target, "output_filename": "${rank}_chunk_${chunk_index}" + SEGMENT_SUFFIX,
            "compression": SEGMENT_COMPRESSION, "checkpoint_folder": folder("checkpoints", f"{name}-{role}"),
            "model": model.model, "endpoint": model.endpoint, "api_key_env": model.api_key_env,
            "tensor_parallel_size": model.tensor_parallel_size, "max_concurrent_requests": model.max_concurrent_requests,
            "generation": generation, "rollout": rollout, "rollout_args": rollout_args, "sources": sources,
        })

    summary = []
    for step, name in zip(data.steps, names):
        common = {"name": name, "sources": chosen(step)}
        excluded = {"exclusion_folder": folder("excluded", name)}
        decision = folder("decisions", f"{name}.json")
        pipeline = segment["pipeline"]
        if step.type == "complete_generation":
            pipeline.append(Block(_B + "filters.CompleteGenerationFilter", {
                **common, **excluded, "think_open": step.think_open, "think_close": step.think_close,
                "require_answer": step.require_answer, "drop_finish_reasons": step.drop_finish_reasons}))
        elif step.type == "min_prompt_words":
            pipeline.append(Block(_B + "filters.MinPromptWordsFilter", {**common, **excluded, "more_than": step.more_than}))
        elif isinstance(step, MaxWordOccurrences):
            counting = {"word": step.word, "field": step.field, "case_sensitive": step.case_sensitive}
            if step.percentile is None:
                pipeline.append(Block(_B + "filters.MaxWordOccurrencesFilter", {**common, **excluded, **counting,
                                                                                "max_count": step.max_count}))
            else:
                pipeline.append(Block(_B + "filters.WordCountCollector", {**common, "folder": folder("side", name), **counting}))
                close(replay=True)
                resolve(name, "filters.ResolveWordThreshold", {"counts_folder": folder("side", name), "decision_file": decision,
                                                               "max_count": step.max_count, "percentile": step.percentile})
                segment["pipeline"].append(Block(_B + "filters.MaxWordOccurrencesFilter", {
                    **common, **excluded, **counting, "decision_file": decision}))
        elif step.type == "near_dedup":
            pipeline.append(Block(_B + "minhash.MinHashCollector", {**common, "folder": folder("side", name), "field": step.field,
                                                                  "ngram": step.ngram, "num_perm": step.num_perm}))
            close(replay=True)
            resolve(name, "minhash.ResolveDuplicates", {"signatures_folder": folder("side", name), "decision_file": decision,
                                                       "threshold": step.threshold, "verify": step.verify})
            segment["pipeline"].append(Block(_B + "minhash.RemoveDuplicates", {**common, **excluded, "decision_file": decision}))
        elif step.type == "decontaminate_ngram":
            pipeline.append(Block(_B + "decontaminate.NgramDecontaminationFilter", {
                **common, **excluded, "benchmarks": _benchmark_locations(loaded, step.benchmarks), "n": step.n,
                "field": step.field, "include_options": step.include_options, "whole_question_min_words": step.whole_question_min_words}))
        elif step.type == "decontaminate_fuzzy":
            pipeline.append(Block(_B + "decontaminate.FuzzyDecontaminationFilter", {
                **common, **excluded, "benchmarks": _benchmark_locations(loaded, step.benchmarks),
                "threshold": step.threshold, "field": step.field, "include_options": step.include_options}))
        elif isinstance(step, DomainFilter):
            embeddings = folder("side", name)
            encoder = step.embedding.model_dump()
            pipeline.append(Block(_B + "domain.EmbeddingCollector", {**common, "folder": embeddings, "encoder": encoder}))
            # an LLM's classify stage reads the segment's records
            records = close(replay=isinstance(step.classifier, EmbeddingClassifier))
            clusters = folder("decisions", f"{name}-clusters.json")
            resolve(f"{name}-cluster", "domain.ClusterPrompts", {
                "embeddings_folder": embeddings, "clusters_file": clusters, "clusters": step.kmeans.clusters,
                "iterations": step.kmeans.iterations, "method": step.kmeans.method, "backend": step.kmeans.backend,
                "max_training_points": step.kmeans.max_training_points, "nearest": step.nearest, "seed": recipe.seed})
            classifier = step.classifier
            vote = {"clusters_file": clusters, "decision_file": decision, "keep": step.keep,
                    "max_unlabeled_clusters": step.max_unlabeled_clusters}
            if isinstance(classifier, EmbeddingClassifier):
                resolve(name, "domain.VoteDomains", {**vote, "labels": list(classifier.labels),
                                                     "label_descriptions": classifier.labels, "embeddings_folder": embeddings,
                                                     "encoder": encoder})
            else:
                classified = folder("classified", name)
                stages.append(Stage(f"classify-{name}", tasks, [
                    Block(_B + "segments.SegmentReader", {"data_folder": records, "glob_pattern": "*" + SEGMENT_SUFFIX}),
                    Block(_B + "domain.SelectRepresentatives", {"name": f"{name}-select", "clusters_file": clusters,
                                                                "sources": chosen(step)}),
                    llm(classifier, name, "classify", "classify", {"template": classifier.prompt, "labels": classifier.labels,
                                                                  "synonyms": classifier.synonyms},
                        {"temperature": classifier.temperature, "top_p": classifier.top_p, "max_tokens": classifier.max_tokens},
                        chosen(step), into=classified),
                ]))
                # what a rerun must not find to ask the representatives again: the answers, datatrove's request
                # cache and checkpoints, the stage's completion marks (run/data.py logs each stage under its name)
                asked = [classified, folder("checkpoints", f"{name}-classify"), folder("logs", f"classify-{name}")]
                resolve(name, "domain.VoteDomains", {**vote, "labels": classifier.labels, "classified_folder": classified,
                                                     "classification_folders": asked})
            segment["pipeline"].append(Block(_B + "domain.RemoveDomains", {**common, **excluded, "decision_file": decision}))
        elif isinstance(step, Generate):
            pipeline.append(llm(step, name, "inference", "generate",
                                {"samples": step.samples, "max_samples": step.max_samples, "grader": step.grader,
                                 "instruction": step.instruction, "seed": recipe.seed},
                                {"temperature": step.temperature, "top_p": step.top_p, "max_tokens": step.max_tokens},
                                chosen(step)))
            close(write=False)
            segment["pipeline"].append(Block(_B + "llm.KeepGenerations", {**common, **excluded, "keep": step.keep,
                                                                          "grader": step.grader}))
        elif isinstance(step, JudgeFilter):
            pipeline.append(llm(step, name, "inference", "judge", {"template": step.prompt, "max_score": step.max_score},
                                {"temperature": step.temperature, "top_p": step.top_p, "max_tokens": step.max_tokens},
                                chosen(step)))
            close(write=False)
            segment["pipeline"].append(Block(_B + "llm.JudgeVerdicts", {**common, **excluded, "min_score": step.min_score}))
        summary.append({"name": name, "type": step.type, "sources": chosen(step),
                        "params": step.model_dump(mode="json", exclude={"name", "type", "sources"})})
    output = folder("output")
    segment["pipeline"].append(Block(_B + "output.ChatParquetWriter", {"output_folder": output,
                                                                      "max_file_size_mb": data.output.max_file_size_mb,
                                                                      "keep_metadata": data.output.keep_metadata}))
    stages.append(Stage(f"segment-{segment['number']}", tasks, segment["pipeline"]))
    decontaminated = sorted({loc["name"] for s in data.steps if s.type.startswith("decontaminate")
                             for loc in _benchmark_locations(loaded, s.benchmarks)})
    return {
        "recipe": recipe.name,
        "key": layout.keys["data"],
        "work_dir": str(work),
        "output": output,
        "tasks": tasks,
        "sources": [{"name": s.name, "location": describe_location(s), "kind": s.kind, "group": s.group,
                     "expected": s.expected_samples, "required": s.required,
                     "path": str(loaded.local_path(("data", "sources", i, "path"))) if s.path else None}
                    for i, s in enumerate(data.sources)],
        "steps": summary,
        "benchmarks": decontaminated,
        "stages": [asdict(stage) for stage in stages],
    }


def build(loaded: LoadedRecipe, layout: Layout) -> StageBuild:
    content = plan(loaded, layout)
    facts = [("data stages", f"{len(content['stages'])} datatrove pipelines, {content['tasks']} tasks each")]
    if content["benchmarks"]:
        facts.append(("decontaminated against", ", ".join(content["benchmarks"])))
    return StageBuild(
        stage="data",
        artifacts=[Artifact("data/plan.json", json.dumps(content, indent=2, allow_nan=False) + "\n")],
        facts=facts,
        tool_versions={"datatrove": "0.10.1"},
    )


def instantiate(block: dict):
    """A plan block as a live datatrove PipelineStep."""
    module, _, name = block["block"].rpartition(".")
    step = getattr(importlib.import_module(module), name)(**block["args"])
    if block.get("replayed"):
        step.replayed = True
    return step


def check(loaded: LoadedRecipe, layout: Layout) -> list[str]:
    """Every block of the plan built by datatrove's own classes (their constructors check their arguments)."""
    problems = []
    for stage in plan(loaded, layout)["stages"]:
        for block in stage["pipeline"]:
            try:
                instantiate(block)
            except Exception as exc:  # noqa: BLE001 - every rejection is reported, not just the first
                problems.append(f"{stage['name']}: {block['block']}: {exc}")
    return problems
