"""The evaluation benchmark registry: where each benchmark lives, how its rows are read, and how it is scored.

A recipe names benchmarks by key; `eval.benchmarks[].path` points one at a local copy for offline runs.
`builtin` names lighteval's own task for the same benchmark. In lighteval 0.13 those are generative exact
match on other copies of the data (see compile/lighteval.py), neither the boxed-reasoning nor the
log-likelihood setting of a recipe, so every benchmark compiles to a medrecipe task; `plan` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..recipe.model import CustomBenchmark, Recipe

MMLU_MEDICAL = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics", "professional_medicine")


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    short: str  # column header in results tables
    hub: str
    split: str
    reader: str  # multiple_choice | pubmedqa | healthbench (see benchmark_items.to_item)
    subset: str | None = None
    spec: dict = field(default_factory=dict)  # column names where the reader's defaults do not find them
    where: dict = field(default_factory=dict)  # keep rows whose column equals the value, or one of a tuple of values
    data_files: tuple[str, ...] = ()  # files of the Hub repository to read, for repositories without a loadable configuration
    revision: str | None = None  # the revision those files are on, when not main
    builtin: str | None = None  # lighteval's own task for this benchmark (not the recipe's setting; see the module doc)
    note: str = ""
    items: int | None = None  # rows evaluated (after `where`), from the dataset card's dataset_info; `plan` sizes evaluation by it

    @property
    def kind(self) -> str:
        return {"multiple_choice": "choice", "pubmedqa": "yes_no_maybe", "healthbench": "rubric"}[self.reader]


_BIOMED_R1_EVAL = "zou-lab/BioMed-R1-Eval"

# `items`, the rows a benchmark evaluates, from dataset_info's num_examples where the card has it:
#   medmcqa validation 4,183: https://huggingface.co/datasets/openlifescienceai/medmcqa (README dataset_info, commit c8b1a7c)
#   MedQA US 4-option test 1,273: the GBaker viewer ("test 1.27k rows") and cards that copy the set with dataset_info
#     (lion-ai/eskulap_validation_datasets commit 94e3fc7: "num_examples: 1273"); bigbio's source test file is the same set
#   PubMedQA pqa_labeled 1,000: https://huggingface.co/datasets/qiaojin/PubMedQA/blob/main/README.md ("num_examples: 1000")
#   MMLU-Pro health 818: correct + wrong in public per-category results (leafspark/MMLU-Pro-Results, health_summary.json:
#     545 + 273); biology 717 the same way. The card's "medical related questions from MMLU-Pro" are both, 1,535: the
#     HuatuoGPT-o1 evaluation data counts 'MMLU-Pro_Medical_test': 1535 (a public script that reads it), II's own copies
#     (II-Vietnam/EvalMedical_MMLU-Pro_Medical_Test, tuenguyen/Medical-Eval-MMLU-Pro_Medical_test) hold 1,535 rows, and
#     BioMed-R1-Eval names the set mmlu_health_biology. A 2025-10 revision moved some health questions to other
#     categories (TIGER-Lab/MMLU-Pro discussion 36), so 1,535 is an upper bound on the current main
#   HealthBench 5,000 conversations: arXiv 2505.08775 ("HealthBench consists of 5,000 multi-turn conversations")
#   BioMed-R1-Eval MedXpertQA 2,450 (commit 4cd0f64), medbullets_op4 308 (commit fbbbc9c): "num_examples" in the README;
#     Lancet, NEJM and medbullets_op5 not yet read: unknown, and `plan` says so
#   MMLU test: cais/mmlu's subsets as copied with dataset_info by hails/mmlu_no_train (anatomy 135, clinical_knowledge 265,
#     professional_medicine 272) and tabled by BioMistral/BioInstructQA (college_biology 144, college_medicine 173,
#     medical_genetics 100)
_MMLU_ITEMS = {"anatomy": 135, "clinical_knowledge": 265, "college_biology": 144, "college_medicine": 173,
               "medical_genetics": 100, "professional_medicine": 272}

_ALL = [
    Benchmark("medmcqa", "MedMCQA", "MedMC", "openlifescienceai/medmcqa", "validation", "multiple_choice",
              spec={"gold": "cop", "zero_based": True}, builtin="med_mcqa", items=4183,
              note="validation split (the test split has no answers)"),
    Benchmark("medqa", "MedQA (USMLE, 4 options)", "MedQA", "GBaker/MedQA-USMLE-4-options", "test", "multiple_choice",
              spec={"gold": "answer_idx"}, items=1273, note="4 options; lighteval's med_qa is the 5-option set"),
    Benchmark("medqa_5", "MedQA (USMLE, 5 options)", "MedQA-5", "bigbio/med_qa", "test", "multiple_choice",
              spec={"gold": "answer_idx"}, builtin="med_qa", data_files=("med_qa_en_source/test/0000.parquet",),
              revision="refs/convert/parquet", items=1273,
              note="bigbio/med_qa is a script repository: the med_qa_en_source file of its parquet conversion is read"),
    Benchmark("pubmedqa", "PubMedQA", "PubMed", "qiaojin/PubMedQA", "train", "pubmedqa", subset="pqa_labeled",
              builtin="pubmedqa", items=1000, note="the 1,000 expert-labelled questions"),
    Benchmark("mmlu_pro_medical", "MMLU-Pro (health, biology)", "MMLU-P", "TIGER-Lab/MMLU-Pro", "test", "multiple_choice",
              spec={"gold": "answer"}, where={"category": ("health", "biology")}, items=1535,
              note="the medical questions as HuatuoGPT-o1's and II's evaluation sets take them: health and biology"),
    Benchmark("healthbench", "HealthBench", "HealthBench", "openai/healthbench", "test", "healthbench",
              data_files=("2025-05-07-06-14-12_oss_eval.jsonl",), items=5000,
              note="rubric-graded by the recipe's judge model; the repository's files differ in columns, so only the "
                   "main evaluation file is read"),
    Benchmark("lancet", "Lancet QA", "Lancet", _BIOMED_R1_EVAL, "test", "multiple_choice", subset="Lancet",
              spec={"gold": "answer_idx"}),
    Benchmark("nejm", "NEJM QA", "NEJM", _BIOMED_R1_EVAL, "test", "multiple_choice", subset="NEJM", spec={"gold": "answer_idx"}),
    Benchmark("medbullets_op4", "MedBullets (4 options)", "MedB-4", _BIOMED_R1_EVAL, "test", "multiple_choice",
              subset="medbullets_op4", spec={"gold": "answer_idx"}, items=308),
    Benchmark("medbullets_op5", "MedBullets (5 options)", "MedB-5", _BIOMED_R1_EVAL, "test", "multiple_choice",
              subset="medbullets_op5", spec={"gold": "answer_idx"}),
    Benchmark("medxpertqa", "MedXpertQA (text)", "MedX", _BIOMED_R1_EVAL, "test", "multiple_choice", subset="MedXpertQA",
              spec={"gold": "answer_idx"}, items=2450),
] + [
    Benchmark(f"mmlu_{subject}", f"MMLU {subject.replace('_', ' ').title()}", subject.replace("_", " ").title(),
              "cais/mmlu", "test", "multiple_choice", subset=subject, spec={"options": "choices", "gold": "answer"},
              builtin=f"mmlu:{subject}", items=_MMLU_ITEMS[subject])
    for subject in MMLU_MEDICAL
]

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in _ALL}


def get(name: str) -> Benchmark:
    """A benchmark of the registry."""
    return BENCHMARKS[name]


def of(recipe: Recipe, name: str) -> Benchmark:
    """A benchmark as a recipe names it: one of its own (`eval.custom_benchmarks`), else the registry's."""
    return known(recipe)[name]


def known(recipe: Recipe) -> dict[str, Benchmark]:
    """The registry and the recipe's own benchmarks, by name (a recipe's name cannot shadow the registry's: validation)."""
    own = recipe.eval.custom_benchmarks if recipe.eval else []
    return {**BENCHMARKS, **{custom.name: _from_recipe(custom) for custom in own}}


def _from_recipe(custom: CustomBenchmark) -> Benchmark:
    columns = {key: value for key, value in custom.columns.model_dump().items() if value}
    return Benchmark(custom.name, custom.title or custom.name, custom.title or custom.name, custom.hub or "", custom.split,
                     custom.reader, subset=custom.subset, spec={**columns, "zero_based": custom.zero_based},
                     where=dict(custom.where), data_files=tuple(custom.data_files), revision=custom.revision,
                     note="defined in the recipe")
