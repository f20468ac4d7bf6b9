"""The recipe: one typed description of a whole medical-LLM release, one module per section.

Every field carries a description (it becomes the JSON Schema, the editor hints and `--help` text) and a
default where a sensible one exists. Every model forbids unknown keys, so a misspelt key is an error with
a "did you mean" hint rather than a silently ignored setting. Rules that need more than one field live in
`recipe/rules.py`, so that they can name the exact field that is wrong. Code outside imports the models
from here.

The section modules write their annotations as objects, without `from __future__ import annotations`: pydantic
compiles and evaluates every string annotation when it builds a model, ~8 ms of `medrecipe validate`'s start-up
over ~330 fields. A validator returns `Self`.
"""

from .compute import GPU, Compute
from .data import DatasetLocation, Fields
from .eval import RECIPE_MODELS, CustomBenchmark, Eval, Published
from .hub import Reproduces
from .rl import PolicyOptimization, PreferenceStage
from .root import Recipe
from .sft import SFT, SFTDataset
from .steps import (
    DecontaminateFuzzy,
    DecontaminateNgram,
    DomainFilter,
    EmbeddingClassifier,
    Generate,
    JudgeFilter,
    LLMCall,
    LLMClassifier,
    MaxWordOccurrences,
    NearDedup,
)

__all__ = [
    "Compute", "CustomBenchmark", "DatasetLocation", "DecontaminateFuzzy", "DecontaminateNgram", "DomainFilter", "EmbeddingClassifier", "Eval",
    "Fields", "Generate", "GPU", "JudgeFilter", "LLMCall", "LLMClassifier", "MaxWordOccurrences", "NearDedup", "PolicyOptimization",
    "PreferenceStage", "Published", "RECIPE_MODELS", "Recipe", "Reproduces", "SFT", "SFTDataset",
]
