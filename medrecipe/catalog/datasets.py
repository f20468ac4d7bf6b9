"""The layouts of the Hub datasets that the shipped recipes and the benchmark registry read, each with its evidence.

This module is one table, hence its length. For every dataset: the configurations (what `load_dataset(repo, name)`
reads) or the files medrecipe reads directly, their splits and columns, how the values of a column are written
where its type does not say (`formats`), the keys and role values of conversation columns, and where each fact
was read. None of it was read from the Hub itself (this project's machines cannot reach it); the evidence is
stored public copies: the dataset's card and its `dataset_info`, Hub tree and commit pages, loading scripts, and
public code that reads the dataset by column name. `tests/fixtures/hub/` holds rows in these layouts, and
`catalog.checks` holds a recipe's field mappings against them, so that a wrong column is an error at the
recipe's line instead of a crash, or silent misreading, hours into a run. `medrecipe preflight` checks the same
against the Hub itself.

Column types are written as the Hub's `dataset_info` writes them (string, int64, float64, bool, list<string>,
struct) plus `messages` for a list of chat turns. Formats:
  lettered_lines   a text block of `A. text` lines, perhaps under a heading ("Answer Choices:")
  option_text      the text of the right option (perhaps with an explanation after it), not its letter
  letter           an option letter ("C")
  index            a 0-based option index
  json             JSON text (decode it before use)
  stem             a question without its choices (they are in another column)
  answer_tags      assistant turns wrap the final answer in <answer>...</answer>
  think_inline     assistant turns hold the reasoning inline in <think>...</think>
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Turns:
    """How a conversation column writes its turns."""

    role_key: str = "role"
    content_key: str = "content"
    roles: tuple[str, ...] = ("user", "assistant")


@dataclass(frozen=True)
class Table:
    """The rows of one configuration, or of one file read directly."""

    splits: tuple[str, ...]
    columns: dict[str, str]
    formats: dict[str, str] = field(default_factory=dict)  # column -> format (see the module doc)
    turns: dict[str, Turns] = field(default_factory=dict)  # conversation column -> how its turns are written


@dataclass(frozen=True)
class HubDataset:
    repo: str
    configs: dict[str, Table] = field(default_factory=dict)  # configuration name -> its rows
    files: dict[str, Table] = field(default_factory=dict)  # file path -> its rows, for files read directly (`data_files`)
    files_revision: str | None = None  # the revision those files are on, when not main
    default_config: str | None = None  # what `load_dataset(repo)` reads without a configuration name
    gated: bool | None = None  # None: not established
    evidence: tuple[str, ...] = ()  # "what: where"
    notes: tuple[str, ...] = ()  # what a reader must know beyond the columns

    def table(self, subset: str | None, data_file: str | None) -> Table | None:
        if data_file is not None:
            return self.files.get(data_file)
        return self.configs.get(subset or self.default_config or "")


def _train(columns: dict[str, str], **kwargs) -> Table:
    return Table(("train",), columns, **kwargs)


SHAREGPT = Turns("from", "value", ("human", "gpt"))
_MCQ_STEM = {"question": "string", "answer": "string", "options": "string"}
_MEDREASON_COLUMNS = {"dataset_name": "string", "id_in_dataset": "int64", "question": "string", "answer": "string",
                      "reasoning": "string", "options": "string"}
_MEDREASON_FORMATS = {"question": "stem", "options": "lettered_lines", "answer": "option_text"}
_MEDQA_BIGBIO = {"meta_info": "string", "question": "string", "answer_idx": "string", "answer": "string",
                 "options": "list<struct<key: string, value: string>>"}
_PUBMEDQA_CONTEXT = "struct<contexts: list<string>, labels: list<string>, meshes: list<string>>"
_HEALTHBENCH = {"prompt": "messages", "rubrics": "list<struct<criterion: string, points: int64, tags: list<string>>>",
                "example_tags": "list<string>", "ideal_completions_data": "struct", "prompt_id": "string", "canary": "string"}
_BIOMED_R1 = {"question": "string", "options": "string", "answer_idx": "string", "answer": "string", "is_reasoning": "bool"}
_MMLU = {"question": "string", "subject": "string", "choices": "list<string>", "answer": "int64"}

_ALL = [
    # ---------------------------------------------------------------------------------- SFT sources
    HubDataset(
        "GeneralReasoning/GeneralThought-430K",
        configs={"default": _train({
            "question_id": "int64", "question_url": "string", "question": "string", "reference_answer": "string",
            "prev_messages": "messages", "model_name": "string", "model_answer": "string", "model_reasoning": "string",
            "task": "string", "question_license": "string", "question_source": "string", "community_answer_score": "float64",
            "community_question_score": "int64", "verifier_score": "float64"})},
        default_config="default",
        evidence=(
            "columns: pixeltable's tests, which assert the column set of its copy natolambert/GeneralThought-430K-filtered",
            "types: the dataset_info of same-schema copies, https://huggingface.co/datasets/vsahil/general_reasoning_non_math_5000/blob/main/README.md",
            "reasoning in its own column, without tags: allenai/open-instruct scripts/data/convert_general_thought_to_tulu_thinker.py",
        ),
        notes=("`prev_messages` holds earlier turns of multi-turn questions (null on most rows); a `prompt` mapping reads the last question only",
               "one row per answering model: questions repeat"),
    ),
    HubDataset(
        "FreedomIntelligence/Medical-R1-Distill-Data",
        configs={"en": _train({"question": "string", "reasoning (reasoning_content)": "string", "response (content)": "string"})},
        default_config="en",
        evidence=(
            "configuration en -> medical_r1_distill_sft.json (one JSON array): https://www.huggingface.co/datasets/FreedomIntelligence/Medical-R1-Distill-Data/blame/main/README.md",
            "column names with their parenthesised API field names, read verbatim by public code that loads this dataset "
            "(e.g. `example.pop(\"reasoning (reasoning_content)\")`, `row[\"response (content)\"]`)",
        ),
        notes=("the columns are `reasoning (reasoning_content)` and `response (content)`, not `reasoning` / `response`",),
    ),
    HubDataset(
        "FreedomIntelligence/Medical-R1-Distill-Data-Chinese",
        configs={"zh": _train({"question": "string", "reasoning (reasoning_content)": "string", "response (content)": "string"})},
        default_config="zh",
        evidence=(
            "configuration zh -> medical_r1_distill_sft_Chinese.json: https://huggingface.co/datasets/FreedomIntelligence/Medical-R1-Distill-Data-Chinese/commit/52c8236fd676ae46c6aebd1f4adca523a768702f",
            "the same three columns as the English set, read by public code with Chinese rows",
        ),
    ),
    HubDataset(
        "UCSC-VLAA/m23k-tokenized",
        configs={"default": _train({
            "prompt": "string", "reasoning": "string", "distilled_answer_string": "string", "answer_letter": "string",
            "answer_string": "string", "source": "string", "text": "string"},
            formats={"answer_letter": "letter"})},
        default_config="default",
        evidence=(
            "columns: UCSC-VLAA/m1 src/tokenize_data/apply_chat_template.py (builds `text` from prompt, reasoning and "
            "distilled_answer_string, then pushes to the Hub) and public readers of prompt/reasoning/distilled_answer_string/answer_letter",
        ),
        notes=("`prompt` already holds the lettered options", "`text` is a whole chat-templated conversation: not a response"),
    ),
    HubDataset(
        "PrimeIntellect/SYNTHETIC-1-SFT-Data",
        configs={"default": _train({"response_id": "string", "problem_id": "string", "task_type": "string", "score": "float64",
                                    "messages": "messages"}, formats={"messages": "think_inline"}, turns={"messages": Turns()})},
        default_config="default",
        evidence=("dataset_info and configs (data/train-*, 894,086 rows): the card, mirrored at https://aifasthub.com/datasets/PrimeIntellect/SYNTHETIC-1-SFT-Data/blob/main/README.md?code=true",),
        notes=("mixes math, code and science tasks (`task_type`)",),
    ),
    HubDataset(
        "a-m-team/AM-DeepSeek-R1-Distilled-1.4M",
        configs={name: _train({"messages": "messages"}, formats={"messages": "answer_tags"}, turns={"messages": Turns()})
                 for name in ("am_0.5M", "am_0.9M", "am_0.9M_sample_1k")},
        files={name: _train({"messages": "messages"}, formats={"messages": "answer_tags"}, turns={"messages": Turns()})
               for name in ("am_0.5M.jsonl.zst", "am_0.9M.jsonl.zst", "am_0.9M_sample_1k.jsonl")},
        evidence=(
            "configurations and their files, the `messages` features with a per-turn `info` struct, and the "
            "<think>...</think> <answer>...</answer> format: the card, https://huggingface.co/datasets/a-m-team/AM-DeepSeek-R1-Distilled-1.4M "
            "(blame mirrored at https://onlymecando.site/datasets/a-m-team/AM-DeepSeek-R1-Distilled-1.4M/blame/main/README.md)",
            "the card's own load_dataset example passes explicit Features for `info`, and types `test_case` unlike its YAML",
        ),
        notes=("`info` holds different keys on user and assistant turns: read the .jsonl.zst file as JSON lines (data_files) rather "
               "than a configuration datasets must type", "cc-by-nc-4.0, research use"),
    ),
    HubDataset(
        "open-thoughts/OpenThoughts2-1M",
        configs={"default": _train({"conversations": "messages", "question": "string", "source": "string"},
                                   formats={"conversations": "think_inline"},
                                   turns={"conversations": Turns("from", "value", ("user", "assistant"))})},
        default_config="default",
        evidence=(
            "the repository: https://huggingface.co/datasets/open-thoughts/OpenThoughts2-1M/tree/main",
            "`conversations` of from/value turns whose roles are user and assistant (not human/gpt), two per row, with "
            "<think> inline: public filters on `convos[0][\"from\"] == \"user\"` and `assert len(conversations) == 2`",
        ),
        notes=("a few assistant turns hold no single </think>",),
    ),
    HubDataset(
        "nvidia/Llama-Nemotron-Post-Training-Dataset",
        configs={
            "SFT": Table(("code", "math", "science", "chat", "safety"), {
                "input": "messages", "output": "string", "category": "string", "license": "string", "reasoning": "string",
                "generator": "string", "used_in_training": "string", "version": "string", "system_prompt": "string"},
                formats={"output": "think_inline"}, turns={"input": Turns()}),
            "RL": Table(("instruction_following",), {
                "input": "messages", "args": "struct", "category": "string", "license": "string", "reasoning": "string",
                "used_in_training": "string", "version": "string", "system_prompt": "string"}, turns={"input": Turns()}),
        },
        default_config="SFT",
        evidence=(
            "configurations SFT (splits code, math, science, chat, safety -> SFT/<split>/*.jsonl) and RL: the card, mirrored at "
            "https://worker-huggingface.ww6410.workers.dev/datasets/nvidia/Llama-Nemotron-Post-Training-Dataset/resolve/main/README.md",
            "`input` a list of role/content turns ending on a user turn, `output` one string with <think> inline when "
            "`reasoning` is on, `system_prompt` 'detailed thinking on|off': NVIDIA/NeMo-Curator tutorials/llama-nemotron-data-curation/README.md",
        ),
        notes=("`system_prompt` is only Nemotron's reasoning switch ('detailed thinking on'), not a system prompt to train on",
               "renamed from nvidia/Llama-Nemotron-Post-Training-Dataset-v1"),
    ),
    HubDataset(
        "cognitivecomputations/dolphin-r1",
        configs={name: _train({"messages": "messages", "reasoning": "string", "answer": "string"}, turns={"messages": Turns()})
                 for name in ("nonreasoning", "reasoning-deepseek", "reasoning-flash")},
        evidence=(
            "configurations -> dolphin-r1-<name>.jsonl: https://www.huggingface.co/datasets/cognitivecomputations/dolphin-r1/blob/main/README.md",
            "`messages` is the prompt side, `answer` the reply: marin-community/marin experiments/posttrain/instruction_datasets.py",
        ),
        notes=("further columns (scores) are not established", "also published as QuixiAI/dolphin-r1"),
    ),
    HubDataset(
        "ServiceNow-AI/R1-Distill-SFT",
        configs={
            "v1": _train({"id": "string", "reannotated_assistant_content": "string", "source": "string",
                          "reannotated_messages": "messages", "messages": "messages", "source_dataset": "string",
                          "verified": "null", "quality_metrics": "null"},
                         formats={"reannotated_messages": "think_inline"},
                         turns={"reannotated_messages": Turns(), "messages": Turns()}),
            "v0": _train({"id": "string", "reannotated_assistant_content": "string", "problem": "string", "source": "string",
                          "solution": "string", "verified": "null", "quality_metrics": "null"}),
        },
        evidence=("configurations v0/v1 and their features: https://huggingface.co/datasets/ServiceNow-AI/R1-Distill-SFT/blob/16e851e107d928b9069dcce428a2d3d7154e5353/README.md",),
        notes=("`messages` holds the source dataset's original answers; the R1 traces are `reannotated_messages`",),
    ),
    HubDataset(
        "FreedomIntelligence/ApolloCorpus",
        files={name: _train({"turns": "list<string>"}) for name in (
            "train/pretrain/medicalBook_en_qa.json", "train/sft/medicalPatient_en.json", "train/pretrain/medicalGuideline_en_qa.json")},
        evidence=(
            "the files: https://huggingface.co/datasets/FreedomIntelligence/ApolloCorpus/tree/9ef349d2a2a6f33fb8a1a8da39f7ddbe68349b37/train/pretrain",
            "rows are lists of strings [q1, a1, q2, a2, ...]: the card's data format, reproduced in "
            "https://huggingface.co/FreedomIntelligence/Apollo-7B/raw/2dcb08932602cd05d08d05585f83fa8c59be8fcd/README.md",
            "no configuration covers these files (the viewer cannot read lists of lists): "
            "https://huggingface.co/datasets/FreedomIntelligence/ApolloCorpus/commit/9ef349d2a2a6f33fb8a1a8da39f7ddbe68349b37",
        ),
        notes=("each file is one JSON array of bare lists: medrecipe's reader exposes a list row as the column `turns` "
               "(datasets' JSON loader would call it `text`)", "medicalBook_en_qa.json is 916 MB and is read whole"),
    ),
    HubDataset(
        "lavita/ChatDoctor-HealthCareMagic-100k",
        configs={"default": _train({"instruction": "string", "input": "string", "output": "string"})},
        default_config="default",
        evidence=(
            "one parquet file: https://huggingface.co/datasets/lavita/ChatDoctor-HealthCareMagic-100k/tree/880de714562caa13fe81a3d31b5ca751f311da7e",
            "instruction/input/output read by public code that loads it",
        ),
        notes=("`instruction` is the same ChatDoctor preamble on every row", "about 112k rows, not the 215,647 the II-Medical card counts"),
    ),
    HubDataset(
        "a-m-team/AM-Qwen3-Distilled",
        files={f"{name}.jsonl": _train({"system": "string", "conversations": "messages"},
                                       formats={"conversations": "answer_tags"},
                                       turns={"conversations": Turns("from", "value", ("human", "assistant"))})
               for name in ("code", "if", "math", "multiturn", "other", "science")},
        evidence=(
            "the files: a public preparation script listing code/if/math/multiturn/other/science.jsonl and reading "
            "system/conversations/from/value",
            "format, shared with AM-Thinking-v1-Distilled: `from` is 'human' or 'assistant', values hold <think> and "
            "<answer>, `system` 'is not used in training': https://huggingface.co/datasets/a-m-team/AM-Thinking-v1-Distilled",
        ),
        notes=("turns also carry an `info` mapping (reasoning and answer again)",),
    ),
    HubDataset(
        "Open-Orca/OpenOrca",
        files={name: _train({"id": "string", "system_prompt": "string", "question": "string", "response": "string"})
               for name in ("1M-GPT4-Augmented.parquet", "3_5M-GPT3_5-Augmented.parquet")},
        configs={"default": _train({"id": "string", "system_prompt": "string", "question": "string", "response": "string"})},
        default_config="default",
        evidence=(
            "the files: https://huggingface.co/datasets/Open-Orca/OpenOrca/tree/3e85783ecb0db83df8b30dbbd94107857b5ac830",
            "columns: the card's Data Fields; copies' dataset_info give all four as string",
        ),
        notes=("without data_files the default configuration mixes the GPT-4 and GPT-3.5 files",),
    ),
    HubDataset(
        "TsinghuaC3I/UltraMedical",
        configs={"default": _train({"id": "string", "type": "string", "conversations": "messages", "answer": "string", "score": "string"},
                                   formats={"answer": "letter"}, turns={"conversations": SHAREGPT})},
        default_config="default",
        evidence=(
            "dataset_info (409,593 train rows; `score` a string): https://huggingface.co/datasets/TsinghuaC3I/UltraMedical/blob/main/README.md",
            "human/gpt turns with the options inline: github.com/TsinghuaC3I/UltraMedical README, Data Format",
        ),
        notes=("`score` is a sentence rating the question, not a number", "`answer` is a letter on multiple-choice rows"),
    ),
    # ---------------------------------------------------------------------------------- synthetic prompts
    HubDataset(
        "openlifescienceai/medmcqa",
        configs={"default": Table(("train", "validation", "test"), {
            "id": "string", "question": "string", "opa": "string", "opb": "string", "opc": "string", "opd": "string",
            "cop": "int64", "choice_type": "string", "exp": "string", "subject_name": "string", "topic_name": "string"},
            formats={"cop": "index"})},
        default_config="default",
        evidence=(
            "parquet files per split: https://huggingface.co/datasets/openlifescienceai/medmcqa/tree/main/data",
            "cop = ClassLabel a-d, 0-based (`int(data[\"cop\"]) - 1` of the raw files), -1 on test: "
            "github.com/huggingface/datasets datasets/medmcqa/medmcqa.py",
        ),
        notes=("the test split has no answers (cop -1)", "lighteval's `cop - 1` is for its own mirror, not this one"),
    ),
    HubDataset(
        "bigbio/med_qa",
        files={
            "med_qa_en_4options_source/train/0000.parquet": _train(_MEDQA_BIGBIO | {"metamap_phrases": "list<string>"}, formats={"answer_idx": "letter"}),
            "med_qa_en_4options_source/test/0000.parquet": _train(_MEDQA_BIGBIO | {"metamap_phrases": "list<string>"}, formats={"answer_idx": "letter"}),
            "med_qa_en_source/test/0000.parquet": _train(_MEDQA_BIGBIO, formats={"answer_idx": "letter"}),
        },
        files_revision="refs/convert/parquet",
        evidence=(
            "a script repository (med_qa.py on main); its parquet conversion has one folder per configuration: "
            "https://huggingface.co/datasets/bigbio/med_qa/tree/refs%2Fconvert%2Fparquet/med_qa_en_4options_source/test",
            "source-schema columns, options as [{key, value}]: github.com/bigscience-workshop/biomedical bigbio/hub/hub_repos/med_qa/med_qa.py",
        ),
        notes=("datasets >= 4 runs no loading scripts: read the parquet files of refs/convert/parquet as data_files",
               "med_qa_en_source has 5 options (A-E); med_qa_en_4options_source is the 4-option set"),
    ),
    HubDataset(
        "qiaojin/PubMedQA",
        configs={
            "pqa_labeled": _train({"pubid": "int32", "question": "string", "context": _PUBMEDQA_CONTEXT, "reasoning_required_pred": "string",
                                   "reasoning_free_pred": "string", "long_answer": "string", "final_decision": "string"}),
            "pqa_unlabeled": _train({"pubid": "int32", "question": "string", "context": _PUBMEDQA_CONTEXT, "long_answer": "string"}),
            "pqa_artificial": _train({"pubid": "int32", "question": "string", "context": _PUBMEDQA_CONTEXT, "long_answer": "string",
                                      "final_decision": "string"}),
        },
        evidence=("configurations and dataset_info: https://huggingface.co/datasets/qiaojin/PubMedQA/blob/aaa821698f53773d769720616fca9981e37262a9/README.md",
                  "pqa_unlabeled has no final_decision: https://huggingface.co/datasets/qiaojin/PubMedQA/commit/549420195d3e611714ae86542ee6a9821affd7ca"),
        notes=("`context` is a mapping of lists: its passages are context.contexts",),
    ),
    HubDataset(
        "UCSC-VLAA/MedReason",
        configs={"default": _train(_MEDREASON_COLUMNS, formats=_MEDREASON_FORMATS)},
        default_config="default",
        evidence=(
            "columns: github.com/UCSC-VLAA/MedReason src/data_generation/data/utils.py (failed_data_filtering writes them)",
            "`options` = 'Answer Choices:\\nA. ...' and the answer as option text (medmcqa rows: '<text>. Explanation: ...', "
            "pubmedqa rows: 'The final decision is: ...'): the *_option_parser and *_answer_parser functions of "
            "src/data_generation/data/dataset.py in the same repository",
        ),
        notes=("no letter column: a letter comes from matching the answer to an option", "open-ended rows have empty options"),
    ),
    # ---------------------------------------------------------------------------------- RL prompts, preference pairs
    HubDataset(
        "Intelligent-Internet/II-Medical-RL",
        configs={"default": _train(_MEDREASON_COLUMNS | {"problem": "string", "label": "string"},
                                   formats=_MEDREASON_FORMATS | {"label": "letter"})},
        default_config="default",
        evidence=(
            "dataset_info (8 string/int columns, 15,910 train rows): the card, https://huggingface.co/datasets/Intelligent-Internet/II-Medical-RL "
            "(blame mirrored at https://fast.hugflare.com/datasets/Intelligent-Internet/II-Medical-RL/blame/main/README.md)",
            "a decontaminated refinement of UCSC-VLAA/MedReason (same first six columns and formats): the same card",
            "the gold letter is `label`, options an 'Answer Choices:' block: a public curation mapper (`map_rl_row`) verified on raw rows",
        ),
        notes=("`question` has no choices (they are in `options`); `answer` is option text, not the gold letter",),
    ),
    HubDataset(
        "TsinghuaC3I/UltraMedical-Preference",
        configs={"default": Table(("train", "validation", "test"), {
            "prompt_id": "string", "label_type": "string", "prompt": "string", "chosen": "messages", "rejected": "messages",
            "metadata": "struct"}, turns={"chosen": Turns(), "rejected": Turns()})},
        default_config="default",
        evidence=(
            "files data/train.json, data/dev.json, data/test.json (dev loads as the validation split): "
            "https://huggingface.co/datasets/TsinghuaC3I/UltraMedical-Preference/blob/main/data/test.json",
            "`prompt` a string, `chosen`/`rejected` [user, assistant] conversations: ppluton/medical-triage-llm-poc "
            "src/triage_poc/ultramedical_audit.py (REQUIRED_KEYS, role checks)",
            "the authors' DPO prompt is chosen[:-1]: github.com/TsinghuaC3I/UltraMedical src/finetune/alignment/data.py",
        ),
        notes=("`chosen` and `rejected` already hold the user turn: give OpenRLHF no prompt_key",),
    ),
    # ---------------------------------------------------------------------------------- benchmarks
    HubDataset(
        "GBaker/MedQA-USMLE-4-options",
        configs={"default": Table(("train", "test"), {"question": "string", "answer": "string",
                                                      "options": "struct<A: string, B: string, C: string, D: string>",
                                                      "meta_info": "string", "answer_idx": "string", "metamap_phrases": "list<string>"},
                                  formats={"answer_idx": "letter"})},
        default_config="default",
        evidence=("phrases_no_exclude_{train,test}.jsonl: https://huggingface.co/datasets/GBaker/MedQA-USMLE-4-options/tree/main",
                  "features of the identical mirror: https://huggingface.co/datasets/augtoma/medqa_usmle/blob/main/README.md"),
    ),
    HubDataset(
        "TIGER-Lab/MMLU-Pro",
        configs={"default": Table(("test", "validation"), {
            "question_id": "int64", "question": "string", "options": "list<string>", "answer": "string", "answer_index": "int64",
            "cot_content": "string", "category": "string", "src": "string"}, formats={"answer": "letter", "answer_index": "index"})},
        default_config="default",
        evidence=("dataset_info: https://huggingface.co/datasets/TIGER-Lab/MMLU-Pro/blob/3b1f6c483752b4121dca8df008aca72d16ac1cb9/README.md",),
        notes=("up to 10 options, not padded", "category is lower case ('health')"),
    ),
    HubDataset(
        "openai/healthbench",
        files={name: _train(_HEALTHBENCH, turns={"prompt": Turns(roles=("user", "assistant"))}) for name in (
            "2025-05-07-06-14-12_oss_eval.jsonl", "hard_2025-05-08-21-00-10.jsonl", "consensus_2025-05-09-20-00-46.jsonl")},
        evidence=(
            "the files, no configuration: https://huggingface.co/datasets/openai/healthbench/tree/main",
            "columns and grading (one judge call per rubric item on the whole conversation plus the response; clipped mean): "
            "github.com/openai/simple-evals healthbench_eval.py",
        ),
        notes=("about 42% of conversations have several turns; the last is always the user's",),
    ),
    HubDataset(
        "zou-lab/BioMed-R1-Eval",
        configs={name: Table(("test",), _BIOMED_R1, formats={"options": "json", "answer_idx": "letter"}) for name in (
            "medqa", "medmcqa", "pubmedqa", "mmlu_health_biology", "GPQA_Medical_test", "Lancet", "NEJM", "medbullets_op4",
            "medbullets_op5", "MedXpertQA", "hle_biomed")},
        evidence=("configurations (case-sensitive, test only) and columns, `options` JSON text decoded with json.loads: "
                  "three public evaluation scripts that load each configuration by name",),
        notes=("no card with dataset_info was found; further columns are not established",),
    ),
    HubDataset(
        "cais/mmlu",
        configs={subject: Table(("test", "validation", "dev"), _MMLU, formats={"answer": "index"}) for subject in (
            "anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics", "professional_medicine")},
        evidence=("per-subject configurations and features (answer a ClassLabel A-D stored as 0-3): "
                  "https://huggingface.co/datasets/hails/mmlu_no_train/commit/9f267fabfcdc8774700d0328978a9d2339156567 (a copy of cais/mmlu)",),
    ),
]

DATASETS: dict[str, HubDataset] = {dataset.repo: dataset for dataset in _ALL}


def get(repo: str) -> HubDataset | None:
    return DATASETS.get(repo)
