"""Run in the sft environment: each architecture built by transformers' own modeling code (on the meta device, so
nothing is allocated), its parameters counted as DeepSpeed counts them, and DeepSpeed's own model-state estimators
called on those counts. Reads a JSON list of {name, config, gpus} on stdin, prints a JSON list of results last."""

import json
import sys

import torch
from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
from transformers import AutoConfig, AutoModelForCausalLM


def counts(model) -> tuple[int, int]:
    """DeepSpeed's model_to_params (stage3.py), with tied weights told apart by identity: on the meta device every
    tensor's data_ptr() is 0, which is what DeepSpeed uses."""
    total = sum({id(p): p.numel() for p in model.parameters()}.values())
    largest = max(sum(p.numel() for p in module.parameters(recurse=False)) for module in model.modules())
    return total, largest


results = []
for case in json.load(sys.stdin):
    config = AutoConfig.for_model(**case["config"])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total, largest = counts(model)
    gpus = case["gpus"]
    _, zero2 = estimate_zero2_model_states_mem_needs(total, num_gpus_per_node=gpus, cpu_offload=False)
    _, zero3, _ = estimate_zero3_model_states_mem_needs(total, largest, num_gpus_per_node=gpus, cpu_offload=False)
    _, zero3_offload, _ = estimate_zero3_model_states_mem_needs(total, largest, num_gpus_per_node=gpus, cpu_offload=True,
                                                                cpu_offload_params=True)
    results.append({"name": case["name"], "parameters": total, "largest": largest, "zero2": zero2, "zero3": zero3,
                    "zero3_offload": zero3_offload})
print(json.dumps(results))  # the last line: DeepSpeed prints its own notices to stdout before it
