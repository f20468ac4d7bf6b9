"""A recipe is untrusted input, and so is the data it names: the secrets that may never come out of them, and
text made safe to write and to print.

- `secret_variable`: an environment variable whose name says it holds a secret (the Hub token variables, any
  *_TOKEN, *_KEY, *_SECRET, *_PASSWORD); a recipe may name one (api_key_env) but never read its value.
- `redact`: the second line of defence, applied to every file medrecipe writes and everything it prints: the values
  of such variables, and anything shaped like a Hub or OpenAI token.
- `printable`: text from data (a dataset's rows) without the control characters a terminal would obey.
"""

from __future__ import annotations

import os
import re

_SECRET_NAMES = re.compile(
    r"(?i)^(HF_TOKEN|HUGGING_?FACE(_HUB)?_TOKEN|HF_API_TOKEN)$|(^|_)(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$"
)
_TOKENS = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b|\bsk-[A-Za-z0-9_-]{20,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
REDACTED = "[redacted]"


def secret_variable(name: str) -> bool:
    return bool(_SECRET_NAMES.search(name))


def redact(text: str) -> str:
    for name, value in os.environ.items():
        if len(value) >= 8 and secret_variable(name) and value in text:
            text = text.replace(value, REDACTED)
    return _TOKENS.sub(REDACTED, text)


def printable(text: str) -> str:
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)
