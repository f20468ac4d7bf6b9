"""Run the SFT stage: Axolotl in the sft environment, on this machine or as a Slurm job.

Axolotl writes checkpoints and, at the end, the final model into its output folder (the stage's work
folder); the final model is then moved into `layout.sft_output()`, which later stages and `publish`
read. A rerun resumes from the last checkpoint (`auto_resume_from_checkpoints`); a finished stage is
skipped.

Locally the run needs exactly the GPUs the global batch was derived for (`sft.batch`). A recipe that asks
for one GPU and needs none of bf16, FlashAttention and DeepSpeed also trains on the CPU: that is how the
smoke tests run Axolotl for real.
"""

from __future__ import annotations

import inspect
import os
import shlex
from pathlib import Path


from ..envs import offline_models
from ..catalog.checks import sft_base_model
from ..compile import axolotl
from ..compile.build import empty_curated_dataset, run_command
from ..compile.layout import Layout
from ..errors import NotRunnableHere, UserError
from ..recipe import LoadedRecipe
from ..recipe.derive import SFTBatch, sft_batch
from ..recipe.model import SFT
from ..envs import tools
from . import jobs
from .stages import RunOptions, StageResult


def collect_final_model(output_dir: str, model_dir: str) -> None:
    """Move the model Axolotl saved at the top of its output folder into the stage's model folder.
    Self-contained: a Slurm job runs this function's source with the tool environment's Python."""
    import json
    import os
    import shutil

    not_model = {"debug.log", "sft.log", "README.md", "training_args.bin"}  # sft.log: the console's copy (run/console.py)
    partial = model_dir + ".partial"
    os.makedirs(partial, exist_ok=True)
    for name in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, name)
        if os.path.isfile(path) and name not in not_model:
            shutil.move(path, os.path.join(partial, name))
    if not os.path.isfile(os.path.join(partial, "config.json")):
        raise SystemExit(f"no model was saved in {output_dir}")
    # Axolotl makes the chat template's turn end the EOS in config.json alone (loaders/model.py 427-433); the
    # generation_config.json saved beside it keeps the base model's (Meta-Llama-3-8B's 128001, <|end_of_text|>), where
    # transformers' generate() stops, never at <|eot_id|> (found by review). Both are listed, as Meta-Llama-3-8B-
    # Instruct's own generation_config.json lists them; OpenRLHF carries the file on into the RL model.
    generation_file = os.path.join(partial, "generation_config.json")
    if os.path.isfile(generation_file):
        with open(os.path.join(partial, "config.json")) as handle:
            ends = json.load(handle).get("eos_token_id")
        with open(generation_file) as handle:
            generation = json.load(handle)
        listed = generation.get("eos_token_id")
        listed = listed if isinstance(listed, list) else [] if listed is None else [listed]
        merged = listed + [end for end in (ends if isinstance(ends, list) else [ends]) if end is not None and end not in listed]
        if merged != listed:
            generation["eos_token_id"] = merged if len(merged) > 1 else merged[0]
            with open(generation_file, "w") as handle:
                json.dump(generation, handle, indent=2)
    os.rename(partial, model_dir)


def missing_input(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> tuple[str | None, UserError] | None:
    """The curated dataset, when the stage trains on it (no sft.datasets) and it is not there: ("data", the error);
    (None, the error) when the data stage kept no record, which running it again does not change."""
    sft = loaded.recipe.sft
    if sft is not None and sft.datasets is None and not any(layout.data_output().glob("*.parquet")):
        if empty := empty_curated_dataset(layout):
            return None, empty
        return "data", UserError(f"the SFT data is missing: no parquet files in {layout.data_output()}",
                                 f"run the data stage first: {run_command(loaded, layout.root, 'data')}")
    return None


def run(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> StageResult:
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    final = layout.sft_output()
    outputs = [("SFT model", str(final))]
    if (final / "config.json").is_file():
        return StageResult("sft", "skipped", outputs, notes=[f"already trained: {final} (delete it to train again)"])
    config = jobs.compiled(loaded, layout.root, axolotl.CONFIG)
    if (missing := missing_input(loaded, layout, options)) and not options.dry_run:
        raise missing[1]
    if options.launcher == "ray":
        raise UserError("SFT runs with --launcher local or --launcher slurm", "Axolotl's own Ray mode is not used by medrecipe")

    batch = sft_batch(sft, recipe.compute)
    # A Slurm job runs on GPU nodes: it needs the GPU build (DeepSpeed, FlashAttention) unless the recipe is CPU-only.
    gpu = options.gpu or (options.launcher == "slurm" and not cpu_compatible(sft, batch))
    python = tools.interpreter("sft", gpu, options.dry_run)
    env = _environment(loaded, python, options.dry_run)
    work = layout.work_dir("sft")
    if options.launcher == "slurm":
        return _slurm(loaded, layout, options, python, batch, env, outputs)

    env["PATH"] = f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # the launchers Axolotl calls
    command, notes = _local_command(python, batch, config, options, sft)
    job = jobs.Job("Axolotl SFT", command, env, cwd=work)
    if options.dry_run:
        jobs.show(job)
        return StageResult("sft", "dry-run", outputs)
    with jobs.stage_lock("sft", work / "sft.log") as lock:
        notes += jobs.run_local(job, f"rerun the same command to resume from the last checkpoint in {work}", "sft",
                                work / "sft.log", options.verbose, lock)
        collect_final_model(str(work), str(final))
    return StageResult("sft", "done", outputs, notes=notes)


def _environment(loaded: LoadedRecipe, python: Path, dry_run: bool) -> dict[str, str]:
    """What the Axolotl process adds to the environment: no telemetry and, offline, the private Hub cache that
    serves PyPI-shipped models under their Hub ids."""
    env = {"AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.update(offline_models.tool_environment([sft_base_model(loaded)], python, dry_run))
    return env


def cpu_compatible(sft: SFT, batch: SFTBatch) -> bool:
    """Whether the SFT stage can train on a CPU: one process, no bf16, no FlashAttention, no DeepSpeed."""
    return batch.gpus == 1 and not sft.bf16 and sft.attention != "flash_attention" and not sft.deepspeed


def _local_command(python: Path, batch: SFTBatch, config: Path, options: RunOptions, sft: SFT) -> tuple[list[str], list[str]]:
    """The command that starts the run on this machine, and notes for the summary."""
    train = ["-m", "axolotl.cli.train", str(config)]
    notes: list[str] = []
    if batch.nodes > 1:
        raise NotRunnableHere(
            f"sft runs on {batch.nodes} nodes (sft.nodes / compute.nodes), which a local launch cannot start",
            "submit it with --launcher slurm",
        )
    if not options.dry_run:
        visible = jobs.visible_gpus(python)
        if visible < batch.gpus and not (visible == 0 and cpu_compatible(sft, batch)):
            flag = "" if options.gpu else " --gpu"
            raise NotRunnableHere(
                f"the SFT stage needs {batch.gpus} GPUs (global batch {batch.sequences_per_step} = micro batch "
                f"{batch.micro_batch_size} x accumulation {batch.gradient_accumulation} x {batch.gpus} GPUs); "
                f"the sft environment sees {visible}",
                f"run on a machine with {batch.gpus} GPUs (medrecipe env setup sft{flag}), submit with --launcher slurm, "
                "or set sft.gpus_per_node to the GPUs you have (accumulation is re-derived to keep the batch)",
            )
        if visible == 0:
            notes.append("no GPU: trained on the CPU (the recipe needs one process and no bf16, FlashAttention or DeepSpeed)")
    if batch.gpus == 1:
        return [str(python), *train], notes
    return [str(python), "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(batch.gpus), *train], notes


def _slurm(
    loaded: LoadedRecipe, layout: Layout, options: RunOptions, python: Path, batch: SFTBatch, env: dict[str, str],
    outputs: list[tuple[str, str]],
) -> StageResult:
    recipe = loaded.recipe
    work = layout.work_dir("sft")
    config = layout.root / axolotl.CONFIG
    torchrun = [
        str(python), "-m", "torch.distributed.run", "--nnodes", str(batch.nodes),
        "--nproc-per-node", str(batch.gpus // batch.nodes), "--node-rank", "$SLURM_NODEID",
        "--master-addr", "$MASTER_ADDR", "--master-port", "$MASTER_PORT", "-m", "axolotl.cli.train", str(config),
    ]
    per_node = " ".join(part if part.startswith("$") else shlex.quote(part) for part in torchrun)
    collect = inspect.getsource(collect_final_model) + f"\ncollect_final_model({str(work)!r}, {str(layout.sft_output())!r})\n"
    body = [
        *(f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())),
        f"export PATH={shlex.quote(str(python.parent))}:\"$PATH\"",
        f"cd {shlex.quote(str(work))}",
        f"{jobs.srun(recipe)} bash -c {shlex.quote(per_node)}",
        f"{shlex.quote(str(python))} - <<'PY'",
        *collect.rstrip("\n").splitlines(),
        "PY",
    ]
    script_text = jobs.slurm_script(recipe, "sft", batch.nodes, batch.gpus // batch.nodes, layout.stage_dir("sft"), body)
    return jobs.submit_stage("sft", layout.stage_dir("sft") / "sft.sbatch", script_text, work, outputs, options.dry_run)
