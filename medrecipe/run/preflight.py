"""Before any GPU is spent: every Hub resource a recipe names, checked with the user's own access, and the first
rows of every dataset read through the recipe's own mapping.

- Models (the base model, an SFT or RL starting point, the evaluated model, models vLLM serves for curation, the
  embedding model): the repository exists, the token may read it (gated models), config.json and a tokenizer are
  there.
- Datasets (curation sources, RL prompts, preference pairs, benchmarks): the repository, revision, configuration and
  files exist, the token may read them, and their first rows read through the recipe's field mapping by the same
  code the data stage and the RL stage use. One mapped record per source, one RL prompt with its label, one
  preference pair as OpenRLHF splits it, and one evaluation prompt per benchmark are shown.
- Endpoints (the evaluation's judge, the data stage's generation, judging and domain labelling at an
  OpenAI-compatible API): the key's variable is set, the endpoint answers a model listing with it, and it serves
  the model named. Nothing is generated, so nothing is billed; the key is never printed.
Every problem is placed at the recipe line that names the resource. Local files are checked too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..blocks.data_files import first_rows, local_files
from ..blocks.evalsets import local_copy
from ..blocks.readers import columns_of, source_record
from ..blocks.record import AnswerNotAnOption, MappingError, RowRejected
from ..envs import offline_models
from ..errors import UserError
from ..catalog import benchmarks, checks
from ..catalog.benchmark_items import render_prompt, row_matches, to_item
from ..recipe import LoadedRecipe, Problem
from ..recipe.untrusted import printable
from ..recipe.model import DomainFilter, PolicyOptimization, PreferenceStage
from . import rl_prompts
from .endpoints import endpoint_problem

FILTERED_ROWS = 500  # rows read to find one that a benchmark's row filter keeps (MMLU-Pro's health questions)
MODEL_FILES = ("config.json",)
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model")


@dataclass
class Check:
    what: str
    name: str
    result: str
    ok: bool = True


@dataclass
class Sample:
    """One row as a stage will see it: shown as text, kept as data (`preflight --json`)."""

    kind: str  # source | rl_prompt | preference_pair | eval_prompt
    name: str
    text: str
    data: dict


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"checks": list(map(vars, self.checks)), "samples": list(map(vars, self.samples)), "problems": list(map(str, self.problems))}


class _Preflight:
    def __init__(self, loaded: LoadedRecipe, rows: int, hub_checks: bool = True, hub_reachable: bool = True):
        from huggingface_hub import HfApi

        self.loaded = loaded
        self.rows = rows
        self.api = HfApi()
        self.hub_checks = hub_checks  # False: only read the datasets' rows (`inspect`)
        self.hub_reachable = hub_reachable  # False: what is on the Hub is reported as not checked
        self.report = Report()

    # ------------------------------------------------------------------------------------------ reporting
    def ok(self, what: str, name: str, result: str) -> None:
        self.report.checks.append(Check(what, name, result))

    def fail(self, what: str, name: str, path: tuple, message: str, hint: str | None = None) -> None:
        self.report.checks.append(Check(what, name, message, ok=False))
        self.report.problems.append(self.loaded.problem(path, message, hint))

    # ------------------------------------------------------------------------------------------ the Hub
    def repository(self, kind: str, repo: str, revision: str | None, what: str, path: tuple):
        """The repository's info, or None after reporting why it cannot be read."""
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

        if not self.hub_reachable:
            from huggingface_hub import constants

            self.fail(what, repo, path, f"{repo} is on the Hub, which cannot be reached at {constants.ENDPOINT}"
                      + (" (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else "") + ": not checked",
                      "run it where the Hub is reachable (HF_ENDPOINT names a mirror)")
            return None
        info = self.api.dataset_info if kind == "dataset" else self.api.model_info
        try:
            found = info(repo, revision=revision)
            self.api.auth_check(repo, repo_type=kind)
            return found
        except GatedRepoError:
            url = f"https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{repo}"
            self.fail(what, repo, path, f"{repo} is gated and your token has no access to it",
                      f"accept its terms at {url} with the account of your token (HF_TOKEN or `hf auth login`)")
        except RevisionNotFoundError:
            self.fail(what, repo, path, f"{repo} has no revision {revision!r}")
        except RepositoryNotFoundError:
            self.fail(what, repo, path, f"no {kind} {repo} on the Hub (or it is private to another account)")
        return None

    def model(self, path: tuple, model: str) -> None:
        local = self.loaded.local_or_hub(path)
        if isinstance(local, Path):
            if (local / "config.json").is_file():
                self.ok("model", model, "local folder with config.json")
            else:
                self.fail("model", model, path, f"{local} has no config.json")
            return
        info = self.repository("model", model, None, "model", path)
        if info is None:
            return
        names = {sibling.rfilename for sibling in info.siblings or []}
        missing = [name for name in MODEL_FILES if name not in names]
        if missing or not names & set(TOKENIZER_FILES):
            self.fail("model", model, path, f"{model} has no {', '.join(missing) or 'tokenizer'}")
            return
        from huggingface_hub import hf_hub_download

        try:  # into the Hub cache, where the recipe's checks read the limits of a model the catalog does not know
            hf_hub_download(model, "config.json")
        except Exception as exc:  # the listing named it; a failure to read it is said, and the rest is checked
            self.fail("model", model, path, f"{model}'s config.json could not be read: {printable(str(exc))[:200]}")
            return
        self.ok("model", model, "readable, config.json and tokenizer present")

    def model_limits(self) -> None:
        """The recipe's checks again, now that every model's config.json is in the Hub cache: lengths and
        tensor-parallel sizes against a model medrecipe's catalog does not know (found by review: a fork onto
        Phi-3-mini-4k trained 16,378-token sequences on its 4,096 positions)."""
        for problem in checks.model_errors(self.loaded):
            self.report.checks.append(Check("model limits", problem.path, problem.message, ok=False))
            self.report.problems.append(problem)

    def models(self) -> None:
        recipe = self.loaded.recipe
        seen: set[str] = set()
        wanted: list[tuple[tuple, str]] = [(("base_model",), recipe.base_model), *recipe.named_models()]
        for index, step in enumerate(recipe.data.steps if recipe.data else []):
            if isinstance(step, DomainFilter):
                wanted.append((("data", "steps", index, "embedding", "model"), step.embedding.model))
        wanted += [((*path, "model"), call.model) for path, call in recipe.served_models()]  # vLLM serves them from their files
        for path, model in wanted:
            if model not in seen:
                seen.add(model)
                self.model(path, model)

    # ------------------------------------------------------------------------------------------ endpoints
    def endpoints(self) -> None:
        recipe = self.loaded.recipe
        calls = [((*path, "endpoint"), call) for path, call in recipe.model_calls() if call.endpoint]
        seen: set[tuple] = set()
        for path, call in calls:
            if (call.endpoint, call.model, call.api_key_env) in seen:
                continue
            seen.add((call.endpoint, call.model, call.api_key_env))
            name = f"{call.model} at {call.endpoint}"
            problem = endpoint_problem(call.endpoint, call.model, call.api_key_env)
            if problem:
                self.fail("endpoint", name, path, *problem)
            else:
                self.ok("endpoint", name, "answers with the key, serves the model")

    # ------------------------------------------------------------------------------------------ datasets
    def location(self, spec: dict, what: str, name: str, at: tuple) -> list[dict] | None:
        """The first rows of a dataset location, or None after reporting why they cannot be read."""
        if spec.get("path"):
            try:
                files = local_files(spec["path"], spec.get("split"))
            except UserError as refused:  # a link into a hidden folder, a split the files do not have
                return self.fail(what, name, (*at, "path"), str(refused), refused.hint)
            if not files:
                if spec.get("required", True):
                    self.fail(what, name, (*at, "path"), f"no data files at {spec['path']}")
                else:
                    self.ok(what, name, f"optional, absent ({spec['path']}): skipped")
                return None
        elif self.hub_checks or not self.hub_reachable:  # out of reach, the datasets library would retry for minutes
            info = self.repository("dataset", spec["hub"], spec.get("revision"), what, (*at, "hub"))
            if info is None:
                return None
            names = {sibling.rfilename for sibling in info.siblings or []}
            for position, file in enumerate(spec.get("data_files") or []):
                if file not in names:
                    self.fail(what, name, (*at, "data_files", position), f"{spec['hub']} has no file {file!r}"
                              + (f" at {spec['revision']}" if spec.get("revision") else ""))
                    return None
            configs = [c.get("config_name") for c in (info.card_data or {}).get("configs") or [] if isinstance(c, dict)]
            if spec.get("subset") and configs and spec["subset"] not in configs:
                self.fail(what, name, (*at, "subset"), f"{spec['hub']} has no configuration {spec['subset']!r}",
                          f"configurations: {', '.join(configs)}")
                return None
        try:
            rows = first_rows(spec, self.rows)
        except Exception as exc:  # what the datasets library or a file reader says of the data, for any dataset
            self.fail(what, name, (*at, "subset" if spec.get("subset") else "path" if spec.get("path") else "hub"),
                      f"its first rows could not be read: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            return None
        if not rows:
            self.fail(what, name, (*at, "split"), "no rows" + (f" in split {spec.get('split')!r}" if spec.get("split") else ""))
            return None
        return rows

    def mapped(self, rows: list[dict], spec: dict, what: str, name: str, at: tuple) -> dict | None:
        """The first row as the reader builds it, or None after reporting the mapping's problem."""
        built, rejected = None, []
        for index, row in enumerate(rows):
            try:
                record = source_record(row, {**spec, "name": name}, str(index), index, lambda: columns_of(rows))
            except MappingError as error:
                return self.fail(what, name, (*at, "fields", _field_of(spec["fields"], error.column)), str(error).split(": ", 1)[1])
            except RowRejected as error:
                rejected.append(error)
                continue
            built = built or record
        if built is None:
            first = rejected[0]
            if isinstance(first, AnswerNotAnOption):
                return self.fail(what, name, (*at, "fields", "answer"), f"no answer of the first {len(rows)} rows names an "
                                 f"option: {first}", "check answer and answer_format against a row of the dataset")
            return self.fail(what, name, (*at, "fields"), f"none of the first {len(rows)} rows can be read: {first}",
                             "check the mapping's columns against a row of the dataset")
        skipped = f"; {len(rejected)} of {len(rows)} rows are rejected ({rejected[0]})" if rejected else ""
        self.ok(what, name, f"{len(rows)} rows read and mapped{skipped}")
        return built

    def sources(self) -> None:
        data = self.loaded.recipe.data
        if not data:
            return
        for index, source in enumerate(data.sources):
            at = ("data", "sources", index)
            spec = source.model_dump(mode="json")
            if source.path:
                spec["path"] = str(self.loaded.local_path((*at, "path")))
            rows = self.location(spec, "source", source.name, at)
            record = rows and self.mapped(rows, spec, "source", source.name, at)
            if record:
                metadata = record["metadata"]
                self.report.samples.append(Sample("source", source.name, _conversation(metadata),
                                                  {key: metadata[key] for key in ("messages", "answer", "options")}))

    def rl_prompts(self) -> None:
        rl = self.loaded.recipe.rl
        if not isinstance(rl, PolicyOptimization):
            return
        spec = rl_prompts.source(self.loaded)
        rows = self.location(spec, "RL prompts", spec["hub"] or spec["path"], ("rl", "data"))
        record = rows and self.mapped(rows, spec, "RL prompts", "rl.data", ("rl", "data"))
        if record and not rl_prompts.has_answer(record["metadata"]):
            self.fail("RL prompts", "rl.data", ("rl", "data", "fields", "answer"),
                      "the first row read has no reference answer: rows without one are left out of RL, as nothing grades them",
                      "map `answer` to the column that holds the gold answer")
        elif record:
            row = rl_prompts.prompt_row(record["metadata"], record["id"], rl.data.instruction, rl.data.apply_chat_template)
            prompt = row["prompt"] if isinstance(row["prompt"], str) else _turns(row["prompt"])
            self.report.samples.append(Sample("rl_prompt", "rl.data", f"{prompt}\n\nlabel (what reward.py grades against): {row['label']!r}", row))

    def preference(self) -> None:
        rl = self.loaded.recipe.rl
        if not isinstance(rl, PreferenceStage):
            return
        at = ("rl", "data")
        local = self.loaded.local_path((*at, "path"))
        spec = {"path": str(local)} if local.exists() else {"hub": rl.data.path, "split": rl.data.split}
        rows = self.location(spec, "preference pairs", rl.data.path, at)
        if not rows:
            return
        row = rows[0]
        for name in ("prompt_key", "chosen_key", "rejected_key"):
            column = getattr(rl.data, name)
            if column and column not in row:
                return self.fail("preference pairs", rl.data.path, (*at, name), f"column {column!r} not found; the rows have: "
                                 f"{', '.join(sorted(row))}")
        chosen, rejected = row[rl.data.chosen_key], row[rl.data.rejected_key]
        conversation = isinstance(chosen, list)
        if conversation and not rl.data.apply_chat_template:
            return self.fail("preference pairs", rl.data.path, (*at, "apply_chat_template"),
                             f"{rl.data.chosen_key!r} is a conversation: OpenRLHF reads it only through the chat template",
                             "remove apply_chat_template: false")
        if rl.data.apply_chat_template and rl.data.prompt_key and conversation and not isinstance(row[rl.data.prompt_key], list):
            return self.fail("preference pairs", rl.data.path, (*at, "prompt_key"),
                             f"{rl.data.prompt_key!r} is text while {rl.data.chosen_key!r} is a conversation: OpenRLHF's chat "
                             "template cannot take it", "remove prompt_key: the prompt is then chosen without its last turn")
        if rl.data.apply_chat_template and not rl.data.prompt_key and not conversation:
            return self.fail("preference pairs", rl.data.path, (*at, "chosen_key"),
                             f"{rl.data.chosen_key!r} is text: without prompt_key OpenRLHF needs whole conversations")
        if conversation:
            prompt = row[rl.data.prompt_key] if rl.data.prompt_key else chosen[:-1]
            pair = {"prompt": prompt, "chosen": chosen[len(prompt):] if not rl.data.prompt_key else chosen,
                    "rejected": rejected[len(prompt):] if not rl.data.prompt_key else rejected}
            sample = f"{_turns(prompt)}\n\nchosen: {_clip(chosen[-1]['content'])}\nrejected: {_clip(rejected[-1]['content'])}"
        else:
            pair = {"prompt": row.get(rl.data.prompt_key or "", ""), "chosen": chosen, "rejected": rejected}
            sample = f"{pair['prompt']}\n\nchosen: {_clip(str(chosen))}\nrejected: {_clip(str(rejected))}"
        self.ok("preference pairs", rl.data.path, f"{len(rows)} rows read; columns as mapped")
        self.report.samples.append(Sample("preference_pair", rl.data.path, sample, {**pair, "row": row}))

    def benchmarks(self) -> None:
        ev = self.loaded.recipe.eval
        if not ev:
            return
        for index, ref in enumerate(ev.benchmarks):
            bench = benchmarks.of(self.loaded.recipe, ref.name)
            at = ("eval", "benchmarks", index)
            if ref.path:  # the first file evaluation reads: the evaluated split, not the copy's first split
                try:
                    path, split = local_copy(str(self.loaded.local_path((*at, "path"))), ref.split or bench.split, bench.data_files)[0]
                except UserError as refused:  # a whole repository's configurations, a data file in a hidden folder
                    self.fail("benchmark", ref.name, (*at, "path"), str(refused), refused.hint)
                    continue
                spec = {"path": path, "split": split}
            else:
                spec = {"hub": bench.hub, "subset": bench.subset, "split": ref.split or bench.split, "revision": bench.revision,
                        "data_files": list(bench.data_files) or None}
            saved, self.rows = self.rows, (FILTERED_ROWS if bench.where else self.rows)
            rows = self.location(spec, "benchmark", ref.name, at)
            self.rows = saved
            if not rows:
                continue
            kept = [row for row in rows if row_matches(row, bench.where)]
            if not kept:
                self.fail("benchmark", ref.name, at, f"none of the first {len(rows)} rows has {bench.where}")
                continue
            try:
                item = to_item(kept[0], bench.reader, bench.spec, 0)
            except (ValueError, KeyError, TypeError) as error:
                self.fail("benchmark", ref.name, at, f"its rows do not read as {bench.reader} items: {error}")
                continue
            self.ok("benchmark", ref.name, f"{len(kept)} rows read as {bench.reader} items")
            prompt = render_prompt(item, ev.prompt.template, ev.prompt.instruction)
            self.report.samples.append(Sample("eval_prompt", ref.name, f"{prompt}\n\ngold: {item['gold'] or 'rubric'}",
                                              {"prompt": prompt, "gold": item["gold"], "item": item}))


def preflight(loaded: LoadedRecipe, rows: int = 3) -> Report:
    """Check everything `loaded` names on the Hub (and locally); the report's problems are placed at recipe lines.
    Where the Hub cannot be reached, the local files are still checked and each Hub resource is a problem: not checked."""
    run = _Preflight(loaded, rows, hub_reachable=not offline_models.offline())
    run.models()
    run.model_limits()
    run.endpoints()
    _read(run)
    return run.report


def read_samples(loaded: LoadedRecipe, rows: int = 3) -> Report:
    """The first rows of every dataset `loaded` names, read through its mappings, without checking the Hub's
    models or access first (the Hub is still read for Hub datasets, where it can be reached: found by review, inspect
    took minutes of the datasets library's retries to fail offline)."""
    run = _Preflight(loaded, rows, hub_checks=False, hub_reachable=not offline_models.offline())
    _read(run)
    return run.report


def _read(run: _Preflight) -> None:
    run.sources()
    run.rl_prompts()
    run.preference()
    run.benchmarks()


def _field_of(fields: dict, column: str) -> str:
    """The field of a mapping that names `column` (for the error's place)."""
    return next((name for name, value in fields.items() if value == column or (isinstance(value, list) and column in value)),
                "fields")


def _clip(text: str, limit: int = 400) -> str:
    """Text of a dataset row as shown: shortened, and without the control characters a terminal would obey."""
    text = printable(str(text))
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters]"


def _turns(messages: list[dict]) -> str:
    return "\n".join(f"[{turn['role']}] {_clip(turn['content'])}" for turn in messages)


def _conversation(metadata: dict) -> str:
    text = _turns(metadata["messages"])
    if metadata.get("options"):
        text += "\noptions: " + ", ".join(metadata["options"])
    if metadata.get("answer") is not None:
        text += f"\nanswer: {metadata['answer']!r}"
    return text

