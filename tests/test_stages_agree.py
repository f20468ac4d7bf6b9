"""What each stage feeds the model, computed by the tools' own data code in their pinned environments, on rows laid
out as the real Hub datasets are (served by a local Hub): Axolotl's tokenization and loss mask, OpenRLHF's prompt
and preference preprocessing, lighteval's prompt and metric path. `medrecipe inspect` runs all three; these tests
assert what the model sees, what it is trained on and how it is scored, and that the defects this replaces are
caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medrecipe.compile.build import compile_recipe
from medrecipe.recipe import load_recipe

from .conftest import RECIPES
from .judge_server import JudgeServer
from .stand_in_tokenizers import build as stand_in_tokenizer

COMPILE = Path(__file__).resolve().parent.parent / "medrecipe" / "compile"
THINK = "<think>\nScurvy is defective collagen hydroxylation, which needs ascorbate.\n</think>\n\n"


@pytest.fixture(scope="module")
def envs(tool_python):
    return {name: tool_python(name) for name in ("sft", "rl", "eval")}


@pytest.fixture(scope="module")
def tokenizers(envs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizers")
    return {kind: stand_in_tokenizer(kind, folder / kind, envs["sft"]) for kind in ("qwen3", "llama3", "llama3-base")}


def hub_env(hub, **extra: str) -> dict[str, str]:
    return {**os.environ, **hub.client_env("hf_test", hub.home), "COLUMNS": "200", **extra}


def inspect(hub, recipe: str, tokenizer: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "inspect.json"
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "inspect", str(RECIPES / f"{recipe}.yaml"),
                             "--tokenizer", str(tokenizer), "--json", str(out), *args],
                            env=hub_env(hub), capture_output=True, text=True, cwd=tmp_path, timeout=900)
    return result, json.loads(out.read_text()) if out.is_file() else {}


def failed(found: dict) -> list[str]:
    return [a["check"] for a in found.get("agreements", []) if not a["ok"]]


# --------------------------------------------------------------------------------------------- II-Medical


def test_ii_medical_sft_rl_and_evaluation_agree(fixture_hub, tokenizers, tmp_path):
    result, found = inspect(fixture_hub, "ii-medical-8b-1706", tokenizers["qwen3"], tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert not failed(found) and len(found["agreements"]) >= 24
    # Axolotl trains the assistant turn, opening <think> included; the prompt and the end of turn carry no loss
    pieces = found["sft"]
    assert [trained for _, trained in pieces] == [False, True, False]
    (prompt, _), (answer, _), (after, _) = pieces
    assert prompt.endswith("<|im_start|>assistant\n") and answer.startswith("<think>\n") and "\n</think>\n\n" in answer
    assert answer.endswith("Obtain a 12-lead ECG immediately (within 10 minutes of arrival).<|im_end|>")  # it learns to stop
    assert after == "\n"
    assert found["generation_prompt"].endswith("<|im_start|>user\nA 60-year-old man has crushing chest pain radiating to the left "
                                                "arm. What is the first-line diagnostic test?<|im_end|>\n<|im_start|>assistant\n")
    # OpenRLHF's prompt shows the choices and asks for a box; its label holds the gold letter
    rl = found["rl_prompt"]
    assert rl["text"] == ("<|im_start|>user\nScurvy is caused by deficiency of which vitamin?\n\nA. Vitamin C\nB. Vitamin D\n"
                          "C. Vitamin K\nD. Vitamin B12\n\nPlease reason step-by-step, and put your final answer within "
                          "\\boxed{}.<|im_end|>\n<|im_start|>assistant\n")
    assert json.loads(rl["label"])["answer"] == "A" and rl["leading_bos"] <= 1
    # lighteval renders every benchmark through the same template, the generation prompt opening no think block
    assert set(found["evaluation"]) == {"medmcqa", "medqa", "pubmedqa", "mmlu_pro_medical", "healthbench", "lancet",
                                        "medbullets_op4", "medbullets_op5", "medxpertqa", "nejm"}
    for name, value in found["evaluation"].items():
        assert value["prompt"].endswith("<|im_start|>assistant\n"), name


@pytest.mark.parametrize("template, prompt_end", [
    ("qwen3", "<|im_start|>assistant\n<think>\n\n"),  # Axolotl's (the recipe's template before this fix): prompts open the block
    ("tokenizer_default", "<|im_start|>assistant\n"),  # Qwen3's own: it writes <think>\n itself, so it is never trained
])
def test_the_qwen3_templates_are_caught(fixture_hub, tokenizers, tmp_path, template, prompt_end):
    result, found = inspect(fixture_hub, "ii-medical-8b-1706", tokenizers["qwen3"], tmp_path, "--set", f"sft.chat_template={template}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert failed(found) == ["the generation prompt ends where SFT's trained text starts", "the model writes its own <think>"]
    assert found["rl_prompt"]["text"].endswith(prompt_end)
    assert found["sft"][0][0].endswith("<|im_start|>assistant\n<think>\n") and not found["sft"][0][1]  # left out of the loss
    # and validate says so before anything runs
    warned = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "validate", str(RECIPES / "ii-medical-8b-1706.yaml"),
                             "--set", f"sft.chat_template={template}"], capture_output=True, text=True, cwd=tmp_path)
    assert f"sft.chat_template: {template}: with this template Axolotl leaves the <think> opener" in warned.stderr


def test_the_dapo_reward_prefers_the_gold_letter_of_a_real_layout_row(fixture_hub, envs, tokenizers, tmp_path):
    """II-Medical-RL's row through medrecipe's reader, OpenRLHF's prompt preprocessing, and rl/reward.py as OpenRLHF
    calls it (one query: the templated prompt followed by the decoded response)."""
    result, found = inspect(fixture_hub, "ii-medical-8b-1706", tokenizers["qwen3"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    prompt, label = found["rl_prompt"]["text"], found["rl_prompt"]["label"]
    compile_recipe(load_recipe(RECIPES / "ii-medical-8b-1706.yaml"), tmp_path / "build", ["rl"])
    script = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("reward_func", {str(tmp_path / "build" / "rl" / "reward.py")!r})
reward = importlib.util.module_from_spec(spec); spec.loader.exec_module(reward)
prompt, label = json.loads(sys.argv[1])
answers = {{letter: reward.reward_func([prompt + {THINK!r} + "The answer is \\\\boxed{{" + letter + "}}.<|im_end|>"], [prompt], [label])
           for letter in ["A", "B", "C", "D", "Vitamin C", "Vitamin K"]}}
print(json.dumps({{letter: value["rewards"] for letter, value in answers.items()}}))
"""
    rewards = json.loads(subprocess.run([str(envs["rl"]), "-c", script, json.dumps([prompt, label])], capture_output=True,
                                        text=True, check=True).stdout)
    # the right option's text, boxed, is that option, as evaluation grades it
    assert rewards == {"A": 1.0, "B": -1.0, "C": -1.0, "D": -1.0, "Vitamin C": 1.0, "Vitamin K": -1.0}


def test_lighteval_scores_every_ii_medical_benchmark_and_the_judge_sees_the_answer_only(fixture_hub, envs, tokenizers, tmp_path):
    with JudgeServer() as judge:
        loaded = load_recipe(RECIPES / "ii-medical-8b-1706.yaml", [f"eval.judge.endpoint={judge.endpoint}"])
        build = tmp_path / "build"
        compile_recipe(loaded, build, ["eval"])
        staged = subprocess.run(["bash", str(build / "eval" / "stage_data.sh")], capture_output=True, text=True,
                                env=hub_env(fixture_hub, PATH=f"{envs['eval'].parent}:{os.environ['PATH']}"))
        assert staged.returncode == 0, staged.stderr
        from medrecipe.compile.lighteval import ensure_offline_import

        ensure_offline_import(envs["eval"])
        tasks = [f"medrecipe:{ref.name}" for ref in loaded.recipe.eval.benchmarks]
        responses = {task: [THINK + "So the answer is \\boxed{GOLD}.", THINK + "So the answer is \\boxed{WRONG}."] for task in tasks}
        responses["medrecipe:healthbench"] = [THINK + "Call emergency services now; do not drive yourself."]
        request = tmp_path / "request.json"
        request.write_text(json.dumps({"tasks": tasks, "documents": 2, "responses": {}}))
        probe = [str(envs["eval"]), "-I", str(COMPILE / "lighteval" / "prompts.py"), str(build / "eval" / "tasks.py"),
                 str(tokenizers["qwen3"]), str(request)]
        env = hub_env(fixture_hub, OPENAI_API_KEY="sk-test-judge")
        documents = json.loads(subprocess.run(probe, capture_output=True, text=True, env=env, check=True).stdout.splitlines()[-1])
        # score the gold and a wrong answer of each task's first document with the task's own metrics
        for task in tasks:
            gold = documents[task][0]["gold"]
            letters = "yes no maybe".split() if task.endswith("pubmedqa") else list("ABCDEFGHIJ")
            wrong = next(letter for letter in letters if letter != gold)
            responses[task] = [text.replace("GOLD", gold).replace("WRONG", wrong) for text in responses[task]]
        request.write_text(json.dumps({"tasks": tasks, "documents": 2, "responses": responses}))
        scored = json.loads(subprocess.run(probe, capture_output=True, text=True, env=env, check=True).stdout.splitlines()[-1])
    for task in tasks:
        if task != "medrecipe:healthbench":
            assert [s["acc"] for s in scored[task][0]["scores"]] == [1.0, 0.0], task
    # HealthBench: the multi-turn item reaches the model as its turns, and the judge grades the final answer only
    conversation = next(doc for doc in scored["medrecipe:healthbench"] if doc["prompt"].count("<|im_start|>user") == 2)
    assert conversation["prompt"].count("<|im_start|>assistant\n") == 2 and conversation["prompt"].endswith("<|im_start|>assistant\n")
    judged = [request["body"]["messages"][-1]["content"] for request in judge.requests]
    assert judged and all("assistant: Call emergency services now; do not drive yourself." in text for text in judged)
    assert not any("collagen hydroxylation" in text or "<think>" in text for text in judged)


# -------------------------------------------------------------------------------------------- UltraMedical


def test_ultramedical_sft_dpo_and_evaluation_agree(fixture_hub, tokenizers, tmp_path):
    result, found = inspect(fixture_hub, "ultramedical-llama3-8b", tokenizers["llama3-base"], tmp_path)  # Meta-Llama-3-8B
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert not failed(found)
    pair = found["pair"]
    assert pair["prompt"].count("<|start_header_id|>user<|end_header_id|>") == 1  # one user turn, not two
    assert pair["prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert "user" not in pair["chosen"] and pair["chosen"].rstrip().endswith("So, the answer is B.<|eot_id|>")
    trained = [text for text, is_trained in found["sft"] if is_trained]
    assert len(trained) == 2  # the user's turn and the answer: the authors' trainer puts the loss on the whole text
    assert trained[1].endswith("So, the answer is C.<|eot_id|>")  # the end of the turn, though the base model's EOS is another
    # but not on the BOS and role headers, which Axolotl 0.19 leaves out of every turn's span (found by review; the
    # recipe says so)
    assert [text for text, is_trained in found["sft"] if not is_trained] == [
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n", "<|start_header_id|>assistant<|end_header_id|>\n\n"]
    for name, value in found["evaluation"].items():
        assert value["leading_bos"] == 1, name  # Llama 3's template writes the BOS; the tokenizer adds none
        assert value["leading_bos_default"] == 2, name  # lighteval's default add_special_tokens would add a second


def test_a_record_longer_than_sequence_len_is_reported(fixture_hub, tokenizers, tmp_path):
    """Axolotl tokenizes a record, then drops it when it is longer than sequence_len (found by review: inspect showed a
    19,016-token record as trained at 4,096): the pieces are what it trains only if the record fits."""
    result, found = inspect(fixture_hub, "ultramedical-llama3-8b", tokenizers["llama3-base"], tmp_path, "--set", "sft.sequence_len=32")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert failed(found) == ["the record fits in sft.sequence_len"]
    detail = next(a["detail"] for a in found["agreements"] if a["check"] == "the record fits in sft.sequence_len")
    assert detail.endswith("tokens, over 32: Axolotl drops the record: none of it is trained")


def test_a_text_prompt_key_beside_conversations_breaks_openrlhf(fixture_hub, envs, tokenizers, tmp_path):
    """The UltraMedical recipes' preference flags before this fix, through OpenRLHF's own preprocess_data."""
    from . import hub_fixtures

    row = hub_fixtures.rows("TsinghuaC3I/UltraMedical-Preference", "data/train.json")[0]
    request = tmp_path / "pairs.json"
    request.write_text(json.dumps({"pairs": [row], "prompt_key": "prompt", "chosen_key": "chosen", "rejected_key": "rejected",
                                   "input_key": "prompt", "label_key": "label"}))
    result = subprocess.run([str(envs["rl"]), "-I", str(COMPILE / "openrlhf" / "prompts.py"), str(tokenizers["llama3"]), str(request)],
                            capture_output=True, text=True, check=True)
    # the chat template is applied to the text prompt itself (a string is not a list of turns) and fails
    pairs = json.loads(result.stdout.splitlines()[-1])["pairs"]
    assert pairs == [{"error": "UndefinedError: 'str object' has no attribute 'role'"}]


def test_the_reward_model_scores_whole_conversations(fixture_hub, tokenizers, tmp_path):
    result, found = inspect(fixture_hub, "ultramedical-rm-llama3-8b", tokenizers["llama3"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert found["pair"]["prompt"] == "" and found["pair"]["chosen"].count("<|start_header_id|>user<|end_header_id|>") == 1


def test_an_untrained_end_of_turn_is_reported():
    """What Axolotl did with the llama3 template on Meta-Llama-3-8B's own EOS before SFT configs named the turn end."""
    from medrecipe.run.inspect import Inspection, _sft_agreements

    prompt = "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    found = Inspection(sft=[[prompt, False], ["So, the answer is A.", True], ["<|eot_id|>", False]], generation_prompt=prompt)
    _sft_agreements(found, [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "So, the answer is A."}],
                    "<|end_of_text|>")
    stops = next(a for a in found.agreements if a.check == "SFT trains the end of the turn, where generation stops")
    assert not stops.ok and "the model never learns to stop" in stops.detail
