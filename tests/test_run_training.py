"""Launching SFT and RL: the exact commands of a dry run, Slurm batch scripts, and the errors that name their fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.errors import UserError
from medrecipe.recipe import load_recipe
from medrecipe.run.stages import RunOptions, run_stage

RECIPE = """
name: launch
base_model: Qwen/Qwen3-8B
sft:
  datasets: [{path: org/medical-chat}]
  sequence_len: 4096
  batch: {global_size: 64}
  learning_rate: 1.0e-5
rl:
  algorithm: dapo
  init_from: sft
  data: {hub: org/prompts, fields: {prompt: question, answer: answer}}
  rollout_batch_size: 64
  mini_batch_size: 16
  samples_per_prompt: 8
  learning_rate: 1.0e-6
compute:
  gpus_per_node: 8
  nodes: 2
  slurm: {partition: gpu, account: med, time: "12:00:00", sbatch_args: {constraint: h100}}
"""


def prepared(write, *overrides):
    path = write("r.yaml", RECIPE)
    loaded = load_recipe(path, overrides)
    out = (path.parent / "build").resolve()
    compile_recipe(loaded, out)
    return loaded, Layout(out, loaded.recipe)


@pytest.fixture
def sft_env(tool_python):
    return tool_python("sft")


def test_sft_slurm_dry_run_prints_the_batch_script(write, sft_env, capsys):
    loaded, layout = prepared(write)
    result = run_stage(loaded, layout, "sft", RunOptions(launcher="slurm", dry_run=True))
    script = capsys.readouterr().out
    assert result.status == "dry-run"
    for line in ("#SBATCH --nodes=2", "#SBATCH --gpus-per-node=8", "#SBATCH --partition=gpu", "#SBATCH --account=med",
                 "#SBATCH --time=12:00:00", "#SBATCH --constraint=h100", "#SBATCH --ntasks-per-node=1"):
        assert line in script
    # one torchrun per node: 2 nodes x 8 processes = the 16 GPUs the batch of 64 was derived for (micro 1 x 4 x 16)
    assert "torch.distributed.run --nnodes 2 --nproc-per-node 8 --node-rank $SLURM_NODEID" in script
    assert f"-m axolotl.cli.train {layout.root / 'sft' / 'axolotl.yaml'}" in script
    assert "collect_final_model(" in script and str(layout.sft_output()) in script
    # The job's log is written beside its script: in Axolotl's output folder it would be moved into the model and published.
    assert f"#SBATCH --output={layout.stage_dir('sft')}/slurm-sft-%j.out" in script
    assert "/sft-gpu-" in script  # GPU nodes run the GPU build of the environment
    assert not (layout.stage_dir("sft") / "sft.sbatch").exists()  # a dry run writes nothing


def test_sft_local_launch_refuses_several_nodes(write, sft_env):
    loaded, layout = prepared(write)
    with pytest.raises(UserError, match="2 nodes") as info:
        run_stage(loaded, layout, "sft", RunOptions(dry_run=True))
    assert "--launcher slurm" in info.value.hint


def test_sft_local_launch_needs_the_gpus_of_the_batch(write, sft_env):
    loaded, layout = prepared(write, "compute.nodes=1")
    with pytest.raises(UserError, match="needs 8 GPUs") as info:
        run_stage(loaded, layout, "sft", RunOptions())
    assert "medrecipe env setup sft --gpu" in info.value.hint


def test_sft_local_dry_run_is_one_torchrun(write, sft_env, capsys):
    loaded, layout = prepared(write, "compute.nodes=1")
    assert run_stage(loaded, layout, "sft", RunOptions(dry_run=True)).status == "dry-run"
    command = capsys.readouterr().out
    assert f"-m torch.distributed.run --nnodes 1 --nproc-per-node 8 -m axolotl.cli.train {layout.root / 'sft' / 'axolotl.yaml'}" in command
    assert "AXOLOTL_DO_NOT_TRACK=1" in command


def test_missing_environment_names_the_command_that_builds_it(write, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "empty-cache"))
    loaded, layout = prepared(write, "compute.nodes=1")
    with pytest.raises(UserError, match="the sft environment") as info:
        run_stage(loaded, layout, "sft", RunOptions())
    assert info.value.hint == "run: medrecipe env setup sft"
    layout.sft_output().mkdir(parents=True)
    (layout.sft_output() / "config.json").write_text("{}")
    from medrecipe.run import jobs

    monkeypatch.setattr(jobs, "machine_gpus", lambda: 8)  # a GPU machine: what it lacks is the environment
    with pytest.raises(UserError) as info:
        run_stage(loaded, layout, "rl", RunOptions())
    assert info.value.hint == "run: medrecipe env setup rl --gpu"


def test_rl_on_a_machine_without_the_gpus_says_so_before_asking_for_its_environment(write, monkeypatch, tmp_path):
    """The environment's GPU build (vLLM, DeepSpeed) takes long to make and is no use where the stage cannot train:
    a local launch counts the machine's GPUs first (review: a CPU machine was told to build it)."""
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "empty-cache"))
    nvidia_smi(tmp_path, monkeypatch, "GPU 0: NVIDIA L4 (UUID: GPU-0abc)\nGPU 1: NVIDIA L4 (UUID: GPU-1abc)\n")
    loaded, layout = prepared(write, "compute.nodes=1")
    layout.sft_output().mkdir(parents=True)
    (layout.sft_output() / "config.json").write_text("{}")
    with pytest.raises(UserError, match=r"needs 8 GPUs \(1 node\(s\) x 8\); this machine has 2") as info:
        run_stage(loaded, layout, "rl", RunOptions())
    assert "--launcher slurm" in info.value.hint
    # Where nvidia-smi cannot say (a container given CUDA without it, a ROCm machine), the environment is asked.
    nvidia_smi(tmp_path, monkeypatch, None)
    with pytest.raises(UserError) as info:
        run_stage(loaded, layout, "rl", RunOptions())
    assert info.value.hint == "run: medrecipe env setup rl --gpu"
    # A dry run shows the command, with the interpreter where `medrecipe env setup rl --gpu` will put it.
    assert run_stage(loaded, layout, "rl", RunOptions(dry_run=True)).status == "dry-run"


def test_rl_needs_the_sft_model_first(write):
    loaded, layout = prepared(write)
    with pytest.raises(UserError, match="SFT model") as info:
        run_stage(loaded, layout, "rl", RunOptions())
    assert "--stage sft" in info.value.hint


def test_rl_that_ends_without_a_model_is_a_failure(write, monkeypatch):
    """OpenRLHF exiting 0 without saving the model is no finished stage (review: it was "done", and `run --stage all`
    went on to evaluate and publish a model that is not there)."""
    import sys

    from medrecipe.envs import tools
    from medrecipe.run import jobs, rl_prompts

    monkeypatch.setattr(tools, "require", lambda name, gpu=False: Path(sys.executable))
    monkeypatch.setattr(rl_prompts, "write", lambda loaded, layout: None)  # the prompts are on the Hub, out of reach
    monkeypatch.setattr(jobs, "machine_gpus", lambda: 64)
    monkeypatch.setattr(jobs, "visible_gpus", lambda python: 64)
    loaded, layout = prepared(write, "compute.nodes=1")
    layout.sft_output().mkdir(parents=True)
    (layout.sft_output() / "config.json").write_text("{}")
    (layout.root / "rl" / "launch.sh").write_text("echo 'nothing to train'\nexit 0\n")
    with pytest.raises(UserError, match="saved no model") as info:
        run_stage(loaded, layout, "rl", RunOptions())
    assert "rl.log" in info.value.hint


def test_rl_slurm_dry_run_starts_a_ray_cluster_and_submits(write, capsys):
    loaded, layout = prepared(write)
    run_stage(loaded, layout, "rl", RunOptions(launcher="slurm", dry_run=True))
    script = capsys.readouterr().out
    assert "ray start --head --port=6379 --num-gpus=8 --block" in script
    assert '--nodes=1 --ntasks=1 --exclude="$MASTER_ADDR"' in script and 'ray start --address="$MASTER_ADDR:6379"' in script
    assert f'RAY_ADDRESS="http://$MASTER_ADDR:8265" bash {layout.root / "rl" / "launch.sh"}' in script


def test_rl_ray_launcher_needs_a_cluster_address(write, monkeypatch, capsys):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    loaded, layout = prepared(write)
    with pytest.raises(UserError, match="running Ray cluster"):
        run_stage(loaded, layout, "rl", RunOptions(launcher="ray", dry_run=True))
    loaded, layout = prepared(write, "compute.ray.address=http://head:8265")
    run_stage(loaded, layout, "rl", RunOptions(launcher="ray", dry_run=True))
    assert f"RAY_ADDRESS=http://head:8265 bash {layout.root / 'rl' / 'launch.sh'}" in capsys.readouterr().out


def nvidia_smi(folder: Path, monkeypatch, listing: str | None, code: int = 0) -> None:
    """PATH holding only an nvidia-smi that prints `listing` (the format of `nvidia-smi -L`), or none at all."""
    smi = folder / "nvidia-smi"
    smi.unlink(missing_ok=True)
    if listing is not None:
        (folder / "listing.txt").write_text(listing)
        smi.write_text(f"#!/bin/sh\n/bin/cat {folder / 'listing.txt'}\nexit {code}\n")
        smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


@pytest.mark.parametrize("visible, expected", [(None, 4), ("1,3", 2), ("0,-1,2", 1), ("", 0)])
def test_machine_gpus_are_those_the_driver_lists_as_cuda_visible_devices_narrows_them(tmp_path, monkeypatch, visible, expected):
    from medrecipe.run import jobs

    nvidia_smi(tmp_path, monkeypatch, "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i}abc)\n" for i in range(4)))
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert jobs.machine_gpus() == expected


def test_machine_gpus_are_unknown_where_nvidia_smi_cannot_say(tmp_path, monkeypatch):
    from medrecipe.run import jobs

    nvidia_smi(tmp_path, monkeypatch, None)
    assert jobs.machine_gpus() is None
    nvidia_smi(tmp_path, monkeypatch, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", code=9)
    assert jobs.machine_gpus() is None


def test_the_collected_sft_model_stops_generating_at_the_turn_end_it_was_trained_to_write(tmp_path):
    """Found by review: Axolotl writes the llama3 template's <|eot_id|> (128009) as the EOS into config.json alone; the
    generation_config.json beside it kept Meta-Llama-3-8B's 128001, so transformers' generate() never stopped at the
    end of a turn. The collected model's generation config lists both, as Meta-Llama-3-8B-Instruct's own does."""
    from transformers import GenerationConfig

    from medrecipe.run.sft import collect_final_model

    output = tmp_path / "work"
    output.mkdir()
    (output / "config.json").write_text(json.dumps({"model_type": "llama", "eos_token_id": 128009, "bos_token_id": 128000}))
    (output / "generation_config.json").write_text(json.dumps({"bos_token_id": 128000, "eos_token_id": 128001, "do_sample": True,
                                                                "temperature": 0.6}))
    (output / "model.safetensors").write_bytes(b"weights")
    collect_final_model(str(output), str(tmp_path / "model"))
    generation = GenerationConfig.from_pretrained(tmp_path / "model")
    assert generation.eos_token_id == [128001, 128009] and generation.temperature == 0.6
    (tmp_path / "work2").mkdir()  # already listed (Qwen3: [151645, 151643]): left as it was
    (tmp_path / "work2" / "config.json").write_text(json.dumps({"eos_token_id": 151645}))
    (tmp_path / "work2" / "generation_config.json").write_text(json.dumps({"eos_token_id": [151645, 151643]}))
    collect_final_model(str(tmp_path / "work2"), str(tmp_path / "model2"))
    assert GenerationConfig.from_pretrained(tmp_path / "model2").eos_token_id == [151645, 151643]


PUBMEDQA_RL = r"""
name: pubmedqa-rl
base_model: Qwen/Qwen3-8B
rl:
  algorithm: dapo
  init_from: Qwen/Qwen3-8B
  data:
    path: prompts.jsonl
    fields: {prompt: question, context: context, answer: final_decision}
    instruction: "Please reason step-by-step, and put your final answer within \\boxed{}."
  rollout_batch_size: 64
  mini_batch_size: 16
  samples_per_prompt: 8
  learning_rate: 1.0e-6
compute: {gpus_per_node: 8}
"""

# OpenRLHF's prepare_datasets (openrlhf/trainer/ppo_trainer.py:30-41): blending_datasets, then PromptDataset, whose
# preprocess_data applies the tokenizer's chat template to the prompt column (datasets/prompts_dataset.py:26-45).
OPENRLHF_PROMPTS = r"""
import json, sys
from types import SimpleNamespace
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast
from openrlhf.datasets import PromptDataset
from openrlhf.datasets.utils import blending_datasets

tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                           "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
args = SimpleNamespace(data=SimpleNamespace(input_key="prompt", label_key="label", apply_chat_template=True))
strategy = SimpleNamespace(args=args, is_rank_0=lambda: True, print=lambda *a: None)
data = blending_datasets(sys.argv[1], None, strategy)
dataset = PromptDataset(data, tokenizer, strategy)
print(json.dumps([list(dataset[i][1:3]) for i in range(len(dataset))]))
"""


def test_a_yes_no_maybe_rl_prompt_names_the_answer_space_as_evaluation_does(write, tool_python, tmp_path):
    """Found by review: a PubMedQA-layout RL prompt gave the passage and the question only, while evaluation asks
    "Answer with yes, no, or maybe." and grading takes nothing else (\\boxed{Probably} scores 0)."""
    import json
    import subprocess

    from medrecipe import grading
    from medrecipe.catalog.benchmark_items import render_prompt, to_item
    from medrecipe.recipe.model.eval import EvalPrompt
    from medrecipe.run import rl_prompts

    row = {"pubid": 1, "question": "Does X cause Y?", "context": {"contexts": ["Ctx one.", "Ctx two."], "labels": ["A", "B"]},
           "long_answer": "It does.", "final_decision": "yes"}
    write("prompts.jsonl", json.dumps(row) + "\n")
    loaded = load_recipe(write("r.yaml", PUBMEDQA_RL))
    target = rl_prompts.write(loaded, Layout(tmp_path / "build", loaded.recipe), log=lambda line: None)
    said = subprocess.run([str(tool_python("rl")), "-c", OPENRLHF_PROMPTS, str(target)], capture_output=True, text=True, check=True)
    [(prompt, label)] = json.loads(said.stdout.splitlines()[-1])  # blending_datasets prints the dataset before it
    instruction = "Please reason step-by-step, and put your final answer within \\boxed{}."
    assert prompt == ("<|im_start|>user\nCtx one.\nCtx two.\n\nDoes X cause Y?\n\nAnswer with yes, no, or maybe.\n\n"
                      f"{instruction}<|im_end|>\n<|im_start|>assistant\n")
    # the words evaluation shows a PubMedQA item, and what the reward grades against
    evaluated = render_prompt(to_item(row, "pubmedqa"), EvalPrompt().template, instruction)
    assert "\n\nAnswer with yes, no, or maybe.\n\n" + instruction in evaluated
    assert json.loads(label) == {"answer": "yes", "options": {}}
    assert grading.grade("<think>\nIt does.\n</think>\n\n\\boxed{Yes}", "yes")["correct"]


def test_a_second_run_of_a_stage_is_refused_while_its_tool_runs(tmp_path):
    """Two local runs of one stage trained into one folder. The stage's lock is held by the tool as well: a medrecipe
    killed with -9 leaves its trainer running, and a rerun is refused until that ends."""
    import signal
    import time

    from medrecipe.run import jobs

    log, started = tmp_path / "work" / "sft.log", tmp_path / "trainer.pid"
    first = ("from pathlib import Path\nfrom medrecipe.run import jobs\n"
             f"with jobs.stage_lock('sft', Path({str(log)!r})) as lock:\n"
             f"    jobs.run_local(jobs.Job('trainer', ['bash', '-c', 'echo $$ > {started}; exec sleep 60']), 'hint', 'sft', "
             f"Path({str(log)!r}), lock=lock)\n")
    medrecipe = subprocess.Popen([sys.executable, "-c", first], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not started.exists() or not started.read_text().strip():
        assert medrecipe.poll() is None, medrecipe.stderr.read()
        time.sleep(0.05)
    medrecipe.kill()
    medrecipe.wait()
    with pytest.raises(UserError, match=f"another run of the sft stage is running in {tmp_path / 'work'}"):
        with jobs.stage_lock("sft", log):
            pass
    trainer = int(started.read_text())
    os.kill(trainer, signal.SIGKILL)
    for _ in range(200):
        try:
            with jobs.stage_lock("sft", log):
                break
        except UserError:
            time.sleep(0.05)
    else:
        raise AssertionError("the lock outlived the trainer")
