"""What a release will cost before it runs: tokens, FLOPs and GPU-hours per stage, and whether each training
stage fits in the GPUs' memory.

Every figure names what it rests on, and `plan` prints those assumptions beside it:
- Model sizes come from the model's config.json when it is on this machine, else from the catalog
  (`catalog.models.shape`); a model medrecipe cannot size gets no estimate, and says so.
- FLOPs are model FLOPs: 6 N per trained token and 2 N per token a forward pass reads or generates (Kaplan et al.
  2020, arXiv 2001.08361, section 2.1), plus causal attention, 6 L d T per trained token and 2 L d T per forward
  token for a sequence of T tokens (each of the T tokens attends to T/2 earlier ones on average; d = heads x
  head_dim). Recomputation (gradient checkpointing, FlashAttention's backward) is not counted, as model FLOPs
  utilisation does not count it: GPU-hours = FLOPs / (peak x utilisation).
- Memory per GPU: the model states as DeepSpeed 0.18's own estimators compute them (`estimate_zero2_model_states_mem_needs`
  for stages 1 and 2, which DeepSpeed implements in one optimizer, and `estimate_zero3_model_states_mem_needs`; a test
  calls them in the sft environment), activations after Korthikanti et al. 2022 (arXiv 2205.05198, section 4)
  adapted to FlashAttention (no T x T scores are kept), grouped-query attention and a gated MLP, the logits as
  transformers' loss makes them (bf16 logits, their float32 copy and its float32 log-softmax: `ForCausalLMLoss` upcasts
  before `cross_entropy`, transformers 5.16), and a fixed allowance for the CUDA context, NCCL and allocator slack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..blocks.evalsets import benchmark_rows
from ..catalog import benchmarks, gpus, models
from ..catalog.checks import rl_base_model, sft_base_model
from ..errors import UserError
from ..recipe import LoadedRecipe
from ..recipe.derive import eval_gpus, rollout_plan, sft_batch, stage_gpus
from ..recipe.model import GPU, PolicyOptimization
from .layout import Layout
from .openrlhf.flags import known_count, passes, sample_limit

GIB = 2**30
OVERHEAD_GIB = 3.0  # CUDA context, NCCL buffers, allocator fragmentation: an allowance, not a measurement
CHARACTERS_PER_TOKEN = 4.0  # for curated text measured in characters: English BPE, about 4 characters a token
PROMPT_TOKENS = 1024  # an evaluation prompt: a question, its options and the instruction (assumed)
CHOICES = 4  # options a log-likelihood item scores (most registry benchmarks have four or five)
TIGHT = 0.90  # above this share of the GPU's memory a run is one long sequence away from running out


@dataclass(frozen=True)
class Hardware:
    type: str
    memory_gib: float
    peak_flops: float  # per GPU, dense BF16, FLOP/s
    training_utilization: float
    generation_utilization: float

    @classmethod
    def of(cls, gpu: GPU) -> Hardware:
        known = gpus.GPUS[gpu.type]
        return cls(gpu.type, gpu.memory_gib or known.memory_gib, known.peak_tflops * 1e12,
                   gpu.utilization or known.training_utilization,
                   gpu.generation_utilization or known.generation_utilization)

    def hours(self, training_flops: float, generation_flops: float = 0.0) -> float:
        """GPU-hours for the given FLOPs at the stated utilisations."""
        seconds = training_flops / (self.peak_flops * self.training_utilization)
        seconds += generation_flops / (self.peak_flops * self.generation_utilization)
        return seconds / 3600


@dataclass
class Memory:
    """Memory per GPU in one phase of a stage, by part, against what the GPU has."""

    phase: str
    parts: list[tuple[str, float]]  # (what, GiB)
    capacity_gib: float

    @property
    def total_gib(self) -> float:
        return sum(size for _, size in self.parts)

    @property
    def verdict(self) -> str:
        share = self.total_gib / self.capacity_gib
        return "does not fit" if share > 1 else "fits, tightly" if share > TIGHT else "fits"


@dataclass
class StageCost:
    stage: str
    model: str
    parameters: int | None = None
    tokens: float | None = None  # tokens processed (trained, or read and generated)
    flops: float | None = None
    gpu_hours: float | None = None
    gpus: int = 1
    memory: list[Memory] = field(default_factory=list)
    basis: list[str] = field(default_factory=list)  # where the figures come from, and what is assumed
    per: str = ""  # what the totals count when the whole run cannot be sized ("per step")

    @property
    def wall_hours(self) -> float | None:
        return None if self.gpu_hours is None else self.gpu_hours / self.gpus


def estimate(loaded: LoadedRecipe, layout: Layout) -> list[StageCost]:
    """The cost of every GPU stage of the recipe (SFT, RL, evaluation); the data stage's generation is not sized."""
    recipe = loaded.recipe
    hardware = Hardware.of(recipe.compute.gpu)
    costs = []
    if recipe.sft:
        costs.append(_sft(loaded, layout, hardware))
    if recipe.rl:
        costs.append(_policy(loaded, hardware) if isinstance(recipe.rl, PolicyOptimization) else _preference(loaded, hardware))
    if recipe.eval:
        costs.append(_evaluation(loaded, hardware))
    return costs


# --- formulas ---------------------------------------------------------------------------------------------------


def forward_flops(shape: models.Shape, tokens: float, sequence: float) -> float:
    """A forward pass over `tokens` tokens in sequences of `sequence` tokens."""
    return tokens * (2 * shape.parameters() + 2 * shape.layers * shape.heads * shape.head_dim * sequence)


def training_flops(shape: models.Shape, tokens: float, sequence: float) -> float:
    """Forward and backward (twice the forward) over `tokens` tokens in sequences of `sequence` tokens."""
    return 3 * forward_flops(shape, tokens, sequence)


def model_states_bytes(shape: models.Shape, deepspeed: str | None, gpus: int) -> int:
    """Parameters, gradients and Adam states per GPU, as DeepSpeed's estimators give them without CPU offload
    (`zero3_offload`: parameters and optimizer on the CPU); without DeepSpeed, mixed-precision Adam's 16 bytes a
    parameter (ZeRO paper, arXiv 1910.02054, section 3.1)."""
    total = shape.parameters()
    if deepspeed is None:
        return 16 * total
    if deepspeed in ("zero1", "zero2"):  # bf16 parameters whole; bf16 and fp32 gradients, fp32 master and Adam partitioned
        return 2 * total + int(18 * total / gpus)
    largest = 4 * shape.largest_module_parameters()
    if deepspeed == "zero3_offload":
        return largest
    return largest + int(18 * total / gpus)


def activation_bytes(shape: models.Shape, tokens: int, checkpointing: bool) -> int:
    """Activations kept for the backward pass of `tokens` tokens (a micro-batch) in bf16: with checkpointing each
    layer keeps its input and one layer at a time is recomputed whole."""
    per_layer = tokens * (12 * shape.hidden + 4 * shape.kv_heads * shape.head_dim + 8 * shape.intermediate)
    if checkpointing:
        return shape.layers * 2 * tokens * shape.hidden + per_layer
    return shape.layers * per_layer


def logits_bytes(shape: models.Shape, tokens: int) -> int:
    """bf16 logits, their float32 copy and the float32 log-softmax the loss keeps for the backward pass."""
    return tokens * shape.vocab * (2 + 4 + 4)


def training_memory(shape: models.Shape, deepspeed: str | None, gpus: int, tokens: int, checkpointing: bool,
                    hardware: Hardware, phase: str, logits: bool = True) -> Memory:
    parts = [(f"model states ({deepspeed or 'no ZeRO'}, {gpus} GPUs)", model_states_bytes(shape, deepspeed, gpus) / GIB),
             (f"activations ({tokens:,} tokens{', checkpointed' if checkpointing else ''})",
              activation_bytes(shape, tokens, checkpointing) / GIB)]
    if logits:
        parts.append((f"logits and loss ({tokens:,} x {shape.vocab:,})", logits_bytes(shape, tokens) / GIB))
    parts.append(("CUDA context, NCCL, allocator (allowance)", OVERHEAD_GIB))
    return Memory(phase, parts, hardware.memory_gib)


def kv_cache_bytes_per_token(shape: models.Shape) -> int:
    return 2 * shape.layers * shape.kv_heads * shape.head_dim * 2  # keys and values, bf16


# --- stages -----------------------------------------------------------------------------------------------------


def _sized(stage: str, model: str) -> tuple[StageCost, models.Shape | None]:
    found = models.shape(model)
    cost = StageCost(stage, model)
    if found is None:
        cost.basis.append(f"{model}'s size is unknown here: use a local model folder with its config.json, or a model "
                          "in medrecipe's catalog (`medrecipe/catalog/models.py`)")
        return cost, None
    shape, source = found
    cost.parameters = shape.parameters()
    cost.basis.append(f"{model}: {cost.parameters / 1e9:.2f}B parameters, {shape.layers} layers (from {source})")
    return cost, shape


def _sft(loaded: LoadedRecipe, layout: Layout, hardware: Hardware) -> StageCost:
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    cost, shape = _sized("sft", sft_base_model(loaded))
    batch = sft_batch(sft, recipe.compute)
    cost.gpus = batch.gpus
    if shape is None:
        return cost
    tokens_per_micro_batch = batch.micro_batch_size * sft.sequence_len  # the longest sequences set the peak
    cost.memory.append(training_memory(shape, sft.deepspeed, batch.gpus, tokens_per_micro_batch,
                                       sft.gradient_checkpointing, hardware, "training"))
    curated = recipe.data is not None and sft.datasets is None  # SFT trains on the data stage's output
    measured = _curated(layout) if curated else None
    if measured:
        samples, characters = measured
        mean = min(sft.sequence_len, characters / CHARACTERS_PER_TOKEN)
        cost.basis.append(f"{samples:,} samples measured in the curated data, {mean:,.0f} tokens each on average "
                          f"({characters:,.0f} characters at {CHARACTERS_PER_TOKEN:g} a token)")
    elif curated and recipe.data.expected_samples:
        samples, mean = recipe.data.expected_samples, float(sft.sequence_len)
        cost.basis.append(f"{samples:,} samples (data.expected_samples), each taken at sequence_len {sft.sequence_len:,}: "
                          "an upper bound until the curated data exists")
    else:
        cost.basis.append("the number of training samples is unknown (set data.expected_samples): no totals")
        return cost
    tokens = samples * mean * sft.epochs
    if sft.max_steps and sft.max_steps * batch.sequences_per_step * mean < tokens:
        tokens = sft.max_steps * batch.sequences_per_step * mean
        cost.basis.append(f"stopped at sft.max_steps {sft.max_steps:,} ({batch.sequences_per_step:,} sequences a step)")
    cost.tokens = tokens
    cost.flops = training_flops(shape, tokens, mean)
    cost.gpu_hours = hardware.hours(cost.flops)
    cost.basis.append(f"{sft.epochs} epochs; {hardware.type} at {hardware.peak_flops / 1e12:,.0f} TFLOPS dense BF16 and "
                      f"{hardware.training_utilization:.0%} utilisation (compute.gpu)")
    return cost


def _curated(layout: Layout) -> tuple[int, float] | None:
    """(rows, mean characters a row) of the curated output, when the data stage has written it."""
    import pyarrow.parquet as pq

    files = sorted(layout.data_output().glob("*.parquet")) if layout.data_output().is_dir() else []
    rows, characters = 0, 0
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(columns=["messages"], batch_size=4096):
            for messages in batch.column(0).to_pylist():
                rows += 1
                characters += sum(len(turn.get("content") or "") for turn in messages or [])
    return (rows, characters / rows) if rows else None


def _policy(loaded: LoadedRecipe, hardware: Hardware) -> StageCost:
    recipe = loaded.recipe
    rl = recipe.rl
    assert isinstance(rl, PolicyOptimization)
    cost, shape = _sized("rl", rl_base_model(loaded))
    rollout = rollout_plan(rl, recipe.compute)
    cost.gpus = rollout.gpus
    if shape is None:
        return cost
    sequence = rl.max_prompt_length + rl.max_response_length
    cost.memory.append(training_memory(shape, f"zero{rl.zero_stage}" if rl.zero_stage else None, rollout.gpus,
                                       rl.micro_train_batch_size * sequence, rl.gradient_checkpointing, hardware,
                                       "actor training (vLLM asleep)"))
    share = rl.rollout.gpu_memory_utilization * hardware.memory_gib
    weights = 2 * shape.parameters() / rl.rollout.tensor_parallel_size / GIB
    cache = max(0.0, share - weights)
    per_token = kv_cache_bytes_per_token(shape) / rl.rollout.tensor_parallel_size
    room = cache * GIB / per_token
    cost.memory.append(Memory("rollouts (DeepSpeed asleep)",
                              [("vLLM weights (bf16)", weights),
                               (f"KV cache: {room:,.0f} tokens, {room / sequence:,.0f} full-length sequences", cache)],
                              hardware.memory_gib))
    # With dynamic filtering, OpenRLHF replaces each filtered group with a fresh prompt until the step has its groups:
    # the generation batch (verl's three times the train batch in DAPO) stands for a third of the groups surviving.
    generated_prompts = rl.generation_batch_size or rl.rollout_batch_size
    per_step_generated = generated_prompts * rl.samples_per_prompt * sequence
    per_step_trained = rl.rollout_batch_size * rl.samples_per_prompt * sequence
    # the actor's forward for the old log-probabilities, and the reference model's when the KL term is on
    forward_passes = 1 + (1 if rl.kl_coef > 0 else 0)
    step_training = training_flops(shape, per_step_trained, sequence) + forward_passes * forward_flops(shape, per_step_trained, sequence)
    step_generation = forward_flops(shape, per_step_generated, sequence)
    prompts = known_count(rl.data.size, sample_limit(rl, rl.rollout_batch_size))
    episodes = passes(rl, rl.rollout_batch_size)
    steps = prompts // rl.rollout_batch_size * episodes if prompts else rl.max_steps
    if rl.generation_batch_size and rl.dynamic_filtering:
        cost.basis.append(f"generation: {generated_prompts:,} prompts per step (rl.generation_batch_size) assumes "
                          f"{rl.rollout_batch_size / generated_prompts:.0%} of the groups survive dynamic filtering; OpenRLHF "
                          f"samples fresh prompts until {rl.rollout_batch_size:,} do")
    cost.basis.append(f"each step generates {generated_prompts:,} prompts x {rl.samples_per_prompt} samples and trains on "
                      f"{rl.rollout_batch_size:,} x {rl.samples_per_prompt}, every sequence taken at {rl.max_prompt_length:,} + "
                      f"{rl.max_response_length:,} tokens: an upper bound")
    cost.basis.append(f"training at {hardware.training_utilization:.0%} and generation at {hardware.generation_utilization:.0%} "
                      f"of {hardware.type}'s {hardware.peak_flops / 1e12:,.0f} TFLOPS (compute.gpu; the generation figure is assumed)")
    if not steps:
        cost.basis.append("the number of prompts is unknown (set rl.data.size): figures are per step")
        steps, cost.per = 1, "per step"
    else:
        cost.basis.append(f"{steps:,} steps ({prompts:,} prompts / {rl.rollout_batch_size:,} per step x {episodes} epochs)"
                          if prompts else f"{steps:,} steps (rl.max_steps)")
    cost.tokens = steps * (per_step_generated + per_step_trained)
    cost.flops = steps * (step_training + step_generation)
    cost.gpu_hours = steps * hardware.hours(step_training, step_generation)
    return cost


def _preference(loaded: LoadedRecipe, hardware: Hardware) -> StageCost:
    recipe = loaded.recipe
    rl = recipe.rl
    assert rl is not None and not isinstance(rl, PolicyOptimization)
    cost, shape = _sized("rl", rl_base_model(loaded))
    _, gpu_count = stage_gpus(rl.nodes, rl.gpus_per_node, recipe.compute)
    cost.gpus = gpu_count
    if shape is None:
        return cost
    dpo = rl.algorithm == "dpo"
    # chosen and rejected go through the model in one forward; a reward model has a scalar head, no vocabulary logits
    tokens = 2 * rl.micro_train_batch_size * rl.max_len
    cost.memory.append(training_memory(shape, f"zero{rl.zero_stage}" if rl.zero_stage else None, gpu_count, tokens,
                                       rl.gradient_checkpointing, hardware, "training", logits=dpo))
    if dpo:  # the frozen reference model: bf16 weights, partitioned under ZeRO-3
        reference = 2 * shape.parameters() / (gpu_count if rl.zero_stage == 3 else 1) / GIB
        cost.memory[0].parts.insert(1, ("reference model (bf16)", reference))
    limit = sample_limit(rl, rl.train_batch_size)
    pairs = known_count(rl.data.size, limit) or (limit if rl.max_steps else None)  # max_steps bounds an unknown size
    if not pairs:
        cost.basis.append("the number of pairs is unknown (set rl.data.size): no totals")
        return cost
    epochs = passes(rl, rl.train_batch_size)
    trained = 2 * pairs * rl.max_len * epochs
    cost.tokens = trained
    cost.flops = training_flops(shape, trained, rl.max_len) + (forward_flops(shape, trained, rl.max_len) if dpo else 0)
    cost.gpu_hours = hardware.hours(cost.flops)
    cost.basis.append(f"{pairs:,} pairs x 2 sequences at max_len {rl.max_len:,} x {epochs} epochs: an upper bound"
                      + (f" (rl.max_steps {rl.max_steps} x {rl.train_batch_size} pairs)" if rl.max_steps else "")
                      + ("; the reference model's forward included" if dpo else ""))
    return cost


def _evaluation(loaded: LoadedRecipe, hardware: Hardware) -> StageCost:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    cost, shape = _sized("eval", loaded.recipe.evaluated_architecture())
    engines, cost.gpus = eval_gpus(ev, recipe.compute)  # what launch.sh gives lighteval and the launchers ask for
    if shape is None:
        return cost
    items, unknown = 0, []
    for index, reference in enumerate(ev.benchmarks):
        count = _items(loaded, index)
        if count is None:
            unknown.append(reference.name)
            continue
        items += min(count, reference.max_samples or count)
    prompt = PROMPT_TOKENS
    if ev.mode == "loglikelihood":  # each option is scored as a continuation of the prompt: forward passes, no decoding
        cost.tokens = items * CHOICES * prompt
        cost.flops = forward_flops(shape, cost.tokens, prompt)
        cost.gpu_hours = hardware.hours(cost.flops)
        what = f"{CHOICES} options scored, each with a {prompt:,}-token prompt (assumed), at the training utilisation"
    else:
        generated = ev.sampling.max_new_tokens
        cost.tokens = items * (prompt + generated)
        cost.flops = forward_flops(shape, cost.tokens, prompt + generated)
        cost.gpu_hours = hardware.hours(0.0, cost.flops)
        what = (f"a {prompt:,}-token prompt (assumed) and {generated:,} generated tokens (sampling.max_new_tokens): an "
                f"upper bound, at {hardware.generation_utilization:.0%} of the peak (assumed)")
    cost.basis.append(f"{items:,} items (counted in local copies, else the dataset cards' counts), each {what}; "
                      "a judge's calls are not counted")
    cost.basis.append(f"{engines} vLLM engine(s) of {ev.tensor_parallel_size} GPU(s) share the items (eval.data_parallel_size)"
                      if ev.backend == "vllm" else "the accelerate backend: one process on one GPU")
    if unknown:
        cost.basis.append(f"item counts unknown, left out: {', '.join(unknown)}")
    weights = 2 * shape.parameters() / ev.tensor_parallel_size / GIB
    cost.memory.append(Memory("evaluation, weights only", [("weights (bf16)", weights)], hardware.memory_gib))
    return cost


def _items(loaded: LoadedRecipe, index: int) -> int | None:
    """Items a benchmark evaluates: counted in its local copy, else the registry's count from the dataset card."""
    assert loaded.recipe.eval is not None
    reference = loaded.recipe.eval.benchmarks[index]
    known = benchmarks.known(loaded.recipe).get(reference.name)
    if known is None:
        return None
    if reference.path:
        path = loaded.local_path(("eval", "benchmarks", index, "path"))
        try:  # the split evaluated, as decontamination reads it (evalsets.local_copy)
            return sum(1 for _ in benchmark_rows({"name": reference.name, "path": str(path), "where": known.where,
                                                  "split": reference.split or known.split, "data_files": known.data_files}))
        except (OSError, ValueError, UserError):  # unreadable, or no such split: preflight says which
            return None
    return known.items


def describe(value: float, unit: str = "") -> str:
    """1.2e+21 -> '1.2e21'; 1234.5 -> '1,234'."""
    if value >= 1e7:
        exponent = int(math.floor(math.log10(value)))
        return f"{value / 10**exponent:.2f}e{exponent}{unit}"
    return f"{value:,.0f}{unit}" if value >= 10 else f"{value:.2g}{unit}"
