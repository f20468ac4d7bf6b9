"""Tokens for curation: words where the script has spaces, single characters where it has none.

The regex is compiled once and runs in C; a spaCy tokenizer (datatrove's MinHash default) costs ~200 docs/s
on long reasoning traces and splits Chinese into whole paragraphs, so near-duplicates in Chinese go unseen.
"""

from __future__ import annotations

import regex

# One token per CJK ideograph / kana / hangul syllable; otherwise a run of letters, digits or marks.
_TOKEN = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[\p{L}\p{N}\p{M}]+(?:['’][\p{L}]+)*",
    regex.VERSION1,
)
_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")


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


def decontamination_words(text: str) -> list[str]:
    """open-r1's normalisation for n-gram decontamination: lower case, split on whitespace."""
    return text.lower().split()
