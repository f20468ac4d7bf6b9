"""What Axolotl trains on: one chat record tokenized by Axolotl's own code with the compiled config. Runs INSIDE the
sft environment (medrecipe is not installed there): standard library, PyYAML and Axolotl only.

    python tokenization.py CONFIG.yaml TOKENIZER_DIR REQUEST.json SAVE_DIR

CONFIG.yaml is the compiled sft/axolotl.yaml; TOKENIZER_DIR a folder with the base model's tokenizer and
config.json (it stands in for `base_model`). REQUEST.json holds {"messages": [...], "prompts": {name: [turns]}}.
Axolotl's `load_tokenizer` sets the chat template the config names (as training saves it into the model), its
chat-template strategy tokenizes the record with the compiled dataset entry (roles_to_train, train_on_eos), and
the tokenizer is saved into SAVE_DIR for the RL and evaluation renderings. Prints one JSON line:
  pieces             [[text, trained], ...] of the record, in order: what carries the loss
  tokens             the record's length in tokens (Axolotl drops or cuts one over sequence_len after tokenizing)
  generation_prompt  the record's turns before the last assistant turn, rendered with add_generation_prompt
  prompts            each probe prompt rendered with add_generation_prompt
  bos_token          the tokenizer's BOS token, or null
  eos_token          its EOS token as training leaves it (where generation stops), or null
"""

import json
import sys

import yaml

from axolotl.loaders.tokenizer import load_tokenizer
from axolotl.prompt_strategies.chat_template import load as load_chat_template_strategy
from axolotl.utils.dict import DictDefault

IGNORE = -100


def pieces(tokenizer, input_ids: list[int], labels: list[int]) -> list[list]:
    """Runs of tokens that do or do not carry the loss, decoded."""
    runs: list[list] = []
    for token, label in zip(input_ids, labels):
        trained = label != IGNORE
        if runs and runs[-1][1] == trained:
            runs[-1][0].append(token)
        else:
            runs.append([[token], trained])
    return [[tokenizer.decode(tokens, skip_special_tokens=False), trained] for tokens, trained in runs]


def main(config_path: str, tokenizer_dir: str, request_path: str, save_dir: str) -> dict:
    with open(config_path, encoding="utf-8") as handle:
        cfg = DictDefault(yaml.safe_load(handle))
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    cfg.base_model = cfg.base_model_config = cfg.tokenizer_config = tokenizer_dir
    tokenizer = load_tokenizer(cfg)
    dataset = dict(cfg.datasets[0])
    strategy = load_chat_template_strategy(tokenizer, cfg, dataset)
    row = {dataset.get("field_messages", "messages"): request["messages"]}
    tokenized = strategy.tokenize_prompt(row)
    last_assistant = max(i for i, turn in enumerate(request["messages"]) if turn["role"] == "assistant")
    tokenizer.save_pretrained(save_dir)
    return {
        "pieces": pieces(tokenizer, tokenized["input_ids"], tokenized["labels"]),
        "tokens": len(tokenized["input_ids"]),
        "generation_prompt": tokenizer.apply_chat_template(request["messages"][:last_assistant], tokenize=False,
                                                           add_generation_prompt=True),
        "prompts": {name: tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
                    for name, turns in request.get("prompts", {}).items()},
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
        "chat_template": tokenizer.chat_template,
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
