"""What the eval stage runs on: the vLLM engines launch.sh gives lighteval (as lighteval's own model-config parser
reads them), the GPUs the Slurm and Ray launchers ask for, and the GPUs and wall-clock hours `plan` counts, agree.

Found by review: `plan` counted the node's 8 GPUs for II-Medical's evaluation (26.3 GPU-hours, 3.3 h), while
launch.sh ran one vLLM engine on one GPU and Slurm was asked for one (26 h of generation in a 24 h job).

lighteval 0.13's vLLM backend (models/vllm/vllm_model.py): `data_parallel_size` (:161) engines share the items;
with more than one, no engine is made in lighteval's own process (:274-286) and each is a Ray task holding
`tensor_parallel_size` GPUs (:437) that is given every data_parallel_size-th item (:444, more_itertools.distribute)
and whose answers are put back in the items' order (:451-455); Ray comes with lighteval[vllm] (its METADATA:
`Requires-Dist: ray; extra == "vllm"`).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from medrecipe.compile import estimate, lighteval
from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.errors import UserError
from medrecipe.recipe import RecipeError, load_recipe
from medrecipe.run.stages import RunOptions, run_stage

from .conftest import RECIPES

PARSE = r"""
import json, sys
from lighteval.models.vllm.vllm_model import VLLMModelConfig
config = VLLMModelConfig.from_args(sys.argv[1])  # as `lighteval vllm MODEL_ARGS` reads them (main_vllm.py)
print(json.dumps([config.tensor_parallel_size, config.data_parallel_size]))
"""


def lighteval_reads(eval_env: Path, launch: str) -> tuple[int, int]:
    """(tensor_parallel_size, data_parallel_size) as lighteval's own parser reads launch.sh's model arguments."""
    argv = shlex.split(launch[launch.index("\nlighteval "):].replace("\\\n", " "))
    model_args = argv[2].replace("$model", "/models/m").replace("$special_tokens", "false")
    said = subprocess.run([str(eval_env), "-I", "-c", PARSE, model_args], capture_output=True, text=True, check=True)
    return tuple(json.loads(said.stdout.splitlines()[-1]))


def dry_run(loaded, layout, launcher: str, model: Path, capsys) -> str:
    run_stage(loaded, layout, "eval", RunOptions(launcher=launcher, dry_run=True, model=str(model)))
    return capsys.readouterr().out


@pytest.mark.parametrize("overrides, engines, gpus", [
    ((), 1, 1),  # the recipe: one engine, the pre-existing path (several are not yet run on GPUs by any test)
    (("eval.data_parallel_size=8",), 8, 8),  # the node's 8 GPUs, one engine each
    (("eval.tensor_parallel_size=2", "eval.data_parallel_size=4"), 4, 8),
    (("compute.gpus_per_node=4", "eval.data_parallel_size=4"), 4, 4),
    (("eval.tensor_parallel_size=4",), 1, 4),
])
def test_what_runs_is_what_plan_counts(tool_python, tmp_path, monkeypatch, capsys, overrides, engines, gpus):
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "empty-cache"))  # a dry run needs no environment
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    loaded = load_recipe(RECIPES / "ii-medical-8b-1706.yaml", overrides)
    build = tmp_path / "build"
    compile_recipe(loaded, build, ["eval"])
    layout = Layout(build.resolve(), loaded.recipe)
    launch = (build / lighteval.LAUNCH).read_text()
    tensor_parallel = loaded.recipe.eval.tensor_parallel_size

    # what lighteval is given
    assert lighteval_reads(tool_python("eval"), launch) == (tensor_parallel, engines)
    assert ("export VLLM_WORKER_MULTIPROC_METHOD=spawn" in launch) == (gpus > 1)
    # what plan counts
    evaluation = next(cost for cost in estimate.estimate(loaded, layout) if cost.stage == "eval")
    assert evaluation.gpus == gpus and evaluation.wall_hours == pytest.approx(evaluation.gpu_hours / gpus)
    assert f"{engines} vLLM engine(s) of {tensor_parallel} GPU(s) share the items (eval.data_parallel_size)" in evaluation.basis
    # what Slurm is asked for: one node with those GPUs, lighteval's engines on a Ray of their own there
    sbatch = dry_run(loaded, layout, "slurm", model, capsys)
    assert f"#SBATCH --gpus-per-node={gpus}\n" in sbatch and "#SBATCH --nodes=1\n" in sbatch
    assert ("export RAY_ADDRESS=local\n" in sbatch) == (engines > 1)
    # what Ray is asked for: one engine, in the entrypoint; several are refused (found by review: lighteval's engines
    # would be the cluster's Ray tasks, given neither the job's folder, where the model's relative path points, nor
    # its environment)
    if engines > 1:
        with pytest.raises(UserError, match="--launcher ray runs one vLLM engine"):
            dry_run(loaded, layout, "ray", model, capsys)
    else:
        ray = dry_run(loaded, layout, "ray", model, capsys)
        assert int(re.search(r"--entrypoint-num-gpus=(\d+)", ray).group(1)) == gpus and "RAY_ADDRESS=local" not in ray
    # and what plan says of the GPUs left idle
    warned = any("eval.data_parallel_size: " in warning for warning in lighteval.build(loaded, layout).warnings)
    assert warned == (gpus < loaded.recipe.compute.gpus_per_node)


def test_the_engines_must_fit_the_stages_one_node():
    path = RECIPES / "ii-medical-8b-1706.yaml"
    with pytest.raises(RecipeError, match=r"eval\.data_parallel_size.*4 vLLM engine\(s\) x tensor_parallel_size 4 = 16 GPUs, "
                                          r"but compute.gpus_per_node is 8"):
        load_recipe(path, ["eval.tensor_parallel_size=4", "eval.data_parallel_size=4"])
    with pytest.raises(RecipeError, match=r"eval\.data_parallel_size.*accelerate backend runs one process"):
        load_recipe(path, ["eval.backend=accelerate", "eval.data_parallel_size=2"])
    assert load_recipe(path, ["eval.tensor_parallel_size=4", "eval.data_parallel_size=2"]).recipe.eval.data_parallel_size == 2


def test_the_engines_spread_the_evaluation_without_changing_its_key(tmp_path):
    """A finished evaluation is found again on fewer or more engines: the key holds what is evaluated, not how widely
    (compute is not in it either; the keys of recipes that leave the field out stay as they were)."""
    path = RECIPES / "ii-medical-8b-1706.yaml"
    keys = {Layout(tmp_path, load_recipe(path, overrides).recipe).keys["eval"]
            for overrides in ([], ["eval.data_parallel_size=2"], ["eval.data_parallel_size=1"])}
    assert keys == {"1c716870857d"}  # the key before the field
