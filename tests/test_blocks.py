"""The curation blocks on their own: tokens, MinHash, record mapping, the reader's caps (decontamination:
test_decontamination.py; domain curation: test_domain.py)."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medrecipe.blocks import data_files
from medrecipe.blocks.hashing import (batch_token_hashes, code_points, lower_code_points, token_hashes, token_strings,
                                     whitespace_word_hashes)
from medrecipe.blocks.lsh_clusters import Verifier, duplicate_clusters, estimated_jaccard, lsh_bands
from medrecipe.blocks.minhash import batch_sketches, shingle_hashes, verify_bins
from medrecipe.blocks.readers import SourceReader
from medrecipe.blocks.record import MAX_RESPONSES, MAX_SOURCES, MappingError, build_record, order_key, response_order
from medrecipe.blocks.text import tokens, whole_word_count, word_count
from medrecipe.recipe.model import Generate
from medrecipe.recipe.model.data import Data


# ----------------------------------------------------------------------------------------------- tokens


def test_word_counts_treat_each_cjk_character_as_a_word():
    assert word_count("What is sepsis?") == 3
    assert word_count("患者出现胸痛") == 6
    assert word_count("The 患者 has 胸痛 today") == 7


def test_whole_word_count():
    text = "Wait, no. Wait! Waiting is not Wait-listed; wait. AWait"
    assert whole_word_count(text, "Wait") == 3
    assert whole_word_count(text, "Wait", case_sensitive=False) == 4


def test_token_hashes_follow_the_tokens():
    assert np.array_equal(token_hashes("Hello, WORLD!"), token_hashes("hello world"))
    assert len(token_hashes("你好世界 ok")) == 5 == len(tokens("你好世界 ok"))
    # the regex the tests and benchmarks take as truth tokenizes as the hashes do (found by review: it joined an
    # apostrophe's parts and ran Latin letters into Chinese)
    for text in ("Koplik’s spots are seen in", "the patient's HbA1c升高见于哪种疾病", "Héllo WÖRLD Straße ǅ",
                 "ａｂｃ１２ テスト ｶﾀｶﾅ 한국어 İstanbul"):
        assert tokens(text) == token_strings(text) and len(token_hashes(text)) == len(tokens(text)), text
    assert len(set(token_hashes("a b c d e f g").tolist())) == 7
    words, starts = whitespace_word_hashes("One  two\tthree\u3000four")
    assert len(words) == 4 and starts.tolist() == [0, 5, 9, 15]
    assert np.array_equal(whitespace_word_hashes("A b")[0], whitespace_word_hashes("a B")[0])


@pytest.mark.parametrize("text", [
    "Héllo WÖRLD Straße ǅ", "患者出现胸痛 ÀÉÎ", "ΟΔΟΣ ΣΟΦΟΣ", "İstanbul İzmir", "𐐀𐐁 Deseret", "", "ABC\x00DEF",
])
def test_lower_code_points_are_str_lower(text):
    assert np.array_equal(lower_code_points(text), code_points(text.lower()))


# ---------------------------------------------------------------------------------------------- minhash


def _jaccard(a: str, b: str, n: int = 4) -> float:
    ta, tb = tokens(a), tokens(b)
    sa = {tuple(ta[i : i + n]) for i in range(len(ta) - n + 1)}
    sb = {tuple(tb[i : i + n]) for i in range(len(tb) - n + 1)}
    return len(sa & sb) / len(sa | sb)


def test_signature_estimates_jaccard():
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(400)]
    base = [rng.choice(vocabulary) for _ in range(800)]
    for changed in (0.01, 0.05, 0.15, 0.4):
        edited = list(base)
        for index in rng.sample(range(len(base)), int(changed * len(base))):
            edited[index] = rng.choice(vocabulary)
        a, b = " ".join(base), " ".join(edited)
        signatures = batch_sketches([a, b], 4, 256)[0]
        estimate = float((signatures[0] == signatures[1]).mean())
        assert abs(estimate - _jaccard(a, b)) < 0.08


def test_chinese_near_duplicates_share_character_shingles():
    a = "患者出现压榨性胸骨后疼痛，心率一百二十次每分钟，考虑急性心肌梗死，应立即给予阿司匹林并完善肌钙蛋白检查。" * 3
    b = a.replace("阿司匹林", "阿斯匹林", 1)
    c = "患者咳嗽咳痰伴发热三天，胸部X线提示右下肺渗出影，考虑社区获得性肺炎，给予阿莫西林治疗。" * 3
    signatures = batch_sketches([a, b, c], 4, 128)[0]
    assert (signatures[0] == signatures[1]).mean() > 0.8
    assert (signatures[0] == signatures[2]).mean() < 0.2


def test_verification_sketch_estimates_jaccard_closely():
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(5000)]
    base = [rng.choice(vocabulary) for _ in range(1500)]
    errors = []
    for changed in (0.02, 0.04, 0.05, 0.06, 0.08):
        for _ in range(5):
            edited = list(base)
            for index in rng.sample(range(len(base)), int(changed * len(base))):
                edited[index] = rng.choice(vocabulary)
            a, b = " ".join(base), " ".join(edited)
            sketches = batch_sketches([a, b], 4, 128)[1]
            errors.append(float(estimated_jaccard(sketches[0], sketches[1])) - _jaccard(a, b))
    assert np.sqrt(np.mean(np.square(errors))) < 0.02


def test_a_pair_at_the_threshold_is_a_duplicate():
    """'At or above the threshold': two short texts sharing 7 of their 10 4-grams (Jaccard 0.7 exactly, each shingle in
    a bin of its own) are linked at 0.7 and not at 0.71 (review: a chance correction put them at 0.6999954)."""
    a = " ".join(f"w0q{i}" for i in range(10))
    b = a + " x0 y0 z0"
    assert _jaccard(a, b) == 0.7
    signatures, sketches = batch_sketches([a, b], 4, 128)
    assert float(estimated_jaccard(sketches[0], sketches[1])) == 0.7
    assert duplicate_clusters(signatures, Verifier.in_memory(sketches, 0.7), 0.7)[0].tolist() == [0, 0]
    assert duplicate_clusters(signatures, Verifier.in_memory(sketches, 0.71), 0.71)[0].tolist() == [0, 1]


def _sketches_one_by_one(text: str, ngram: int, num_perm: int) -> tuple[list[int], list[int]]:
    """The sketches of one text as batch_sketches defines them, in plain Python: each shingle's bin from its high 32
    bits, the minimum of its low 32 bits per bin, LSH bins as unions of verification bins, empty LSH bins filled
    from the next occupied one (cyclically) shifted by the distance."""
    empty, bins = 0xFFFFFFFF, verify_bins(num_perm)
    fine = [empty] * bins
    for shingle in shingle_hashes(token_hashes(text), ngram).tolist():
        slot = ((shingle >> 32) * bins) >> 32
        fine[slot] = min(fine[slot], shingle & 0xFFFFFFFF)
    width = bins // num_perm
    coarse = [min(fine[i * width : (i + 1) * width]) for i in range(num_perm)]
    occupied = [i for i, value in enumerate(coarse) if value != empty]
    signature = list(coarse)
    if occupied:
        for i in range(num_perm):
            if coarse[i] == empty:
                nearest = next((j for j in occupied if j > i), occupied[0] + num_perm)
                signature[i] = (coarse[nearest % num_perm] + (nearest - i) * 0x61C88647) & 0xFFFFFFFF
    return signature, [0 if value == empty else value % 0xFFFF + 1 for value in fine]


def test_batch_sketches_are_each_texts_own():
    """A batch gives every text the sketches it has alone, whatever its neighbours: texts shorter than the n-gram,
    empty and blank ones, CJK, characters beyond the BMP, and the characters whose lower case str.lower() decides
    (İ, Σ), which send a batch down the per-text path."""
    rng = random.Random(5)
    alphabet = list("abcdefghij ,.\n") + list("患者出现胸痛心率") + ["Σ", "İ", "𝐀", "é", "\u3042", "\U00020000"]
    texts = ["", "   ", "one", "two words", "three short words", "患者", "ΣΑΣ σας", "İstanbul İzmir", "𝐀𝐁 𝐂"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.choice([5, 40, 300, 2000]))) for _ in range(60)]
    plain = [t for t in texts if not any(c in t for c in "Σİ𝐀\U00020000")]
    for batch in (texts, plain, plain[:1]):
        for num_perm in (128, 100):
            signatures, sketches = batch_sketches(batch, 4, num_perm)
            assert signatures.dtype == np.uint32 and sketches.dtype == np.uint16
            for text, signature, sketch in zip(batch, signatures.tolist(), sketches.tolist()):
                assert (signature, sketch) == _sketches_one_by_one(text, 4, num_perm), text[:40]
    signatures, sketches = batch_sketches(texts * 30, 4, 128)  # sketched in several runs of characters
    assert np.array_equal(signatures, np.tile(batch_sketches(texts, 4, 128)[0], (30, 1)))
    assert np.array_equal(sketches, np.tile(batch_sketches(texts, 4, 128)[1], (30, 1)))
    hashes, counts = batch_token_hashes(texts)
    assert counts.tolist() == [token_hashes(t).size for t in texts]
    assert np.array_equal(hashes, np.concatenate([token_hashes(t) for t in texts]))


def test_screening_an_eighth_and_a_quarter_of_the_sketch_decides_as_the_whole_sketch():
    """Pairs at every Jaccard similarity, long texts and short ones (few occupied bins, never screened out): the
    verifier's decisions are those of the whole verification sketch, and most dissimilar pairs cost an eighth or a
    quarter."""
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(3000)]
    texts = []
    for _ in range(150):
        base = [rng.choice(vocabulary) for _ in range(rng.choice([30, 400, 1500]))]
        rate = rng.uniform(0.0, 0.15)  # 4-gram Jaccard from 1 down to about 0.3
        edited = [rng.choice(vocabulary) if rng.random() < rate else word for word in base]
        texts += [" ".join(base), " ".join(edited)]
    sketches = batch_sketches(texts, 4, 128)[1]
    u = np.array([i for i in range(0, len(texts), 2)] + [rng.randrange(len(texts)) for _ in range(2000)])
    v = np.array([i + 1 for i in range(0, len(texts), 2)] + [rng.randrange(len(texts)) for _ in range(2000)])
    verifier = Verifier.in_memory(sketches, 0.7)
    decided = verifier.similar(u, v, chunk=512)
    whole = estimated_jaccard(sketches[u], sketches[v])
    assert np.array_equal(decided, whole >= 0.7)
    assert ((whole >= 0.6) & (whole < 0.8)).sum() >= 10, "pairs near the threshold are among them"
    assert verifier.screened_out > 0.8 * (whole < 0.3).sum()


def test_lsh_bands_suit_the_threshold():
    bands, rows = lsh_bands(0.7, 128, verify=False)
    assert bands * rows <= 128 and abs((1 / bands) ** (1 / rows) - 0.7) < 0.12  # the S-curve's midpoint at the threshold
    bands, rows = lsh_bands(0.7, 128, verify=True)
    assert (bands, rows) == (25, 5)
    assert 1 - (1 - 0.7**rows) ** bands > 0.985, "verified candidates: nearly every pair at the threshold is proposed"
    assert 1 - (1 - 0.7 ** (rows + 1)) ** (128 // (rows + 1)) < 0.985, "with the fewest candidates that allows"


def _clusters(texts: list[str], verify: bool = True) -> np.ndarray:
    signatures, sketches = batch_sketches(texts, 4, 128)
    return duplicate_clusters(signatures, Verifier.in_memory(sketches, 0.7) if verify else None, 0.7)[0]


def test_duplicate_clusters_keep_the_first_and_link_transitively():
    rng = random.Random(1)
    texts = [" ".join(f"t{rng.randrange(10**6)}" for _ in range(300)) for _ in range(30)]
    texts[10] = texts[3]
    texts[20] = texts[3].replace(texts[3].split()[5], "changed", 1)
    for verify in (True, False):
        labels = _clusters(texts, verify)
        assert labels[10] == labels[20] == 3
        assert sorted(set(range(30)) - {10, 20}) == sorted(i for i in range(30) if labels[i] == i)
    assert _clusters(["", ""]).tolist() == [0, 1], "empty texts are never duplicates"


def test_a_bucket_whose_first_member_is_unlike_the_rest_still_links_the_rest():
    """Rows 1 and 2 are duplicates; row 0 shares every LSH bucket with them but not their text."""
    signatures = np.zeros((3, 128), dtype=np.uint32)
    rng = np.random.default_rng(0)
    unlike, alike = rng.integers(0, 2**16, size=(2, 1024), dtype=np.uint16)
    verifier = Verifier.in_memory(np.stack([unlike, alike, alike]), 0.7)
    labels, counts = duplicate_clusters(signatures, verifier, 0.7)
    assert labels.tolist() == [0, 1, 1]
    assert counts["buckets_searched"] == 1, "the bucket each of the 25 bands has is one set of members, searched once"


@pytest.mark.parametrize("unlike", [60, 150, 400])
def test_a_large_bucket_is_split_into_the_components_every_pair_gives(unlike):
    """Every record shares every LSH bucket (one bucket of 5 + 40 + 30 + `unlike` members, above the 64 compared pair by
    pair): groups of near-copies (sketches differing in a few bins) among unlike records. The clusters are the
    connected components of the pairs at the threshold, as comparing every pair gives them, whether the search ends
    with the remaining members compared at once (at most 256 left) or goes on breadth first."""
    rng = np.random.default_rng(unlike)
    groups = [5, 40, 30] + [1] * unlike
    rows = []
    for size in groups:
        base = rng.integers(1, 2**16, size=1024, dtype=np.uint16)
        for _ in range(size):
            copy = base.copy()
            copy[rng.choice(1024, size=100, replace=False)] = rng.integers(1, 2**16, size=100, dtype=np.uint16)
            rows.append(copy)
    order = rng.permutation(len(rows))  # members of a group are spread through the bucket
    sketches = np.stack(rows)[order]
    verifier = Verifier.in_memory(sketches, 0.7)
    labels, counts = duplicate_clusters(np.zeros((len(rows), 128), dtype=np.uint32), verifier, 0.7)
    first, second = np.triu_indices(len(rows), 1)
    linked = estimated_jaccard(sketches[first], sketches[second]) >= 0.7
    parent = list(range(len(rows)))  # union-find whose root is a component's smallest row, as labels name it

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in zip(first[linked].tolist(), second[linked].tolist()):
        low, high = sorted((root(a), root(b)))
        parent[high] = low
    assert labels.tolist() == [root(i) for i in range(len(rows))]
    assert counts["buckets_searched"] == 1
    assert len(set(labels.tolist())) == 3 + unlike


def test_near_duplicates_are_found_with_their_exact_jaccard_band():
    """Pairs planted at exact 4-gram Jaccard 0.6-0.9 among unrelated texts: at the threshold 0.7, at least 90 % of the
    pairs at 0.7-0.8 are found, and at least 95 % of the removed records belong to a pair at 0.7 or more."""
    rng = random.Random(2)
    vocabulary = [f"v{i}" for i in range(20000)]
    texts, pairs = [], []
    for _ in range(240):
        base = [rng.choice(vocabulary) for _ in range(rng.randint(300, 1500))]
        edited = list(base)
        for index in rng.sample(range(len(base)), int(rng.uniform(0.02, 0.07) * len(base))):
            edited[index] = rng.choice(vocabulary)
        pairs.append((len(texts), len(texts) + 1))
        texts += [" ".join(base), " ".join(edited)]
    texts += [" ".join(rng.choice(vocabulary) for _ in range(500)) for _ in range(500)]
    labels = _clusters(texts)
    similarity = np.array([_jaccard(texts[a], texts[b]) for a, b in pairs])
    found = np.array([labels[a] == labels[b] for a, b in pairs])
    band = (similarity >= 0.7) & (similarity < 0.8)
    assert band.sum() >= 40, "the planted pairs reach the band"
    assert found[band].mean() >= 0.9
    removed = np.flatnonzero(labels != np.arange(len(texts)))
    true = {i for (a, b), s in zip(pairs, similarity) if s >= 0.7 for i in (a, b)}
    assert len(set(removed.tolist()) & true) / len(removed) >= 0.95


# ----------------------------------------------------------------------------------------- record mapping


def test_build_record_maps_columns_into_chat():
    fields = {"prompt": "q", "options": ["opa", "opb"], "answer": "cop", "reasoning": "why", "response": "r",
              "system": "sys", "id": "key", "metadata": ["topic"]}
    row = {"q": "Which?", "opa": "x", "opb": "y", "cop": 1, "why": "because", "r": "B", "sys": "Be brief.", "key": 7, "topic": "t"}
    record = build_record(row, fields, "src", "conversations", row_id="0", order=5)
    messages = record["metadata"]["messages"]
    assert record["id"] == "src/7"
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[1]["content"] == "Which?\n\nA. x\nB. y"
    assert messages[2]["content"] == "<think>\nbecause\n</think>\n\nB"
    assert record["metadata"]["answer"] == "B" and record["metadata"]["extra"] == {"topic": "t"}


def test_build_record_sharegpt_turns_and_context():
    sharegpt = {"messages": "c", "role_key": "from", "content_key": "value", "roles": {"human": "user", "gpt": "assistant"}}
    row = {"c": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    assert build_record(row, sharegpt, "s", "conversations", "0", 0)["metadata"]["messages"] == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    pair = build_record({"turns": ["What is gout?", "A crystal arthropathy."]}, {"turns": "turns"}, "s", "prompts", "0", 0)
    assert pair["metadata"]["messages"] == [{"role": "user", "content": "What is gout?"}] and pair["metadata"]["answer"] == "A crystal arthropathy."
    context = build_record({"q": "Does it work?", "ctx": {"contexts": ["One.", "Two."]}}, {"prompt": "q", "context": "ctx"}, "s", "prompts", "0", 0)
    assert context["metadata"]["messages"][0]["content"] == "One.\nTwo.\n\nDoes it work?"
    with pytest.raises(MappingError, match="column 'question' not found; the rows have: q"):
        build_record({"q": "x"}, {"prompt": "question"}, "s", "prompts", "0", 0)


def test_a_segment_gives_the_next_one_the_records_it_received(tmp_path):
    """Every record comes back as it was written, its text included; the text a record's messages give (every record
    the readers build) is stored once, as its message."""
    from datatrove.data import Document

    from medrecipe.blocks.segments import SegmentReader, SegmentWriter

    conversation = build_record({"q": "What causes gout?", "r": "Urate crystals." * 50}, {"prompt": "q", "response": "r"}, "s", "conversations", "0", 0)
    prompt_only = build_record({"q": "Koplik spots are seen in"}, {"prompt": "q"}, "s", "prompts", "1", 1)
    annotated = {"text": "a verdict of its own", "id": "s/3", "metadata": conversation["metadata"]}
    written = [Document(**record) for record in (conversation, prompt_only, annotated)]
    with SegmentWriter(str(tmp_path), "${rank}.jsonl.zst", "zstd") as writer:
        for document in written:
            row = writer.adapter(document)
            assert row == writer._default_adapter(document) | {"text": row["text"]}  # datatrove's row, but the text
            writer.write(document, rank=0)
    read = list(SegmentReader(str(tmp_path), glob_pattern="*.jsonl.zst").run())
    for document in read:
        document.metadata.pop("file_path")  # the reader's own addition
    assert [(d.id, d.text, d.metadata) for d in read] == [(d.id, d.text, d.metadata) for d in written]
    import zstandard

    stored = zstandard.ZstdDecompressor().decompress((tmp_path / "00000.jsonl.zst").read_bytes(), max_output_size=2**20).decode()
    assert stored.count("Urate crystals." * 50) == 2  # the conversation's response, and the annotated record's message
    assert [json.loads(line).get("text", "") for line in stored.splitlines()] == [None, None, "a verdict of its own"]


def test_an_llm_steps_output_is_read_back_in_reading_order(tmp_path):
    """The runner writes a rank's records in chunks of `records_per_chunk` by reading order, each chunk in the order
    its answers came, each record known by its place; the reader gives back the records in reading order with their
    own ids, chunk 10 after chunk 9 (datatrove lists names as text: `0_chunk_10` before `0_chunk_2`)."""
    import random

    from datatrove.data import Document
    from datatrove.pipeline.writers import JsonlWriter

    from medrecipe.blocks.segments import RUNNER_KEPT_ID, SegmentReader

    per_chunk, records = 3, 40
    for rank in (0, 1):
        places = list(range(records))
        for chunk in range(0, records, per_chunk):
            answered = places[chunk : chunk + per_chunk]
            random.Random(chunk).shuffle(answered)
            with JsonlWriter(str(tmp_path), output_filename=f"{rank:05d}_chunk_{chunk // per_chunk}.jsonl.zst", compression="zstd") as writer:
                for place in answered:
                    writer.write(Document(text=f"answer {place}", id=str(place), metadata={"order": place, RUNNER_KEPT_ID: f"s/{rank}-{place}"}), rank)
    shards = [list(SegmentReader(str(tmp_path), glob_pattern="*.jsonl.zst", runner_output=True).run(rank=task, world_size=2))
              for task in (0, 1)]
    for task, shard in enumerate(shards):
        assert [doc.id for doc in shard] == [f"s/{rank}-{place}" for rank in (0, 1) for chunk in range(task, 14, 2)
                                             for place in range(chunk * per_chunk, min(chunk * per_chunk + per_chunk, records))]


def test_reader_caps_a_source_exactly_over_several_tasks(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"q": f"question number {i}", "r": "answer"}) + "\n" for i in range(50)))
    source = {"name": "s", "path": str(path), "fields": {"prompt": "q", "response": "r"}, "max_samples": 17}
    read = [doc.id for rank in range(3) for doc in SourceReader(source, 0).run(None, rank, 3)]
    assert read == [f"s/{i}" for i in range(17)]
    source.pop("max_samples")
    assert len([d for rank in range(3) for d in SourceReader(source, 0).run(None, rank, 3)]) == 50


@pytest.mark.parametrize("part_bytes", [1, 37, 64, 1000, 1 << 20])
@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_a_big_file_is_read_in_parts_each_row_once(tmp_path, monkeypatch, part_bytes, kind):
    monkeypatch.setattr(data_files, "PART_BYTES", part_bytes)
    rows = [{"q": f"question {'é' * (i % 7)} number {i}", "r": "answer"} for i in range(60)]
    path = tmp_path / f"rows.{kind}"
    if kind == "jsonl":
        lines = [json.dumps(row) for row in rows]
        lines[10:10] = ["", "   "]  # blank lines are skipped wherever they fall
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=7)
    source = {"name": "s", "path": str(path), "fields": {"prompt": "q", "response": "r"}}
    for tasks in (1, 3):
        docs = [doc for rank in range(tasks) for doc in SourceReader(source, 0).run(None, rank, tasks)]
        in_file_order = sorted(docs, key=lambda doc: doc.metadata["order"])
        assert [d.metadata["messages"][0]["content"] for d in in_file_order] == [row["q"] for row in rows]
        assert len({d.id for d in docs}) == 60
    whole = [d.id for d in SourceReader(source, 0).run(None, 0, 1)]
    assert whole == [d.id for d in sorted(docs, key=lambda doc: doc.metadata["order"])]  # ids do not depend on the tasks


def test_reader_reads_json_arrays_of_pairs(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([["What is gout?", "An arthritis."], ["What is TB?", "An infection."]]))
    source = {"name": "apollo", "path": str(path), "kind": "prompts", "fields": {"turns": "turns"}}
    docs = list(SourceReader(source, 0).run(None, 0, 1))
    assert [d.metadata["answer"] for d in docs] == ["An arthritis.", "An infection."]


def test_the_distribution_check_answers_as_datatroves_own():
    """blocks/distribution_check.py replaces datatrove's full scan; datatrove's function, in a process where medrecipe
    is never imported, gives the same answers: for the names the blocks require, one installed distribution in eight
    (each of datatrove's answers is a scan of them all) in the forms a name could be asked in, and missing names."""
    import importlib.metadata
    import subprocess
    import sys

    from medrecipe.blocks.distribution_check import is_distribution_available

    names = sorted({d.metadata["Name"] for d in importlib.metadata.distributions() if d.metadata["Name"]})[::8]
    asked = sorted({form for name in names for form in (name, name.lower(), name.upper(), name.lower().replace("-", "_"),
                                                        name.lower().replace("_", "-"))})
    asked += ["orjson", "pyarrow", "datatrove", "no-such-distribution", "orjsonx"]
    script = ("import json, sys\nfrom datatrove.utils._import_utils import _is_distribution_available as check\n"
              "print(json.dumps([check(name) for name in json.load(sys.stdin)]))")
    theirs = json.loads(subprocess.run([sys.executable, "-c", script], input=json.dumps(asked), capture_output=True,
                                       text=True, check=True).stdout)
    ours = [is_distribution_available(name) for name in asked]
    assert ours.count(True) >= len(names) + 3
    assert ours == theirs


def test_reading_order_keys_never_collide():
    """A record's order is its source, part, row and generated response in one int64. Parts had 12 bits: the 4,097th
    part of a source (64 MiB each: 256 GiB) took the places of the next source's rows (review: order_key(0, 4096 << 28 | 5)
    was order_key(1, 5)). A place past the bits is an error, not another record's place; the recipe's limits keep to
    them."""
    places = [(0, 0, 0), (0, 0, 2**31 - 1), (0, 1, 0), (0, 4096, 5), (0, 2**20 - 1, 2**31 - 1), (1, 0, 0), (1, 0, 5),
              (127, 2**20 - 1, 2**31 - 1)]
    keys = [order_key(*place) for place in places]
    responses = [response_order(key, number) for key in keys for number in (0, 1, MAX_RESPONSES - 1)]
    assert responses == sorted(responses) and len(set(responses)) == len(responses) and max(responses) < 2**63
    for beyond in ((0, 2**20, 0), (0, 0, 2**31), (128, 0, 0)):
        with pytest.raises(ValueError, match="past the"):
            order_key(*beyond)
    for order, number in ((keys[1], MAX_RESPONSES), (response_order(keys[1], 1), 0)):
        with pytest.raises(ValueError, match="one generate step's responses"):
            response_order(order, number)
    assert Data.model_fields["sources"].metadata[-1].max_length == MAX_SOURCES
    assert Generate.model_validate({"type": "generate", "max_samples": MAX_RESPONSES}).max_samples == MAX_RESPONSES
    with pytest.raises(ValueError, match="less than or equal to 32"):  # PositiveInt's own bound had overridden it (review)
        Generate.model_validate({"type": "generate", "max_samples": MAX_RESPONSES + 1})


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.jsonl.gz", "rows.json"])
def test_a_file_that_begins_with_a_byte_order_mark_reads_as_its_rows(tmp_path, name):
    """Windows tools write a UTF-8 BOM: a .json array became one row of `turns`, and a .jsonl read in byte ranges
    worked but failed when read whole (max_samples, .gz, preflight) (review)."""
    import gzip

    rows = [{"q": "question one", "r": "a"}, {"q": "question two", "r": "b"}]
    text = json.dumps(rows) if name.endswith(".json") else "".join(json.dumps(row) + "\n" for row in rows)
    data = b"\xef\xbb\xbf" + text.encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert data_files.first_rows({"path": str(tmp_path / name)}, 5) == rows
    assert list(data_files.rows_of_file(tmp_path / name, "auto")) == rows


def test_a_json_file_that_is_no_array_names_itself(tmp_path):
    """A .json file that is no array is JSON Lines (as the datasets library reads it), whose lines are objects."""
    (tmp_path / "rows.json").write_text('"just a string"')
    with pytest.raises(data_files.BadSourceFile, match="rows.json:1: a JSON str where a row, an object, belongs"):
        data_files.first_rows({"path": str(tmp_path / "rows.json")}, 5)


def test_an_index_answer_names_its_option_when_an_earlier_option_is_empty():
    """MedMCQA's `cop` is an index: with option B empty, index 2 (C) was out of the two options left, and no answer."""
    record = build_record({"q": "Q?", "a": "x", "b": "", "c": "z", "cop": 2},
                          {"prompt": "q", "options": ["a", "b", "c"], "answer": "cop"}, "s", "prompts", "0", 0)
    assert record["metadata"]["answer"] == "C"


def test_a_symbol_outside_the_basic_plane_separates_tokens_as_one_inside_it_does():
    """Every astral character that is not CJK counted as a letter: "in😀" was one token, "in☺" two (review)."""
    from medrecipe.blocks.hashing import token_strings

    assert token_strings("seen in😀 children") == token_strings("seen in☺ children") == ["seen", "in", "children"]
    assert token_strings("ｶﾀｶﾅ・テスト 𣎴ㄱ") == ["ｶ", "ﾀ", "ｶ", "ﾅ", "テ", "ス", "ト", "𣎴", "ㄱ"]  # CJK, one by one
    assert np.array_equal(token_hashes("🩺Koplik spots are seen in😀"), token_hashes("Koplik spots are seen in"))


def test_the_output_batch_is_pyarrows_conversion_of_the_rows():
    """The parquet writer builds its batches from buffers (blocks/output.py, _columns): on rows with nulls, empty
    texts, conversations of no turn and of several, texts outside the BMP and extra keys in a message, the batch is
    pyarrow's own `RecordBatch.from_pylist` of them, for both schemas."""
    from medrecipe.blocks.output import CHAT_ONLY, SCHEMA, _columns

    generator = random.Random(3)
    texts = ["", "a", "心率 111 次", "𝔄 \U0001f9ec", "<think>\nx\n</think>\n\n答案", "x" * 300]
    rows = [{"id": f"s/{i}", "source": generator.choice(["s", "t"]),
             "messages": [{"role": generator.choice(["system", "user", "assistant"]), "content": generator.choice(texts),
                           "reasoning": "not written"} for _ in range(generator.randint(0, 4))],
             "answer": generator.choice([None, *texts]), "metadata": json.dumps({"order": i})} for i in range(300)]
    for schema in (SCHEMA, CHAT_ONLY):
        batch = _columns(rows, schema)
        batch.validate(full=True)
        assert batch.equals(pa.RecordBatch.from_pylist(rows, schema=schema))
