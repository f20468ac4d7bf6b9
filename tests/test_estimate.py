"""What `plan` says a release will cost: the formulas against hand-computed values, the model sizes against the
cards and transformers' own modeling code, the memory of the model states against DeepSpeed's own estimators."""

from __future__ import annotations

import json
import subprocess
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medrecipe.catalog import gpus, models
from medrecipe.compile import estimate as cost
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe
from medrecipe.recipe.derive import sft_batch
from medrecipe.recipe.model import GPU

from .conftest import REPO, run_cli

QWEN3_8B = models.KNOWN["Qwen/Qwen3-8B"].shape
H100 = cost.Hardware.of(GPU())


def test_every_catalog_shape_has_the_size_its_card_states():
    for name, facts in models.KNOWN.items():
        if facts.shape:
            assert facts.shape.parameters() / 1e9 == pytest.approx(facts.billions, rel=0.02), name
    # the Qwen3 cards also state the count without embeddings ("Number of Parameters (Non-Embedding)")
    for name, non_embedding in (("Qwen/Qwen3-8B", 6.95), ("Qwen/Qwen3-4B", 3.6), ("Qwen/Qwen3-32B", 31.2)):
        shape = models.KNOWN[name].shape
        embeddings = shape.vocab * shape.hidden * (1 if shape.tied else 2)
        assert (shape.parameters() - embeddings) / 1e9 == pytest.approx(non_embedding, rel=0.01), name


def test_a_local_config_is_read_before_the_catalog(tmp_path):
    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
              "vocab_size": 1000, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    shape, source = models.shape(str(tmp_path))
    assert source == str(tmp_path / "config.json")
    # 2 layers x (attention 64 x 16 x (2 x 4 + 2 x 2) + MLP 3 x 64 x 128 + two norms of 64) + tied embedding + final norm
    assert shape.parameters() == 2 * (64 * 16 * 12 + 3 * 64 * 128 + 128) + 1000 * 64 + 64
    assert models.shape("Qwen/Qwen3-8B") == (QWEN3_8B, "medrecipe's catalog")
    assert models.shape("someone/unknown-model") is None
    # a mixture of experts (Mixtral-8x7B's config.json) is not sized as the dense model of one expert (found by review:
    # 7.24B parameters of its 46.7B, and a "fits" verdict)
    mixtral = tmp_path / "mixtral"
    mixtral.mkdir()
    (mixtral / "config.json").write_text(json.dumps({
        "model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 32000,
        "num_attention_heads": 32, "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2}))
    assert models.shape(str(mixtral)) is None


def test_the_formulas_give_the_hand_computed_values():
    assert QWEN3_8B.parameters() == 8_190_735_360
    assert QWEN3_8B.largest_module_parameters() == 151_936 * 4096  # the embedding (and the untied output layer)
    # ZeRO-3 on 8 GPUs: the largest module gathered in fp32 + 18 bytes a parameter partitioned
    assert cost.model_states_bytes(QWEN3_8B, "zero3", 8) == 4 * 622_329_856 + 18 * 8_190_735_360 // 8
    assert cost.model_states_bytes(QWEN3_8B, "zero2", 4) == 2 * 8_190_735_360 + 18 * 8_190_735_360 // 4
    assert cost.model_states_bytes(QWEN3_8B, None, 8) == 16 * 8_190_735_360
    assert cost.model_states_bytes(QWEN3_8B, "zero3_offload", 8) == 4 * 622_329_856
    # checkpointed: 36 layer inputs of 16,378 x 4096 in bf16, and one layer recomputed:
    # 16,378 x (12 x 4096 + 4 x 8 x 128 + 8 x 12,288) bytes
    assert cost.activation_bytes(QWEN3_8B, 16_378, True) == 36 * 2 * 16_378 * 4096 + 16_378 * 151_552
    assert cost.activation_bytes(QWEN3_8B, 16_378, False) == 36 * 16_378 * 151_552
    assert cost.logits_bytes(QWEN3_8B, 16_378) == 16_378 * 151_936 * 10
    # 1,000 tokens in sequences of 2,048: 3 x (2 N + 2 x 36 layers x 4096 x 2,048) a token
    assert cost.training_flops(QWEN3_8B, 1000, 2048) == 3 * 1000 * (2 * 8_190_735_360 + 2 * 36 * 4096 * 2048)
    assert cost.kv_cache_bytes_per_token(QWEN3_8B) == 2 * 36 * 8 * 128 * 2
    assert H100.hours(1e21) == pytest.approx(1e21 / (989e12 * 0.40) / 3600)
    assert H100.hours(0, 1e21) == pytest.approx(1e21 / (989e12 * 0.15) / 3600)


def test_the_gpu_types_of_the_recipe_are_the_catalogs_and_their_documented_defaults_hold():
    assert set(typing.get_args(GPU.model_fields["type"].annotation)) == set(gpus.GPUS)
    described = GPU.model_fields["utilization"].description
    for name, facts in gpus.GPUS.items():
        family = name.split("-")[0]
        assert f"{facts.training_utilization:.2f}" in described and family in described
        assert f"{facts.memory_gib:g}" in GPU.model_fields["memory_gib"].description
    assert all(f"{facts.generation_utilization:.2f}" in GPU.model_fields["generation_utilization"].description
               for facts in gpus.GPUS.values())
    a100 = cost.Hardware.of(GPU(type="A100-40GB", utilization=0.3))
    assert (a100.memory_gib, a100.peak_flops, a100.training_utilization) == (40, 312e12, 0.3)


def test_ii_medical_is_sized_per_stage_with_its_assumptions(tmp_path):
    loaded = load_recipe(REPO / "recipes" / "ii-medical-8b-1706.yaml")
    sft, rl, evaluation = cost.estimate(loaded, Layout(tmp_path, loaded.recipe))
    # SFT: 2,197,741 samples at sequence_len 16,378 for 6 epochs (an upper bound) on 8 H100s at 40 %
    tokens = 2_197_741 * 16_378 * 6
    flops = 3 * tokens * (2 * 8_190_735_360 + 2 * 36 * 4096 * 16_378)
    assert (sft.tokens, sft.gpus) == (tokens, 8) and sft.flops == pytest.approx(flops, rel=1e-12)
    assert sft.gpu_hours == pytest.approx(flops / (989e12 * 0.40) / 3600)
    assert any("upper bound" in line for line in sft.basis)
    [memory] = sft.memory
    assert memory.verdict == "fits" and 45 < memory.total_gib < 60  # ZeRO-3 states 19.5, logits 23.2, activations 6.8
    # DAPO per step: 1,536 prompts x 16 samples generated, 512 x 16 trained, at 2,048 + 12,288 tokens
    assert rl.per == "per step" and rl.tokens == (1536 + 512) * 16 * 14_336
    assert [m.phase for m in rl.memory] == ["actor training (vLLM asleep)", "rollouts (DeepSpeed asleep)"]
    assert all(m.verdict == "fits" for m in rl.memory)
    # evaluation: the registry's item counts, 32,768 generated tokens each; three BioMed-R1-Eval counts are unknown
    assert evaluation.tokens == (4183 + 1273 + 1000 + 1535 + 5000 + 308 + 2450) * (1024 + 32_768)
    assert any("lancet, medbullets_op5, nejm" in line for line in evaluation.basis)


def test_a_local_copy_counts_the_items_of_the_split_evaluated(tmp_path):
    """Found by review: a local copy of openlifescienceai/medmcqa was counted whole, its train and test splits too."""
    from .hub_fixtures import encoded, fixture

    for path, content in fixture("openlifescienceai/medmcqa")["branches"]["main"].items():
        (tmp_path / "medmcqa" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "medmcqa" / path).write_bytes(encoded(path, content))
    loaded = load_recipe(REPO / "recipes" / "ii-medical-8b-1706.yaml",
                         [f"eval.benchmarks.0={{name: medmcqa, path: {tmp_path / 'medmcqa'}, split: validation}}"])
    assert loaded.recipe.eval.benchmarks[0].name == "medmcqa"
    evaluation = cost.estimate(loaded, Layout(tmp_path / "out", loaded.recipe))[2]
    # the fixture's two validation rows, then the registry's counts of the others (as in the test above)
    assert evaluation.tokens == (2 + 1273 + 1000 + 1535 + 5000 + 308 + 2450) * (1024 + 32_768)


def test_the_curated_data_is_measured_when_it_exists(tmp_path):
    loaded = load_recipe(REPO / "recipes" / "quickstart.yaml")
    layout = Layout(tmp_path, loaded.recipe)
    assert "unknown" in cost.estimate(loaded, layout)[0].basis[-1]
    layout.data_output().mkdir(parents=True)
    messages = [[{"role": "user", "content": "q" * 400}, {"role": "assistant", "content": "a" * 1200}]] * 30
    pq.write_table(pa.table({"messages": messages}), layout.data_output() / "00000.parquet")
    sft = cost.estimate(loaded, layout)[0]
    assert "30 samples measured in the curated data, 400 tokens each" in sft.basis[1]  # 1,600 characters at 4 a token
    recipe = loaded.recipe
    steps_worth = recipe.sft.max_steps * sft_batch(recipe.sft, recipe.compute).sequences_per_step * 400  # max_steps caps it
    assert sft.tokens == min(30 * 400 * recipe.sft.epochs, steps_worth)


def test_plan_prints_gpu_hours_and_a_memory_verdict_per_stage(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich's table, unwrapped
    result = run_cli("plan", str(REPO / "recipes" / "ii-medical-8b-1706.yaml"))
    assert result.code == 0, result.err
    section = result.out.split("─ cost ─")[1]
    for stage in ("sft", "rl", "eval"):
        assert f"│ {stage} " in section
    assert "training: 52.5 of 80 GiB, fits" in section and "per step" in section
    assert "from medrecipe's catalog" in section and "40% utilisation" in section
    unsharded = run_cli("plan", str(REPO / "recipes" / "ii-medical-8b-1706.yaml"), "--set", "sft.deepspeed=null")
    assert "training: 155.0 of 80 GiB, does not fit" in unsharded.out.split("─ cost ─")[1]


def test_plan_cuts_no_value_at_a_terminals_width(monkeypatch):
    """Found by review: at 80 columns, or piped, `plan` cut Hub ids, mappings, models and verdicts to "…"
    (FreedomIntelligence…, two sources both medical-r1-distill…). Its tables wrap a value instead; only the long
    texts of a step's parameters (prompt templates) are abbreviated, on purpose."""
    monkeypatch.setenv("COLUMNS", "80")
    result = run_cli("plan", str(REPO / "recipes" / "ii-medical-8b-1706.yaml"))
    assert result.code == 0, result.err
    sources, rest = result.out.split("curation steps", 1)
    assert "…" not in sources
    assert "…" not in rest.split("─ hub ─", 1)[1]


def test_the_memory_formula_is_deepspeeds_on_transformers_models(tool_python):
    """Each catalog architecture is built by the sft environment's transformers and handed to DeepSpeed's estimators."""
    cases, expected = [], {}
    for name in ("Qwen/Qwen3-8B", "Qwen/Qwen3-4B", "Qwen/Qwen2.5-7B-Instruct", "meta-llama/Meta-Llama-3-8B",
                 "mistralai/Mistral-7B-v0.1", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        shape = models.KNOWN[name].shape
        model_type = "qwen3" if shape.qk_norm else "qwen2" if shape.qkv_bias else "llama"
        config = {"model_type": model_type, "hidden_size": shape.hidden, "num_hidden_layers": shape.layers,
                  "intermediate_size": shape.intermediate, "vocab_size": shape.vocab, "num_attention_heads": shape.heads,
                  "num_key_value_heads": shape.kv_heads, "head_dim": shape.head_dim, "tie_word_embeddings": shape.tied}
        cases.append({"name": name, "config": config, "gpus": 8})
        expected[name] = {"parameters": shape.parameters(), "largest": shape.largest_module_parameters(),
                          **{stage: cost.model_states_bytes(shape, stage, 8) for stage in ("zero2", "zero3", "zero3_offload")}}
    result = subprocess.run([str(tool_python("sft")), str(Path(__file__).parent / "deepspeed_estimates.py")],
                            input=json.dumps(cases), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for measured in json.loads(result.stdout.strip().splitlines()[-1]):
        assert {key: value for key, value in measured.items() if key != "name"} == expected[measured["name"]], measured["name"]


def test_the_recipes_readme_shows_plans_figures():
    """recipes/README.md's cost table is `plan`'s, recipe by recipe (nothing curated yet)."""
    table = (REPO / "recipes" / "README.md").read_text(encoding="utf-8").split("## What each recipe costs")[1]
    shown = [line for line in table.splitlines() if line.startswith("| `")]
    expected = []
    for path in sorted((REPO / "recipes").glob("*.yaml")):
        loaded = load_recipe(path)
        for stage in cost.estimate(loaded, Layout(Path("/nonexistent/build"), loaded.recipe)):
            hours = "?" if stage.gpu_hours is None else f"{stage.gpu_hours:,.1f}" + (f" {stage.per}" if stage.per else "")
            memory = "; ".join(f"{m.phase}: {m.total_gib:,.1f} GiB, {m.verdict}" for m in stage.memory)
            expected.append(f"| `{path.stem}` | {stage.stage} | {stage.gpus} | {hours} | {memory} |")
    assert sorted(shown) == sorted(expected)


def test_plan_lists_the_repositories_publish_pushes(monkeypatch):
    """Found by review: plan listed internist-7b-sft, an SFT repository `publish` makes only where RL follows SFT."""
    monkeypatch.setenv("COLUMNS", "250")
    for recipe, artifacts in (("internist-7b", ["dataset", "model"]), ("ii-medical-8b-1706", ["dataset", "sft", "model"])):
        hub = run_cli("plan", str(REPO / "recipes" / f"{recipe}.yaml")).out.split("─ hub ─")[1].split("─ cost ─")[0]
        assert [line.split("│")[1].strip() for line in hub.splitlines() if line.startswith("│ ")] == artifacts, hub
        published = run_cli("publish", str(REPO / "recipes" / f"{recipe}.yaml"), "--dry-run")
        assert (f"{recipe}-sft" in published.out) == ("sft" in artifacts), published.out
