"""Decontamination: the n-gram step removes exactly what open-r1's definition and whole short questions say; the
fuzzy step removes exactly what scoring every pair with rapidfuzz says; the kinds of copies a benchmark question
reaches training data as are removed, and questions that only look alike are kept.

The evaluation rows are in MedMCQA's layout (openlifescienceai/medmcqa: id, question, opa..opd, cop; the layout
and its evidence are in medrecipe/catalog/datasets.py). Their questions are written here in MedMCQA's style,
short stems included ("Koplik spots are seen in").
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from rapidfuzz import fuzz, process

from medrecipe.blocks.decontaminate import FuzzyIndex, NgramIndex, fuzzy_normalize
from medrecipe.blocks.evalsets import EvalItem, items_of, load_items
from medrecipe.blocks.text import decontamination_words, tokens
from medrecipe.catalog import benchmarks
from medrecipe.compile.data import plan
from medrecipe.compile.layout import Layout
from medrecipe.errors import UserError
from medrecipe.recipe import load_recipe

from . import hub_fixtures
from .conftest import RECIPES

QUICKSTART_DATA = RECIPES / "data" / "quickstart"

MEDMCQA_ROWS = [
    {"id": "m-0", "question": "Koplik spots are seen in", "opa": "Measles", "opb": "Rubella", "opc": "Mumps", "opd": "Chickenpox", "cop": 0},
    {"id": "m-1", "question": "Drug of choice for absence seizures in a child is:", "opa": "Ethosuximide", "opb": "Phenytoin",
     "opc": "Carbamazepine", "opd": "Phenobarbitone", "cop": 0},
    {"id": "m-2", "question": "Which of the following nerves supplies the lateral rectus muscle?", "opa": "Oculomotor nerve",
     "opb": "Trochlear nerve", "opc": "Abducens nerve", "opd": "Ophthalmic nerve", "cop": 2},
    {"id": "m-3", "question": "Most common site of carcinoid tumour is", "opa": "Appendix", "opb": "Ileum", "opc": "Rectum",
     "opd": "Stomach", "cop": 1},
    {"id": "m-4", "question": "A 45-year-old man has a sudden severe headache, the worst of his life. A non-contrast CT of the head is "
     "normal. What is the next step in management?", "opa": "Lumbar puncture", "opb": "MRI of the brain", "opc": "Discharge with analgesia",
     "opd": "Repeat CT in 24 hours", "cop": 0},
    {"id": "m-5", "question": "Hypokalemia seen", "opa": "Vomiting", "opb": "Renal failure", "opc": "Addison disease", "opd": "Rhabdomyolysis",
     "cop": 0},
    {"id": "m-6", "question": "麻疹黏膜斑见于哪种疾病", "opa": "麻疹", "opb": "风疹", "opc": "腮腺炎", "opd": "水痘", "cop": 0},
]


def _items(rows: list[dict], include_options: bool = True) -> list[EvalItem]:
    return items_of("medmcqa", rows, "multiple_choice", {"gold": "cop"}, include_options)


def _change_a_letter(text: str, every: int) -> str:
    """One letter replaced by another in every `every`-th word."""
    words = text.split(" ")
    for index in range(every - 1, len(words), every):
        word = words[index]
        middle = len(word) // 2
        words[index] = word[:middle] + ("e" if word[middle : middle + 1] != "e" else "a") + word[middle + 1 :]
    return " ".join(words)


# ------------------------------------------------------------------------------------------------ n-grams


def _brute_force_ngrams(items: list[EvalItem], texts: list[str], n: int, whole_question_min_words: int) -> list[bool]:
    """open-r1's n-gram overlap, or a question of fewer than n words contained whole (its tokens in a row)."""
    evaluation = set()
    questions = []
    for item in items:
        words = decontamination_words(item.text)
        evaluation |= {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
        question = tokens(item.question)
        if len(item.question.split()) < n and len(question) >= whole_question_min_words:
            questions.append(question)
    found = []
    for text in texts:
        words = decontamination_words(text)
        shared = any(" ".join(words[i : i + n]) in evaluation for i in range(len(words) - n + 1))
        mine = tokens(text)
        whole = any(mine[i : i + len(q)] == q for q in questions for i in range(len(mine) - len(q) + 1))
        found.append(shared or whole)
    return found


def test_ngram_matches_equal_open_r1_and_whole_questions():
    locations = [{"name": n, "reader": r, "spec": s, "where": {}, "path": str(QUICKSTART_DATA / "eval" / n), "split": "test"}
                 for n, r, s in (("medmcqa", "multiple_choice", {"gold": "cop"}), ("medqa", "multiple_choice", {"gold": "answer_idx"}),
                                 ("pubmedqa", "pubmedqa", {}))]
    items = load_items(locations, include_options=True) + _items(MEDMCQA_ROWS)
    texts = [json.loads(line)["question"] for name in ("medical_en", "medical_zh", "r1_traces")
             for line in (QUICKSTART_DATA / f"{name}.jsonl").read_text().splitlines()]
    for item in items[:20]:  # near misses: seven words of an item, then a different word
        words = item.text.lower().split()
        texts.append(" ".join(words[:7] + ["zzz"] + words[8:12]))
    texts += ["Koplik spots are seen in which of the following?", "Are Koplik spots seen in measles?", "Hypokalemia seen in vomiting",
              "患儿发热三天，麻疹黏膜斑见于哪种疾病？请说明。", "麻疹黏膜斑见于"]
    for n in (3, 8, 10):
        index = NgramIndex(items, n, whole_question_min_words=4)
        found = index.matches(texts)
        assert [hit is not None for hit in found] == _brute_force_ngrams(items, texts, n, 4)
        for text, hit in zip(texts, found):
            if hit is not None:  # the words shared are in the record and in the item
                shared = " ".join(tokens(hit[1]))
                assert shared in " ".join(tokens(text)) and shared in " ".join(tokens(items[hit[0]].text))


def test_short_questions_are_matched_whole():
    index = NgramIndex(_items(MEDMCQA_ROWS), 8)
    texts = ["Koplik spots are seen in which of the following?",  # the 5-word stem, then more
             "KOPLIK SPOTS -- are seen in: (a) measles",  # re-punctuated
             "Koplik spots are commonly seen in measles",  # a word in between
             "Hypokalemia seen in vomiting",  # a 2-word question names a topic, not an item
             "患儿发热三天，麻疹黏膜斑见于哪种疾病？",  # a Chinese question is one whitespace word: matched whole, by characters
             "麻疹黏膜斑见于什么病"]
    found = [None if hit is None else index.items[hit[0]].item_id for hit in index.matches(texts)]
    assert found == ["m-0", "m-0", None, None, "m-6", None]


def test_a_copy_in_full_width_characters_is_a_copy():
    """Found by review: a copy with its digits in full width (as Chinese text often writes them) scored 69.6 against
    its item and shared no n-gram, a MedQA question in full-width letters 15.4: both escaped both steps. Texts are
    compared in NFKC form, where each is its item again."""
    zh = "患者，男，45岁，发热3天，体温39.5℃，血压120/80mmHg，白细胞12.5×10^9/L。最可能的诊断是"
    en = "A 45-year-old man presents with fever for three days and a productive cough; which is the most likely diagnosis?"
    wide = {ord(c): ord(c) + 0xFEE0 for c in map(chr, range(0x21, 0x7F))}  # ASCII's full-width forms (U+FF01-U+FF5E)
    items = [EvalItem("cmexam", "zh", zh, zh), EvalItem("medqa", "en", en, en)]
    copies = [zh.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789./"}), "Answer this. " + en.translate(wide)]
    assert [hit[0] for hit in NgramIndex(items, 8).matches(copies)] == [0, 1]
    assert [(hit[0], hit[1]) for hit in FuzzyIndex(items, 80).matches(copies[:1] + [en.translate(wide)])] == [(0, 100.0), (1, 100.0)]


# -------------------------------------------------------------------------------------------------- fuzzy


def _brute_force_fuzzy(items: list[EvalItem], texts: list[str]) -> list[float]:
    """The best `fuzz.ratio` of each text against every question and every question with its options."""
    compared = [fuzzy_normalize(t) for item in items for t in {item.question, item.text}]
    scores = process.cdist([fuzzy_normalize(t) for t in texts], [c for c in compared if c], scorer=fuzz.ratio)
    return [float(row.max()) for row in scores]


def test_fuzzy_removes_the_copies_that_escape_n_grams_and_keeps_look_alikes():
    items = _items(MEDMCQA_ROWS)
    full = {item.item_id: item.text for item in items}
    copies = {
        "short stem copied verbatim": ("Koplik spots are seen in", "m-0"),
        "short stem, a letter changed in every third word": (_change_a_letter("Drug of choice for absence seizures in a child is:", 3), "m-1"),
        "question and options, a letter changed in every third word": (_change_a_letter(full["m-4"], 3), "m-4"),
        "question and options, a letter changed in every word": (_change_a_letter(full["m-2"], 1), "m-2"),
        "re-punctuated": ("Koplik spots -- are seen in...?", "m-0"),
        "re-punctuated options": (full["m-2"].replace("\nA. ", " (a) ").replace("\nB. ", "; (b) ").replace("\nC. ", "; (c) ")
                                  .replace("\nD. ", "; (d) "), "m-2"),
        "run into its options": ("Koplik spots are seen in measles, rubella, mumps or chickenpox", "m-0"),
        "most common site run into options": ("most common site of carcinoid tumour is appendix ileum rectum stomach", "m-3"),
    }
    look_alikes = ["What are Koplik spots, and when do they appear in the course of measles?",
                   "Which nerve supplies the lateral rectus?",
                   "Describe the mechanism of action of ethosuximide in absence seizures.",
                   "A 45-year-old woman has had a dull headache for three weeks. What is the most likely cause?"]
    texts = [text for text, _ in copies.values()] + look_alikes
    index = FuzzyIndex(items, 80)
    found = index.matches(texts)
    for (case, (text, item_id)), hit in zip(copies.items(), found):
        assert hit is not None and index.items[hit[0]].item_id == item_id, case
    assert found[len(copies):] == [None] * len(look_alikes)
    best = _brute_force_fuzzy(items, texts)
    assert [hit is not None for hit in found] == [score >= 80 for score in best]
    assert any(80 <= score < 90 for score in best[: len(copies)]), "a copy between 80 and 90 is among the cases"


def _random_corpus(seed: int) -> tuple[list[EvalItem], list[str]]:
    """Items in MedMCQA's layout with stems of 3 to 40 words, and records: unrelated text, and copies edited as
    contamination reaches training sets (letters changed, words dropped or added, cut short, run into options)."""
    rng = random.Random(seed)
    vocabulary = ("patient fever cough pain chest acute chronic renal hepatic cardiac dose drug treatment diagnosis most "
                  "common cause site sign seen in of the with and is a which following first line management test serum "
                  "level nerve muscle artery vein tumour infection child adult woman man year old presents history "
                  "examination finding shows normal raised low high blood pressure rate deficiency syndrome disease").split()

    def words(count: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(count))

    rows = [{"id": f"r-{i}", "question": words(rng.choice([3, 4, 5, 6, 8, 12, 20, 40])).capitalize() + rng.choice(["?", ":", ""]),
             "opa": words(rng.randint(1, 3)), "opb": words(rng.randint(1, 3)), "opc": words(rng.randint(1, 3)),
             "opd": words(rng.randint(1, 3)), "cop": rng.randrange(4)} for i in range(120)]
    items = _items(rows)
    texts = [words(rng.randint(3, 60)) for _ in range(200)]
    for item in rng.choices(items, k=160):
        source = rng.choice([item.question, item.text])
        edit = rng.randrange(6)
        if edit == 0:
            texts.append(_change_a_letter(source, rng.choice([1, 2, 3, 4, 6])))
        elif edit == 1:  # words dropped
            kept = [w for w in source.split() if rng.random() > rng.choice([0.1, 0.2, 0.3, 0.4, 0.5])]
            texts.append(" ".join(kept))
        elif edit == 2:  # words added
            parts = source.split()
            for _ in range(max(1, len(parts) // rng.choice([3, 5, 8]))):
                parts.insert(rng.randrange(len(parts) + 1), rng.choice(vocabulary))
            texts.append(" ".join(parts))
        elif edit == 3:  # cut short
            texts.append(source[: max(3, int(len(source) * rng.uniform(0.5, 0.95)))])
        elif edit == 4:  # run into the options, without their letters
            texts.append(item.question + " " + " ".join(line[3:] for line in item.text.split("\n")[1:]))
        else:  # re-punctuated and re-cased
            texts.append(source.upper().replace(" ", rng.choice([", ", " - ", "  "]), 3) + "?!")
    return items, texts


@pytest.mark.parametrize("threshold", [80, 90])
@pytest.mark.parametrize("include_options", [True, False])
def test_fuzzy_matches_equal_scoring_every_pair(threshold, include_options):
    items, texts = _random_corpus(seed=threshold)
    if not include_options:
        items = [EvalItem(i.benchmark, i.item_id, i.question, i.question) for i in items]
    found = FuzzyIndex(items, threshold).matches(texts)
    best = _brute_force_fuzzy(items, texts)
    assert [hit is not None for hit in found] == [score >= threshold for score in best]
    for hit, score in zip(found, best):
        if hit is not None:
            assert hit[1] == pytest.approx(score)
    assert sum(80 <= score < 90 for score in best) >= 10, "the corpus reaches the band between 80 and 90"
    assert sum(70 <= score < 80 for score in best) >= 10, "and the near misses below it"


def test_a_score_a_hair_under_a_fractional_threshold_is_no_match():
    """rapidfuzz's extractOne lets through scores a few millionths under its score_cutoff; brute force (fuzz.ratio
    >= threshold) does not, and neither does the index (review, reproduced: 66.6699995 matched at 66.67)."""
    text, item = "a" * 6668 + "x" * 3333, "a" * 6668 + "y" * 3334
    score = fuzz.ratio(fuzzy_normalize(text), fuzzy_normalize(item))
    assert 66.67 - 1e-5 < score < 66.67
    assert FuzzyIndex([EvalItem("b", "1", item, item)], 66.67).matches([text]) == [None]
    assert FuzzyIndex([EvalItem("b", "1", item, item)], 66.66).matches([text])[0][1] == score


def test_fuzzy_matches_on_the_quickstart_corpus_equal_scoring_every_pair():
    locations = [{"name": n, "reader": r, "spec": s, "where": {}, "path": str(QUICKSTART_DATA / "eval" / n), "split": "test"}
                 for n, r, s in (("medmcqa", "multiple_choice", {"gold": "cop"}), ("medqa", "multiple_choice", {"gold": "answer_idx"}),
                                 ("pubmedqa", "pubmedqa", {}))]
    items = load_items(locations, include_options=True)
    texts = [json.loads(line)["question"] for name in ("medical_en", "medical_zh", "r1_traces")
             for line in (QUICKSTART_DATA / f"{name}.jsonl").read_text().splitlines()]
    found = FuzzyIndex(items, 80).matches(texts)
    assert [hit is not None for hit in found] == [score >= 80 for score in _brute_force_fuzzy(items, texts)]
    assert sum(hit is not None for hit in found) >= 4


def test_ngram_matches_survive_lower_case_that_changes_length():
    question = "the patient from İzmir presents with fever and chills since yesterday"
    items = [EvalItem("medqa", "q1", question, question)]
    texts = ["İİİ " * 20, "unrelated words here", "a patient from İzmir presents with fever and chills since yesterday"]
    found = NgramIndex(items, 8).matches(texts)
    assert [hit is not None for hit in found] == [False, False, True]


# ------------------------------------------------------------------------------------------ evaluation sets


def _snapshot(folder, repo: str) -> None:
    """A local copy of a Hub dataset in its real layout: its files as tests/fixtures/hub holds them."""
    for path, content in hub_fixtures.fixture(repo)["branches"]["main"].items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(hub_fixtures.encoded(path, content))


def test_a_local_copy_is_decontaminated_against_the_split_evaluated(write, tmp_path):
    """Found by review: a local copy of openlifescienceai/medmcqa (data/{train,validation,test}-00000-of-00001.parquet)
    was read whole, so its train questions, training data, would have been removed as copies of the benchmark, and its
    test rows (cop -1: no answer) stopped the step. The validation split is what is evaluated, so it alone is read."""
    _snapshot(tmp_path / "medmcqa", "openlifescienceai/medmcqa")
    recipe = write("r.yaml", f"""
        extends: {RECIPES / "quickstart.yaml"}
        name: probe
        eval:
          benchmarks:
            - {{name: medmcqa, path: {tmp_path / "medmcqa"}, split: validation}}
        """)
    loaded = load_recipe(recipe)
    stages = plan(loaded, Layout(tmp_path / "out", loaded.recipe))["stages"]
    locations = next(block["args"]["benchmarks"] for stage in stages for block in stage["pipeline"]
                     if block["block"].endswith("NgramDecontaminationFilter"))
    evaluated = hub_fixtures.rows("openlifescienceai/medmcqa", "data/validation-00000-of-00001.parquet")
    assert [item.item_id for item in load_items(locations, include_options=False)] == [row["id"] for row in evaluated]


def test_a_local_copy_without_the_split_evaluated_is_an_error(tmp_path):
    (tmp_path / "medmcqa.jsonl").write_text(json.dumps(MEDMCQA_ROWS[0]) + "\n")  # a name that tells no split: train
    location = {"name": "medmcqa", "reader": "multiple_choice", "spec": {"gold": "cop"}, "where": {}, "path": str(tmp_path),
                "split": "validation"}
    with pytest.raises(UserError, match="has no 'validation' split"):
        load_items([location], include_options=False)


def test_a_local_copy_of_healthbench_is_read_as_its_evaluation_file():
    """Found by review: the local copy's other files (the meta-evaluation: a completion and one rubric per row, a
    different layout) were read as items too; evaluation reads the registry's file alone (benchmark_files.data_plan)."""
    bench = benchmarks.get("healthbench")
    folder = Path(__file__).parent / "fixtures" / "benchmarks" / "healthbench"
    location = {"name": "healthbench", "reader": bench.reader, "spec": bench.spec, "where": {}, "path": str(folder),
                "split": bench.split, "data_files": list(bench.data_files)}
    evaluated = [json.loads(line)["prompt_id"] for line in (folder / bench.data_files[0]).read_text().splitlines()]
    assert [item.item_id for item in load_items([location], include_options=False)] == evaluated


def test_a_local_copy_whose_card_declares_configurations_is_refused(tmp_path):
    """Found by review: a local copy of the whole qiaojin/PubMedQA repository (its README.md declares pqa_artificial,
    pqa_labeled and pqa_unlabeled) was read as one train split, so the 270k unlabelled and artificial questions were
    items too; the datasets library reads such a folder by its configurations, and evaluation's 'default' is none."""
    _snapshot(tmp_path, "qiaojin/PubMedQA")
    bench = benchmarks.get("pubmedqa")
    location = {"name": "pubmedqa", "reader": bench.reader, "spec": bench.spec, "where": {}, "path": str(tmp_path),
                "split": bench.split}
    with pytest.raises(UserError, match="pqa_artificial, pqa_labeled, pqa_unlabeled"):
        load_items([location], include_options=False)
    evaluated = hub_fixtures.rows("qiaojin/PubMedQA", "pqa_labeled/train-00000-of-00001.parquet")
    items = load_items([{**location, "path": str(tmp_path / "pqa_labeled")}], include_options=False)
    assert [item.item_id for item in items] == [str(row["pubid"]) for row in evaluated]


def test_a_local_copys_data_files_in_a_hidden_folder_are_refused(tmp_path):
    """A recipe's own benchmark names its data_files, joined to its path: `path: ~` with `data_files:
    [.kaggle/kaggle.json]` would read the Kaggle key as items, where no folder a source reads gives a hidden file."""
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text(json.dumps({"question": "q", "options": ["a", "b"], "answer": "A"}))
    location = {"name": "mine", "reader": "multiple_choice", "spec": {}, "where": {}, "path": str(tmp_path),
                "split": "test", "data_files": [".kaggle/kaggle.json"]}
    with pytest.raises(UserError, match=r"hidden \.kaggle"):
        load_items([location], include_options=False)
