"""DPO and reward models as `openrlhf.cli.train_dpo` / `train_rm` flags."""

from __future__ import annotations

import math
from typing import Any

from ...recipe import LoadedRecipe
from ...recipe.derive import preference_gpus
from ...recipe.model import PreferenceStage
from ..build import StageBuild
from ..layout import Layout
from .flags import (checkpoint_flags, data_path, known_count, model_path, optimizer_flags, passes, precision_flags,
                    reading_flags)
from .launch import Launch, merge_passthrough
from .warmup import warmup


def preference_launch(loaded: LoadedRecipe, layout: Layout, rl: PreferenceStage, stage: StageBuild) -> Launch:
    recipe = loaded.recipe
    nodes, gpus = preference_gpus(rl, recipe.compute)
    work = layout.work_dir("rl")
    model = model_path(loaded, layout)
    flags: dict[str, Any] = {"model.model_name_or_path": model}
    if rl.algorithm == "dpo":
        flags.update({"ref.model_name_or_path": model, "model.beta": rl.beta})
    flags.update(
        {
            "data.dataset": data_path(loaded, rl.data.path),
            "data.dataset_split": rl.data.split,
            "data.chosen_key": rl.data.chosen_key,
            "data.rejected_key": rl.data.rejected_key,
        }
    )
    if rl.data.prompt_key:
        flags["data.prompt_key"] = rl.data.prompt_key
    max_samples = reading_flags(rl, flags, rl.train_batch_size)
    epochs = passes(rl, rl.train_batch_size)
    flags.update(
        {
            "data.max_len": rl.max_len,
            "train.batch_size": rl.train_batch_size,
            "train.micro_batch_size": rl.micro_train_batch_size,
            "train.max_epochs": epochs,
            "train.seed": recipe.seed,
            **optimizer_flags(rl, ""),
        }
    )
    precision_flags(rl, flags, "model.gradient_checkpointing_enable")
    checkpoint_flags(rl, work, layout, flags)
    launch = Launch(rl.algorithm, flags, gpus // nodes, nodes)

    pairs = known_count(rl.data.size, max_samples)
    warmup(
        launch,
        rl,
        "lr_warmup_ratio",
        None if pairs is None else math.ceil(epochs * (pairs // rl.train_batch_size)),
        f"pairs // train batch {rl.train_batch_size} x {epochs} epoch(s)",
        count={
            "dataset": flags["data.dataset"],
            "split": rl.data.split,
            "max_samples": max_samples or 1_000_000,
            "train_batch_size": rl.train_batch_size,
            "epochs": epochs,
        },
        size_field="rl.data.size",
        stage=stage,
    )
    merge_passthrough(loaded, flags, rl.openrlhf, rl.algorithm)

    what = f"DPO (beta {rl.beta:g})" if rl.algorithm == "dpo" else "a Bradley-Terry reward model"
    stage.facts += [
        ("algorithm", f"{what} on pairs {rl.data.chosen_key!r} > {rl.data.rejected_key!r}, prompt "
                      + (repr(rl.data.prompt_key) if rl.data.prompt_key else
                         f"{rl.data.chosen_key!r} without its last turn" if rl.algorithm == "dpo" else "none: whole conversations are scored")),
        ("checkpoints", f"every {rl.save_steps} steps into {flags['ckpt.path']} (the last 3 kept); a rerun resumes"),
        ("GPUs", f"{gpus} ({nodes} node(s)), DeepSpeed ZeRO-{rl.zero_stage}, launched with torchrun"),
        ("train batch", f"{rl.train_batch_size} pairs, {rl.micro_train_batch_size} per GPU per pass"),
        ("chat template", "the model's own (an SFT model keeps the template Axolotl trained it with)"
         if rl.data.apply_chat_template else "none: the columns are used as written"),
    ]
    if rl.warmup_steps:
        stage.warnings.append(
            "rl.warmup_steps: the warmup ratio assumes every pair is used; OpenRLHF drops pairs whose prompt is within "
            f"2 tokens of --data.max_len {rl.max_len}, which shortens the run and the warmup with it (the same ratio of "
            "fewer steps: datasets/reward_dataset.py, cli/train_dpo.py max_steps)"
        )
    if rl.max_steps is not None:
        stage.warnings.append(
            f"rl.max_steps: OpenRLHF has no step limit; compiled as {epochs} epoch(s) over at most "
            f"{max_samples} pairs (--train.max_epochs, --data.max_samples)"
            + ("" if rl.data.size else ", one epoch as the number of pairs is unknown (set rl.data.size)")
        )
    if rl.algorithm == "reward_model" and rl.beta != PreferenceStage.model_fields["beta"].default:
        stage.warnings.append("rl.beta: reward-model training has no beta; it is ignored")
    if not rl.bf16:
        stage.warnings.append("rl.bf16: OpenRLHF trains in bf16 or fp16 only; compiled as fp16 (--ds.param_dtype fp16)")
    return launch
