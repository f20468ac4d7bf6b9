"""rl/reward.py, the verifier OpenRLHF loads: the generated file itself, imported from a compiled build folder.

OpenRLHF calls `reward_func([query], [prompt], [label])` once per sample; the query is the chat-templated
prompt followed by the response, decoded with special tokens (openrlhf/utils/agent.py), and the label is the prompt
file's, as medrecipe wrote it (run/rl_prompts.py).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest

from medrecipe.run.rl_prompts import reference_label

RECIPE = """
name: tiny-dapo
base_model: Qwen/Qwen3-8B
rl:
  algorithm: dapo
  init_from: Qwen/Qwen3-8B
  data: {path: prompts.jsonl, fields: {prompt: question, answer: answer}}
  max_prompt_length: 512
  max_response_length: 2048
  rollout_batch_size: 8
  mini_batch_size: 4
  samples_per_prompt: 4
  learning_rate: 1.0e-6
compute: {gpus_per_node: 2}
"""

INSTRUCTION = "Please reason step-by-step, and put your final answer within \\boxed{}."
# Qwen3's chat template, as OpenRLHF applies it with add_generation_prompt=True.
PROMPT = (
    "<|im_start|>user\nA 45-year-old man has crushing chest pain and ST elevation in II, III and aVF. Which artery is "
    f"most likely occluded?\nA. Left anterior descending\nB. Left circumflex\nC. Right coronary\nD. Left main\n\n"
    f"{INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
)
OPTIONS = {"A": "Left anterior descending", "B": "Left circumflex", "C": "Right coronary", "D": "Left main"}
END = "<|im_end|><|endoftext|><|endoftext|>"  # end of turn, then padding, as decoded


def load_reward(path):
    spec = importlib.util.spec_from_file_location("reward_func", path)  # as OpenRLHF loads it
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Compile the recipe twice: the defaults, and rewards 1 / 0 that also accept unboxed answers."""
    from medrecipe.compile.build import compile_recipe
    from medrecipe.recipe import load_recipe

    root = tmp_path_factory.mktemp("reward")
    (root / "r.yaml").write_text(RECIPE)
    variants = {"strict": [], "lenient": ["rl.reward={correct: 1.0, incorrect: 0.0, require_box: false}"]}
    builds = {}
    for name, overrides in variants.items():
        compile_recipe(load_recipe(root / "r.yaml", overrides), root / name, ["rl"])
        builds[name] = root / name / "rl" / "reward.py"
    return builds


@pytest.fixture(scope="module")
def reward(compiled):
    return load_reward(compiled["strict"]).reward_func


def score(reward_func, response: str, answer: str, prompt: str = PROMPT, query: str | None = None, options=None) -> dict:
    """The reward of `response` to a prompt whose reference answer is `answer` (a letter: of OPTIONS)."""
    if options is None:
        options = OPTIONS if len(answer) == 1 else {}
    label = reference_label(answer, options)
    return reward_func([query if query is not None else prompt + response], [prompt], [label])


@pytest.mark.parametrize(
    "response, label, correct",
    [
        # the usual shape: reasoning in think tags, then a boxed letter
        ("<think>\nInferior STEMI: II, III, aVF. The RCA supplies the inferior wall in most people.\n</think>\n\n"
         "The inferior leads point to the right coronary artery.\n\n**Answer:** \\boxed{C}" + END, "C", True),
        ("<think>\nInferior wall.\n</think>\n\nThe answer is \\boxed{C}." + END, "B", False),
        # several boxes: the last one in the final answer counts
        ("<think>\nFirst I thought \\boxed{B}, but circumflex occlusion is usually lateral.\n</think>\n\n"
         "Initially \\boxed{B}; on reflection, \\boxed{C}." + END, "C", True),
        # LaTeX around the letter, nested braces
        ("<think>\n...\n</think>\n\n\\[\\boxed{\\text{C}}\\]" + END, "C", True),
        ("<think>\n...\n</think>\n\nFinal: $\\boxed{\\textbf{(C)}}$" + END, "C", True),
        ("<think>\n...\n</think>\n\n\\boxed{C. Right coronary}" + END, "C", True),
        # a box naming two options is no single answer
        ("<think>\n...\n</think>\n\n\\boxed{B or C}" + END, "C", False),
        # free-form and numeric answers, yes/no/maybe
        ("The deficient enzyme is \\boxed{\\text{21-hydroxylase}}." + END, "21-hydroxylase", True),
        ("The dose is \\boxed{2.5} mg/kg." + END, "2.50", True),
        ("About \\boxed{40\\%} of patients respond." + END, "40%", True),
        ("<think>\nThe trial was underpowered.\n</think>\n\n\\boxed{maybe}" + END, "maybe", True),
        ("<think>\n...\n</think>\n\n\\boxed{Yes}" + END, "no", False),
    ],
)
def test_boxed_answers_are_graded(reward, response, label, correct):
    result = score(reward, response, label)
    assert result["rewards"] == (1.0 if correct else -1.0)
    assert result["scores"] == (1.0 if correct else 0.0)
    assert result["extra_logs"]["boxed"] == result["extra_logs"]["answered"]  # whatever was read, was read from a box


def test_no_box_is_wrong_by_default_and_counted_unboxed(reward):
    result = score(reward, "<think>\nRCA.\n</think>\n\nThe answer is C." + END, "C")
    assert result == {"rewards": -1.0, "scores": 0.0, "extra_logs": {"boxed": 0.0, "answered": 1.0}}


def test_the_prompts_empty_box_is_not_the_answer(reward):
    # The instruction in the prompt contains "\boxed{}"; a response without a box must not borrow it.
    result = score(reward, "I am not sure." + END, "C")
    assert result["extra_logs"] == {"boxed": 0.0, "answered": 0.0}
    assert result["rewards"] == -1.0


def test_truncated_response_without_end_token_is_still_graded(reward):
    cut = "<think>\nInferior leads... the right coronary artery supplies"  # hit max_new_tokens inside the reasoning
    assert score(reward, cut, "C")["scores"] == 0.0
    assert score(reward, "<think>\nRCA\n</think>\n\\boxed{C}", "C")["scores"] == 1.0


def test_prompt_not_found_verbatim_falls_back_to_the_assistant_header(reward):
    # Re-decoding can differ from the prompt string (whitespace); the response still follows the assistant header.
    query = PROMPT.replace("Which artery", "Which  artery") + "<think>\n...\n</think>\n\n\\boxed{C}" + END
    assert score(reward, "", "C", query=query)["scores"] == 1.0


def test_the_right_options_text_boxed_is_that_option(reward):
    """As evaluation and rejection sampling grade it (grading.grade with the options): the label carries them."""
    answer = "<think>\nInferior wall.\n</think>\n\nThe answer is \\boxed{Right coronary}." + END
    assert score(reward, answer, "C") == {"rewards": 1.0, "scores": 1.0, "extra_logs": {"boxed": 1.0, "answered": 1.0}}
    assert score(reward, answer, "B")["scores"] == 0.0
    assert score(reward, answer, "C", options={})["extra_logs"]["answered"] == 0.0  # without them, no letter is read


def test_the_quickstarts_prompts_carry_their_options_to_the_reward(reward):
    from medrecipe.cli.common import load
    from medrecipe.run import rl_prompts

    from .conftest import RECIPES

    loaded, _ = load(str(RECIPES / "quickstart.yaml"), warn=False)
    row = next(rl_prompts.rows(loaded))
    label = json.loads(row["label"])
    assert label == {"answer": "B", "options": {"A": "endocrine", "B": "respiratory", "C": "gastrointestinal", "D": "systemic"}}
    prompt = row["prompt"][0]["content"]
    response = "<think>\nPneumonia infects the lungs.\n</think>\n\n\\boxed{respiratory}" + END
    assert reward([prompt + response], [prompt], [row["label"]])["scores"] == 1.0


def test_a_response_cut_off_in_reasoning_the_template_opened_has_no_answer(reward):
    # DeepSeek-R1's distills end the prompt inside the think block: the response is reasoning until </think>
    opened = "<｜User｜>Which artery?\nA. Left anterior descending\nB. Left circumflex\nC. Right coronary\nD. Left main<｜Assistant｜><think>\n"
    draft = "Inferior leads, so maybe \\boxed{C}, but wait, let me check the circumflex"
    assert score(reward, draft + "<｜end▁of▁sentence｜>", "C", prompt=opened)["scores"] == 0.0
    assert score(reward, draft + ".\n</think>\n\n\\boxed{C}", "C", prompt=opened)["scores"] == 1.0


def test_one_sample_per_call(reward):
    with pytest.raises(ValueError, match="one sample per call"):
        reward(["a", "b"], ["", ""], ["A", "B"])


def test_reward_values_and_box_requirement_come_from_the_recipe(compiled):
    lenient = load_reward(compiled["lenient"]).reward_func
    unboxed = "<think>\nRCA.\n</think>\n\nThe answer is C." + END
    assert score(lenient, unboxed, "C") == {"rewards": 1.0, "scores": 1.0, "extra_logs": {"boxed": 0.0, "answered": 1.0}}
    assert score(lenient, "\\boxed{D}" + END, "C")["rewards"] == 0.0


def test_generated_file_embeds_grading_verbatim(compiled):
    import inspect

    from medrecipe import grading

    text = compiled["strict"].read_text()
    assert inspect.getsource(grading).rstrip("\n") in text
    assert "def reward_func(queries, prompts, labels, **kwargs):" in text


def test_reward_file_runs_in_openrlhfs_environment_without_medrecipe(compiled, tool_python):
    """Loaded the way OpenRLHF loads it, by an interpreter that has OpenRLHF and not medrecipe."""
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('reward_func', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert importlib.util.find_spec('medrecipe') is None\n"
        "print(json.dumps(module.reward_func([sys.argv[2]], [sys.argv[3]], [sys.argv[4]])))\n"
    )
    response = "<think>\nRCA\n</think>\n\n\\boxed{C}" + END
    result = subprocess.run(
        [str(tool_python("rl")), "-I", "-c", code, str(compiled["strict"]), PROMPT + response, PROMPT, reference_label("C", OPTIONS)],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(result.stdout) == {"rewards": 1.0, "scores": 1.0, "extra_logs": {"boxed": 1.0, "answered": 1.0}}
