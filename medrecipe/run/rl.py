"""Run the post-SFT stage: OpenRLHF's compiled `rl/launch.sh`, in the rl environment's GPU build.

- `--launcher local`: on this machine. DAPO / GRPO start their own Ray instance; DPO and reward models
  start one torchrun process per GPU.
- `--launcher ray`: DAPO / GRPO submitted as a Ray job to `compute.ray.address` (or $RAY_ADDRESS), the
  dashboard address of a running cluster.
- `--launcher slurm`: an sbatch script; for DAPO / GRPO it starts a Ray cluster across the job's nodes and
  submits to it, for DPO / reward models it runs launch.sh once per node.
OpenRLHF writes the final model into `layout.rl_output()` itself (`--ckpt.output_dir`).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


from ..compile import openrlhf
from ..compile.build import run_command
from ..compile.layout import Layout
from ..errors import NotRunnableHere, UserError
from ..recipe import LoadedRecipe
from ..recipe.derive import preference_gpus, rollout_plan
from ..recipe.model import PolicyOptimization
from ..envs import tools
from . import jobs, rl_prompts
from .stages import RunOptions, StageResult


def missing_input(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> tuple[str, UserError] | None:
    """The SFT model the stage starts from, when it is not there: ("sft", the error), else None."""
    rl = loaded.recipe.rl
    if rl is not None and rl.init_from == "sft" and not (layout.sft_output() / "config.json").is_file():
        return "sft", NotRunnableHere(f"the SFT model this stage starts from is missing: {layout.sft_output()}",
                                      f"run the SFT stage first: {run_command(loaded, layout.root, 'sft')}")
    return None


def run(loaded: LoadedRecipe, layout: Layout, options: RunOptions) -> StageResult:
    recipe = loaded.recipe
    rl = recipe.rl
    assert rl is not None
    final = layout.rl_output()
    outputs = [("RL model", str(final))]
    if (final / "config.json").is_file():
        return StageResult("rl", "skipped", outputs, notes=[f"already trained: {final} (delete it to train again)"])
    launch = jobs.compiled(loaded, layout.root, openrlhf.LAUNCH)
    if (missing := missing_input(loaded, layout, options)) and not options.dry_run:
        raise missing[1]
    policy = isinstance(rl, PolicyOptimization)
    if policy:
        plan = rollout_plan(rl, recipe.compute)
        nodes, gpus = plan.nodes, plan.gpus
    else:
        nodes, gpus = preference_gpus(rl, recipe.compute)
    if options.launcher == "local" and not options.dry_run and nodes == 1:
        # Before the environment: its GPU build (vLLM, DeepSpeed) is no use to a machine that cannot train. Where
        # nvidia-smi cannot say, the environment's torch is asked below.
        if (present := jobs.machine_gpus()) is not None and present < gpus:
            raise NotRunnableHere(_too_few_gpus(nodes, gpus, present, "this machine has"), _GPU_HINT)
    python = tools.interpreter("rl", gpu=True, dry_run=options.dry_run)
    env = {"OPENRLHF_PYTHON": str(python), "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    work = layout.work_dir("rl")
    if policy:
        if options.dry_run:
            print(f"# rl: the prompts would be read from rl.data and written to {layout.rl_prompts()}")
        else:
            rl_prompts.write(loaded, layout)

    if options.launcher == "slurm":
        return _slurm(loaded, layout, options, python, policy, nodes, gpus, outputs)
    if options.launcher == "ray":
        if not policy:
            raise UserError(f"{rl.algorithm} runs with torchrun, not on Ray", "use --launcher local or --launcher slurm")
        env["RAY_ADDRESS"] = jobs.ray_dashboard(loaded)
    else:
        if nodes > 1:
            raise NotRunnableHere(f"rl runs on {nodes} nodes, which a local launch cannot start", "use --launcher slurm, or --launcher ray on a running cluster")
        env["RAY_ADDRESS"] = ""  # launch.sh then lets OpenRLHF start Ray on this machine
        if not options.dry_run:
            visible = jobs.visible_gpus(python)
            if visible < gpus:
                raise NotRunnableHere(_too_few_gpus(nodes, gpus, visible, "the rl environment's torch sees"), _GPU_HINT)
    job = jobs.Job(f"OpenRLHF {rl.algorithm}", ["bash", str(launch)], env, cwd=work)
    if options.dry_run:
        jobs.show(job)
        return StageResult("rl", "dry-run", outputs)
    with jobs.stage_lock("rl", work / "rl.log") as lock:
        jobs.run_local(job, f"rerun the same command to resume from the last checkpoint in {work / 'checkpoints'}", "rl",
                       work / "rl.log", options.verbose, lock)
    if not (final / "config.json").is_file():  # exit code 0 and no model: nothing to evaluate or publish
        raise UserError(f"OpenRLHF ended without an error but saved no model in {final}",
                        f"see {work / 'rl.log'}; rerun the same command to resume from the last checkpoint in {work / 'checkpoints'}")
    return StageResult("rl", "done", outputs)


_GPU_HINT = "run on a GPU machine, submit with --launcher slurm, or set rl.gpus_per_node / compute.gpus_per_node"


def _too_few_gpus(nodes: int, gpus: int, present: int, who: str) -> str:
    # The rl environment is always its GPU build: OpenRLHF needs vLLM, DeepSpeed and FlashAttention to train.
    return f"the RL stage needs {gpus} GPUs ({nodes} node(s) x {gpus // nodes}); {who} {present}"


def _slurm(
    loaded: LoadedRecipe, layout: Layout, options: RunOptions, python: Path, policy: bool, nodes: int, gpus: int,
    outputs: list[tuple[str, str]],
) -> StageResult:
    recipe = loaded.recipe
    work = layout.work_dir("rl")
    launch = shlex.quote(str(layout.root / openrlhf.LAUNCH))
    ray = shlex.quote(str(python.parent / "ray"))
    per_node = gpus // nodes
    body = [
        f"export OPENRLHF_PYTHON={shlex.quote(str(python))}",
        f"export PATH={shlex.quote(str(python.parent))}:\"$PATH\"",
        f"cd {shlex.quote(str(work))}",
    ]
    if policy:
        # A Ray cluster over the job's nodes (head on the first), then the job submitted to it.
        body += [
            f'{jobs.srun(recipe)} --nodes=1 --ntasks=1 -w "$MASTER_ADDR" {ray} start --head --port=6379 '
            f"--num-gpus={per_node} --block &",
            f'until {ray} status --address="$MASTER_ADDR:6379" >/dev/null 2>&1; do sleep 5; done',
        ]
        if nodes > 1:
            body.append(
                f'{jobs.srun(recipe)} --nodes={nodes - 1} --ntasks={nodes - 1} --exclude="$MASTER_ADDR" '
                f'{ray} start --address="$MASTER_ADDR:6379" --num-gpus={per_node} --block &'
            )
        body.append(f'RAY_ADDRESS="http://$MASTER_ADDR:8265" bash {launch}')
    else:
        body.append(f"{jobs.srun(recipe)} bash {launch}")
    script_text = jobs.slurm_script(recipe, "rl", nodes, per_node, layout.stage_dir("rl"), body)
    return jobs.submit_stage("rl", layout.stage_dir("rl") / "rl.sbatch", script_text, work, outputs, options.dry_run)
