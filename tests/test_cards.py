"""The generated cards: parsed back by huggingface_hub's own ModelCard / DatasetCard, metadata round-tripping,
and every number of the II-Medical seed cards present where a reader looks for it."""

from __future__ import annotations

import json
import re

import pytest
from huggingface_hub import DatasetCard, ModelCard

from medrecipe.cli.common import load
from medrecipe.compile.layout import Layout, recipe_sha256
from medrecipe.hub.cards import dataset_card, model_card
from medrecipe.hub.release import release

from .conftest import RECIPES
from .release_fixtures import write_dataset, write_recipe, write_scores


@pytest.fixture(scope="module")
def ii_medical():
    loaded, _ = load(str(RECIPES / "ii-medical-8b-1706.yaml"), warn=False)
    return loaded, release(loaded.recipe, recipe_sha256(loaded.recipe), "someone")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny recipe with a data-stage stats.json and eval scores written where its Layout reads them."""
    monkeypatch.chdir(tmp_path)
    loaded, _ = load(str(write_recipe(tmp_path)), warn=False)
    layout = Layout(tmp_path / "build", loaded.recipe)
    write_dataset(layout)
    write_scores(layout)
    stats = json.loads(layout.data_stats().read_text())
    scores = json.loads(layout.eval_scores().read_text())
    return loaded, release(loaded.recipe, recipe_sha256(loaded.recipe), "me"), stats, scores


def test_the_shipped_fork_onto_qwen3_4b_describes_itself_not_its_parents_model():
    loaded, _ = load(str(RECIPES / "ii-medical-qwen3-4b.yaml"), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "someone")
    text = model_card(loaded, rel, rel.get("model"))
    assert "II-Medical's recipe on Qwen3-4B" in text
    assert "This build reproduces it" not in text and "Qwen3-8B fine-tuned" not in text


def test_a_local_base_model_shows_in_cards_without_this_machines_folders(tiny, tmp_path):
    model = tmp_path / "alice" / "models" / "smol"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 8192}))
    loaded, _ = load(str(tmp_path / "recipe.yaml"), (f"base_model={model}",), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "me")
    text = model_card(loaded, rel, rel.get("model")) + dataset_card(loaded, rel, rel.get("dataset"))
    assert str(tmp_path) not in text and "alice" not in text
    assert "- **Base model:** .../smol" in text and "# --set base_model=.../smol" in text


def test_local_benchmark_copies_are_named_as_such_not_as_the_hub_datasets(tmp_path, monkeypatch):
    # the quickstart evaluates and decontaminates against small local files in MedMCQA's, MedQA's and PubMedQA's layout
    monkeypatch.chdir(tmp_path)
    loaded, _ = load(str(RECIPES / "quickstart.yaml"), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "me")
    names = [ref.name for ref in loaded.recipe.eval.benchmarks]
    scores = {"key": "k", "model": "m", "lighteval": "0.13.0", "mode": "generative",
              "generation": {"temperature": 0.6, "top_p": 0.95, "top_k": None, "max_new_tokens": 64, "seed": 42},
              "benchmarks": {name: {"score": 40.0, "stderr": 1.0, "n": 20, "metric": "accuracy", "unboxed": 0.0} for name in names}}
    text = model_card(loaded, rel, rel.evaluated, scores=scores)
    assert ModelCard(text).data.eval_results is None and "model-index" not in text
    assert "| MedMCQA (a local copy, `data/quickstart/eval/medmcqa`) | 40.00 ± 1.00 | 20 |" in text
    assert "openlifescienceai/medmcqa" not in text
    data = dataset_card(loaded, rel, rel.get("dataset"))
    assert "MedMCQA (a local copy, `data/quickstart/eval/medmcqa`)" in data and "openlifescienceai/medmcqa" not in data


def front_matter(text: str) -> str:
    return re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL).group(1)


def table(text: str, heading: str) -> dict[str, str]:
    """The first table after `heading` (a heading, or the table's own header row) as {first cell: second cell}."""
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ") and not re.fullmatch(r"[|\s:-]+", line)]
    rows = [line.strip("|").split(" | ") for line in (lines if heading.startswith("|") else lines[1:])]
    return {row[0].strip(): row[1].strip() for row in rows}


def sections(text: str) -> dict[str, str]:
    """Curation steps by name: `### 3. name (type)` -> the text up to the next step."""
    parts = re.split(r"^### \d+\. ", text.split("## Curation steps", 1)[1].split("\n## ", 1)[0], flags=re.MULTILINE)
    return {part.split("\n", 1)[0]: part for part in parts[1:]}


# ------------------------------------------------------------------------------------- metadata round trip


def test_model_card_metadata_round_trips_through_huggingface_hub(tiny):
    loaded, rel, stats, scores = tiny
    text = model_card(loaded, rel, rel.get("model"), stats=stats, scores=scores, chart="scores.png")
    card = ModelCard(text)
    assert card.data.to_yaml() == front_matter(text)  # the library reads back exactly what it wrote
    data = card.data
    assert data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert data.datasets == ["me/tiny-med-data"]
    assert (data.license, data.language, data.library_name, data.pipeline_tag) == ("apache-2.0", ["en"], "transformers", "text-generation")
    assert data.tags == ["medical", "sft", "dapo", "medrecipe"]
    assert data.model_name == "tiny-med"
    assert [(r.task_type, r.dataset_type, r.dataset_name, r.dataset_split, r.metric_type, r.metric_value)
            for r in data.eval_results] == [
        ("text-generation", "openlifescienceai/medmcqa", "MedMCQA", "validation", "accuracy", 41.25),
        ("text-generation", "qiaojin/PubMedQA", "PubMedQA", "train", "accuracy", 52.0),
    ]
    assert data.eval_results[1].dataset_config == "pqa_labeled"


def test_a_score_over_the_first_items_only_is_not_claimed_for_the_split(tiny, tmp_path):
    """Found by review: with `max_samples: 400` the model-index said MedMCQA's validation split (4,183 items) scored
    41.25, measured on its first 400; the card's table, with its n, is where such a score is told."""
    _, _, stats, scores = tiny
    loaded, _ = load(str(tmp_path / "recipe.yaml"), ("eval.benchmarks=[{name: medmcqa, max_samples: 400}, pubmedqa]",), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "me")
    text = model_card(loaded, rel, rel.get("model"), stats=stats, scores=scores)
    assert [result.dataset_type for result in ModelCard(text).data.eval_results] == ["qiaojin/PubMedQA"]
    assert "| 41.25 ± 1.50 | 400 |" in text


def test_a_score_over_the_rows_a_filter_keeps_is_not_claimed_for_the_split(tiny, tmp_path):
    """MMLU-Pro's health and biology questions (the registry's `where`) are 1,535 of its test split's 12,032 rows: the
    model-index would claim the score for the whole split; the card's table tells it, under the benchmark's title."""
    _, _, stats, scores = tiny
    loaded, _ = load(str(tmp_path / "recipe.yaml"), ("eval.benchmarks=[medmcqa, pubmedqa, mmlu_pro_medical]",), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "me")
    scores = {**scores, "benchmarks": {**scores["benchmarks"], "mmlu_pro_medical": scores["benchmarks"]["medmcqa"]}}
    text = model_card(loaded, rel, rel.get("model"), stats=stats, scores=scores)
    assert [result.dataset_type for result in ModelCard(text).data.eval_results] == ["openlifescienceai/medmcqa", "qiaojin/PubMedQA"]
    assert "MMLU-Pro (health, biology)" in text


def test_a_standard_error_lighteval_did_not_measure_is_not_printed_as_zero(tiny):
    """lighteval measures no standard error over one item; scores.json then says none (run/eval.py), and the card
    showed "± 0.00" (review)."""
    loaded, rel, stats, scores = tiny
    one = {**scores, "benchmarks": {**scores["benchmarks"], "medmcqa": {**scores["benchmarks"]["medmcqa"], "score": 100.0,
                                                                       "stderr": None, "n": 1}}}
    text = model_card(loaded, rel, rel.get("model"), stats=stats, scores=one)
    assert "| 100.00 | 1 | 5% | 40.50 | +59.50 |" in text


def test_model_card_shows_scores_beside_the_published_reference(tiny):
    loaded, rel, stats, scores = tiny
    text = model_card(loaded, rel, rel.get("model"), stats=stats, scores=scores, chart="scores.png")
    evaluation = text.split("## Evaluation", 1)[1].split("\n## ", 1)[0]
    assert "| Benchmark | This model | n | Without `\\boxed{}` | Tiny-Med (published) | Difference |" in evaluation
    assert "| 41.25 ± 1.50 | 400 | 5% | 40.50 | +0.75 |" in evaluation
    assert "| 52.00 ± 2.00 | 200 | 0% | 55.00 | -3.00 |" in evaluation
    assert "| **Average** | 46.62 |  |  | 47.75 | -1.12 |" in evaluation
    assert "lighteval 0.13.0" in evaluation and "temperature 0.6, top-p 0.9" in evaluation
    assert "![Scores per benchmark](scores.png)" in evaluation
    assert "8 records" in text.split("## Training data", 1)[1]


def test_a_card_without_run_outputs_is_valid(tiny):
    loaded, rel, _, _ = tiny
    text = model_card(loaded, rel, rel.get("model"))
    card = ModelCard(text)
    assert card.data.eval_results is None and "model-index" not in text and "model_name" not in text
    assert "Not evaluated yet" in text and "| [MedMCQA](https://huggingface.co/datasets/openlifescienceai/medmcqa) | 40.50 |" in text
    assert "None" not in text

    text = dataset_card(loaded, rel, rel.get("dataset"))
    card = DatasetCard(text)
    assert card.data.to_yaml() == front_matter(text)
    assert card.data.size_categories is None  # unknown until the data stage has counted
    assert "The counts appear once the data stage has run" in text
    assert "None" not in text


def test_sft_card_points_at_the_final_model_and_its_scores(tiny):
    loaded, rel, stats, scores = tiny
    text = model_card(loaded, rel, rel.get("sft"), stats=stats, scores=scores, rl_trained=True)  # scores: the final model's
    assert ModelCard(text).data.eval_results is None
    assert "its final model, trained from this checkpoint\nwith DAPO, is [me/tiny-med]" in text
    # before the RL stage has run (it is skipped on a CPU), no final model is named
    assert "its final model" not in model_card(loaded, rel, rel.get("sft"), stats=stats, scores=scores)
    assert "The recipe evaluates [me/tiny-med](https://huggingface.co/me/tiny-med); its card has the scores." in text
    assert "### Supervised fine-tuning (Axolotl)" in text and "(OpenRLHF)" not in text


def test_a_license_the_hub_does_not_know_is_said_before_anything_is_pushed(tiny, tmp_path):
    """Found by review: `license: foo-bar` passed validate, and the Hub, which checks a card's license when it is
    pushed, would refuse the card after the weights were uploaded; `license: other` was written without the
    license_name the Hub asks for (catalog/licenses.py has the evidence)."""
    from .conftest import run_cli

    recipe = str(tmp_path / "recipe.yaml")
    misspelt = run_cli("validate", recipe, "--set", "license=apache2")
    assert misspelt.code == 0 and "license: apache2 is not one of the Hub's license ids" in misspelt.err
    unnamed = run_cli("validate", recipe, "--set", "license=other")
    assert unnamed.code == 0 and "license: other: the Hub asks for the license's name (license_name)" in unnamed.err
    stray = run_cli("validate", recipe, "--set", "license_name=my-license")
    assert stray.code == 2 and "license_name: license_name names the license of `license: other`, and the license is " \
                               "apache-2.0" in stray.err
    named = ("license=other", "license_name=med-data-license", "license_link=https://example.org/LICENSE")
    assert (result := run_cli("validate", recipe, *[f"--set={o}" for o in named])).code == 0 and "license" not in result.err
    loaded, _ = load(recipe, named, warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "me")
    for data in (ModelCard(model_card(loaded, rel, rel.get("model"))).data, DatasetCard(dataset_card(loaded, rel, rel.get("dataset"))).data):
        assert (data.license, data.license_name, data.license_link) == ("other", "med-data-license", "https://example.org/LICENSE")
    assert ModelCard(model_card(*tiny[:2], tiny[1].get("model"))).data.license_name is None


def test_dataset_card_metadata_and_counts(tiny):
    loaded, rel, stats, _ = tiny
    text = dataset_card(loaded, rel, rel.get("dataset"), stats=stats)
    data = DatasetCard(text).data
    assert data.to_yaml() == front_matter(text)
    assert (data.license, data.language, data.size_categories, data.pretty_name) == ("apache-2.0", ["en"], "n<1K", "tiny-med-data")
    assert data.task_categories == ["text-generation", "question-answering"]
    assert data.configs == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]
    assert "| `local-qa` (Local question-answer pairs) | local `data/qa.jsonl` |  | conversations |  | 10 | 8 | 8 |" in text
    steps = sections(text)
    assert "- Records: 10 in, 9 out, **1 removed**." in steps["`near_dedup`"]
    assert table(steps["`near_dedup`"], "Resolved while running") == {"bands": "16", "rows": "8"}
    assert "- Records: 9 in, 8 out, **1 removed**." in steps["`decontaminate_ngram`"]
    assert "Benchmarks decontaminated against: [MedMCQA](https://huggingface.co/datasets/openlifescienceai/medmcqa), [PubMedQA]" in text


def test_cards_do_not_change_between_renders_or_working_directories(tiny, tmp_path, monkeypatch):
    loaded, rel, stats, scores = tiny
    first = model_card(loaded, rel, rel.get("model"), stats=stats, scores=scores)
    assert model_card(loaded, rel, rel.get("model"), stats=stats, scores=scores) == first
    monkeypatch.chdir(tmp_path / "data")  # publishing again, from elsewhere
    again, _ = load(str(tmp_path / "recipe.yaml"), warn=False)
    assert model_card(again, rel, rel.get("model"), stats=stats, scores=scores) == first
    assert "# Resolved recipe: recipe.yaml\n" in first and str(tmp_path) not in first


def test_cards_show_a_local_path_without_this_machines_folders(monkeypatch, ii_medical):
    """A path from the environment names this machine's folders (a home directory, a user name): cards show its file
    name; a relative path, the same on every machine, shows as the recipe wrote it."""
    loaded, rel = ii_medical
    assert "`data/evol-instruct-medical.jsonl`" in dataset_card(loaded, rel, rel.get("dataset"))
    monkeypatch.setenv("II_MEDICAL_EVOL_INSTRUCT", "/home/alice/private/evol.jsonl")
    loaded, _ = load(str(RECIPES / "ii-medical-8b-1706.yaml"), warn=False)
    cards = {"dataset": dataset_card(loaded, rel, rel.get("dataset")), "model": model_card(loaded, rel, rel.get("model"))}
    for kind, text in cards.items():
        assert "/home/alice" not in text, kind
        assert "path: '.../evol.jsonl'" in text, kind  # the resolved recipe
    assert "| `evol-instruct-medical` | local `.../evol.jsonl` |" in cards["dataset"]


def test_dataset_size_categories_are_the_hubs():
    """Every bucket is one huggingface_hub's DatasetCardData documents, up to past a trillion records."""
    from huggingface_hub import DatasetCardData

    from medrecipe.hub.cards.dataset_card import _size_category

    documented = set(re.findall(r"'([^']+)'", DatasetCardData.__doc__.split("size_categories", 1)[1].split("source_datasets", 1)[0]))
    counts = [0, 999, 1_000, 2_197_741, 10**9 - 1, 10**9, 2 * 10**10, 10**12 - 1, 10**12, 10**15]
    assert [_size_category(n) for n in counts] == ["n<1K", "n<1K", "1K<n<10K", "1M<n<10M", "100M<n<1B", "1B<n<10B",
                                                   "10B<n<100B", "100B<n<1T", "n>1T", "n>1T"]
    assert {_size_category(n) for n in counts} <= documented


def test_a_recipe_with_only_sft_on_a_hub_dataset(write):
    path = write("sft-only.yaml", """
        name: sft-only
        base_model: Qwen/Qwen3-0.6B
        sft:
          datasets: [{path: someone/medical-chats}]
          batch: {global_size: 8}
          deepspeed: null
        compute: {gpus_per_node: 1}
    """)
    loaded, _ = load(str(path), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "me")
    assert [a.kind for a in rel.artifacts] == ["model"]
    text = model_card(loaded, rel, rel.get("model"))
    data = ModelCard(text).data
    assert data.datasets == ["someone/medical-chats"] and data.base_model == "Qwen/Qwen3-0.6B"
    assert "The recipe has no evaluation section." in text
    assert "- This model has not been assessed for clinical use" in text  # the default limitation
    assert "## Citation" not in text


def test_a_reward_model_card_serves_it_with_openrlhfs_reward_server():
    """OpenRLHF saves a reward model as its own RewardModel class, which vLLM and SGLang do not load; its reward server
    (openrlhf/cli/serve_rm.py at 0.11.2) does, and scores conversations rendered as RewardDataset renders them: the
    chat template, then the EOS where the text does not end with it (datasets/reward_dataset.py, __getitem__)."""
    loaded, _ = load(str(RECIPES / "ultramedical-rm-llama3-8b.yaml"), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "someone")
    text = model_card(loaded, rel, rel.get("model"))
    usage = text.split("## How to use", 1)[1].split("\n## ", 1)[0]
    assert "python -m openrlhf.cli.serve_rm --reward.model_name_or_path someone/ultramedical-rm-llama3-8b --data.max_len 2048" in usage
    assert 'json={"query": [text]}' in usage and 'text += " " + tokenizer.eos_token' in usage
    assert "vllm serve" not in text and "sglang.launch_server" not in text and "temperature" not in usage
    assert ModelCard(text).data.pipeline_tag == "text-classification"
    # it reproduces no released model: the paper's reward models were not published
    assert "**Reproduces:**" not in text and "TsinghuaC3I/UltraMedical-Preference" in text


def test_an_evaluation_by_likelihood_recommends_no_sampling():
    """Internist's card recommended temperature 0.6 and 32,768 new tokens, the schema's unused defaults, for an evaluation
    that generates nothing in a context of 4,096 tokens (review)."""
    loaded, _ = load(str(RECIPES / "internist-7b.yaml"), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "someone")
    usage = model_card(loaded, rel, rel.get("model")).split("## How to use", 1)[1].split("\n## ", 1)[0]
    assert "The evaluation generates nothing: it scores each answer option by its likelihood" in usage
    assert "temperature" not in usage and "max_tokens" not in usage and "Answer:" in usage


def test_an_evaluation_by_likelihood_has_no_column_for_unboxed_answers():
    """Found by review: Internist's card (log-likelihood: nothing is generated, nothing boxed) had a "Without
    `\\boxed{}`" column of dashes, which only a generative evaluation's text explains."""
    loaded, _ = load(str(RECIPES / "internist-7b.yaml"), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "someone")
    scores = {"key": "k", "model": "m", "lighteval": "0.13.0", "mode": "loglikelihood",
              "generation": {"temperature": 0.6, "top_p": 0.9, "top_k": None, "max_new_tokens": 32768, "seed": 42},
              "benchmarks": {ref.name: {"score": 50.0, "stderr": 1.0, "n": 100, "metric": "accuracy", "unboxed": None}
                             for ref in loaded.recipe.eval.benchmarks}}
    evaluation = model_card(loaded, rel, rel.get("model"), scores=scores).split("## Evaluation", 1)[1].split("\n## ", 1)[0]
    assert "boxed" not in evaluation
    assert "| Benchmark | This model | n | Internist.ai 7b (published) | Difference |" in evaluation
    assert "| 50.00 ± 1.00 | 100 | 60.50 | -10.50 |" in evaluation
    assert "| **Average** | 50.00 |  | 67.79 | -17.79 |" in evaluation


def test_every_published_row_the_source_cites_is_on_the_card():
    """UltraMedical's card said its scores were the paper's best beside the 8B's, and showed only the 8B's (review)."""
    loaded, _ = load(str(RECIPES / "ultramedical-llama3-8b.yaml"), warn=False)
    rel = release(loaded.recipe, recipe_sha256(loaded.recipe), "someone")
    text = model_card(loaded, rel, rel.get("model"))
    assert "| Benchmark | Llama-3-8B-UltraMedical (greedy) (published) | UltraMedical paper, best reported (published) |" in text
    assert re.search(r"\| \[MedMCQA\]\([^)]*\) \| 61\.50 \| 72\.94 \|", text)


def test_each_curation_step_is_described_in_whole_sentences(ii_medical):
    """Found by review: a step's description was its class docstring's first line, so the decontamination steps read
    "..., or contains the" and "rapidfuzz's ratio on normalised text, exactly as"."""
    loaded, rel = ii_medical
    for name, body in sections(dataset_card(loaded, rel, rel.get("dataset"))).items():
        description = body.split("\n\n", 2)[1]
        assert description.endswith((".", ".)")) and "\n" not in description, (name, description)
    steps = sections(dataset_card(loaded, rel, rel.get("dataset")))
    assert "or contains the whole of a question shorter than n words." in steps["`decontaminate_ngram`"]
    assert "exactly as scoring every pair would" in steps["`decontaminate_fuzzy`"]


def test_an_ungraded_generation_step_is_not_said_to_keep_the_correct_answers(ii_medical):
    loaded, rel = ii_medical
    text = dataset_card(loaded, rel, rel.get("dataset"), stats=None)
    assert text.count("Synthetic generation, ungraded: sample 6 responses for each prompt") == 1
    assert text.count("Synthetic generation, ungraded: sample 1 response for each prompt") == 1
    assert text.count("keep the correct ones") == 1  # the one graded step


# ------------------------------------------------------------------------------ the seed cards' numbers


def test_ii_medical_model_card_carries_every_number_of_the_seed_card(ii_medical):
    loaded, rel = ii_medical
    text = model_card(loaded, rel, rel.get("model"))
    sft = table(text, "### Supervised fine-tuning (Axolotl)")
    # [model card] "Max Length: 16378. Batch Size: 128. Learning-Rate: 5e-5. Number Of Epoch: 6."
    assert sft["Base model"] == "Qwen/Qwen3-8B"
    assert sft["Max sequence length"] == "16378"
    assert sft["Global batch"] == "128 sequences"
    assert sft["Learning rate"] == "5e-5"
    assert sft["Epochs"] == "6"
    rl = table(text, "### DAPO (OpenRLHF)")
    assert rl["Max prompt length"] == "2048 tokens (a longer prompt is truncated from the left)"
    assert rl["Max response length"] == "12288 tokens"
    assert rl["Overlong buffer"] == "4096 tokens, penalty factor 1.0"
    assert rl["Clip ratio low / high"] == "0.2 / 0.28"
    assert rl["Rollout batch (train prompts)"] == "512"
    # "Generation prompt 1536" is no OpenRLHF setting (tests/test_ii_medical_fidelity.py): the card says what ran
    assert rl["Generation batch (prompts)"] == ("512 (the recipe's 1536 is not an OpenRLHF 0.11 setting: each step trains on 512 "
                                                "groups of the current policy; each filtered prompt is replaced by a fresh one "
                                                "until that many groups pass dynamic filtering)")
    assert rl["Mini-batch (prompts)"] == "32"
    assert rl["Responses per prompt"] == "16"
    assert rl["Rollout sampling"] == "temperature 1.0, top-p 1.0, top-k -1"
    assert rl["Learning rate"] == "1e-6"
    assert rl["Warmup"] == "10 steps"
    assert rl["Weight decay"] == "0.1"
    assert rl["Loss aggregation"] == "token_mean"
    assert rl["Gradient clipping"] == "1.0"
    assert rl["Entropy coefficient"] == "0.0"
    # [model card] sections V-VIII: serving, recommended sampling and prompt, limitations, citation
    assert "vllm serve someone/ii-medical-8b-1706" in text
    assert "python -m sglang.launch_server --model-path someone/ii-medical-8b-1706" in text
    assert "temperature = 0.6, top_p = 0.9" in text
    assert "Please reason step-by-step, and put your final answer within \\boxed{}." in text
    for line in ("Dataset may contain inherent biases from source materials", "Medical knowledge requires regular updates",
                 "Not suitable for medical use"):
        assert f"- {line}\n" in text
    assert "@misc{2025II-Medical-8B-1706," in text
    # [model card] section III: the published row beside each benchmark
    reference = table(text, "For reference, II-Medical-8B-1706")
    assert list(reference.values()) == ["74.44", "88.61", "79.80", "81.04", "46.80", "71.60", "80.84", "74.67", "29.63", "77.61"]
    assert ModelCard(text).data.datasets == ["someone/ii-medical-8b-1706-data", "Intelligent-Internet/II-Medical-RL"]
    original = "Intelligent-Internet/II-Medical-Reasoning-SFT"
    assert f"The original release's dataset: [{original}](https://huggingface.co/datasets/{original})." in text


def test_ii_medical_dataset_card_carries_every_number_of_the_seed_card(ii_medical):
    loaded, rel = ii_medical
    text = dataset_card(loaded, rel, rel.get("dataset"))
    assert "(the original release has 2,197,741)" not in text  # no count before the data stage has run
    assert "| **Total** |" not in text
    # [dataset card] the general medical prompts and the instruction-following subset, with their counts
    for source, expected in (("apollo-textbook-qa", "229,433"), ("apollo-patient-qa", "276,079"), ("apollo-guideline-qa", "142,927"),
                             ("chatdoctor", "215,647"), ("evol-instruct-medical", "74,190"), ("am-qwen3-instruction-following", "87,627")):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{source}`"))
        assert row.endswith(f"| {expected} |"), row
    for hub_id in ("GeneralReasoning/GeneralThought-430K", "FreedomIntelligence/Medical-R1-Distill-Data",
                   "FreedomIntelligence/Medical-R1-Distill-Data-Chinese", "UCSC-VLAA/m23k-tokenized", "openlifescienceai/medmcqa",
                   "bigbio/med_qa", "qiaojin/PubMedQA", "UCSC-VLAA/MedReason", "PrimeIntellect/SYNTHETIC-1-SFT-Data",
                   "a-m-team/AM-DeepSeek-R1-Distilled-1.4M", "open-thoughts/OpenThoughts2-1M", "nvidia/Llama-Nemotron-Post-Training-Dataset",
                   "cognitivecomputations/dolphin-r1", "ServiceNow-AI/R1-Distill-SFT", "FreedomIntelligence/ApolloCorpus",
                   "lavita/ChatDoctor-HealthCareMagic-100k", "a-m-team/AM-Qwen3-Distilled"):
        assert hub_id in DatasetCard(text).data.source_datasets
    steps = sections(text)
    params = {name: table(body, "| Parameter | Value |") for name, body in steps.items()}
    # "For each prompt, we generated 6-10 sampled responses ... keep only the correct one" (Qwen3-235B-A22B)
    synthetic = params["synthetic-qa (`generate`)"]
    assert (synthetic["model"], synthetic["samples"], synthetic["max_samples"]) == ("`Qwen/Qwen3-235B-A22B`", "6", "10")
    # "GPT-4o as an automatic judge. Only the high-scoring (i.e >= 8/10) responses"
    judge = params["`judge_filter`"]
    assert (judge["model"], judge["min_score"], judge["max_score"]) == ("`gpt-4o`", "8.0", "10.0")
    # The R1-trace domain pipeline: MiniLM embeddings, 50,000 clusters, 10 nearest, Qwen2.5-32B votes, Medical + Biology
    domain = params["`domain_filter`"]
    assert domain["embedding.model"] == "`sentence-transformers/all-MiniLM-L6-v2`"
    assert domain["kmeans.clusters"] == "50000"
    assert domain["nearest"] == "10"
    assert domain["classifier.model"] == "`Qwen/Qwen2.5-32B-Instruct`"
    assert domain["keep"] == "Medical, Biology"
    # Preprocessing [model card]: complete generations, > 3 words, <= 47 "Wait" (97th percentile)
    assert params["`complete_generation`"]["think_close"] == "`</think>`"
    assert params["`min_prompt_words`"]["more_than"] == "3"
    wait = params["`max_word_occurrences`"]
    assert (wait["word"], wait["max_count"], wait["percentile"]) == ("`Wait`", "47", "97.0")
    # Response deduplication "Ngram: 4, Jacard Threshold: 0.7"; decontamination 8-grams, then fuzzy at 80 %
    assert (params["`near_dedup`"]["ngram"], params["`near_dedup`"]["threshold"]) == ("4", "0.7")
    assert params["`decontaminate_ngram`"]["n"] == "8"
    assert params["`decontaminate_fuzzy`"]["threshold"] == "80.0"
    assert "4-gram MinHash LSH on the response (128 permutations); records at Jaccard similarity >= 0.7" in text
    assert "8-gram overlap (NFKC, lower case) between the prompt and the evaluation items" in text
    assert "fuzzy match (rapidfuzz ratio >= 80.0% on NFKC, lower-cased text without punctuation)" in text
    decontaminated = text.split("Benchmarks decontaminated against: ", 1)[1].split("\n", 1)[0]
    assert decontaminated.count("](https://huggingface.co/datasets/") == 10
