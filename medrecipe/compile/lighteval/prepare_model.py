"""The model name lighteval is given. Copied into the build by medrecipe (eval/prepare_model.py); do not edit.

    python prepare_model.py MODEL FOLDER [--sample]
    python prepare_model.py --special-tokens MODEL_NAME

MODEL is a local folder or a Hub id; FOLDER is the models folder inside lighteval's output folder, which is
the working directory. Prints the name to pass as `model_name`; with --special-tokens, `add_special_tokens`:

- lighteval files its answer cache under `cache_dir / model_name`: an absolute model_name (a local folder)
  replaces cache_dir, so the cache would be written into the model's own folder. A local model is therefore
  linked as FOLDER/<name>-<fingerprint> and given by that relative name; the fingerprint (the folder's path,
  file sizes and times) keeps answers of a changed model out of the cache. A Hub id is kept as it is.
- With --sample: lighteval 0.13's transformers backend passes temperature, top_p and top_k to `generate()` but
  never `do_sample` (it only turns sampling off at temperature 0), so transformers reads it from the model's
  generation_config.json, which for most checkpoints leaves sampling off: the run would silently decode
  greedily. The model's files are then linked into a folder whose generation_config.json enables sampling.
- A tokenizer saved by transformers 5 (by Axolotl after SFT) lists its extra special tokens in a form lighteval's
  transformers 4 cannot load: the linked copy then holds a tokenizer_config.json both read (portable_tokenizer_config).
- add_special_tokens (--special-tokens) is false when lighteval renders prompts with the model's chat template (lighteval's own
  `uses_chat_template`): the template writes the BOS token itself where the model has one (Llama 3's, Axolotl's
  alpaca), and the tokenizer would add a second. With a plain-text prompt it is true, lighteval's default.
"""

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path


def local_folder(model: str, download: bool) -> Path | None:
    if Path(model).is_dir():
        return Path(model).resolve()
    if not download:
        return None
    from huggingface_hub import snapshot_download  # honours HF_HUB_OFFLINE and HF_HUB_CACHE

    return Path(snapshot_download(model))


def fingerprint(folder: Path) -> str:
    files = sorted((path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in folder.iterdir() if path.is_file())
    return hashlib.sha256(json.dumps([str(folder), files]).encode()).hexdigest()[:12]


def portable_tokenizer_config(folder: Path) -> dict | None:
    """The tokenizer config lighteval's transformers 4 can read, when the saved one is not (else None).

    transformers 5 (Axolotl 0.19, OpenRLHF 0.11) saves a tokenizer's extra special tokens as a list under
    `extra_special_tokens`; transformers 4 reads that key as a mapping of named tokens and fails to load the
    tokenizer (every Qwen3 model has such tokens). Both read the list under its older name,
    `additional_special_tokens`."""
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text())
    extra = config.get("extra_special_tokens")
    if not isinstance(extra, list):
        return None
    config.pop("extra_special_tokens")
    listed = list(config.get("additional_special_tokens") or [])
    config["additional_special_tokens"] = listed + [token for token in extra if token not in listed]
    return config


def main(model: str, models: Path, sample: bool) -> str:
    source = local_folder(model, download=sample)
    if source is None:
        return model
    readable = f"{source.parent.name}-{source.name}" if Path(model).is_dir() else model  # a Hub id, not its snapshot folder
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", readable).strip("-")
    target = models / f"{slug}-{fingerprint(source)}{'-sampling' if sample else ''}"
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    models.mkdir(parents=True, exist_ok=True)
    rewritten: dict[str, dict] = {}
    if sample:
        original = source / "generation_config.json"
        config = json.loads(original.read_text()) if original.is_file() else {}
        rewritten["generation_config.json"] = {**config, "do_sample": True}
    tokenizer = portable_tokenizer_config(source)
    if tokenizer is not None:
        rewritten["tokenizer_config.json"] = tokenizer
    if not rewritten:
        target.symlink_to(source)
        return str(target)
    target.mkdir()  # the model's files linked, the rewritten ones written
    for path in sorted(source.iterdir()):
        if path.name not in rewritten:
            (target / path.name).symlink_to(path.resolve())
    for name, config in rewritten.items():
        (target / name).write_text(json.dumps(config, indent=2) + "\n")
    return str(target)


def special_tokens(model_name: str) -> str:
    from lighteval.models.utils import uses_chat_template

    return "false" if uses_chat_template(model_name=model_name) else "true"


if __name__ == "__main__":
    if sys.argv[1] == "--special-tokens":
        print(special_tokens(sys.argv[2]))
    else:
        print(main(sys.argv[1], Path(sys.argv[2]), "--sample" in sys.argv[3:]))
