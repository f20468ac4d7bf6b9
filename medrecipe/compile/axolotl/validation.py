"""Validate an Axolotl config with Axolotl's own code. Runs INSIDE the sft environment (medrecipe is not
installed there): standard library, PyYAML and Axolotl only.

    python validation.py CONFIG.yaml CAPABILITIES_JSON [CONFIG.yaml CAPABILITIES_JSON ...]

Prints one JSON line {"problems": [[...], ...]}: a list per config. Two kinds of problem:
- keys Axolotl's schema does not know (top level and per dataset): Axolotl would drop them silently;
- what `axolotl.utils.config.validate_config` rejects, checked against the target GPUs the recipe names.
`load_cfg` is not used: it fetches the base model's config from the Hub.
"""

import copy
import json
import sys

import torch
import yaml
from pydantic import BaseModel, ValidationError

from axolotl.integrations.config import merge_input_args
from axolotl.utils.config import prepare_plugins, validate_config
from axolotl.utils.dict import DictDefault
from axolotl.utils.schemas.config import AxolotlInputConfig
from axolotl.utils.schemas.datasets import DPODataset, KTODataset, SFTDataset


def known_keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        if field.alias:
            keys.add(field.alias)
        choices = getattr(field.validation_alias, "choices", None) or ()
        keys.update(choice for choice in choices if isinstance(choice, str))
        if isinstance(field.validation_alias, str):
            keys.add(field.validation_alias)
    return keys


def unknown_keys(cfg: dict) -> list[str]:
    # As validate_config chooses its schema: plugins (registered process-wide) extend it only when listed.
    input_config = merge_input_args()[1] if cfg.get("plugins") else AxolotlInputConfig
    problems = [
        f"{key}: not a key Axolotl knows (it would be ignored)" for key in cfg if key not in known_keys(input_config)
    ]
    dataset_model = {"dpo": DPODataset, "ipo": DPODataset, "simpo": DPODataset, "kto": KTODataset}.get(
        cfg.get("rl"), SFTDataset
    )
    dataset_keys = known_keys(dataset_model)
    for section in ("datasets", "test_datasets"):
        for index, dataset in enumerate(cfg.get(section) or []):
            problems += [
                f"{section}[{index}].{key}: not a dataset key Axolotl knows (it would be ignored)"
                for key in dataset
                if key not in dataset_keys
            ]
    return problems


def validation_problems(config: DictDefault, capabilities: dict) -> list[str]:
    environment = {"torch_version": torch.__version__.split("+", 1)[0]}
    try:
        validate_config(config, capabilities=capabilities, env_capabilities=environment)
    except ValidationError as error:
        return [
            f"{'.'.join(str(part) for part in item['loc']) or 'config'}: {item['msg']}" for item in error.errors()
        ]
    except (ValueError, TypeError, KeyError, AssertionError) as error:
        return [f"config: {error}"]
    return []


def problems(path: str, capabilities: dict) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)  # as Axolotl reads it
    if not isinstance(cfg, dict):
        return [f"{path} is not a mapping of Axolotl keys"]
    config = DictDefault(copy.deepcopy(cfg))
    prepare_plugins(config)  # plugins add keys to the schema
    return unknown_keys(cfg) + validation_problems(config, capabilities)


def main() -> None:
    pairs = zip(sys.argv[1::2], sys.argv[2::2])
    print(json.dumps({"problems": [problems(path, json.loads(capabilities)) for path, capabilities in pairs]}))


if __name__ == "__main__":
    main()
