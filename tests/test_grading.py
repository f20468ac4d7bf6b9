"""medrecipe.grading: the answer extraction and grading shared by the eval metrics and the RL reward,
on responses written the way reasoning models write them, malformed ones included."""

from __future__ import annotations

import pytest

from medrecipe import grading

OPTIONS = {"A": "Amoxicillin", "B": "Azithromycin", "C": "A beta blocker", "D": "Doxycycline"}


# ------------------------------------------------------------------------------------------ boxed answers


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The answer is \\boxed{B}.", "B"),
        ("\\boxed{\\text{C}}", "\\text{C}"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces stay whole
        ("First \\boxed{A}, then on reflection \\boxed{D}.", "D"),  # several boxes: the last
        ("\\fbox{C}", "C"),
        ("\\boxed {B}", "B"),
        ("no box here", None),
        ("\\boxed{B", None),  # unbalanced: no box
    ],
)
def test_last_boxed(response, expected):
    assert grading.last_boxed(response) == expected


def test_degenerate_responses_are_graded_in_one_pass():
    assert grading.boxed_contents("\\boxed{a \\boxed{b} c") == ["b"]  # the outer box never closes
    assert grading.boxed_contents("} \\boxed{\\boxed{x}} \\fbox{y}") == ["\\boxed{x}", "x", "y"]
    # Degenerate rollouts (the review's): thousands of unclosed boxes, or of blank lines, once cost a scan each
    # (tens of seconds inside OpenRLHF's rollout loop); they are graded in one pass and have no answer.
    assert grading.grade("\\boxed{" * 20000, "B", "choice", CELLS)["extracted"] is None
    assert grading.grade("Reasoning" + "\n" * 50000, "B", "choice", CELLS)["extracted"] is None
    assert grading.grade("Answer:" + " " * 50000, "B", "choice", CELLS)["extracted"] is None  # no backtracking either
    assert grading.grade("Answer:" + " " * 50000, "yes", "yes_no_maybe")["extracted"] is None
    # whitespace runs read as one: the answer survives them
    assert grading.fallback_letter("The final answer is:   \n\n  **(B)**", CELLS) == "B"
    assert grading.fallback_yes_no_maybe("Conclusion:\n\n   yes") == "yes"


def test_boxed_answer_after_the_reasoning_wins_over_boxes_inside_it():
    response = "<think>Maybe \\boxed{A}? No.</think>\nThe answer is \\boxed{C}."
    assert grading.last_boxed(response) == "C"
    # A box only inside the reasoning, with nothing said after it, is no answer: in RL, crediting it would reward
    # leaving the visible answer out (the review measured +1 for it against -1 for an unboxed answer after it).
    assert grading.last_boxed("<think>so \\boxed{B}</think>\n") is None
    assert grading.grade("<think>so \\boxed{B}</think>", "B", "choice", CELLS) == {"correct": False, "extracted": None, "via": None}


def test_a_box_inside_the_reasoning_is_a_draft_when_the_answer_follows_unboxed():
    response = "<think>maybe \\boxed{A}? hmm</think> The answer is B."
    assert grading.last_boxed(response) is None
    assert grading.grade(response, "B", "choice", CELLS) == {"correct": True, "extracted": "B", "via": "fallback"}


CELLS = {"A": "T cells", "B": "Natural killer cells", "C": "B cells", "D": "Macrophages"}


# How reasoning models state a letter without a box (measured on the review's outputs); gold B each time.
@pytest.mark.parametrize("response", ["**Answer:** B", "**Final Answer:** B", "**Final Answer**: B", "The final answer is: B",
                                      "The correct answer is: **B**", "Answer: $B$", "The correct option is B.", "答案是 B",
                                      "答案：B"])
def test_unboxed_letters_as_models_write_them(response):
    assert grading.grade(response, "B", "choice", CELLS)["extracted"] == "B"


@pytest.mark.parametrize(("boxed", "expected"), [
    ("B, Natural killer cells", "B"),  # a comma then the option's text: one answer
    ("\\text{Answer: B}", "B"),
    ("\uff22", "B"),  # full-width B
    ("{B}", "B"),
    ("B Natural killer cells", "B"),
    ("a macrophage", None),  # an article, not option A
    ("A, C", None),  # several options
    ("A or B", None),
    # a letter closed by a parenthesis, or a spaced dash, then the option in other words (the review's outputs)
    ("B) NK cells", "B"),
    ("(B) NK cells", "B"),
    ("\\text{(B) Natural killer cells (innate)}", "B"),
    ("B - Natural killer lymphocytes", "B"),
    ("B — NK cells", "B"),
    ("\\text{B}\\ \\text{Natural killer cells}", "B"),  # a LaTeX space between the letter and its text
    ("B-cells", None),  # a hyphenated word, not option B
    ("Natural killer cells (B)", "B"),  # the option's text, then its letter
    ("Macrophages (B)", None),  # option D's text with B's letter: no single answer
    ("(B) or (C)", None),
])
def test_boxed_contents_as_models_write_them(boxed, expected):
    assert grading.choice_letter(boxed, CELLS) == expected


def test_a_letter_followed_by_words_is_not_taken_from_a_sentence():
    ten = {letter: f"option {letter}" for letter in "ABCDEFGHIJ"}  # MMLU-Pro: I is an option
    assert grading.choice_letter("I think B", ten) is None
    assert grading.fallback_letter("The answer is I think C.", ten) is None  # the pronoun, not option I
    assert grading.fallback_letter("The answer is I.", ten) == "I"


def test_final_region_is_what_follows_the_last_think():
    assert grading.final_region("<think>a</think><think>b</think> final") == " final"
    assert grading.final_region("no tags") == "no tags"
    assert grading.final_region("<think>unfinished reasoning") == ""


# Cut off while reasoning (the token limit, or a loop): the drafts in it are no answer, as final_answer shows a judge
# nothing of such a response. Gold B each time; the drafts name B.
@pytest.mark.parametrize("response", [
    "<think>\nOkay, polyuria after head injury, high sodium... central DI, so maybe \\boxed{B}? But wait, let me check",
    "<think>\nOkay. The answer is B? Hmm, wait, let me reconsider option C. Wait, wait, wait, wait",
])
def test_a_response_cut_off_while_reasoning_has_no_answer(response):
    assert grading.grade(response, "B", "choice", CELLS) == {"correct": False, "extracted": None, "via": None}
    assert grading.final_answer(response) == ""


# ---------------------------------------------------------------------------------------------- letters


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(D)", "D"),
        ("B. Azithromycin", "B"),
        ("B: Azithromycin", "B"),
        ("\\text{B}", "B"),
        ("\\textbf{(A)}", "A"),
        ("**C**", "C"),
        ("Option D", "D"),
        ("Doxycycline", "D"),  # the option's text instead of its letter
        ("doxycycline.", "D"),
        ("A beta blocker", "C"),  # an option's text that starts like a letter names that option
        ("A or B", None),
        ("A, C", None),
        ("E", None),  # not an option
        ("42", None),
    ],
)
def test_choice_letter(answer, expected):
    assert grading.choice_letter(answer, OPTIONS) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("After weighing them, the answer is B.", "B"),
        ("Final answer: (D)", "D"),
        ("**Answer: C**", "C"),
        ("Option A is correct because it covers atypicals.", "A"),
        ("Reasoning...\n\nD\n", "D"),
        ("So the answer is a beta blocker.", "C"),  # "a" is an article, not option A: the words are option C's text
        ("So the answer is a beta blocker or doxycycline.", None),
        # an answer labelled final is not overruled by the explanation after it
        ("**Final Answer:** B. Azithromycin\n\nWhy not the others: the answer A would miss atypicals.", "B"),
        ("Answer: B and D", None),  # several options
        ("Answer: (A) or (C)", None),
        ("**Answer:** **B** and **D**", None),
        ("I am not sure.", None),
        ("The answer is E.", None),  # no such option
        # a name that begins with a capital letter and a digit names no option (found by review: B was read)
        ("Macrocytosis with neuropathy means the answer is B12 deficiency.", None),
        ("The answer is D5W.", None),
        ("答案是B12缺乏", None),
        ("Answer: C2 is spared, so the answer is C.", "C"),
    ],
)
def test_fallback_letter(response, expected):
    assert grading.fallback_letter(response, OPTIONS) == expected


# --------------------------------------------------------------------------------------- yes / no / maybe


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("yes", "yes"), ("No.", "no"), ("\\text{Maybe}", "maybe"), ("YES", "yes"), ("yes and no", None), ("perhaps", None),
     ("Not yes", None), ("definitely not no", None), ("No, it does not", "no"), ("Yes (not in children)", "yes"),
     ("isn't yes", None), ("not a yes", None)],
)
def test_yes_no_maybe(answer, expected):
    assert grading.yes_no_maybe(answer) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The evidence supports it, so the answer is yes.", "yes"),
        ("Conclusion: no", "no"),
        ("The answer is: maybe", "maybe"),
        ("Considering both trials...\nMaybe.", "maybe"),
        ("It depends on many factors.", None),
    ],
)
def test_fallback_yes_no_maybe(response, expected):
    assert grading.fallback_yes_no_maybe(response) == expected


# ------------------------------------------------------------------------------------------------ grade


def test_grade_boxed_letter_is_correct_and_reported_as_boxed():
    response = "<think>Atypical pneumonia in a young adult... macrolide.</think>\nThe answer is \\boxed{B}."
    assert grading.grade(response, "B", "choice", OPTIONS) == {"correct": True, "extracted": "B", "via": "boxed"}


def test_grade_unboxed_letter_counts_as_a_fallback():
    result = grading.grade("Therefore the answer is B.", "B", "choice", OPTIONS)
    assert result == {"correct": True, "extracted": "B", "via": "fallback"}


def test_grade_wrong_box_is_wrong_even_if_the_text_names_the_gold():
    result = grading.grade("The answer is B... no wait. \\boxed{D}", "B", "choice", OPTIONS)
    assert result == {"correct": False, "extracted": "D", "via": "boxed"}


def test_grade_unreadable_box_is_not_rescued_by_the_fallback():
    # The model did box something: what it boxed decides, and it names no option.
    result = grading.grade("The answer is B. \\boxed{42}", "B", "choice", OPTIONS)
    assert result == {"correct": False, "extracted": None, "via": None}


def test_grade_option_text_in_the_box():
    assert grading.grade("\\boxed{Azithromycin}", "B", "choice", OPTIONS)["correct"]


def test_grade_no_answer_at_all():
    assert grading.grade("I cannot answer medical questions.", "A", "choice", OPTIONS) == {
        "correct": False, "extracted": None, "via": None}


def test_grade_yes_no_maybe():
    assert grading.grade("\\boxed{\\text{yes}}", "yes", "yes_no_maybe") == {"correct": True, "extracted": "yes", "via": "boxed"}
    assert grading.grade("so the answer is no", "no", "yes_no_maybe") == {"correct": True, "extracted": "no", "via": "fallback"}
    assert not grading.grade("\\boxed{maybe}", "yes", "yes_no_maybe")["correct"]


def test_grade_what_models_write_that_was_misread():
    """Found by review, each reproduced (the first through lighteval's own classes on a compiled task)."""
    # a bare boxed letter is the option of that letter, when the options' texts are letters too
    vitamins = {"A": "B", "B": "C", "C": "D", "D": "E"}
    assert grading.grade("<think>option B.</think>\n\n\\boxed{B}", "B", options=vitamins)["extracted"] == "B"
    assert grading.grade("\\boxed{C}", "B", options={"A": "O", "B": "A", "C": "B", "D": "AB"})["extracted"] == "C"
    assert grading.grade("\\boxed{AB}", "D", options={"A": "O", "B": "A", "C": "B", "D": "AB"})["correct"]
    # an empty box, echoed from the prompt, does not cancel the answer
    options = {"A": "x", "B": "y", "C": "z", "D": "w"}
    echoed = "The answer is \\boxed{B}.\n\n(As requested, the final answer is placed within \\boxed{}.)"
    assert grading.grade(echoed, "B", options=options) == {"correct": True, "extracted": "B", "via": "boxed"}
    assert grading.grade("I will put my final answer within \\boxed{}.\n\nThe answer is B.", "B", options=options)["via"] == "fallback"
    assert grading.grade("I will answer within \\boxed{}. The answer is yes.", "yes")["correct"]
    # a "no" in a trailing note is no decision
    assert grading.grade("Yes.\n\nNote: no randomized trials exist.", "yes")["correct"]
    assert grading.grade("**Yes**\n\nThe study found no difference in the control arm.", "yes")["correct"]
    assert grading.grade("In summary, the data support yes.\n\nLimitations: no blinding.", "yes")["extracted"] is None
    # full-width letters and brackets, unboxed
    for response in ("The answer is Ｂ.", "答案是Ｂ", "答案：（B）", "答案为（B）"):
        assert grading.grade(response, "B", options=options)["extracted"] == "B", response


def test_grade_kind_is_derived_from_the_gold():
    assert grading.answer_kind("C") == "choice"
    assert grading.answer_kind("(C)") == "choice"
    assert grading.answer_kind("Maybe") == "yes_no_maybe"
    assert grading.answer_kind("0.25") == "free"


@pytest.mark.parametrize(
    ("response", "gold", "correct"),
    [
        ("\\boxed{0.5}", "1/2", True),
        ("\\boxed{50\\%}", "50%", True),
        ("\\boxed{1,000}", "1000", True),
        ("\\boxed{\\text{Vitamin C}}", "vitamin c", True),
        ("\\boxed{3}", "4", False),
        ("The answer is 4", "4", False),  # free answers need a box
        # what tells answers apart survives normalising: Greek letters, micro, signs, minus and dashes
        ("\\boxed{α-blocker}", "β-blocker", False),
        ("\\boxed{beta-blocker}", "β-blocker", True),
        ("\\boxed{5 g}", "5 µg", False),
        ("\\boxed{> 7\\%}", "< 7%", False),
        ("\\boxed{5}", "−5", False),
        ("\\boxed{-5}", "−5", True),
        ("\\boxed{1020}", "10–20", False),
        ("\\boxed{10-20}", "10–20", True),
        # numbers as LaTeX and people write them
        ("\\boxed{\\frac{1}{2}}", "0.5", True),
        ("\\boxed{\\dfrac12}", "1/2", True),
        ("\\boxed{1{,}000}", "1000", True),
        ("\\boxed{1\\,000}", "1000", True),
        ("\\boxed{2.5 \\times 10^{3}}", "2500", True),
        ("\\boxed{0.5}", "50%", True),
        ("\\boxed{50\\%}", "0.5", True),
        ("\\boxed{5mg}", "5 mg", True),
        ("\\boxed{5}", "5 mg", True),  # the unit left out
        ("\\boxed{5 g}", "5 mg", False),  # another unit
        ("\\boxed{5 mg}", "5 mg/kg", False),
    ],
)
def test_grade_free_answers(response, gold, correct):
    assert grading.grade(response, gold, "free")["correct"] is correct


WARFARIN = {"A": "Aspirin", "B": "Warfarin", "C": "Heparin", "D": "Clopidogrel"}
PRELOAD = {"A": "Increased afterload", "B": "Decreased contractility", "C": "A decrease in preload", "D": "Increased heart rate"}


@pytest.mark.parametrize(
    ("response", "options", "extracted"),
    [
        # an option's text that opens with the article "A" is that option, not option A
        ("**Final Answer:** A decrease in preload", PRELOAD, "C"),
        ("The answer is A decrease in preload.", PRELOAD, "C"),
        ("A. Increased afterload is not it.\nThe answer is D", PRELOAD, "D"),
        # hedges that name another option with its text are no single answer
        ("\\boxed{B. Warfarin or C. Heparin}", WARFARIN, None),
        ("\\boxed{B: Warfarin, C: Heparin, D: Clopidogrel}", WARFARIN, None),
        ("The answer is B. Warfarin or C. Heparin", WARFARIN, None),
        ("\\boxed{B. Deficiency}", {"A": "x", "B": "Deficiency of vitamins A and D", "C": "y", "D": "z"}, "B"),
        ("The answer is B. Deficiency of vitamins A and D", {"A": "x", "B": "Deficiency of vitamins A and D", "C": "y", "D": "z"}, "B"),
        # answers stated without a box
        ("**B. Warfarin**", WARFARIN, "B"),
        ("It blocks vitamin K recycling.\n(B) Warfarin", WARFARIN, "B"),
        ("B is the correct answer.", WARFARIN, "B"),
        ("The best choice is B.", WARFARIN, "B"),
        ("综上，故选B", WARFARIN, "B"),
        ("The answer is B because it inhibits vitamin K epoxide reductase.", WARFARIN, "B"),
    ],
)
def test_choice_answers_as_models_state_them(response, options, extracted):
    assert grading.grade("<think>\nreasoning\n</think>\n\n" + response, "B", options=options)["extracted"] == extracted


def test_a_bold_final_answer_decides_yes_no_maybe():
    assert grading.grade("**Final Answer**: yes", "yes")["extracted"] == "yes"


def test_long_lines_after_a_letter_are_graded_in_one_pass():
    # a pattern run over the whole line after "B." would backtrack on these for minutes
    assert grading.grade("B. " + "." * 50_000 + "x", "B", options=WARFARIN)["extracted"] is None
    assert grading.grade("The answer is B. " + "." * 50_000, "B", options=WARFARIN)["extracted"] == "B"
    assert grading.grade("B, " * 20_000, "B", options=WARFARIN)["extracted"] is None


def test_a_long_run_of_whitespace_in_an_answer_costs_its_length():
    """A policy's output is grown, not written: a box holding a run of spaces or newlines (a loop) made the times-ten
    pattern's leading \\s* and the "text (B)" match scan the run once per place in it (200,000 spaces: minutes for one
    reward). They come back at once, graded as before."""
    options = {"A": "Aspirin", "B": "Beta blocker"}
    assert grading.grade("\\boxed{" + " " * 200_000 + "5}", "5")["correct"]
    assert grading.grade("\\boxed{2.5" + "\n" * 200_000 + "\\times 10^{3}}", "2500")["correct"]
    assert grading.choice_letter("Beta blocker" + " " * 200_000 + "(B)", options) == "B"
    assert grading.choice_letter("Beta blocker" + " " * 200_000 + "(Q)", options) is None


DI = {"A": "Nephrogenic diabetes insipidus", "B": "Central diabetes insipidus", "C": "Primary polydipsia", "D": "SIADH"}
VITAMINS = {"A": "Vitamin C", "B": "Vitamin D", "C": "Vitamin D deficiency", "D": "Vitamin K"}
REASONING = "<think>\nLow urine osmolality that rises after desmopressin: the posterior pituitary makes too little ADH.\n</think>\n\n"


@pytest.mark.parametrize(
    ("response", "options", "extracted"),
    [
        # an unboxed answer that states an option's whole text is that option, as the letter would be
        ("The answer is Central diabetes insipidus.", DI, "B"),
        ("**Final Answer:** Central diabetes insipidus", DI, "B"),
        ("The correct answer is: **central diabetes insipidus**\n\nDesmopressin corrects it.", DI, "B"),
        ("So the answer is Nephrogenic diabetes insipidus. The kidney ignores ADH.", DI, "A"),
        ("So the answer is Vitamin D.", VITAMINS, "B"),
        ("The answer is Vitamin D deficiency.", VITAMINS, "C"),  # the longer option, not its first words
        ("The answer is C. On reflection, the answer is Vitamin D.", VITAMINS, "B"),  # the last statement
        # look-alikes: a part of a name, a longer name, a negation, hedges, an unlabelled mention
        ("The answer is diabetes insipidus.", DI, None),
        ("The answer is central diabetes insipidus or primary polydipsia.", DI, None),
        ("The answer is not primary polydipsia.", DI, None),
        ("The answer is Vitamin D or Vitamin K.", VITAMINS, None),
        ("The answer is Vitamin D, C or K.", VITAMINS, None),
        ("The answer is Vitamin D3.", VITAMINS, None),
        ("Central diabetes insipidus fits best, although SIADH was considered.", DI, None),
        ("The answer is Vitamin C.", {"A": "Vitamin C", "B": "Vitamin C", "C": "x", "D": "y"}, None),  # shared text
    ],
)
def test_an_unboxed_answer_stating_an_options_text_is_that_option(response, options, extracted):
    assert grading.fallback_letter(REASONING + response, options) == extracted


def test_a_stated_option_text_is_scored_as_its_letter():
    # in eval an unboxed answer counts as a fallback: stating the text must score as stating the letter did
    by_letter = grading.grade(REASONING + "The answer is B.", "B", options=DI)
    by_text = grading.grade(REASONING + "The answer is Central diabetes insipidus.", "B", options=DI)
    assert by_text == by_letter == {"correct": True, "extracted": "B", "via": "fallback"}
    assert not grading.grade(REASONING + "The answer is Primary polydipsia.", "B", options=DI)["correct"]


CHINESE_VITAMINS = {"A": "维生素A", "B": "维生素B12", "C": "维生素C", "D": "维生素D"}
DISEASES = {"A": "高血压", "B": "糖尿病", "C": "冠心病", "D": "哮喘"}


@pytest.mark.parametrize(
    ("response", "options", "extracted"),
    [
        # options in Chinese are told apart by their text: an ASCII fold made 高血压 and 糖尿病 both empty, and
        # 维生素D the letter "d"
        ("\\boxed{糖尿病}", DISEASES, "B"),
        ("\\boxed{维生素C}", CHINESE_VITAMINS, "C"),
        ("\\boxed{维生素B12}", CHINESE_VITAMINS, "B"),
        ("答案：维生素C", CHINESE_VITAMINS, "C"),
        ("答案是维生素C。因为它是抗氧化剂。", CHINESE_VITAMINS, "C"),  # the sentence ends at 。
        ("故选糖尿病", DISEASES, "B"),
        ("**答案：** 糖尿病", DISEASES, "B"),
        ("The answer is 冠心病.", DISEASES, "C"),
        ("答案是D", CHINESE_VITAMINS, "D"),
        # look-alikes: a hedge, a longer name, a letter and words that are no option
        ("答案是维生素C或维生素D", CHINESE_VITAMINS, None),
        ("答案是维生素C缺乏症", CHINESE_VITAMINS, None),
        ("\\boxed{A 哮喘}", DISEASES, None),
        ("\\boxed{维生素}", CHINESE_VITAMINS, None),
    ],
)
def test_options_in_chinese_are_read_by_their_text(response, options, extracted):
    assert grading.grade(REASONING + response, extracted or "A", options=options)["extracted"] == extracted


def test_normalize_keeps_every_scripts_letters_and_drops_accents():
    assert grading.normalize("糖尿病") != grading.normalize("高血压")
    assert grading.normalize("维生素D") == "维生素d"
    assert grading.normalize("Café-au-lait  spots") == grading.normalize("cafe-au-lait spots") == "cafe-au-lait spots"
    assert grading.normalize("snake_case") == "snake case"


LETTERED_VITAMINS = {"A": "B", "B": "C", "C": "D", "D": "K"}  # "Which vitamin ...?": options whose texts are letters
BLOOD_GROUPS = {"A": "A", "B": "B", "C": "AB", "D": "O"}


@pytest.mark.parametrize(
    ("response", "options", "extracted"),
    [
        # a letter of the options stated alone is that option, as in a box, though another option's text is that letter
        ("The answer is B.", LETTERED_VITAMINS, "B"),
        ("Answer: **B**", LETTERED_VITAMINS, "B"),
        ("答案是C", LETTERED_VITAMINS, "C"),
        ("\\boxed{B}", LETTERED_VITAMINS, "B"),
        # a text that is no letter of the options is that option's text
        ("The answer is O.", BLOOD_GROUPS, "D"),
        ("The answer is AB.", BLOOD_GROUPS, "C"),
        ("The answer is K.", LETTERED_VITAMINS, "D"),
    ],
)
def test_a_stated_letter_is_its_option_though_another_options_text_is_that_letter(response, options, extracted):
    assert grading.grade(REASONING + response, extracted, options=options) == {
        "correct": True, "extracted": extracted, "via": "boxed" if "boxed" in response else "fallback"}


def test_a_response_full_of_answer_labels_costs_its_length():
    # each label reads only up to the next one and as far as an option's text could reach: no stretch twice
    long = {"A": "x" * 2000, "B": "Vitamin D"}
    assert grading.grade("The answer is " * 30_000, "B", options=long)["extracted"] is None
    assert grading.grade("answer:" * 100_000, "B", options=long)["extracted"] is None
    assert grading.grade(("The answer is " + "Vitamin D " * 300) * 100, "B", options=long)["extracted"] is None


def test_a_line_of_repeated_labels_with_options_is_read_once_per_label():
    """Found by review: with options, what followed each stated letter was read to the end of its line, so a 109 kB
    line of "The answer is B. " took 19 s to grade (a looping rollout); each is read a bounded stretch now."""
    options = {"A": "Vitamin C", "B": "Vitamin D", "C": "Calcium", "D": "Iron"}
    assert grading.grade("<think>x</think>" + "The answer is B. " * 6400, "B", options=options)["extracted"] == "B"
    assert grading.grade("The answer is B. Vitamin D, or C. Calcium.", "B", options=options)["extracted"] is None  # a hedge
