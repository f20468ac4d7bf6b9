"""Answer extraction and grading: the one definition shared by the RL reward, the eval metrics and rejection sampling.

Standard library only. `compile` embeds this module's source into `rl/reward.py` and `eval/tasks.py`,
which run inside OpenRLHF's and lighteval's environments where medrecipe is not installed.
"""

from __future__ import annotations

import re
import unicodedata

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
YES_NO_MAYBE = ("yes", "no", "maybe")

_THINK_CLOSE = "</think>"
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE = re.compile(r"[{}]")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|emph|operatorname)\s*\{([^{}]*)\}")
# The fallback patterns read text whose whitespace runs are squeezed to one character (`_squeezed`), and their
# quantifiers are bounded: a degenerate rollout (50,000 spaces after "Answer:") costs no backtracking.
# The letter itself is matched case-sensitively ((?-i:...)): "the answer is a beta blocker" names no option; a letter
# followed by another ("B and D", "A or C") names several options and no single answer; nor does a letter that begins
# a name ("the answer is B12 deficiency", "G6PD", "D5W": found by review, B was read).
_STATED_LETTER = (r"\*{0,2}\s?\$?\s?(?:option\s?|choice\s?)?\*{0,2}\(?((?-i:[A-Z]))\)?\$?\*{0,2}(?![A-Za-z0-9])"
                  r"(?![\s*$)]{0,6}(?:,|and\b|or\b|&|/)[\s*$(]{0,6}(?:option\s?)?(?-i:[A-Z])\b)")
# Tried in order; the first that matches decides, with its last match. An answer labelled final comes first, so that
# "**Final Answer:** B" is not overruled by an explanation that follows ("the answer A would give low sodium");
# otherwise the label needs "is" or a colon ("Answer: B", "The correct answer is: **(B)**", "Answer: $B$",
# "The correct option is B", "答案是 B").
_ANSWER_LABELS = [r"final answer\*{0,2}\s?(?:is\s?:?|:)?\s?",
                  r"(?:(?:correct|best|right) (?:answer|option|choice)|answer)\*{0,2}\s?(?:is\s?:?|:)\s?",
                  r"(?:答案\s?(?:是|为)?|故选|应选|选择)\s?:?\s?"]  # the region is NFKC: "：" is ":" there
_FALLBACK_LETTER = [
    re.compile(_ANSWER_LABELS[0] + _STATED_LETTER, re.I),
    re.compile(_ANSWER_LABELS[1] + _STATED_LETTER, re.I),
    re.compile(_ANSWER_LABELS[2] + r"\*{0,2}\(?([A-Z])\)?(?![A-Za-z0-9])"),
    re.compile(r"(?:option|choice)\s?\(?([A-Z])\)?\s?(?:is\s?(?:the\s?)?correct)", re.I),
    re.compile(r"(?<![A-Za-z])\(?((?-i:[A-Z]))\)?\*{0,2} is (?:the )?(?:correct|right|best) (?:answer|option|choice)", re.I),
    re.compile(r"^ ?\*{0,2}\(?([A-Z])\)?[.:)]?\*{0,2} ?$", re.M),  # a letter on a line of its own
]
# The same labels alone, for an option stated by its text ("The answer is Vitamin D.", "答案是维生素C"): by pattern
# index above.
_TEXT_AFTER = {index: re.compile(label, re.I) for index, label in enumerate(_ANSWER_LABELS)}
_STATED_YES_NO_MAYBE = re.compile(r"(?:answer|conclusion)\*{0,2}\s?(?:is\s?:?|:)\s?\*{0,2}\s?(yes|no|maybe)\b", re.I)
_WHITESPACE_RUN = re.compile(r"\s+")
_PRONOUN_I = re.compile(r"\s+[a-z]")  # "The answer is I think C": the pronoun, not option I
_LATEX_SPACE = re.compile(r"\\(?:[ ,;:!]|quad\b|qquad\b)")
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is)?\s*[:：]?\s*", re.I)
# Characters an ASCII fold would drop, spelled out (NFKD has already made the micro sign a Greek mu).
_GREEK = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega"
_SPELLED = str.maketrans(
    {chr(0x3B1 + i): name for i, name in enumerate(_GREEK.split()) if i < 17}  # α..ρ (ς, U+03C2, is skipped below)
    | {chr(0x3C3 + i): name for i, name in enumerate(_GREEK.split()[17:])}  # σ..ω
    | {chr(0x391 + i): name for i, name in enumerate(_GREEK.split()) if i < 17}
    | {chr(0x3A3 + i): name for i, name in enumerate(_GREEK.split()[17:])}
    | {"ς": "sigma", "−": "-", "–": "-", "—": "-", "‐": "-", "‑": "-", "≥": ">=", "≤": "<=", "±": "+/-", "×": "x",
       "。": ". "}  # the ideographic full stop ends a sentence as ". " does: "答案是维生素C。因为" states 维生素C
)
_NOT_KEPT = re.compile(r"(?:[^\w.%/<>=+\- ]|_)+")  # what normalize() turns to spaces: \w is any script's letters and digits
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\s*(?:\{([^{}]*)\}|(\d))\s*(?:\{([^{}]*)\}|(\d))")
_LATEX_TIMES_TEN = re.compile(r"\s*(?:\\times|\\cdot|×|x|\*)\s*10\s*\^\s*\{?\s*([+-−]?\d+)\s*\}?")


def final_region(response: str) -> str:
    """The part of a response that holds the final answer, as `final_answer` shows it to a judge: what follows the
    last `</think>`, the whole response when it has no think block. An answer only inside the reasoning is a draft,
    not the model's answer: a response that closed its reasoning and said nothing after it, or one cut off while
    reasoning (the token limit, or a loop of "Wait, is it B?"), has none. (In RL, crediting the reasoning's box
    would reward leaving the visible answer out.)"""
    if _THINK_CLOSE in response:
        return response.rsplit(_THINK_CLOSE, 1)[1]
    return "" if "<think>" in response else response


def final_answer(response: str) -> str:
    """A reasoning model's answer without its reasoning, as a judge is shown it: the final region, stripped. What
    follows `</think>` counts whether or not the response itself opened the block (a chat template may have opened
    it in the prompt)."""
    return final_region(response).strip()


def _squeezed(text: str) -> str:
    """Every run of whitespace as one newline where it holds one, else one space."""
    return _WHITESPACE_RUN.sub(lambda run: "\n" if "\n" in run.group() else " ", text)


def boxed_contents(text: str) -> list[str]:
    """Contents of every `\\boxed{...}` (balanced braces, so nested LaTeX stays whole), in the order they open; a box
    that never closes has none. One pass over the braces, however many boxes never close."""
    starts = [match.end() for match in _BOX.finditer(text)]  # just past each box's opening brace
    if not starts:
        return []
    found: dict[int, str] = {}
    open_boxes: list[tuple[int, int]] = []  # (where its contents start, the depth inside it)
    depth, following = 0, 0
    for brace in _BRACE.finditer(text, starts[0] - 1):
        if brace.group() == "{":
            depth += 1
            if following < len(starts) and brace.end() == starts[following]:
                open_boxes.append((starts[following], depth))
                following += 1
        else:
            if open_boxes and open_boxes[-1][1] == depth:
                start, _ = open_boxes.pop()
                found[start] = text[start : brace.start()]
            depth -= 1
    return [found[start] for start in starts if start in found]


def last_boxed(response: str) -> str | None:
    """The last boxed answer of the final region. A box inside the reasoning is a draft: after `</think>` the answer
    is what the model says there, boxed or not. An empty box holds no answer (models echo the prompt's "put your
    final answer within \\boxed{}"), and is passed over."""
    boxes = [content for content in boxed_contents(final_region(response)) if content.strip()]
    return boxes[-1] if boxes else None


def strip_latex(text: str) -> str:
    for _ in range(4):  # \text{\textbf{B}}: each pass unwraps one level; no answer nests deeper
        text = _TEXT_WRAPPER.sub(r"\1", text)
    text = _LATEX_SPACE.sub(" ", text).replace("\\%", "%").replace("\\$", "$").replace("$", "")
    return text.strip()


def normalize(text: str) -> str:
    """Lower case, no accents, LaTeX wrappers, punctuation or extra spaces: for comparing free-form answers. What tells
    answers apart survives: the letters of every script ("糖尿病" is not "高血压": an ASCII fold made both empty, and
    "维生素D" the letter "d"), Greek letters as their names ("β-blocker" is not "α-blocker"), micro as "mu" ("5 µg" is
    not "5 g"), minus signs and dashes as "-", and the signs < > = + ("> 7%" is not "< 7%")."""
    text = unicodedata.normalize("NFKD", strip_latex(text)).translate(_SPELLED)
    if not text.isascii():  # the accents off
        text = "".join(character for character in text if not unicodedata.combining(character))
    text = _NOT_KEPT.sub(" ", text.lower())
    return " ".join(text.split()).strip(" .")


def choice_letter(answer: str, options: dict[str, str] | None = None) -> str | None:
    """A single option letter from an answer like `B`, `(B)`, `B. Aspirin`, `B, Aspirin`, `\\text{Answer: B}`, `Ｂ`
    or the option's text."""
    text = unicodedata.normalize("NFKC", strip_latex(answer)).strip().strip("*").strip()
    while text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = _ANSWER_PREFIX.sub("", text).strip("*").strip()
    valid = set(options) if options else set(LETTERS)
    # A bare letter is that option, whatever the options say: the prompt letters them, and an option whose text is a
    # letter ("vitamin: A. B  B. C", blood groups) would otherwise take the answer.
    if (bare := re.fullmatch(r"\(?([A-Z])\)?", text)) and bare.group(1) in valid:
        return bare.group(1)
    if options:
        # The whole answer is an option's text: "A beta blocker" names that option, not option A.
        wanted = normalize(text)
        hits = [letter for letter, option in options.items() if normalize(option) == wanted]
        if len(hits) == 1:
            return hits[0]
        # The option's text with its letter after it: "Central diabetes insipidus (B)".
        # Found, then cut: matched as `(.+?)\s*\(([A-Z])\)`, a run of spaces cost its square.
        named = re.search(r"\(([A-Z])\)\Z", text)
        if named and text[: named.start()].strip() and named.group(1) in options and \
                normalize(text[: named.start()]) == normalize(options[named.group(1)]):
            return named.group(1)
    match = re.fullmatch(r"(?:option\s*|choice\s*)?(\()?([A-Za-z])(\))?((?:[.:),\-–—]|\s).*)?", text, re.I | re.S)
    if not match or match.group(2).upper() not in valid:
        return None
    letter, rest = match.group(2).upper(), (match.group(4) or "").strip()
    if not rest:
        return letter
    # "A or B", "A, C" name several options and are no single answer.
    several = re.match(r"^(?:,|and\b|or\b|&|/)\s*(?:option\s*)?\(?([A-Za-z])\)?(?![A-Za-z])", rest, re.I)
    if several and several.group(1).upper() in valid:
        return None
    # "B. Aspirin", "B) Aspirin", "(B) Aspirin", "B, Aspirin", "B - Aspirin": an upper-case letter and a separator (a
    # dash with a space after it: "B-cell lymphoma" is no letter); otherwise ("a macrophage", "I think B") the words
    # after the letter must be that option's text.
    if options and _names_another_option(rest, letter, options):
        return None
    closed = match.group(3) is not None
    dashed = rest[0] in "-–—" and rest[1:2].isspace()
    if match.group(2).isupper() and (closed or rest[0] in ".:)," or dashed):
        return letter
    said = normalize(rest.lstrip(".:),-–— "))
    return letter if options and letter in options and said and said == normalize(options[letter]) else None


def _names_another_option(rest: str, letter: str, options: dict[str, str]) -> bool:
    """Whether what follows an answer's letter names another option with its text: "B. Warfarin or C. Heparin",
    "B: Warfarin, C: Heparin" hedge between options and are no single answer."""
    for piece in re.split(r",|;|/|\bor\b|\band\b", rest):
        named = re.fullmatch(r"\(?([A-Z])\)?[.:)]\s*(.+)", piece.strip(), re.S)
        if named and named[1] != letter and named[1] in options and normalize(named[2]) == normalize(options[named[1]]):
            return True
    return False


def _option_text_at(text: str, options: dict[str, str]) -> str | None:
    """The option whose whole text `text`'s line opens with ("A decrease in preload." is that option, whatever its
    letter, not option A), the longest such."""
    line = normalize(text.split("\n", 1)[0])
    opened = [(len(wanted), letter) for letter, option in options.items()
              if (wanted := normalize(option)) and (line == wanted or line.startswith(wanted + " "))]
    return max(opened)[1] if opened else None


def _stated_option_text(region: str, start: int, stop: int, texts: dict[str, str]) -> str | None:
    """The one option whose whole text is what a label states, as its own sentence: "The answer is Vitamin D." or
    "**Final Answer:** Central diabetes insipidus" (normalized). Not a longer name ("Vitamin D deficiency"), a hedge
    ("Vitamin D or Vitamin C"), a negation ("not Vitamin D") or a text that two options share. What is read ends at
    the line's end, at `stop` (the next label) or where no option's text could reach, so that a response full of
    labels costs its length. `texts`: each option's normalized text, by letter."""
    reach = min(stop, start + 2 * max((len(text) for text in texts.values()), default=0) + 32)
    newline = region.find("\n", start, reach)
    said = normalize(region[start : newline if newline >= 0 else reach])
    whole = newline >= 0 or reach == len(region)  # read to the statement's end, not cut at a label or the reach
    hits = [letter for letter, wanted in texts.items() if said.startswith(wanted + ". ") or (whole and said == wanted)]
    return hits[0] if len(hits) == 1 else None


def _lettered_option_lines(region: str, options: dict[str, str]) -> list[str]:
    """Lines that are an option's letter and its text, alone ("**B. Warfarin**", "(B) Warfarin"). The letter is found
    by a bounded pattern and normalize() judges the rest: no pattern runs over a whole line, which could backtrack."""
    found = []
    for line in region.splitlines():
        lettered = re.match(r"[\s*#>]{0,8}\(?([A-Z])\)?[.:)]", line)
        if lettered and lettered[1] in options and normalize(line[lettered.end():]) == normalize(options[lettered[1]]):
            found.append(lettered[1])
    return found


def fallback_letter(response: str, options: dict[str, str] | None = None) -> str | None:
    """An option letter stated without a box ("The answer is B", "答案是Ｂ", "故选B", "B is the correct answer"), from
    the final region (full-width letters and brackets read as their ASCII forms); with the options, a stated option
    text ("The answer is A decrease in preload", "The answer is Vitamin D.": the option's whole text, as its own
    sentence after the label) and a line holding an option's letter and text alone count too."""
    region = unicodedata.normalize("NFKC", _squeezed(final_region(response)))
    valid = set(options) if options else set(LETTERS)
    texts = {letter: wanted for letter, option in (options or {}).items() if (wanted := normalize(option))}
    # What follows a stated letter is read to its line's end or this far, whichever comes first: an option's text and a
    # hedge naming another fit in it, and a line of 6,400 "The answer is B." is read once per label, not to its end
    # from each (19 s for 109 kB: found by review).
    reach = 4 * max((len(option) for option in (options or {}).values()), default=0) + 256
    for index, pattern in enumerate(_FALLBACK_LETTER):
        matches, lettered = [], set()  # (where the label starts, the letter); where a letter followed a label
        for m in pattern.finditer(region):
            lettered.add(m.start())
            letter = m.group(1).upper()
            if letter == "I" and _PRONOUN_I.match(region, m.end()):
                continue
            if options:
                end = min(len(region), m.start(1) + reach)  # what is stated: to the line's end, or the reach
                stated = region[m.start(1) : (newline if (newline := region.find("\n", m.start(1), end)) != -1 else end)]
                # A letter of the options stated alone is that option, as in a box (choice_letter), though another
                # option's text be that letter ("The answer is B." with "A. B  B. C": vitamins, blood groups).
                alone = letter in options and normalize(stated) == letter.lower()
                named = None if alone else _option_text_at(stated, options)
                if named is None and _names_another_option(stated[1:], letter, options):
                    continue
                letter = named or letter
            if letter in valid:
                matches.append((m.start(), letter))
        if options and index in _TEXT_AFTER:  # a label with no letter after it may state an option's whole text
            labels = list(_TEXT_AFTER[index].finditer(region))
            for label, following in zip(labels, labels[1:] + [None]):
                stop = following.start() if following else len(region)  # each stretch of text is read once
                if label.start() not in lettered and (named := _stated_option_text(region, label.end(), stop, texts)):
                    matches.append((label.start(), named))
        if matches:
            return max(matches)[1]
    lines = _lettered_option_lines(region, options) if options else []
    return lines[-1] if lines else None


_NEGATIONS = {"not", "never", "nor", "neither", "isn", "isnt", "aren", "arent", "cannot"}


def yes_no_maybe(answer: str) -> str | None:
    """The one decision a boxed answer names: "Yes", "No, it does not"; none for two ("yes and no") or for a negated
    one ("not yes", "definitely not no"), which says what the answer is not."""
    words = re.findall(r"[a-z]+", normalize(answer))
    hits = [w for w in words if w in YES_NO_MAYBE]
    # A negation up to two words before the decision ("not yes", "not a yes", "isn't yes": normalize() splits "isn t").
    negated = any(word in YES_NO_MAYBE and _NEGATIONS & set(words[max(0, index - 2):index]) for index, word in enumerate(words))
    return hits[0] if len(set(hits)) == 1 and not negated else None


def fallback_yes_no_maybe(response: str) -> str | None:
    """A decision stated without a box: "The answer is yes", "Conclusion: no", else a line that is the decision alone
    ("**Yes.**"); the last of them. A "no" inside a sentence ("Note: no trials exist") decides nothing."""
    region = _squeezed(final_region(response))
    stated = _STATED_YES_NO_MAYBE.findall(region)
    if stated:
        return stated[-1].lower()
    alone = [normalize(line) for line in region.splitlines() if normalize(line) in YES_NO_MAYBE]
    return alone[-1] if alone else None


def _quantity(text: str) -> tuple[float, bool, str] | None:
    """(value, whether it is a percentage, its unit) of an answer that is a number, as LaTeX and people write one:
    `0.5`, `1/2`, `\\frac{1}{2}`, `50\\%`, `1,000`, `1{,}000`, `2.5 \\times 10^{3}`, `5 mg`, `5mg`; None for other text
    (a range such as `10-20` included)."""
    text = _LATEX_FRACTION.sub(lambda m: f"{m[1] or m[2]}/{m[3] or m[4]}", text)
    # Thousands separators go before normalize(), which would turn "1,000" into "1 000".
    text = re.sub(r"(?<=\d)(?:\{,\}|\\,|,|\u2009|\u202f)(?=\d{3}(?!\d))", "", text)
    # Runs of whitespace are one space before the times-ten pattern, whose leading \s* searched a run in its square.
    text = _LATEX_TIMES_TEN.sub(lambda m: "e" + m[1].replace("−", "-"), _WHITESPACE_RUN.sub(" ", text))
    number = re.fullmatch(r"([+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?:\s*/\s*([+-]?\d+(?:\.\d+)?))?\s*(%)?\s*([a-z][a-z/. -]*)?",
                          normalize(text))
    if not number:
        return None
    try:
        value = float(number[1]) / (float(number[2]) if number[2] else 1.0)
    except ZeroDivisionError:
        return None
    return value, number[3] is not None, (number[4] or "").replace(" ", "")


def _same_quantity(answer: tuple[float, bool, str], gold: tuple[float, bool, str]) -> bool:
    """The same number, read leniently where the forms differ: a bare 50 or 0.5 for 50 %, 50 % for 0.5 or 50, 5 for
    5 mg (the unit left out); but never another unit (5 g is not 5 mg)."""
    (value, percent, unit), (wanted, wanted_percent, wanted_unit) = answer, gold
    if unit and wanted_unit and unit != wanted_unit:
        return False
    readings = {value}
    if percent != wanted_percent:
        readings.add(value / 100 if percent else value * 100)
    return any(abs(reading - wanted) <= 1e-6 * max(1.0, abs(wanted)) for reading in readings)


def answer_kind(gold: str) -> str:
    """How a reference answer is graded: `choice` (a letter), `yes_no_maybe`, or `free` text / numbers."""
    text = gold.strip()
    if re.fullmatch(r"\(?[A-Z]\)?", text):
        return "choice"
    if text.lower() in YES_NO_MAYBE:
        return "yes_no_maybe"
    return "free"


def grade(response: str, gold: str, kind: str | None = None, options: dict[str, str] | None = None) -> dict:
    """Grade a model response against a reference answer.

    Returns {"correct": bool, "extracted": str | None, "via": "boxed" | "fallback" | None}. The boxed
    answer is authoritative; an unboxed one is accepted as a fallback and reported as such, so metrics
    can count it separately.
    """
    kind = kind or answer_kind(gold)
    boxed = last_boxed(response)
    if kind == "choice":
        gold_letter = choice_letter(gold) or gold.strip().upper()
        extracted = choice_letter(boxed, options) if boxed is not None else None
        via = "boxed" if extracted else None
        if extracted is None and boxed is None:
            extracted = fallback_letter(response, options)
            via = "fallback" if extracted else None
        return {"correct": extracted == gold_letter, "extracted": extracted, "via": via}
    if kind == "yes_no_maybe":
        gold_word = gold.strip().lower()
        extracted = yes_no_maybe(boxed) if boxed is not None else None
        via = "boxed" if extracted else None
        if extracted is None and boxed is None:
            extracted = fallback_yes_no_maybe(response)
            via = "fallback" if extracted else None
        return {"correct": extracted == gold_word, "extracted": extracted, "via": via}
    if boxed is None:
        return {"correct": False, "extracted": None, "via": None}
    got, want = _quantity(boxed), _quantity(gold)
    if got is not None and want is not None:
        correct = _same_quantity(got, want)
    else:
        correct = normalize(boxed) == normalize(gold)
    return {"correct": correct, "extracted": boxed, "via": "boxed"}


def healthbench_score(criteria: list[dict], met: list[bool]) -> float:
    """HealthBench's per-conversation score: the points of the criteria met (negative ones included) over all
    positive points. Not clipped here: the paper clips the mean over conversations (`healthbench_overall`)."""
    possible = sum(c["points"] for c in criteria if c["points"] > 0)
    if possible <= 0:
        raise ValueError("a HealthBench rubric needs at least one criterion with positive points")
    return sum(c["points"] for c, ok in zip(criteria, met, strict=True) if ok) / possible


def healthbench_overall(scores: list[float]) -> float:
    """HealthBench's overall score: the mean of the per-conversation scores, clipped to [0, 1]."""
    return min(1.0, max(0.0, sum(scores) / len(scores)))
