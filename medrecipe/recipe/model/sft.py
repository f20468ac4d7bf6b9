"""The recipe's `sft` section: supervised fine-tuning with Axolotl."""

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from .basics import ConfigName, DataPath, NonNegativeInt, PositiveInt, SplitName, Strict


class Batch(Strict):
    """The global batch, a recipe fact; per-device batch and gradient accumulation are derived from it and the GPUs."""

    global_size: PositiveInt | None = Field(None, description="Sequences per optimizer step across all GPUs.")
    global_tokens: PositiveInt | None = Field(
        None, description="Tokens per optimizer step across all GPUs (packed sequences of `sequence_len` tokens)."
    )
    micro_batch_size: PositiveInt = Field(1, description="Sequences per GPU per forward pass.")
    token_tolerance: float = Field(
        0.05, ge=0.0, lt=1.0, description="How far the achievable token batch may be from `global_tokens` (relative)."


    )

    @model_validator(mode="after")
    def _one_size(self) -> Self:
        if (self.global_size is None) == (self.global_tokens is None):
            raise ValueError("give exactly one of `global_size` or `global_tokens`")
        return self


class SFTDataset(Strict):
    """An SFT dataset other than the data stage's own output."""

    path: DataPath = Field(description="Hub dataset id or local path.")
    subset: ConfigName | None = Field(None, description="Hub dataset configuration.")
    split: SplitName = Field("train", description="Split to train on.")
    format: Literal["chat", "alpaca"] = Field("chat", description="`chat`: a messages column; `alpaca`: instruction/input/output columns.")
    messages: str = Field("messages", description="Column with the chat turns (`chat` format).")


class SFT(Strict):
    """Supervised fine-tuning, compiled to an Axolotl config."""

    base_model: str | None = Field(None, description="Model to fine-tune. Default: the recipe's `base_model`.")
    chat_template: str = Field(
        "auto",
        description="Axolotl chat template; `auto`: from the base model family; `tokenizer_default`: the tokenizer's own.",
    )
    datasets: list[SFTDataset] | None = Field(  # an empty list trained nothing: only Axolotl's validator (compile --check) said so
        None, min_length=1, description="Datasets to train on. Default: the data stage's curated output.")
    roles_to_train: list[str] = Field(["assistant"], min_length=1, description="Roles whose tokens carry the loss.")
    sequence_len: PositiveInt = Field(4096, description="Maximum sequence length in tokens.")
    excess_length: Literal["drop", "truncate"] = Field(
        "drop", description="A record longer than `sequence_len` tokens: `drop` it (Axolotl's default) or `truncate` it "
        "(a reasoning trace then loses its end, its answer included).",
    )
    sample_packing: bool = Field(False, description="Pack several samples into each sequence.")
    epochs: PositiveInt = Field(3, description="Training epochs.")
    learning_rate: float = Field(2e-5, gt=0.0, description="Peak learning rate.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field("cosine", description="Learning-rate schedule.")
    min_lr: float | None = Field(None, ge=0.0, description="Learning rate at the end of a cosine schedule.")
    warmup_steps: NonNegativeInt | None = Field(
        None, description="Warmup in optimizer steps. With neither this nor `warmup_ratio`, there is no warmup.")
    warmup_ratio: float | None = Field(None, ge=0.0, lt=1.0, description="Warmup as a fraction of all steps.")
    optimizer: str = Field("adamw_torch_fused", description="Optimizer name as Axolotl knows it.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="Adam beta1 and beta2.")
    adam_epsilon: float = Field(1e-8, gt=0.0, description="Adam epsilon.")
    weight_decay: float = Field(0.0, ge=0.0, description="Weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    neftune_noise_alpha: float | None = Field(None, gt=0.0, description="NEFTune noise alpha; unset disables NEFTune.")
    bf16: bool = Field(True, description="Train in bfloat16.")
    attention: Literal["flash_attention", "sdpa", "eager", "flex"] = Field("flash_attention", description="Attention implementation.")
    gradient_checkpointing: bool = Field(True, description="Recompute activations to save memory.")
    deepspeed: Literal["zero1", "zero2", "zero3", "zero3_offload"] | None = Field(
        "zero3", description="DeepSpeed ZeRO config shipped with medrecipe; unset trains without DeepSpeed."
    )
    batch: Batch = Field({"global_size": 128}, description="The global batch.")
    nodes: PositiveInt | None = Field(None, description="Nodes for this stage. Default: `compute.nodes`.")
    gpus_per_node: PositiveInt | None = Field(None, description="GPUs per node for this stage. Default: `compute.gpus_per_node`.")
    saves_per_epoch: PositiveInt = Field(1, description="Checkpoints saved per epoch.")
    logging_steps: PositiveInt = Field(1, description="Log every this many steps.")
    val_set_size: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction held out for validation.")
    max_steps: PositiveInt | None = Field(None, description="Stop after this many steps (smoke tests).")
    axolotl: dict[str, Any] = Field(
        {},
        description="Further Axolotl keys, passed through verbatim; compile checks each is a key Axolotl knows.",
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> Self:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give at most one of `warmup_steps` or `warmup_ratio`")
        if self.lr_scheduler == "constant" and (self.warmup_steps or self.warmup_ratio):
            # transformers' get_scheduler builds the constant schedule without its warmup arguments (optimization.py)
            raise ValueError("the `constant` schedule has no warmup: use `constant_with_warmup`, or leave the warmup out")
        if self.min_lr is not None and self.min_lr > self.learning_rate:
            raise ValueError("`min_lr` must not exceed `learning_rate`")
        return self
