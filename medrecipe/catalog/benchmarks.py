"""The evaluation benchmark registry: where each benchmark lives, how its rows are read, and how it is scored.

A recipe names benchmarks by key; `eval.benchmarks[].path` points one at a local copy for offline runs.
`builtin` names lighteval's own task for the same benchmark. In lighteval 0.13 those are generative exact
match on other copies of the data (see compile/lighteval.py), neither the boxed-reasoning nor the
log-likelihood setting of a recipe, so every benchmark compiles to a medrecipe task; `plan` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    where: dict = field(default_factory=dict)  # keep rows whose column equals the value (MMLU-Pro's health category)
    data_files: tuple[str, ...] = ()  # files of the Hub repository to read, for repositories without a loadable configuration
    revision: str | None = None  # the revision those files are on, when not main
    builtin: str | None = None  # lighteval's own task for this benchmark (not the recipe's setting; see the module doc)
    note: str = ""

    @property
    def kind(self) -> str:
        return {"multiple_choice": "choice", "pubmedqa": "yes_no_maybe", "healthbench": "rubric"}[self.reader]


_BIOMED_R1_EVAL = "zou-lab/BioMed-R1-Eval"

_ALL = [
    Benchmark("medmcqa", "MedMCQA", "MedMC", "openlifescienceai/medmcqa", "validation", "multiple_choice",
              spec={"gold": "cop", "zero_based": True}, builtin="med_mcqa",
              note="validation split (the test split has no answers)"),
    Benchmark("medqa", "MedQA (USMLE, 4 options)", "MedQA", "GBaker/MedQA-USMLE-4-options", "test", "multiple_choice",
              spec={"gold": "answer_idx"}, note="4 options; lighteval's med_qa is the 5-option set"),
    Benchmark("medqa_5", "MedQA (USMLE, 5 options)", "MedQA-5", "bigbio/med_qa", "test", "multiple_choice",
              spec={"gold": "answer_idx"}, builtin="med_qa", data_files=("med_qa_en_source/test/0000.parquet",),
              revision="refs/convert/parquet",
              note="bigbio/med_qa is a script repository: the med_qa_en_source file of its parquet conversion is read"),
    Benchmark("pubmedqa", "PubMedQA", "PubMed", "qiaojin/PubMedQA", "train", "pubmedqa", subset="pqa_labeled",
              builtin="pubmedqa", note="the 1,000 expert-labelled questions"),
    Benchmark("mmlu_pro_medical", "MMLU-Pro (health)", "MMLU-P", "TIGER-Lab/MMLU-Pro", "test", "multiple_choice",
              spec={"gold": "answer"}, where={"category": "health"}, note="the medical (health) questions"),
    Benchmark("healthbench", "HealthBench", "HealthBench", "openai/healthbench", "test", "healthbench",
              data_files=("2025-05-07-06-14-12_oss_eval.jsonl",),
              note="rubric-graded by the recipe's judge model; the repository's files differ in columns, so only the "
                   "main evaluation file is read"),
    Benchmark("lancet", "Lancet QA", "Lancet", _BIOMED_R1_EVAL, "test", "multiple_choice", subset="Lancet",
              spec={"gold": "answer_idx"}),
    Benchmark("nejm", "NEJM QA", "NEJM", _BIOMED_R1_EVAL, "test", "multiple_choice", subset="NEJM", spec={"gold": "answer_idx"}),
    Benchmark("medbullets_op4", "MedBullets (4 options)", "MedB-4", _BIOMED_R1_EVAL, "test", "multiple_choice",
              subset="medbullets_op4", spec={"gold": "answer_idx"}),
    Benchmark("medbullets_op5", "MedBullets (5 options)", "MedB-5", _BIOMED_R1_EVAL, "test", "multiple_choice",
              subset="medbullets_op5", spec={"gold": "answer_idx"}),
    Benchmark("medxpertqa", "MedXpertQA (text)", "MedX", _BIOMED_R1_EVAL, "test", "multiple_choice", subset="MedXpertQA",
              spec={"gold": "answer_idx"}),
] + [
    Benchmark(f"mmlu_{subject}", f"MMLU {subject.replace('_', ' ').title()}", subject.replace("_", " ").title(),
              "cais/mmlu", "test", "multiple_choice", subset=subject, spec={"options": "choices", "gold": "answer"},
              builtin=f"mmlu:{subject}")
    for subject in MMLU_MEDICAL
]

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in _ALL}


def get(name: str) -> Benchmark:
    return BENCHMARKS[name]
