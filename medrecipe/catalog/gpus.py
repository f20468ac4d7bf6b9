"""What medrecipe knows about GPUs: memory, peak dense BF16 throughput, and the utilisation to assume.

`medrecipe plan` turns FLOPs into GPU-hours with these. The peaks are NVIDIA's datasheet figures for dense BF16
Tensor Core math (the datasheets print twice as much "with sparsity", which training does not use):
  H100 SXM5 80 GB  989 TFLOPS  https://www.nvidia.com/en-us/data-center/h100/ (H100 SXM column)
  H200 SXM 141 GB  989 TFLOPS  https://www.nvidia.com/en-us/data-center/h200/ (H200 SXM column)
  A100 SXM 80/40 GB 312 TFLOPS https://www.nvidia.com/en-us/data-center/a100/
  L40S 48 GB       362 TFLOPS  https://www.nvidia.com/en-us/data-center/l40s/
The training utilisations (model FLOPs utilisation, MFU) are what large public runs report, not what a given
cluster reaches: Llama 3 trained at 38-43 % BF16 MFU on H100 (The Llama 3 Herd of Models, arXiv 2407.21783,
Table 4); Megatron-LM reached 52 % of A100 peak (Narayanan et al., SC'21, arXiv 2104.04473). A fine-tuning run
on one node with ZeRO-3 seldom does better, so the defaults are round figures at or below those (the L40S, with no
public figure, takes the H100's). Generation (rollouts, evaluation) is bound by memory bandwidth, not arithmetic;
its default is an assumption of medrecipe's, stated as such wherever it is used, for the user to replace with what
their cluster measures (`compute.gpu`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GPUFacts:
    memory_gib: float  # the memory a training process can address, as the product name states it
    peak_tflops: float  # dense BF16
    training_utilization: float
    generation_utilization: float = 0.15  # medrecipe's assumption: decoding is memory-bound


GPUS: dict[str, GPUFacts] = {
    "H100-80GB": GPUFacts(80, 989, 0.40),
    "H200-141GB": GPUFacts(141, 989, 0.40),
    "A100-80GB": GPUFacts(80, 312, 0.50),
    "A100-40GB": GPUFacts(40, 312, 0.50),
    "L40S-48GB": GPUFacts(48, 362, 0.40),
}
