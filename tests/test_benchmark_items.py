"""medrecipe.catalog.benchmark_items: every registry benchmark's row format read into an item and rendered as the prompt
the model sees (the same reading the eval tasks and decontamination use), on rows shaped like the real datasets'."""

from __future__ import annotations

import json

import pytest

from medrecipe.catalog import benchmark_items, benchmarks

INSTRUCTION = "Please reason step-by-step, and put your final answer within \\boxed{}."
TEMPLATE = "{question}\n\n{options}\n\n{instruction}"

# One row per registry benchmark, in its dataset's column format (see /work/shared research notes), and the
# (gold, number of options) it must read as.
ROWS = {
    "medmcqa": ({"id": "e9ad821a", "question": "Which vitamin deficiency causes scurvy?", "opa": "Vitamin A", "opb": "Vitamin B12",
                 "opc": "Vitamin C", "opd": "Vitamin D", "cop": 2, "choice_type": "single", "exp": None,
                 "subject_name": "Biochemistry", "topic_name": "Vitamins"}, "C", 4),
    "medqa": ({"question": "A 23-year-old woman presents with fever and a productive cough. Which is the most likely organism?",
               "answer": "Streptococcus pneumoniae", "options": {"A": "Streptococcus pneumoniae", "B": "Mycoplasma pneumoniae",
                                                                 "C": "Klebsiella pneumoniae", "D": "Legionella pneumophila"},
               "meta_info": "step1", "answer_idx": "A", "metamap_phrases": ["fever", "cough"]}, "A", 4),
    "medqa_5": ({"meta_info": "step2&3", "question": "Which drug reverses heparin?", "answer_idx": "E", "answer": "Protamine sulfate",
                 "options": [{"key": "A", "value": "Vitamin K"}, {"key": "B", "value": "Idarucizumab"},
                             {"key": "C", "value": "Andexanet alfa"}, {"key": "D", "value": "Fresh frozen plasma"},
                             {"key": "E", "value": "Protamine sulfate"}]}, "E", 5),
    "pubmedqa": ({"pubid": 21645374, "question": "Do mitochondria play a role in remodelling lace plant leaves?",
                  "context": {"contexts": ["Programmed cell death occurs in lace plant leaves.", "Mitochondrial dynamics were imaged."],
                              "labels": ["BACKGROUND", "RESULTS"], "meshes": ["Mitochondria"]},
                  "long_answer": "Mitochondria appear to play a role.", "final_decision": "yes"}, "yes", 0),
    "mmlu_pro_medical": ({"question_id": 5012, "question": "Which hormone raises blood glucose?",
                          "options": ["Insulin", "Glucagon", "Somatostatin", "Amylin", "Leptin", "Ghrelin", "Oxytocin",
                                      "Prolactin", "Melatonin", "Calcitonin"],
                          "answer": "B", "answer_index": 1, "cot_content": "", "category": "health", "src": "ori_mmlu-medicine"}, "B", 10),
    "healthbench": ({"prompt": [{"role": "user", "content": "I have chest pain spreading to my arm. What should I do?"}],
                     "rubrics": [{"criterion": "Advises calling emergency services.", "points": 10, "tags": ["axis:accuracy"]},
                                 {"criterion": "Suggests waiting.", "points": -8, "tags": ["axis:accuracy"]}],
                     "prompt_id": "1f548d5b-cd00-49a0-b327-283a2e00debd", "example_tags": ["theme:emergency_referrals"],
                     "ideal_completions_data": None, "canary": "c"}, "", 0),
    "lancet": ({"question": "A patient with new atrial fibrillation... Which is the best next step?",
                "options": json.dumps({"A": "Cardioversion", "B": "Rate control and anticoagulation", "C": "Ablation", "D": "Observation"}),
                "answer_idx": "B", "answer": "Rate control and anticoagulation", "is_reasoning": True}, "B", 4),
    "nejm": ({"question": "Which finding is most specific for this diagnosis?",
              "options": json.dumps({"A": "Fever", "B": "Rash", "C": "Koplik spots", "D": "Cough", "E": "Conjunctivitis"}),
              "answer_idx": "C", "answer": "Koplik spots", "is_reasoning": False}, "C", 5),
    "medbullets_op4": ({"question": "A 6-year-old presents with a limp. What is the next step?",
                        "options": json.dumps({"A": "Radiograph", "B": "MRI", "C": "Aspiration", "D": "Reassurance", "E": None}),
                        "answer_idx": "A", "answer": "Radiograph", "is_reasoning": True}, "A", 4),
    "medbullets_op5": ({"question": "A 6-year-old presents with a limp. What is the next step?",
                        "options": json.dumps({"A": "Radiograph", "B": "MRI", "C": "Aspiration", "D": "Reassurance", "E": "CT"}),
                        "answer_idx": "A", "answer": "Radiograph", "is_reasoning": True}, "A", 5),
    "medxpertqa": ({"question": "Which enzyme is deficient?",
                    "options": json.dumps({letter: f"Enzyme {i}" for i, letter in enumerate("ABCDEFGHIJ")}),
                    "answer_idx": "J", "answer": "Enzyme 9", "is_reasoning": True}, "J", 10),
    **{
        f"mmlu_{subject}": ({"question": f"A question about {subject.replace('_', ' ')}?", "subject": subject,
                             "choices": ["first", "second", "third", "fourth"], "answer": 3}, "D", 4)
        for subject in benchmarks.MMLU_MEDICAL
    },
}


def test_every_registry_benchmark_has_a_row_here():
    assert set(ROWS) == set(benchmarks.BENCHMARKS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_registry_rows_read_as_items(name):
    bench = benchmarks.get(name)
    row, gold, option_count = ROWS[name]
    item = benchmark_items.to_item(dict(row), bench.reader, bench.spec, index=7)
    assert item["kind"] == bench.kind
    assert item["gold"] == gold
    assert len(item["options"]) == option_count
    if bench.kind == "choice":
        assert gold in item["options"]
        assert list(item["options"]) == list("ABCDEFGHIJ"[:option_count])  # lettered in order, null options dropped
    prompt = benchmark_items.render_prompt(item, TEMPLATE, INSTRUCTION)
    assert item["question"] in prompt
    if bench.kind != "rubric":
        assert prompt.endswith(INSTRUCTION)
        assert "\n\n\n" not in prompt


def test_multiple_choice_prompt_is_the_template_filled():
    bench = benchmarks.get("medmcqa")
    item = benchmark_items.to_item(ROWS["medmcqa"][0], bench.reader, bench.spec)
    assert item["id"] == "e9ad821a"
    assert benchmark_items.render_prompt(item, TEMPLATE, INSTRUCTION) == (
        "Which vitamin deficiency causes scurvy?\n\nA. Vitamin A\nB. Vitamin B12\nC. Vitamin C\nD. Vitamin D\n\n" + INSTRUCTION
    )


@pytest.mark.parametrize("blank", ["opb", "opd"])
def test_a_blank_option_leaves_the_other_letters_and_the_gold_in_place(blank):
    """MedMCQA's `cop` is 0-based over opa..opd: with one option blank (dropped from the prompt), cop 3 is still D."""
    bench = benchmarks.get("medmcqa")
    row = {**ROWS["medmcqa"][0], blank: "", "cop": 3}
    if blank == "opd":
        with pytest.raises(ValueError, match="no gold answer"):  # the gold itself is blank: the row cannot be asked
            benchmark_items.to_item(row, bench.reader, bench.spec)
        return
    item = benchmark_items.to_item(row, bench.reader, bench.spec)
    assert item["gold"] == "D" and "B" not in item["options"] and item["options"]["D"] == ROWS["medmcqa"][0]["opd"]


def test_pubmedqa_prompt_has_the_abstract_and_the_answer_words():
    item = benchmark_items.to_item(ROWS["pubmedqa"][0], "pubmedqa")
    assert item["id"] == "21645374"
    assert benchmark_items.render_prompt(item, TEMPLATE, INSTRUCTION) == (
        "Context: Programmed cell death occurs in lace plant leaves.\nMitochondrial dynamics were imaged.\n\n"
        "Question: Do mitochondria play a role in remodelling lace plant leaves?\n\nAnswer with yes, no, or maybe.\n\n" + INSTRUCTION
    )


def test_pubmedqa_context_given_as_plain_text():
    row = {"pubid": 1, "question": "Q?", "context": "One abstract.", "final_decision": "Maybe "}
    item = benchmark_items.to_item(row, "pubmedqa")
    assert (item["context"], item["gold"]) == ("One abstract.", "maybe")


def test_healthbench_item_keeps_the_conversation_and_rubric():
    row = dict(ROWS["healthbench"][0])
    row["prompt"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Fever 38.5 in a toddler."},
                     {"role": "assistant", "content": "Is she drinking?"}, {"role": "user", "content": "Yes, she plays."}]
    item = benchmark_items.to_item(row, "healthbench")
    assert item["id"] == "1f548d5b-cd00-49a0-b327-283a2e00debd"
    assert item["question"] == "Yes, she plays."
    assert item["rubrics"] == [{"criterion": "Advises calling emergency services.", "points": 10.0},
                               {"criterion": "Suggests waiting.", "points": -8.0}]
    assert benchmark_items.render_prompt(item, TEMPLATE, INSTRUCTION) == (
        "system: Be brief.\n\nuser: Fever 38.5 in a toddler.\n\nassistant: Is she drinking?\n\nuser: Yes, she plays."
    )
    single = benchmark_items.to_item(ROWS["healthbench"][0], "healthbench")
    assert benchmark_items.render_prompt(single, TEMPLATE, INSTRUCTION) == single["question"]  # no instruction added


def test_healthbench_rows_serialised_as_json_strings():
    row = {key: json.dumps(value) if key in ("prompt", "rubrics") else value for key, value in ROWS["healthbench"][0].items()}
    assert len(benchmark_items.to_item(row, "healthbench")["rubrics"]) == 2


def test_template_braces_other_than_the_placeholders_stay():
    item = benchmark_items.to_item(ROWS["medqa"][0], "multiple_choice", {"gold": "answer_idx"})
    template = "Question: {question}\nChoices:\n{options}\nWrite \\boxed{} around the letter. {instruction}"
    prompt = benchmark_items.render_prompt(item, template, "Think first.")
    assert "Write \\boxed{} around the letter. Think first." in prompt
    assert "A. Streptococcus pneumoniae" in prompt


def test_a_question_containing_a_placeholder_is_not_filled_again():
    item = {"kind": "choice", "question": "What does {options} mean here?", "options": {"A": "x", "B": "y"}}
    assert benchmark_items.render_prompt(item, TEMPLATE, "Go.") == "What does {options} mean here?\n\nA. x\nB. y\n\nGo."


def test_template_without_options_placeholder():
    item = benchmark_items.to_item(ROWS["pubmedqa"][0], "pubmedqa")
    prompt = benchmark_items.render_prompt(item, "{question}\n{instruction}", "Answer.")
    assert "Answer with yes" not in prompt and prompt.endswith("Answer.")


@pytest.mark.parametrize(
    ("row", "spec", "gold"),
    [
        ({"question": "Q", "options": ["x", "y", "z"], "answer": 1}, {"gold": "answer", "zero_based": False}, "A"),
        ({"question": "Q", "options": ["x", "y", "z"], "label": 2}, {}, "C"),
        ({"question": "Q", "options": "{'A': 'x', 'B': 'y'}", "answer": "(B)"}, {}, "B"),  # a Python-literal dict string
        ({"question": "Q", "options": {"a": "x", "b": "y"}, "answer": "b"}, {}, "B"),
        ({"question": "Q", "options": ["Aspirin", "Heparin"], "answer": "heparin"}, {}, "B"),  # the option's text
        ({"problem": "Q", "A": "x", "B": "y", "correct_answer": "A"}, {}, "A"),  # column per letter
        ({"question": "Q", "option_a": "x", "option_b": "y", "answer": "B"}, {}, "B"),
    ],
)
def test_other_row_layouts(row, spec, gold):
    assert benchmark_items.to_item(row, "multiple_choice", spec)["gold"] == gold


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "Q", "options": ["only one"], "answer": "A"}, "fewer than two options"),
        ({"question": "Q", "options": "not options", "answer": "A"}, "fewer than two options"),
        ({"question": "Q", "options": ["x", "y"], "answer": "F"}, "no gold answer"),
        ({"question": "Q", "options": ["x", "y"], "answer": 7}, "no gold answer"),  # index out of range
        ({"question": "Q", "options": ["x", "y"]}, "no gold answer"),
        ({"question": "Q", "options": ["x", "y"], "answer": True}, "no gold answer"),
    ],
)
def test_malformed_rows_are_errors(row, message):
    with pytest.raises(ValueError, match=message):
        benchmark_items.to_item(row, "multiple_choice")


def test_unknown_reader():
    with pytest.raises(ValueError, match="unknown benchmark reader"):
        benchmark_items.to_item({"question": "Q"}, "essay")


def test_item_text_for_decontamination():
    item = benchmark_items.to_item(ROWS["medmcqa"][0], "multiple_choice", {"gold": "cop", "zero_based": True})
    assert benchmark_items.item_text(item, include_options=False) == "Which vitamin deficiency causes scurvy?"
    assert benchmark_items.item_text(item, include_options=True).endswith("\nD. Vitamin D")
