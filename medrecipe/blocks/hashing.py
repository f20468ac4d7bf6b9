"""Hashes of tokens and n-grams computed with numpy over a text's code points, never per token in Python.

A text becomes an array of code points; a class table of the Basic Multilingual Plane marks token
characters; token boundaries are where the class changes; a token's hash is the polynomial hash of its
code points, read off prefix sums in O(1) per token. 64-bit arithmetic wraps, which is what the
polynomial hash modulo 2**64 wants (POLY is odd, so its powers have inverses).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np

_U64 = np.uint64
POLY = _U64(0x100000001B3)
_SEPARATOR, _WORD, _CJK = 0, 1, 2


def _is_cjk(cp: int) -> bool:
    return (
        0x1100 <= cp <= 0x11FF  # hangul jamo
        or 0x3040 <= cp <= 0x30FF  # kana
        or 0x3130 <= cp <= 0x318F  # hangul compatibility jamo
        or 0x31F0 <= cp <= 0x31FF  # katakana phonetic extensions
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xA960 <= cp <= 0xA97F  # hangul jamo extended-A
        or 0xAC00 <= cp <= 0xD7FF  # hangul syllables, jamo extended-B
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF66 <= cp <= 0xFFDC  # half-width katakana and hangul
        or 0x1B000 <= cp <= 0x1B16F  # kana supplement and extensions
        or 0x20000 <= cp <= 0x323AF  # CJK extensions B to H
    )


def _class(cp: int) -> int:
    """Letters, digits and marks are word characters, CJK ones tokens of their own; anything else (punctuation, the
    katakana middle dot, symbols, emoji) separates tokens."""
    if unicodedata.category(chr(cp))[0] not in "LNM":
        return _SEPARATOR
    return _CJK if _is_cjk(cp) else _WORD


@lru_cache(maxsize=1)
def _token_classes() -> np.ndarray:
    """_class() of every character of the Basic Multilingual Plane."""
    return np.fromiter(map(_class, range(0x10000)), dtype=np.uint8, count=0x10000)


@lru_cache(maxsize=1)
def _bmp() -> str:
    """Every code point of the Basic Multilingual Plane, in order."""
    return "".join(map(chr, range(0x10000)))


@lru_cache(maxsize=1)
def _whitespace() -> np.ndarray:
    """What str.split() splits on. No character beyond the BMP is whitespace, so lookups may clip to U+FFFF."""
    return np.fromiter(map(str.isspace, _bmp()), dtype=bool, count=0x10000)


class _Powers:
    """POLY**i and POLY**-i modulo 2**64, grown on demand."""

    def __init__(self):
        self.pow = np.ones(1, dtype=_U64)
        self.inv = np.ones(1, dtype=_U64)
        self.inverse = _U64(pow(int(POLY), -1, 2**64))

    def ensure(self, n: int) -> None:
        if self.pow.size >= n:
            return
        size = max(n, 2 * self.pow.size, 4096)
        self.pow = np.cumprod(np.concatenate([[_U64(1)], np.full(size - 1, POLY, dtype=_U64)]), dtype=_U64)
        self.inv = np.cumprod(np.concatenate([[_U64(1)], np.full(size - 1, self.inverse, dtype=_U64)]), dtype=_U64)


_POWERS = _Powers()


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over every output bit."""
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> _U64(33))


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


@lru_cache(maxsize=1)
def _lower_table() -> np.ndarray:
    """The lower case of each BMP character on its own; İ, the one whose lower case is two characters, stays."""
    bmp = _bmp()
    table = code_points(bmp[:0x130].lower() + "\u0130" + bmp[0x131:].lower()).copy()
    table[0x3A3] = 0x3C3  # in the run above Σ is followed by a letter; on its own it lower-cases to σ
    return table


def lower_code_points(text: str) -> np.ndarray:
    """The code points of `text.lower()`. A table lookup is several times faster than str.lower() on non-ASCII
    text; it gives the same result except where str.lower() looks beyond one BMP character: astral planes,
    İ (which lower-cases to two characters) and Σ (final sigma depends on the next character)."""
    cps = code_points(text)
    if cps.size and (cps.max() > 0xFFFF or "\u0130" in text or "\u03a3" in text):
        return code_points(text.lower())
    return np.take(_lower_table(), cps)


def build_tables() -> None:
    """Build the lookup tables now (~25 ms, first use builds them otherwise): the data stage's fork server does, so
    that no worker does it again (blocks/forkserver_preload.py)."""
    _token_classes()
    _whitespace()
    _lower_table()


def _span_hashes(cps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    n = cps.size
    _POWERS.ensure(n + 1)
    powers = _POWERS.pow[:n]
    terms = np.multiply(cps, powers, dtype=_U64)
    terms += powers  # (cp + 1) * POLY**i, so that a zero code point still counts
    prefix = np.empty(n + 1, dtype=_U64)
    prefix[0] = 0
    np.cumsum(terms, out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * _POWERS.inv[starts]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of every run of True in a non-empty mask."""
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    if mask[0]:
        edges = np.concatenate(([0], edges))
    if mask[-1]:
        edges = np.concatenate((edges, [mask.size]))
    return edges[0::2], edges[1::2]


def _classes(cps: np.ndarray) -> np.ndarray:
    """_class() of every code point."""
    classes = np.take(_token_classes(), cps, mode="clip")
    astral = np.flatnonzero(cps > 0xFFFF)
    if astral.size:
        classes[astral] = [_class(int(c)) for c in cps[astral]]  # an emoji glued to a word is no part of it
    return classes


def _token_spans(cps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end) of every word run, and the position of every CJK character, in non-empty lower-cased code points."""
    classes = _classes(cps)
    starts, ends = _runs(classes == _WORD)
    return starts, ends, np.flatnonzero(classes == _CJK)


def _word_run_hashes(cps: np.ndarray, word: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`_span_hashes` of the word runs. Where word characters are the fewer (Chinese text: most characters are CJK,
    each a token of its own), the runs are hashed from those characters alone, end to end, which gives the same
    hashes (a span's hash does not depend on where it lies) in half the time; where they are most of the text,
    gathering them costs more than it saves."""
    lengths = ends - starts
    if 2 * int(lengths.sum()) > cps.size:
        return _span_hashes(cps, starts, ends)
    packed_ends = np.cumsum(lengths)
    return _span_hashes(cps[word], packed_ends - lengths, packed_ends)


def _tokens(cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, start) of every token of lower-cased code points, in order: word runs, and CJK characters, each hashed
    as its code point plus one. A token starts at each CJK character and where a word run begins, so their order
    comes from one mask, not from sorting the two kinds together (a third of the time on Chinese text)."""
    if cps.size == 0:
        return np.zeros(0, dtype=_U64), np.zeros(0, dtype=np.intp)
    classes = _classes(cps)
    word = classes == _WORD
    word_starts, word_ends = _runs(word)
    begins = classes == _CJK
    if not begins.any():
        return _span_hashes(cps, word_starts, word_ends), word_starts
    word_hashes = _word_run_hashes(cps, word, word_starts, word_ends)
    begins[1:] |= word[1:] > word[:-1]
    begins[0] |= word[0]
    starts = np.flatnonzero(begins)
    hashes = cps[starts].astype(_U64)
    hashes += _U64(1)
    hashes[word[starts]] = word_hashes
    return hashes, starts


def token_hashes(text: str, positions: bool = False):
    """Hashes of the lower-cased tokens of `text` (words, and single CJK characters), in order; with `positions`,
    also the offset in `text.lower()` where each token starts."""
    hashes, starts = _tokens(lower_code_points(text))
    return (hashes, starts) if positions else hashes


def batch_token_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`token_hashes` of many texts in one pass: (the hashes of every text's tokens, text after text; how many
    tokens each text has). The texts are joined by spaces, which end tokens, so no token spans two texts; one pass
    of numpy over the whole batch costs far less than a pass per text, whose fixed cost (some 25 numpy calls)
    exceeds the work on a text of a few hundred characters."""
    joined = " ".join(texts)
    cps = code_points(joined)
    if cps.size and (cps.max() > 0xFFFF or "\u0130" in joined or "\u03a3" in joined):
        # str.lower() is needed (see lower_code_points), and it may change a text's length: lower each on its own
        parts = [lower_code_points(text) for text in texts]
        lengths = np.array([part.size for part in parts], dtype=np.intp)
        space = np.full(1, 0x20, dtype=np.uint32)
        cps = np.concatenate([piece for part in parts for piece in (part, space)])
    else:
        lengths = np.fromiter(map(len, texts), dtype=np.intp, count=len(texts))
        cps = np.take(_lower_table(), cps)
    hashes, starts = _tokens(cps)
    first_tokens = np.searchsorted(starts, np.cumsum(lengths + 1) - (lengths + 1))  # of each text
    return hashes, np.diff(first_tokens, append=starts.size)


def token_strings(text: str) -> list[str]:
    """The tokens `token_hashes` hashes, as strings (to confirm a hash hit on the text itself)."""
    cps = lower_code_points(text)
    if cps.size == 0:
        return []
    lowered = text.lower()
    starts, ends, cjk = _token_spans(cps)
    spans = sorted([*zip(starts.tolist(), ends.tolist()), *((i, i + 1) for i in cjk.tolist())])
    return [lowered[start:end] for start, end in spans]


def whitespace_word_hashes(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the words of `text.lower().split()` and the offset in `text.lower()` where each starts."""
    cps = lower_code_points(text)
    if cps.size == 0:
        return np.zeros(0, dtype=_U64), np.zeros(0, dtype=np.intp)
    space = np.take(_whitespace(), cps, mode="clip")
    starts, ends = _runs(~space)
    return _span_hashes(cps, starts, ends), starts


def ngram_hashes(hashes: np.ndarray, n: int, multiplier: np.uint64 = _U64(0x9E3779B97F4A7C15)) -> np.ndarray:
    """Hashes of every run of `n` consecutive hashes along the last axis (none when there are fewer than `n`)."""
    count = hashes.shape[-1] - n + 1
    if count <= 0:
        return np.zeros((*hashes.shape[:-1], 0), dtype=_U64)
    acc = hashes[..., :count].copy()
    for offset in range(1, n):
        acc *= multiplier
        acc += hashes[..., offset : offset + count]
    return fmix64(acc)
