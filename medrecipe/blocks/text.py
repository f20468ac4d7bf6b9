"""Tokens for curation: words where the script has spaces, single characters where it has none.

The regex is compiled once and runs in C; a spaCy tokenizer (datatrove's MinHash default) costs ~200 docs/s
on long reasoning traces and splits Chinese into whole paragraphs, so near-duplicates in Chinese go unseen.
"""

from __future__ import annotations

import unicodedata

import regex

# One token per CJK ideograph / kana / hangul syllable; otherwise a run of letters, digits or marks that are not CJK:
# the tokens blocks/hashing.py hashes, written as a regex (tests and benchmarks compare the two). An apostrophe
# separates ("Koplik's" is koplik, s), and a CJK character ends a Latin run (HbA1c升高 is hba1c, 升, 高): found by
# review, where this regex had joined both and so disagreed with what near_dedup and decontamination hash.
_CJK_CLASS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
_TOKEN = regex.compile(rf"[{_CJK_CLASS}]|[[\p{{L}}\p{{N}}\p{{M}}]--[{_CJK_CLASS}]]+", regex.VERSION1)
_CJK = regex.compile(rf"[{_CJK_CLASS}]")


def tokens(text: str, lowercase: bool = True) -> list[str]:
    """Words of Latin-like scripts and single CJK characters, in order (punctuation dropped)."""
    return _TOKEN.findall(text.lower() if lowercase else text)


def word_count(text: str) -> int:
    """Words as a reader counts them: whitespace-separated words, and each CJK character as one word."""
    cjk = len(_CJK.findall(text))
    if not cjk:
        return len(text.split())
    return cjk + len(_CJK.sub(" ", text).split())


def whole_word_count(text: str, word: str, case_sensitive: bool = True) -> int:
    """Occurrences of `word` as a whole word ("Wait" counts in "Wait," not in "Waiting")."""
    flags = 0 if case_sensitive else regex.IGNORECASE
    return len(regex.findall(rf"(?<![\p{{L}}\p{{N}}]){regex.escape(word)}(?![\p{{L}}\p{{N}}])", text, flags=flags))


def compatibility_folded(text: str) -> str:
    """`text` in Unicode's NFKC form: full-width letters and digits (ＭＲＩ, ３９.５℃), ligatures and other compatibility
    forms as their plain characters. Decontamination compares texts in this form (found by review: a copy of an item
    with its digits in full width, as Chinese text often writes them, escaped both the n-gram and the fuzzy step)."""
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def decontamination_words(text: str) -> list[str]:
    """open-r1's normalisation for n-gram decontamination: lower case, split on whitespace."""
    return text.lower().split()
