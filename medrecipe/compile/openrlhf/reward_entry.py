"""The end of rl/reward.py, the verifier OpenRLHF loads: `reward_func`, after medrecipe/grading.py (verbatim).

`compile/openrlhf/reward.py` copies this file from the marker line on and sets the three constants from the
recipe. It is a real module so that it is read, linted and tested as code; `grade` comes from grading.py, which
the compiled file holds above the marker.
"""

from ...grading import grade


# ---------------------------------------------------------------- OpenRLHF's entry point (medrecipe)

import json  # here, below the marker, so that the compiled file has it too

CORRECT_REWARD = 1.0
INCORRECT_REWARD = -1.0
REQUIRE_BOX = True

# Where a chat template's assistant turn starts, for when the prompt is not found verbatim in the query.
ASSISTANT_STARTS = (
    "<|im_start|>assistant\n",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<start_of_turn>model\n",
    "<|assistant|>\n",
    "[/INST]",
    "### Response:\n",
    "<｜Assistant｜>",
)
# What ends a response when special tokens are decoded: the end-of-turn token, then padding.
RESPONSE_ENDS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "<end_of_turn>", "<|end|>", "</s>",
                 "<｜end▁of▁sentence｜>")


def response_text(query: str, prompt: str) -> str:
    """The response inside OpenRLHF's query: the chat-templated prompt followed by the generation, decoded
    with its special tokens."""
    if prompt and prompt in query:
        text = query[query.index(prompt) + len(prompt):]
    else:
        starts = [query.rfind(marker) + len(marker) for marker in ASSISTANT_STARTS if marker in query]
        text = query[max(starts):] if starts else query
    ends = [text.find(marker) for marker in RESPONSE_ENDS if marker in text]
    return text[: min(ends)] if ends else text


def opens_reasoning(prompt: str) -> bool:
    """Whether the chat template opened the think block at the end of the prompt (DeepSeek-R1's distills and QwQ end
    it with "<think>\n"): the response then starts inside its reasoning, and an answer before `</think>` is a draft."""
    return prompt.rstrip().endswith("<think>")


def reference(label: str) -> tuple[str, dict | None]:
    """The reference answer and the options ({letter: text}, None for none) of the label medrecipe wrote for the
    prompt (run/rl_prompts.py, reference_label)."""
    found = json.loads(label)
    return found["answer"], found["options"] or None


def reward_func(queries, prompts, labels, **kwargs):
    """OpenRLHF's custom reward: one sample per call (three lists of length 1). `scores` (1 correct, 0 not)
    drive dynamic filtering; `rewards` drive the advantages."""
    if len(queries) != 1:
        raise ValueError(f"expected one sample per call (OpenRLHF 0.11), got {len(queries)}")
    response = response_text(queries[0], prompts[0])
    if opens_reasoning(prompts[0]):
        response = "<think>" + response
    gold, options = reference(labels[0])
    result = grade(response, gold, options=options)
    correct = bool(result["correct"]) and (result["via"] == "boxed" or not REQUIRE_BOX)
    return {
        "rewards": CORRECT_REWARD if correct else INCORRECT_REWARD,
        "scores": 1.0 if correct else 0.0,
        "extra_logs": {
            "boxed": 1.0 if result["via"] == "boxed" else 0.0,
            "answered": 0.0 if result["extracted"] is None else 1.0,
        },
    }
