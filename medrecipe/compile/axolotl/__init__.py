"""The SFT stage as an Axolotl config: `sft/axolotl.yaml`, plus the DeepSpeed ZeRO config it names.

Every SFT field of the recipe maps to an Axolotl key here, in one table (`_config`). The global batch is a
recipe fact: `micro_batch_size` and `gradient_accumulation_steps` come from `derive.sft_batch`, and the
run must use exactly that many GPUs. Numbers Axolotl takes in another form (a minimum learning rate as a
ratio, a token batch as sequences) are recorded in the file's header comment.

`check` runs Axolotl's own `validate_config` in the sft environment, offline (`load_cfg` would fetch the
model config from the Hub), and checks that every key we emit is one Axolotl knows: Axolotl drops unknown
keys without a word.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ... import __version__
from ...catalog import axolotl_keys, checks, models
from ...envs import tools
from ...recipe import LoadedRecipe
from ...recipe.errors import RecipeError
from ...recipe.derive import SFTBatch, sft_batch
from ...recipe.model import SFT, SFTDataset
from ..build import Artifact, StageBuild
from ..layout import Layout, recipe_sha256

# The release this machine's sft environment holds: 0.21.0 where a python3.12 is found, 0.19.0 otherwise. The
# compiled config is the same for both, and both releases' validators and tokenization accept it (tests).
VERSION = tools.ENVIRONMENTS["sft"].pinned("axolotl")
TOOL = f"Axolotl {VERSION}"
CONFIG = "sft/axolotl.yaml"

ATTENTION = {"flash_attention": "flash_attention_2", "sdpa": "sdpa", "eager": "eager", "flex": "flex_attention"}


def build(loaded: LoadedRecipe, layout: Layout) -> StageBuild:
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    batch = sft_batch(sft, recipe.compute)
    stage = StageBuild("sft", tool_versions={"axolotl": VERSION})
    config = _config(loaded, layout, batch)
    passthrough = _passthrough(loaded, sft, config.get("special_tokens", {}))
    config.update(passthrough)
    stage.artifacts.append(Artifact(CONFIG, _header(loaded, batch) + dump_yaml(config)))
    if sft.deepspeed:
        stage.artifacts.append(Artifact(f"sft/deepspeed/{sft.deepspeed}.json", deepspeed_config(sft.deepspeed)))

    stage.facts += [
        ("global batch", _batch_line(batch)),
        ("chat template", str(config["chat_template"])),
        ("training data", ", ".join(d["path"] for d in config["datasets"])),
        ("final model", str(layout.sft_output())),
        ("launch", f"{batch.gpus} processes ({batch.nodes} node{'s' if batch.nodes > 1 else ''} x {batch.gpus // batch.nodes} GPUs)"),
    ]
    if sft.min_lr is not None and sft.lr_scheduler == "cosine":
        stage.facts.append(("minimum learning rate", f"{sft.min_lr:g} = cosine_min_lr_ratio {config['cosine_min_lr_ratio']:.6g} x {sft.learning_rate:g}"))
    # No hub_model_id: with one, Axolotl 0.19.0 pushes output_dir while training (core/builders/base.py 495-503,
    # transformers' Trainer.push_to_hub: the folder but checkpoint-*), the tokenized dataset and logs with it, to a private
    # repository `publish` never made (found by review).
    stage.facts.append(("Hub", "nothing pushed while training: `medrecipe publish` pushes the model it collects"))
    if batch.requested_tokens is not None:
        if batch.tokens_per_step != batch.requested_tokens:
            stage.warnings.append(
                f"sft.batch.global_tokens: Axolotl batches whole packed sequences; {_token_line(batch)}"
            )
    if sft.min_lr is not None and sft.lr_scheduler != "cosine":
        stage.warnings.append(f"sft.min_lr: Axolotl applies a minimum learning rate to the cosine schedule only, not {sft.lr_scheduler!r}")
    if passthrough:
        stage.facts.append(("passed through", ", ".join(sorted(passthrough))))
    return stage


def _config(loaded: LoadedRecipe, layout: Layout, batch: SFTBatch) -> dict[str, Any]:
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    work = layout.work_dir("sft")
    template = checks.chat_template(loaded)
    config: dict[str, Any] = {
        "base_model": checks.sft_base_model(loaded),
        "chat_template": template,
        "datasets": _datasets(loaded, layout),
        "dataset_prepared_path": str(work / "prepared"),
        "val_set_size": sft.val_set_size,
        "output_dir": str(work),
        "auto_resume_from_checkpoints": True,
        "sequence_len": sft.sequence_len,
        "excess_length_strategy": sft.excess_length,
        "sample_packing": sft.sample_packing,
        "micro_batch_size": batch.micro_batch_size,
        "gradient_accumulation_steps": batch.gradient_accumulation,
        "num_epochs": sft.epochs,
    }
    if template in models.TURN_ENDS:
        config["special_tokens"] = {"eos_token": models.TURN_ENDS[template]}  # trained as the end of a turn; stops generation
    if sft.max_steps is not None:
        config["max_steps"] = sft.max_steps
    config["learning_rate"] = sft.learning_rate
    config["lr_scheduler"] = sft.lr_scheduler
    if sft.min_lr is not None and sft.lr_scheduler == "cosine":
        config["cosine_min_lr_ratio"] = sft.min_lr / sft.learning_rate
    if sft.warmup_ratio is not None:
        config["warmup_ratio"] = sft.warmup_ratio
    else:  # given as 0 when the recipe has none: Axolotl 0.19 warms up 3 % of the steps (at most 100) when neither is
        config["warmup_steps"] = sft.warmup_steps or 0  # set (core/builders/base.py, _configure_warmup_and_logging)
    config.update(
        {
            "optimizer": sft.optimizer,
            "adam_beta1": sft.adam_betas[0],
            "adam_beta2": sft.adam_betas[1],
            "adam_epsilon": sft.adam_epsilon,
            "weight_decay": sft.weight_decay,
            "max_grad_norm": sft.max_grad_norm,
        }
    )
    if sft.neftune_noise_alpha is not None:
        config["neftune_noise_alpha"] = sft.neftune_noise_alpha
    config["bf16"] = sft.bf16
    config["attn_implementation"] = ATTENTION[sft.attention]
    config["gradient_checkpointing"] = sft.gradient_checkpointing
    if sft.deepspeed:
        config["deepspeed"] = str(layout.stage_dir("sft") / "deepspeed" / f"{sft.deepspeed}.json")
    config["seed"] = recipe.seed
    config["saves_per_epoch"] = sft.saves_per_epoch
    config["logging_steps"] = sft.logging_steps
    return config


def _datasets(loaded: LoadedRecipe, layout: Layout) -> list[dict[str, Any]]:
    sft = loaded.recipe.sft
    roles = list(sft.roles_to_train)
    if sft.datasets is None:
        # The data stage's curated parquet shards: a `messages` column of {role, content} turns.
        return [_chat_dataset(str(layout.data_output()), "train", "messages", roles)]
    return [_listed_dataset(dataset, _dataset_path(loaded, index), roles) for index, dataset in enumerate(sft.datasets)]


def _dataset_path(loaded: LoadedRecipe, index: int) -> str:
    """A local dataset as an absolute path, found where the recipe that names it is (Axolotl runs in the stage's work
    folder, where a relative path named nothing: found by review); anything else is a Hub dataset id."""
    named = loaded.local_or_hub(("sft", "datasets", index, "path"))
    return str(named.resolve()) if isinstance(named, Path) else named


def _chat_dataset(path: str, split: str, messages: str, roles: list[str]) -> dict[str, Any]:
    return {
        "path": path,
        "split": split,
        "type": "chat_template",
        "field_messages": messages,
        "message_property_mappings": {"role": "role", "content": "content"},
        "roles_to_train": roles,
    }


def _listed_dataset(dataset: SFTDataset, path: str, roles: list[str]) -> dict[str, Any]:
    if dataset.format == "alpaca":
        entry: dict[str, Any] = {"path": path, "split": dataset.split, "type": "alpaca"}
    else:
        entry = _chat_dataset(path, dataset.split, dataset.messages, roles)
    if dataset.subset:
        entry["name"] = dataset.subset
    return entry


def _passthrough(loaded: LoadedRecipe, sft: SFT, special_tokens: dict[str, str]) -> dict[str, Any]:
    """The `sft.axolotl` keys, with the special tokens they add merged into those the chat template sets. Keys medrecipe
    writes from the recipe's fields are refused (catalog/passthrough_checks.py refuses them at validation too)."""
    hint = "the recipe field is the single source of truth; the passthrough is for keys medrecipe does not map"
    taken = [loaded.problem(("sft", "axolotl", key), f"medrecipe writes {key} from {axolotl_keys.DERIVED_FROM[key]}", hint)
             for key in sorted(sft.axolotl) if key in axolotl_keys.DERIVED_FROM]
    given = sft.axolotl.get("special_tokens")
    added = given if isinstance(given, dict) else {}
    taken += [loaded.problem(("sft", "axolotl", "special_tokens", key), f"sft.chat_template sets it to {special_tokens[key]!r}, "
                             "the token its turns end with", hint)
              for key in special_tokens if key in added and added[key] != special_tokens[key]]
    if taken:
        raise RecipeError(taken)
    merged = dict(sft.axolotl)
    if "special_tokens" in merged and (given is None or isinstance(given, dict)):  # anything else is Axolotl's to refuse
        merged["special_tokens"] = {**special_tokens, **added}
    return merged


def deepspeed_config(name: str) -> str:
    """The text of a ZeRO config shipped in this package (`zero1`, `zero2`, `zero3`, `zero3_offload`)."""
    return resources.files("medrecipe.compile.axolotl").joinpath("deepspeed", f"{name}.json").read_text(encoding="utf-8")


def _batch_line(batch: SFTBatch) -> str:
    return (
        f"{batch.sequences_per_step} sequences = micro_batch_size {batch.micro_batch_size} x gradient_accumulation_steps "
        f"{batch.gradient_accumulation} x {batch.gpus} GPUs"
    )


def _token_line(batch: SFTBatch) -> str:
    assert batch.requested_tokens is not None
    deviation = batch.token_deviation or 0.0
    return (
        f"requested {batch.requested_tokens:,} tokens per step; compiled {batch.tokens_per_step:,} "
        f"({batch.sequences_per_step} packed sequences x {batch.sequence_len} tokens, {deviation:+.1%})"
    )


def _header(loaded: LoadedRecipe, batch: SFTBatch) -> str:
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    lines = [
        f"{TOOL} config compiled by medrecipe {__version__} from recipe {recipe.name!r}",
        f"(recipe sha256 {recipe_sha256(recipe)[:16]}). Edit the recipe and recompile, not this file.",
        "",
        f"Global batch: {_batch_line(batch)} on {batch.nodes} node(s);",
        f"  it holds only with exactly {batch.gpus} training processes (`medrecipe run --stage sft` starts them).",
    ]
    if batch.requested_tokens is not None:
        lines.append(f"Token batch: {_token_line(batch)}")
    if sft.min_lr is not None and sft.lr_scheduler == "cosine":
        lines.append(f"Minimum learning rate: {sft.min_lr:g} = cosine_min_lr_ratio x learning_rate {sft.learning_rate:g}")
    return "".join(f"# {line}\n" if line else "#\n" for line in lines) + "\n"


def _represent_float(representer, value: float):
    # PyYAML, which Axolotl loads configs with, reads `5e-05` as a string: give every exponent a mantissa dot.
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:
        text = text.replace("e", ".0e", 1)
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def dump_yaml(data: dict[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.representer.add_representer(float, _represent_float)
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ check

_VALIDATOR = Path(__file__).with_name("validation.py")


def check(loaded: LoadedRecipe, layout: Layout) -> list[str]:
    """Axolotl's own validation of the compiled config, in the sft environment, without the Hub."""
    return check_many([(loaded, layout)])[0]


def check_many(builds: list[tuple[LoadedRecipe, Layout]]) -> list[list[str]]:
    """`check` for several compiled recipes in one process (importing Axolotl takes most of the time)."""
    python = tools.require("sft")
    arguments: list[str] = []
    for loaded, layout in builds:
        sft = loaded.recipe.sft
        assert sft is not None
        batch = sft_batch(sft, loaded.recipe.compute)
        # The target machine as the recipe describes it, for Axolotl's capability checks (bf16, GPU count).
        capabilities = {"bf16": sft.bf16, "n_gpu": batch.gpus, "n_node": batch.nodes}
        arguments += [str(layout.root / CONFIG), json.dumps(capabilities)]
    result = subprocess.run(
        [str(python), "-I", str(_VALIDATOR), *arguments],  # -I: this folder (with axolotl.py) is not on sys.path
        capture_output=True,
        text=True,
        env=tool_env({"HF_HUB_OFFLINE": "1"}),
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
        return [[f"Axolotl's validation did not run:\n{tail}"]] * len(builds)
    return json.loads(result.stdout.strip().splitlines()[-1])["problems"]


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an Axolotl process runs with: no telemetry, plus `extra`."""
    return {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1", **(extra or {})}
