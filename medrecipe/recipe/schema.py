"""The recipe's JSON Schema, generated from the pydantic model: editors validate and complete recipes with it."""

from __future__ import annotations

import json

from .model import Recipe

SCHEMA_ID = "https://github.com/medrecipe/medrecipe/schemas/recipe.schema.json"


def json_schema() -> dict:
    schema = Recipe.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    # `extends` is resolved by the loader before validation, so the model has no such field.
    schema["properties"] = {
        "extends": {
            "type": "string",
            "description": "Inherit from another recipe (its name, or the path of its .yaml file relative to this one): "
            "mappings merge, lists and scalars replace, `~` removes an optional value.",
        },
        **schema["properties"],
    }
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
