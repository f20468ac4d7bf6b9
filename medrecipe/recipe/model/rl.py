"""The recipe's `rl` section: DAPO / GRPO, DPO or a reward model with OpenRLHF."""

from typing import Annotated, Any, Literal, Self, Union

from pydantic import Field, model_validator

from .basics import INT_LIMIT, ColumnName, DataRef, NonNegativeInt, PositiveInt, Probability, SplitName, Strict, model_choice
from .data import DatasetLocation, Fields


# `init_from`: this recipe's SFT output, or a model id / path
InitialModel = model_choice(("sft",))


class PromptData(DatasetLocation):
    """Prompts with reference answers for online RL. medrecipe reads them through `fields`, as it reads a curation
    source, and writes the file OpenRLHF trains on: one chat prompt (the user turn: context, question, lettered
    options, or evaluation's "Answer with yes, no, or maybe." where the answer is one of those, then `instruction`)
    and its label per row."""

    fields: Fields = Field(
        description="Column mapping, as for a curation source: the prompt (`prompt` with `options`, `context`, or `messages`) "
        "and `answer`, the reference the reward function grades against (an option letter for multiple choice)."
    )
    instruction: str | None = Field(
        None, description="Appended to every user prompt after a blank line, e.g. the request for a \\boxed{} answer."
    )
    apply_chat_template: bool = Field(True, description="Format prompts with the model's chat template.")
    max_samples: PositiveInt | None = Field(None, description="Use at most this many prompts.")
    size: PositiveInt | None = Field(
        None,
        description="Number of prompts in the dataset. OpenRLHF takes warmup as a ratio of all steps: with the size known it is "
        "fixed at compile time, otherwise `launch.sh` counts the prompts before launching.",
    )


    @model_validator(mode="after")
    def _graded(self) -> Self:
        if not self.fields.answer:
            raise ValueError("map `fields.answer`: the reward function grades each response against it")
        if self.fields.response or self.fields.reasoning:
            raise ValueError("RL prompts map no `response` or `reasoning`; the policy writes them")
        return self


class PreferenceData(Strict):
    """Preference pairs for DPO or reward-model training, read by OpenRLHF itself."""

    path: DataRef = Field(description="Hub dataset id or local file or folder (OpenRLHF's --data.dataset).")
    split: SplitName = Field("train", description="Split.")
    prompt_key: ColumnName | None = Field(
        None,
        description="Column with the prompt as chat turns. Unset: the prompt is `chosen` without its last turn (OpenRLHF's "
        "DPO default), which is right when `chosen` and `rejected` are whole conversations; a reward model then scores "
        "whole conversations.",
    )
    chosen_key: ColumnName = Field("chosen", description="Column with the preferred response (a conversation, or text with `prompt_key`).")
    rejected_key: ColumnName = Field("rejected", description="Column with the dispreferred response.")
    apply_chat_template: bool = Field(True, description="Format with the model's chat template.")
    max_samples: PositiveInt | None = Field(None, description="Use at most this many pairs.")
    size: PositiveInt | None = Field(
        None,
        description="Number of pairs in the dataset. OpenRLHF takes warmup as a ratio of all steps: with the size known it is "
        "fixed at compile time, otherwise `launch.sh` counts the pairs before launching.",
    )


class Overlong(Strict):
    """DAPO's soft overlong punishment: a linear penalty in the last `buffer_length` tokens before the limit."""

    buffer_length: PositiveInt = Field(4096, description="Length of the penalty zone in tokens.")
    penalty_factor: float = Field(1.0, ge=0.0, description="Penalty at the limit (scaled linearly across the buffer).")
    filter: bool = Field(
        False,
        description="DAPO's overlong filtering: mask the loss of truncated responses. OpenRLHF 0.11 has no such option; "
        "compile reports it as a warning.",
    )


class RuleReward(Strict):
    """The rule-based verifier's reward: the extracted final answer graded against the reference answer."""

    correct: float = Field(1.0, description="Reward of a correct answer.")
    incorrect: float = Field(-1.0, description="Reward of a wrong or missing answer (DAPO uses -1).")
    require_box: bool = Field(
        True, description="Only an answer inside \\boxed{} counts; an unboxed answer earns `incorrect` (teaches the format)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.incorrect >= self.correct:
            raise ValueError("`incorrect` must be lower than `correct`")
        return self


class Rollout(Strict):
    """The vLLM engines that generate rollouts."""

    engines: PositiveInt | None = Field(None, description="vLLM engines. Default: all GPUs of the stage / tensor_parallel_size.")
    tensor_parallel_size: PositiveInt = Field(1, description="GPUs per vLLM engine.")
    gpu_memory_utilization: float = Field(0.6, gt=0.0, le=1.0, description="Fraction of GPU memory vLLM may take.")
    enable_prefix_caching: bool = Field(True, description="vLLM prefix caching.")


class RLStageBase(Strict):
    """Fields common to every post-SFT stage."""

    init_from: InitialModel = Field("sft", description="`sft` (this recipe's SFT output) or a model id / path.")
    learning_rate: float = Field(gt=0.0, description="Peak learning rate.")
    warmup_steps: NonNegativeInt | None = Field(
        None,
        description="Warmup in training steps, converted to OpenRLHF's ratio of optimizer steps. For DAPO and GRPO a step is "
        "one rollout of `rollout_batch_size` prompts and the `rollout_batch_size / mini_batch_size` updates it feeds (as "
        "verl's `lr_warmup_steps`, `save_steps` and `max_steps` count); for DPO and reward models, one update. Unset, with "
        "no `warmup_ratio`: none.",
    )
    warmup_ratio: float | None = Field(
        None, ge=0.0, lt=1.0, description="Warmup as a fraction of all optimizer steps (OpenRLHF's own form)."
    )
    lr_scheduler: Literal["constant", "cosine"] = Field(
        "constant", description="Learning rate after warmup: `constant`, or `cosine` decay to `min_lr_ratio` x the peak."
    )
    min_lr_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="End of the cosine schedule as a fraction of the peak.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="Adam beta1 and beta2.")
    weight_decay: float = Field(0.0, ge=0.0, description="Weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    epochs: PositiveInt = Field(1, description="Passes over the data.")
    zero_stage: Literal[0, 1, 2, 3] = Field(3, description="DeepSpeed ZeRO stage.")
    bf16: bool = Field(True, description="Train in bfloat16.")
    gradient_checkpointing: bool = Field(True, description="Recompute activations to save memory.")
    flash_attention: bool = Field(True, description="Use FlashAttention.")
    micro_train_batch_size: PositiveInt = Field(1, description="Samples per GPU per training forward pass.")
    nodes: PositiveInt | None = Field(None, description="Nodes for this stage. Default: `compute.nodes`.")
    gpus_per_node: PositiveInt | None = Field(None, description="GPUs per node. Default: `compute.gpus_per_node`.")
    max_steps: PositiveInt | None = Field(None, description="Stop after this many steps (smoke tests).")
    openrlhf: dict[str, Any] = Field(
        {},
        description="Further OpenRLHF flags (dotted names without `--`), passed verbatim and checked by OpenRLHF's own parser.",
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> Self:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give at most one of `warmup_steps` or `warmup_ratio`")
        return self


class PolicyOptimization(RLStageBase):
    """Online RL with a rule-based verifier: DAPO, or GRPO."""

    algorithm: Literal["dapo", "grpo"] = Field(description="`dapo` (clip-higher, dynamic sampling, overlong shaping) or `grpo`.")
    data: PromptData = Field(description="The RL prompts.")
    save_steps: PositiveInt = Field(
        10,
        description="Save a resumable checkpoint (DeepSpeed states, the last 3 kept) every this many steps; a rerun resumes "
        "from the last one. OpenRLHF's own default is never; each DAPO step generates and trains hundreds of groups.",
    )
    max_prompt_length: PositiveInt = Field(2048, description="Maximum prompt tokens.")
    max_response_length: PositiveInt = Field(8192, description="Maximum generated tokens.")
    overlong: Overlong | None = Field(None, description="Overlong buffer and penalty (DAPO); unset disables it.")
    reward: RuleReward = Field({}, description="Rewards the generated verifier (rl/reward.py) gives.")
    clip_ratio_low: float = Field(0.2, gt=0.0, lt=1.0, description="PPO clip ratio below 1 (epsilon low).")
    clip_ratio_high: float = Field(0.2, gt=0.0, lt=1.0, description="PPO clip ratio above 1 (epsilon high; DAPO's clip-higher).")
    rollout_batch_size: PositiveInt = Field(description="Prompts per training step (the train prompt batch).")
    generation_batch_size: PositiveInt | None = Field(
        None,
        description="Prompts DAPO samples per step so that `rollout_batch_size` groups survive dynamic filtering; the rest "
        "are discarded. OpenRLHF 0.11 reaches the same on-policy batch by replacing each filtered prompt with a fresh one, "
        "so this is recorded, not passed (a larger generate batch there trains the surplus in later steps).",
    )
    mini_batch_size: PositiveInt = Field(description="Prompts per optimizer update (their samples form one train batch).")
    samples_per_prompt: PositiveInt = Field(description="Responses sampled per prompt (the group size).")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="Rollout sampling temperature.")
    top_p: Probability = Field(1.0, description="Rollout nucleus sampling.")
    top_k: int = Field(-1, ge=-1, le=INT_LIMIT, description="Rollout top-k; -1 disables it.")
    loss_aggregation: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"] = Field(
        "token_mean", description="How per-token losses are averaged."
    )
    entropy_coef: float = Field(0.0, ge=0.0, description="Entropy bonus coefficient; 0 leaves entropy out of the loss and its computation.")
    kl_coef: float = Field(0.0, ge=0.0, description="KL penalty coefficient; 0 disables the KL term (and the reference model).")
    dynamic_filtering: bool = Field(
        True, description="Drop groups whose samples are all correct or all wrong (DAPO dynamic sampling)."
    )
    micro_rollout_batch_size: PositiveInt = Field(8, description="Samples per GPU per rollout forward pass.")
    rollout: Rollout = Field({}, description="The vLLM rollout engines.")

    @model_validator(mode="after")
    def _batches_fit(self) -> Self:
        if self.mini_batch_size > self.rollout_batch_size:
            raise ValueError("`mini_batch_size` must not exceed `rollout_batch_size`")
        if self.rollout_batch_size % self.mini_batch_size:
            raise ValueError("`rollout_batch_size` must be a multiple of `mini_batch_size`")
        if self.generation_batch_size is not None and self.generation_batch_size < self.rollout_batch_size:
            raise ValueError("`generation_batch_size` must be at least `rollout_batch_size`")
        if self.overlong is not None and self.overlong.buffer_length >= self.max_response_length:
            raise ValueError("`overlong.buffer_length` must be shorter than `max_response_length`")
        return self


class PreferenceStage(RLStageBase):
    """Offline preference learning: DPO, or a reward model trained on preference pairs."""

    algorithm: Literal["dpo", "reward_model"] = Field(description="`dpo`, or `reward_model` (a Bradley-Terry reward model).")
    data: PreferenceData = Field(description="The preference pairs.")
    save_steps: PositiveInt = Field(
        200,
        description="Save a resumable checkpoint (DeepSpeed states, the last 3 kept) every this many steps; a rerun resumes "
        "from the last one. OpenRLHF's own default is never.",
    )
    beta: float = Field(0.1, gt=0.0, description="DPO beta (ignored by reward-model training).")
    max_len: PositiveInt = Field(4096, description="Maximum tokens of prompt plus response. OpenRLHF cuts a longer pair at "
                                 "the end of its response and writes EOS over its last token (the response's ending, its answer "
                                 "included, is lost); it drops pairs whose prompt alone nearly fills it.")
    train_batch_size: PositiveInt = Field(128, description="Pairs per optimizer step across all GPUs.")


RL = Annotated[Union[PolicyOptimization, PreferenceStage], Field(discriminator="algorithm")]
