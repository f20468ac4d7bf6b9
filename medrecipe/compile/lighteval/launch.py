"""eval/launch.sh and eval/stage_data.sh: the exact lighteval command, and the benchmark files it reads."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from ... import __version__
from ...recipe import LoadedRecipe
from ...recipe.derive import eval_gpus
from ..layout import Layout, recipe_sha256
from .benchmark_files import DataPlan
from .evaluated_model import default_model, generation_parameters, max_model_length, samples
from .names import TOOL, task_name


def launch_script(loaded: LoadedRecipe, layout: Layout, plans: list[DataPlan]) -> str:
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    eval_dir = layout.stage_dir("eval")
    model = default_model(loaded, layout)
    model_expression = _shell_path(model, eval_dir) if isinstance(model, Path) else shlex.quote(model)
    lines = [
        "#!/usr/bin/env bash",
        f"# {TOOL} evaluation ({ev.backend} backend) compiled by medrecipe {__version__} from recipe {recipe.name!r}",
        f"# (recipe sha256 {recipe_sha256(recipe)[:16]}). Edit the recipe, not this file.",
        "# Run it in the eval environment (`medrecipe env setup eval" + (" --gpu" if ev.backend == "vllm" else "")
        + "`), or through `medrecipe run RECIPE --stage eval`.",
        "# EVAL_MODEL overrides the evaluated model (a folder or a Hub id), EVAL_OUTPUT the folder lighteval writes to.",
        "set -euo pipefail",
        'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        f'model="${{EVAL_MODEL:-}}"; [ -n "$model" ] || model={model_expression}',
        f'output="${{EVAL_OUTPUT:-$here/{layout.keys["eval"]}}}"',
        "",
    ]
    if any(plan.links for plan in plans):
        lines += ['bash "$here/stage_data.sh"  # the benchmark files tasks.py reads from eval/data/', ""]
    sample = ev.backend == "accelerate" and samples(loaded)
    lines += [
        "# lighteval files its answer cache and results under the model's name: a local model is linked under a",
        "# relative name in $output/models (see prepare_model.py).",
    ]
    if sample:
        lines += [
            "# lighteval's accelerate backend passes temperature and top_p to generate() but never do_sample, which",
            "# transformers reads from the model's generation_config.json (greedy for most checkpoints): with --sample",
            "# the model is a linked copy whose generation config enables sampling.",
        ]
    lines += ["# It also says whether the tokenizer adds special tokens: not when the chat template writes them (one BOS)."
              if ev.mode == "generative" else "# Loglikelihood: plain-text prompts, so the tokenizer adds its special tokens."]
    lines += [
        'if [ -d "$model" ]; then model="$(cd "$model" && pwd)"; fi',
        'mkdir -p "$output"',
        'cd "$output"',
        f'model="$(python "$here/prepare_model.py" "$model" models{" --sample" if sample else ""})"',
    ]
    if ev.mode == "generative":
        lines.append('special_tokens="$(python "$here/prepare_model.py" --special-tokens "$model")"')
    lines.append("")
    engines, gpus = eval_gpus(ev, recipe.compute)
    if ev.backend == "vllm" and engines > 1:
        lines += [
            f"# {engines} vLLM engines of {ev.tensor_parallel_size} GPU(s) share the items (data_parallel_size): lighteval runs",
            "# each as a Ray task holding its GPUs, on a Ray of its own on this node (RAY_ADDRESS=local)",
            "# (lighteval 0.13 models/vllm/vllm_model.py, _generate).",
        ]
    if ev.backend == "vllm" and gpus > 1:
        lines += ["# vLLM on several GPUs spawns its workers, as lighteval's vLLM guide asks (use-vllm-as-backend.mdx).",
                  "export VLLM_WORKER_MULTIPROC_METHOD=spawn", ""]
    lines += [
        f"lighteval {ev.backend} \\",
        f'  "{_model_args(loaded)}" \\',
        f'  "{",".join(f"{task_name(ref.name)}|0" for ref in ev.benchmarks)}" \\',
        '  --custom-tasks "$here/tasks.py" \\',
        "  --output-dir . \\",
        "  --save-details",
    ]
    return "\n".join(lines) + "\n"


def stage_data_script(loaded: LoadedRecipe, plans: list[DataPlan]) -> str:
    """eval/stage_data.sh: links the files of benchmarks read as files (local copies, Hub repositories without a
    loadable configuration) into eval/data/<name>/, named by split, where tasks.py reads them. launch.sh runs it
    first; `medrecipe inspect` runs it too."""
    ev = loaded.recipe.eval
    assert ev is not None
    lines = [
        "#!/usr/bin/env bash",
        f"# The benchmark files of recipe {loaded.recipe.name!r}, compiled by medrecipe {__version__}. Run by launch.sh.",
        "set -euo pipefail",
        'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        "",
    ]
    if any(plan.links and not ref.path for ref, plan in zip(ev.benchmarks, plans)):
        lines += [
            "# The local path of a file of a Hub dataset repository (downloaded once into the Hugging Face cache).",
            "hub_file() {",
            "  python -c 'import sys; from huggingface_hub import hf_hub_download; "
            'print(hf_hub_download(sys.argv[1], sys.argv[2], repo_type="dataset", revision=sys.argv[3]))\' "$1" "$2" "$3"',
            "}",
            "",
        ]
    for ref, plan in zip(ev.benchmarks, plans):
        if not plan.links:
            continue
        folder = f'"$here"/data/{shlex.quote(ref.name)}'
        why = ("its Hub repository has no loadable configuration: link the files it needs"
               if not ref.path else "a local copy: link its files")
        lines += [f"# {ref.name}: {why}, named by split.", f"rm -rf {folder}", f"mkdir -p {folder}"]
        for source, name in plan.links:
            lines += [f"file={source}", f'ln -s "$file" {folder}/{shlex.quote(name)}']
        lines.append("")
    return "\n".join(lines)


def _shell_path(path: Path, eval_dir: Path) -> str:
    """A path inside the build as `"$here"/...` (the build folder can move); any other as written; shell-quoted."""
    try:
        path.relative_to(eval_dir.parent)
    except ValueError:
        return shlex.quote(str(path))
    return '"$here"/' + shlex.quote(os.path.relpath(path, eval_dir))


def _model_args(loaded: LoadedRecipe) -> str:
    """lighteval's model arguments: `key=value,...` with `generation_parameters={key:value,...}` last."""
    ev = loaded.recipe.eval
    assert ev is not None
    if ev.mode == "generative":
        args = ["model_name=$model", "add_special_tokens=$special_tokens", f"dtype={ev.dtype}"]
    else:
        # Each option is scored right after the prompt as written, in plain text: lighteval would otherwise wrap it in
        # any chat template the tokenizer has (models/utils.py, uses_chat_template) and score "\n A" after the
        # assistant's header, a place and form no model answers in, and that base models without a template never see.
        args = ["model_name=$model", "add_special_tokens=true", "override_chat_template=false", f"dtype={ev.dtype}"]
    if ev.backend == "vllm":
        args += [f"max_model_length={max_model_length(loaded)}", f"tensor_parallel_size={ev.tensor_parallel_size}",
                 f"data_parallel_size={eval_gpus(ev, loaded.recipe.compute)[0]}", f"seed={loaded.recipe.seed}"]
    else:
        args += [f"max_length={max_model_length(loaded)}", f"batch_size={ev.batch_size}"]
    args.append("cache_dir=cache")  # lighteval's answer cache, inside the content-keyed folder (the working directory)
    if ev.mode == "generative":
        parameters = generation_parameters(loaded)
        if ev.backend == "accelerate":
            # The transformers backend would truncate every prompt to max_new_tokens tokens (it takes that as the
            # tokenizer's max_length); the task's generation_size (tasks.py) bounds the answer instead.
            del parameters["max_new_tokens"]
        args.append("generation_parameters={" + ",".join(f"{key}:{json.dumps(value)}" for key, value in parameters.items()) + "}")
    return ",".join(args)
