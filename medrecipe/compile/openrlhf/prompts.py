"""What OpenRLHF feeds the model: RL prompts and preference pairs through OpenRLHF's own data code. Runs INSIDE the
rl environment (medrecipe is not installed there): standard library, transformers and OpenRLHF only.

    python prompts.py TOKENIZER_DIR REQUEST.json

REQUEST.json holds {"prompts": [row, ...], "input_key", "label_key", "pairs": [row, ...], "prompt_key",
"chosen_key", "rejected_key", "is_dpo", "apply_chat_template"}. Prompt rows go through
openrlhf.datasets.prompts_dataset.preprocess_data, pairs through reward_dataset.preprocess_data (as DPO, or as a reward model), with the
tokenizer's chat template, exactly as PromptDataset and RewardDataset call them; a prompt's token ids are counted
as OpenRLHF's rollout tokenizes it (add_special_tokens=False, openrlhf/utils/agent.py). Prints one JSON line:
{"prompts": [{"text", "label", "leading_bos"}], "pairs": [{"prompt", "chosen", "rejected"} or {"error"}]}.
"""

import json
import sys

from transformers import AutoTokenizer

from openrlhf.datasets.prompts_dataset import preprocess_data as preprocess_prompt
from openrlhf.datasets.reward_dataset import preprocess_data as preprocess_pair


def leading(ids: list[int], bos: int | None) -> int:
    """How many BOS tokens open the prompt (a chat template may reuse the BOS token at every turn, as ChatML's
    <|im_start|> does: only the leading run says whether a second BOS was added)."""
    count = 0
    while bos is not None and count < len(ids) and ids[count] == bos:
        count += 1
    return count


def main(tokenizer_dir: str, request_path: str) -> dict:
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    template = tokenizer.apply_chat_template if request.get("apply_chat_template", True) else None
    prompts = []
    for row in request.get("prompts", []):
        text, label = preprocess_prompt(row, None, request["input_key"], request["label_key"], template)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        prompts.append({"text": text, "label": label, "leading_bos": leading(ids, tokenizer.bos_token_id)})
    pairs = []
    for row in request.get("pairs", []):
        try:
            prompt, chosen, rejected, _ = preprocess_pair(row, None, request.get("prompt_key"), request["chosen_key"],
                                                          request["rejected_key"], template, is_dpo=request.get("is_dpo", True))
        except Exception as error:  # whatever OpenRLHF's code (or the chat template it calls) raises on this row
            pairs.append({"error": f"{type(error).__name__}: {error}"})
            continue
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return {"prompts": prompts, "pairs": pairs}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
