"""Synthetic medical reasoning traces, written by this project: the quickstart corpus and the benchmark corpora.

English and Chinese traces, medical and non-medical topics, with planted cases whose fate is known:
exact and near duplicates (at a chosen n-gram Jaccard), incomplete traces, "Wait"-heavy traces, too-short
prompts, and prompts copied or lightly edited from evaluation items (which are generated here too, in the
registry's real column layouts).

    python benchmarks/corpus.py quickstart            # rewrites recipes/data/quickstart/ (committed)
    python benchmarks/corpus.py corpus 100000 OUT/    # a benchmark corpus of N traces (benchmarks/run.py makes its own)
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

from medrecipe.catalog.benchmark_items import item_text, to_item

CONDITIONS = [
    # (condition, finding, test, first-line treatment, organ system)
    ("community-acquired pneumonia", "productive cough and pleuritic chest pain", "chest radiograph", "amoxicillin", "respiratory"),
    ("acute myocardial infarction", "crushing substernal chest pain", "troponin measurement", "aspirin", "cardiovascular"),
    ("diabetic ketoacidosis", "polyuria, vomiting and Kussmaul breathing", "serum beta-hydroxybutyrate", "intravenous insulin", "endocrine"),
    ("pulmonary embolism", "sudden dyspnoea and tachycardia", "CT pulmonary angiography", "low-molecular-weight heparin", "respiratory"),
    ("bacterial meningitis", "fever, neck stiffness and photophobia", "lumbar puncture", "ceftriaxone", "neurological"),
    ("iron deficiency anaemia", "fatigue and koilonychia", "serum ferritin", "oral ferrous sulfate", "haematological"),
    ("hypothyroidism", "weight gain and cold intolerance", "serum TSH", "levothyroxine", "endocrine"),
    ("acute appendicitis", "periumbilical pain migrating to the right iliac fossa", "abdominal ultrasound", "appendectomy", "gastrointestinal"),
    ("Graves disease", "heat intolerance, tremor and exophthalmos", "TSH receptor antibodies", "carbimazole", "endocrine"),
    ("asthma exacerbation", "wheeze and reduced peak flow", "peak expiratory flow", "inhaled salbutamol", "respiratory"),
    ("urinary tract infection", "dysuria and urinary frequency", "urine culture", "nitrofurantoin", "renal"),
    ("gout", "an acutely swollen first metatarsophalangeal joint", "joint aspiration", "colchicine", "musculoskeletal"),
    ("ischaemic stroke", "sudden unilateral weakness and aphasia", "non-contrast head CT", "alteplase", "neurological"),
    ("heart failure", "orthopnoea and bilateral ankle oedema", "echocardiography", "furosemide", "cardiovascular"),
    ("celiac disease", "chronic diarrhoea and weight loss", "tissue transglutaminase antibodies", "a gluten-free diet", "gastrointestinal"),
    ("tuberculosis", "night sweats and haemoptysis", "sputum acid-fast smear", "rifampicin-based therapy", "respiratory"),
    ("sepsis", "fever, hypotension and confusion", "blood cultures", "broad-spectrum antibiotics", "systemic"),
    ("migraine", "unilateral throbbing headache with aura", "clinical diagnosis", "sumatriptan", "neurological"),
    ("atrial fibrillation", "an irregularly irregular pulse", "electrocardiography", "rate control with bisoprolol", "cardiovascular"),
    ("Addison disease", "hyperpigmentation and hypotension", "short synacthen test", "hydrocortisone", "endocrine"),
]
ADJECTIVES = ["previously healthy", "obese", "smoking", "diabetic", "hypertensive", "pregnant", "elderly", "athletic", "anxious", "frail"]
SETTINGS = ["the emergency department", "a rural clinic", "the outpatient clinic", "a general practice", "the cardiology ward",
            "an urgent care centre", "the medical admissions unit", "a community hospital"]
DURATIONS = ["two hours", "three days", "a week", "two weeks", "six hours", "a month", "ten days", "overnight"]
REASONING = [
    "The history points towards {condition}, because {finding} is its classic presentation.",
    "Let me weigh the differential: {other} could also explain some findings, but not {finding}.",
    "The {age}-year-old age makes some causes more likely than others.",
    "A {test} would confirm the diagnosis in most settings.",
    "Guidelines recommend {treatment} as the first step once {condition} is confirmed.",
    "I should check for red flags before settling on {condition}.",
    "Vital signs matter here: a heart rate of {hr} beats per minute and a temperature of {temp} degrees.",
    "The {system} system is involved, so I will focus the examination there.",
    "It would be a mistake to treat {other} empirically without evidence.",
    "Laboratory values such as a white cell count of {wbc} support an inflammatory process.",
    "In {setting}, access to {test} may be limited, which changes the work-up.",
    "Comorbidities change the risk: the patient is {adjective}.",
    "Starting {treatment} early reduces complications of {condition}.",
    "If the {test} were normal, I would reconsider {other}.",
    "Symptoms began {duration} ago, which fits an acute course.",
    "Pharmacology: {treatment} acts quickly, but its contraindications must be checked.",
    "Putting the findings together, {condition} is the leading diagnosis.",
    "Some clinicians would order a {test} first; others would treat and observe.",
]
WAITS = ["Wait, let me reconsider the timeline.", "Wait, is that consistent with the vital signs?",
         "Wait, I should double-check the dose.", "Wait, maybe {other} fits better.", "Wait, that changes things."]

ZH_CONDITIONS = [
    ("社区获得性肺炎", "咳嗽咳痰伴胸痛", "胸部X线", "阿莫西林"), ("急性心肌梗死", "压榨性胸骨后疼痛", "肌钙蛋白", "阿司匹林"),
    ("糖尿病酮症酸中毒", "多尿呕吐和深大呼吸", "血酮体", "静脉胰岛素"), ("甲状腺功能减退", "体重增加和怕冷", "促甲状腺激素", "左甲状腺素"),
    ("急性阑尾炎", "转移性右下腹痛", "腹部超声", "阑尾切除术"), ("缺铁性贫血", "乏力和反甲", "血清铁蛋白", "口服硫酸亚铁"),
    ("痛风", "第一跖趾关节红肿热痛", "关节穿刺", "秋水仙碱"), ("偏头痛", "单侧搏动性头痛伴先兆", "临床诊断", "舒马曲坦"),
    ("心力衰竭", "端坐呼吸和双下肢水肿", "超声心动图", "呋塞米"), ("肺结核", "盗汗和咯血", "痰抗酸染色", "利福平方案"),
]
ZH_REASONING = [
    "患者的表现提示{condition}，因为{finding}是典型症状。", "需要鉴别{other}，但它不能解释{finding}。", "{test}可以帮助明确诊断。",
    "指南推荐在确诊后使用{treatment}。", "患者年龄{age}岁，这会影响鉴别诊断的范围。", "心率{hr}次每分钟，体温{temp}度，需要注意生命体征。",
    "如果{test}正常，应重新考虑{other}。", "尽早使用{treatment}可以减少并发症。", "综合以上信息，{condition}是最可能的诊断。",
    "还要询问既往史和用药史，排除其他原因。", "症状持续了{days}天，符合急性病程。",
]
NON_MEDICAL = {
    "mathematics": ("Solve: a train travels {a} km in {b} hours; what is its average speed in km/h?",
                    ["Speed is distance divided by time.", "So I divide {a} by {b}.", "The quotient is {q}.",
                     "Units: kilometres per hour.", "Check: {q} times {b} gives {a}."], "{q} km/h"),
    "programming": ("Write a Python function that returns the sum of the first {a} even numbers, and explain its complexity.",
                    ["I can use a loop or a closed form.", "The k-th even number is 2k.", "The sum of 2k for k from 1 to {a} is {a} times {a1}.",
                     "A loop runs in linear time; the formula in constant time.", "Python integers do not overflow."], "def even_sum(n): return n * (n + 1)  # {a} -> {q2}"),
    "history": ("In what year did the event number {a} on my history worksheet happen, given it was {b} years after 1700?",
                ["The worksheet counts years from 1700.", "Adding {b} to 1700 gives {y}.", "That is within the eighteenth or nineteenth century.",
                 "Historians date such events by primary sources.", "So the year is {y}."], "{y}"),
    "physics": ("A ball is dropped from {a} metres. Ignoring air resistance, how long until it hits the ground (g = 10 m/s^2)?",
                ["Use s = g t^2 / 2.", "So t = sqrt(2 s / g) = sqrt({a2} / 10).", "That is about {t} seconds.",
                 "Air resistance would make it slightly longer.", "Energy conservation gives the same answer."], "{t} s"),
}


def _fill(template: str, slots: dict) -> str:
    return template.format(**slots)


def _slots(rng: random.Random, condition: tuple) -> dict:
    other = rng.choice([c for c in CONDITIONS if c[0] != condition[0]])[0]
    return {"condition": condition[0], "finding": condition[1], "test": condition[2], "treatment": condition[3],
            "system": condition[4], "other": other, "age": rng.randint(18, 90), "hr": rng.randint(55, 140),
            "temp": round(rng.uniform(36.0, 40.2), 1), "wbc": round(rng.uniform(3.5, 25.0), 1),
            "setting": rng.choice(SETTINGS), "adjective": rng.choice(ADJECTIVES), "duration": rng.choice(DURATIONS)}


def medical_trace(rng: random.Random, sentences: int, waits: int) -> dict:
    condition = rng.choice(CONDITIONS)
    slots = _slots(rng, condition)
    prompt = (f"A {slots['age']}-year-old {slots['adjective']} patient presents to {slots['setting']} with {condition[1]} "
              f"for {slots['duration']}. Heart rate is {slots['hr']} and temperature {slots['temp']}. "
              f"What is the most likely diagnosis and the first-line management?")
    lines = [_fill(rng.choice(REASONING), _slots(rng, condition) | {"condition": condition[0]}) for _ in range(sentences)]
    for _ in range(waits):
        lines.insert(rng.randrange(len(lines) + 1), _fill(rng.choice(WAITS), slots))
    answer = f"The most likely diagnosis is {condition[0]}; start {condition[3]}.\n\n\\boxed{{{condition[0]}}}"
    return {"question": prompt, "reasoning": " ".join(lines), "response": answer, "topic": condition[4]}


def chinese_trace(rng: random.Random, sentences: int) -> dict:
    condition = rng.choice(ZH_CONDITIONS)
    other = rng.choice([c for c in ZH_CONDITIONS if c != condition])[0]
    slots = {"condition": condition[0], "finding": condition[1], "test": condition[2], "treatment": condition[3], "other": other,
             "age": rng.randint(18, 90), "hr": rng.randint(55, 140), "temp": round(rng.uniform(36.0, 40.2), 1),
             "days": rng.randint(1, 30)}
    prompt = f"患者{slots['age']}岁，出现{condition[1]}{slots['days']}天，心率{slots['hr']}次每分钟。最可能的诊断和首选治疗是什么？"
    lines = [_fill(rng.choice(ZH_REASONING), slots | {"age": rng.randint(18, 90), "hr": rng.randint(55, 140),
                                                     "days": rng.randint(1, 30)}) for _ in range(sentences)]
    return {"question": prompt, "reasoning": "".join(lines), "response": f"最可能的诊断是{condition[0]}，首选{condition[3]}。\n\n\\boxed{{{condition[0]}}}",
            "topic": "chinese"}


def non_medical_trace(rng: random.Random, topic: str, sentences: int) -> dict:
    question, steps, answer = NON_MEDICAL[topic]
    a, b = rng.randint(20, 900), rng.randint(2, 9)
    slots = {"a": a, "b": b, "q": round(a / b, 2), "a1": a + 1, "q2": a * (a + 1), "y": 1700 + b * rng.randint(1, 30),
             "a2": 2 * a, "t": round((2 * a / 10) ** 0.5, 2)}
    filler = [f"Step {i + 1}: {_fill(rng.choice(steps), slots)} (note {rng.randint(1, 10**6)})" for i in range(sentences)]
    return {"question": _fill(question, slots), "reasoning": " ".join(filler), "response": f"\\boxed{{{_fill(answer, slots)}}}",
            "topic": topic}


# ------------------------------------------------------------------------------------------- eval items


def eval_items(rng: random.Random) -> dict[str, list[dict]]:
    """Evaluation items in the registry's column layouts (medmcqa, medqa 4-option, pubmedqa)."""
    medmcqa, medqa, pubmedqa = [], [], []
    for index, condition in enumerate(CONDITIONS):
        wrong = rng.sample([c[3] for c in CONDITIONS if c[3] != condition[3]], 3)
        options = wrong + [condition[3]]
        rng.shuffle(options)
        medmcqa.append({"id": f"qs-mcqa-{index}", "question": f"Which of the following is the first-line treatment of {condition[0]} "
                        f"in an adult without contraindications, according to current guidelines?",
                        "opa": options[0], "opb": options[1], "opc": options[2], "opd": options[3], "cop": options.index(condition[3]),
                        "subject_name": "Medicine"})
        tests = rng.sample([c[2] for c in CONDITIONS if c[2] != condition[2]], 3) + [condition[2]]
        rng.shuffle(tests)
        age = rng.randint(20, 80)
        medqa.append({"question": f"A {age}-year-old man is evaluated at the clinic this morning for suspected {condition[0]}. "
                      f"He takes no medications and his family history is unremarkable. Which investigation is most appropriate "
                      f"to confirm the diagnosis?",
                      "options": {"A": tests[0], "B": tests[1], "C": tests[2], "D": tests[3]},
                      "answer_idx": "ABCD"[tests.index(condition[2])], "meta_info": "step2&3"})
        decision = rng.choice(["yes", "no", "maybe"])
        pubmedqa.append({"pubid": 9_000_000 + index,
                         "question": f"Does early {condition[3]} reduce mortality in patients with {condition[0]}?",
                         "context": {"contexts": [f"We studied {rng.randint(80, 900)} adults with {condition[0]} in a multicentre cohort.",
                                                  f"Early {condition[3]} was compared with delayed treatment over {rng.randint(6, 36)} months."],
                                     "labels": ["METHODS", "RESULTS"], "meshes": [condition[0]]},
                         "long_answer": "See the results section.", "final_decision": decision})
    return {"medmcqa": medmcqa, "medqa": medqa, "pubmedqa": pubmedqa}


def rl_prompts(rng: random.Random) -> list[dict]:
    """Prompts with verifiable answers for RL, phrased unlike any evaluation item; their options a lettered block, as
    II-Medical-RL's (so that the reward knows them, and grades an answer given as an option's text)."""
    systems = sorted({c[4] for c in CONDITIONS})
    rows = []
    for index, condition in enumerate(CONDITIONS):
        options = rng.sample([s for s in systems if s != condition[4]], 3) + [condition[4]]
        rng.shuffle(options)
        lettered = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
        rows.append({"id": f"rl-{index:03d}", "question": f"Which organ system does {condition[0]} primarily affect?",
                     "options": lettered, "answer": "ABCD"[options.index(condition[4])]})
    return rows


def _edit_words(rng: random.Random, text: str, every: int) -> str:
    """Change every `every`-th word: no run of `every` words survives, most characters do."""
    words = text.split()
    for index in range(every // 2, len(words), every):
        words[index] = words[index] + ("s" if not words[index].endswith("s") else "es")
    return " ".join(words)


def _near_copy(rng: random.Random, record: dict, changed: float) -> dict:
    copy = dict(record)
    words = record["reasoning"].split(" ")
    for index in rng.sample(range(len(words)), max(1, int(changed * len(words)))):
        words[index] = rng.choice(["indeed", "clearly", "notably", "then", "also", "probably"])
    copy["reasoning"] = " ".join(words)
    return copy


def _near_copy_zh(rng: random.Random, record: dict, changed: float) -> dict:
    copy = dict(record)
    chars = list(record["reasoning"])
    for index in rng.sample(range(len(chars)), max(1, int(changed * len(chars)))):
        chars[index] = rng.choice("的了是在有和就")
    copy["reasoning"] = "".join(chars)
    return copy


def quickstart(out: Path, seed: int = 20250706) -> dict:
    """The corpus `recipes/quickstart.yaml` curates, and a manifest of every planted case."""
    rng = random.Random(seed)
    items = eval_items(rng)
    planted: dict[str, list] = {key: [] for key in ("exact_duplicates", "near_duplicates", "incomplete", "wait_heavy",
                                                    "short_prompts", "contaminated_exact", "contaminated_fuzzy", "non_medical")}
    english: list[dict] = []

    def add(rows: list, record: dict, prefix: str) -> str:
        record["id"] = f"{prefix}-{len(rows):03d}"
        rows.append(record)
        return record["id"]

    for _ in range(120):
        add(english, medical_trace(rng, rng.randint(6, 12), rng.randint(0, 3)), "en")
    for source_index in range(6):  # exact duplicates: same response and trace under another id
        original = english[source_index * 7]
        planted["exact_duplicates"].append([original["id"], add(english, dict(original), "en")])
    for source_index in range(6):  # near duplicates: 2.5 % of words changed (Jaccard about 0.85)
        original = english[source_index * 7 + 3]
        planted["near_duplicates"].append([original["id"], add(english, _near_copy(rng, original, 0.025), "en")])
    for _ in range(4):  # unclosed reasoning
        record = medical_trace(rng, 8, 1)
        record["response"] = ""
        record["reasoning"] += " Let me think about the dose"
        planted["incomplete"].append(add(english, record | {"finish_reason": "stop", "unclosed": True}, "en"))
    for _ in range(2):  # reasoning closed, but no answer after it
        planted["incomplete"].append(add(english, medical_trace(rng, 8, 1) | {"response": ""}, "en"))
    for _ in range(3):  # cut off by the length limit
        planted["incomplete"].append(add(english, medical_trace(rng, 8, 1) | {"finish_reason": "length"}, "en"))
    for _ in range(4):
        planted["wait_heavy"].append(add(english, medical_trace(rng, 10, rng.randint(55, 80)), "en"))
    for text in ("Fever?", "Treat hypertension", "What is sepsis?", "Chest pain", "Dose of aspirin?"):
        record = medical_trace(rng, 7, 0)
        record["question"] = text
        planted["short_prompts"].append(add(english, record, "en"))
    for name, key in (("medmcqa", 0), ("medqa", 1), ("pubmedqa", 2)):  # verbatim copies of eval questions
        for item in items[name][key * 2 : key * 2 + 2]:
            record = medical_trace(rng, 8, 1)
            record["question"] = item["question"]
            planted["contaminated_exact"].append([add(english, record, "en"), name])
    for name in ("medmcqa", "medqa"):  # question and options, lightly edited: no 8 words in a row survive
        for index, row in enumerate(items[name][10:12]):
            record = medical_trace(rng, 8, 1)
            record["question"] = _edit_words(rng, item_text(to_item(row, "multiple_choice", None, index), True), 6)
            planted["contaminated_fuzzy"].append([add(english, record, "en"), name])

    chinese = []
    for _ in range(36):
        add(chinese, chinese_trace(rng, rng.randint(8, 14)), "zh")
    for source_index in range(3):
        original = chinese[source_index * 5]
        planted["exact_duplicates"].append([original["id"], add(chinese, dict(original), "zh")])
    for source_index in range(3):
        original = chinese[source_index * 5 + 2]
        planted["near_duplicates"].append([original["id"], add(chinese, _near_copy_zh(rng, original, 0.015), "zh")])

    traces = []
    for _ in range(30):
        add(traces, medical_trace(rng, rng.randint(6, 10), rng.randint(0, 2)), "r1")
    for topic in NON_MEDICAL:
        for _ in range(14):
            planted["non_medical"].append(add(traces, non_medical_trace(rng, topic, rng.randint(5, 9)), "r1"))

    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("medical_en", english), ("medical_zh", chinese), ("r1_traces", traces)):
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(_as_trace(row), ensure_ascii=False) + "\n")
    for name, rows in items.items():
        folder = out / "eval" / name
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "test.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (out / "rl_prompts.jsonl").open("w", encoding="utf-8") as handle:
        for row in rl_prompts(rng):
            handle.write(json.dumps(row) + "\n")
    (out / "planted.json").write_text(json.dumps(planted, indent=2, ensure_ascii=False) + "\n")
    return planted


# --------------------------------------------------------------------------------------- benchmark corpora


def _pseudo_words(rng: random.Random, count: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ra", "to", "vu", "sel", "dor", "phi", "gen", "tri", "ost", "car", "lym", "hep"]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(count)]


def _sentence_pools(rng: random.Random) -> tuple[list[str], list[str]]:
    """Sentences to build long traces from quickly. Each carries a clause of rare words, so that unrelated traces
    share almost no 4-grams even once numbers are normalised away (as datatrove's MinHash does)."""
    vocabulary = _pseudo_words(rng, 30_000)
    english = []
    for _ in range(20_000):
        condition = rng.choice(CONDITIONS)
        clause = " ".join(rng.choice(vocabulary) for _ in range(6))
        english.append(_fill(rng.choice(REASONING + WAITS), _slots(rng, condition)) + f" Note {clause}.")
    chinese = []
    for _ in range(6_000):
        condition = rng.choice(ZH_CONDITIONS)
        slots = {"condition": condition[0], "finding": condition[1], "test": condition[2], "treatment": condition[3],
                 "other": rng.choice(ZH_CONDITIONS)[0], "age": rng.randint(18, 90), "hr": rng.randint(55, 140),
                 "temp": round(rng.uniform(36.0, 40.2), 1), "days": rng.randint(1, 30)}
        chinese.append(_fill(rng.choice(ZH_REASONING), slots) + f"（{rng.randrange(10**6)}）")
    return english, chinese


def benchmark_eval_items(rng: random.Random, count: int) -> list[dict]:
    """Evaluation items in MedMCQA's layout, worded apart from the traces (only planted copies match). Stems have
    MedMCQA's spread of lengths: a fifth are short (3-7 words, like "Koplik spots are seen in"), most 8-20 words,
    a fifth long case vignettes (21-45 words); options have 1-5 words."""
    vocabulary = _pseudo_words(random.Random(rng.random()), 20_000)
    rows = []
    for index in range(count):
        roll = rng.random()
        length = rng.randint(3, 7) if roll < 0.2 else rng.randint(8, 20) if roll < 0.8 else rng.randint(21, 45)
        stem = " ".join(rng.choice(vocabulary) for _ in range(length)).capitalize() + rng.choice(["", "?", ":", " is"])
        options = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 5))).capitalize() for _ in range(4)]
        rows.append({"id": f"bench-{index}", "question": stem, "opa": options[0], "opb": options[1], "opc": options[2],
                     "opd": options[3], "cop": rng.randrange(4)})
    return rows


def _change_letters(text: str, every: int) -> str:
    """One letter replaced by another in every `every`-th word: most characters survive, few words do."""
    words = text.split(" ")
    for index in range(every - 1, len(words), every):
        word = words[index]
        middle = len(word) // 2
        words[index] = word[:middle] + ("e" if word[middle : middle + 1] != "e" else "a") + word[middle + 1 :]
    return " ".join(words)


def _replace_words(rng: random.Random, text: str, share: float, vocabulary: list[str]) -> str:
    words = text.split(" ")
    for index in rng.sample(range(len(words)), max(1, round(share * len(words)))):
        words[index] = rng.choice(vocabulary)
    return " ".join(words)


# What a contaminated prompt looks like, and how it was made from an evaluation item (question Q, with options QO).
CONTAMINATION_KINDS = {
    "copy": "QO copied verbatim",
    "short_stem": "a stem of 4-7 words copied verbatim, then a question of our own",
    "every_6th_word": "QO with every 6th word changed (no 8 words in a row survive)",
    "every_3rd_word_letter": "QO with one letter changed in every 3rd word",
    "every_word_letter": "QO with one letter changed in every word (no word survives)",
    "partly_reworded": "QO with 15-25 % of its words replaced",
}


def _contaminate(rng: random.Random, item: dict, vocabulary: list[str]) -> tuple[str, str]:
    """(prompt, kind) made from an evaluation item."""
    question = item["question"]
    text = item_text(to_item(item, "multiple_choice", {"gold": "cop"}, 0), True)
    short = 4 <= len(question.split()) < 8
    kind = rng.choice([k for k in CONTAMINATION_KINDS if short or k != "short_stem"])
    if kind == "copy":
        return text, kind
    if kind == "short_stem":
        return f"{question} which of the following, and why?", kind
    if kind == "every_6th_word":
        return _edit_words(rng, text, 6), kind
    if kind == "every_3rd_word_letter":
        return _change_letters(text, 3), kind
    if kind == "every_word_letter":
        return _change_letters(text, 1), kind
    return _replace_words(rng, text, rng.uniform(0.15, 0.25), vocabulary), kind


def benchmark_corpus(count: int, out: Path, seed: int = 7, eval_count: int = 4000) -> dict:
    """`count` traces (80 % English, 20 % Chinese; prompts ~60 words; responses 300-3,000 words, log-uniform) with
    2 % planted near-duplicates (several edit rates, so several Jaccard bands) and 1 % contaminated English
    prompts (made from an evaluation item in one of the CONTAMINATION_KINDS). Writes corpus.jsonl, eval/ and
    truth.json."""
    rng = random.Random(seed)
    english, chinese = _sentence_pools(rng)
    items = benchmark_eval_items(rng, eval_count)
    rewording = _pseudo_words(random.Random(seed + 1), 5_000)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval" / "medmcqa").mkdir(parents=True, exist_ok=True)
    with (out / "eval" / "medmcqa" / "test.jsonl").open("w", encoding="utf-8") as handle:
        for row in items:
            handle.write(json.dumps(row) + "\n")
    truth: dict[str, list] = {"near_duplicates": [], "contaminated": []}
    edit_rates = (0.01, 0.02, 0.04, 0.07, 0.15)
    recent: list[dict] = []
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for index in range(count):
            roll = rng.random()
            if roll < 0.02 and recent:
                original = rng.choice(recent)
                rate = rng.choice(edit_rates)
                separator = "" if original["lang"] == "zh" else " "
                units = list(original["response"]) if original["lang"] == "zh" else original["response"].split(" ")
                pool = "的了是在有和就" if original["lang"] == "zh" else ["indeed", "clearly", "notably", "then", "also"]
                for position in rng.sample(range(len(units)), max(1, int(rate * len(units)))):
                    units[position] = rng.choice(pool)
                record = {**original, "id": f"doc-{index}", "response": separator.join(units)}
                truth["near_duplicates"].append([original["id"], record["id"], rate])
            else:
                chinese_trace_ = rng.random() < 0.2
                pool, separator = (chinese, "") if chinese_trace_ else (english, " ")
                target = int(math.exp(rng.uniform(math.log(300), math.log(3000))))
                sentences, words = [], 0
                while words < target:
                    sentence = rng.choice(pool)
                    sentences.append(sentence)
                    words += len(sentence) // 2 if chinese_trace_ else sentence.count(" ") + 1
                prompt = separator.join(rng.choice(pool) for _ in range(3 if chinese_trace_ else 4))
                record = {"id": f"doc-{index}", "lang": "zh" if chinese_trace_ else "en", "question": prompt,
                          "response": "<think>\n" + separator.join(sentences) + "\n</think>\n\nThe answer is \\boxed{A}."}
                if roll > 0.99 and not chinese_trace_:
                    item = rng.choice(items)
                    record["question"], kind = _contaminate(rng, item, rewording)
                    truth["contaminated"].append([record["id"], item["id"], kind])
                recent = (recent + [record])[-200:]
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / "truth.json").write_text(json.dumps(truth))
    return truth


def _as_trace(row: dict) -> dict:
    """A trace as the files carry it: prompt, reasoning, response (unclosed ones keep an open think tag)."""
    reasoning = row["reasoning"]
    if row.get("unclosed"):
        response = f"<think>\n{reasoning}"
    else:
        response = f"<think>\n{reasoning}\n</think>\n\n{row['response']}" if row["response"] else f"<think>\n{reasoning}\n</think>"
    return {"id": row["id"], "question": row["question"], "response": response, "topic": row["topic"],
            "finish_reason": row.get("finish_reason", "stop")}


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "quickstart"
    if command == "quickstart":
        target = Path(__file__).resolve().parent.parent / "recipes" / "data" / "quickstart"
        counts = {k: len(v) for k, v in quickstart(target).items()}
        print(f"wrote {target}: {counts}")
    elif command == "corpus" and len(sys.argv) == 4:
        truth = benchmark_corpus(int(sys.argv[2]), Path(sys.argv[3]))
        print(f"wrote {sys.argv[3]}: {len(truth['near_duplicates'])} near duplicates, {len(truth['contaminated'])} contaminated")
    else:
        raise SystemExit("usage: corpus.py quickstart | corpus N OUT")
