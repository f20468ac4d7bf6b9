"""A recipe is untrusted input, and so is the data it names: the secrets that may never come out of them, and
text made safe to write and to print.

- `secret_variable`: an environment variable whose name says it holds a secret: one of its `_`-separated parts is
  TOKEN, KEY, SECRET, PASSWORD, PASSWD, PASSPHRASE, PASS, PWD, PAT, CREDENTIAL, CRED, AUTH, COOKIE, SESSION, DSN, JWT,
  BEARER, PRIVATE or WEBHOOK (a webhook's URL is its credential)
  (HF_TOKEN, HF_TOKEN_BACKUP, AWS_SECRET_ACCESS_KEY_ID, DB_PASSWORD_PROD, OPENAI_API_KEY_2), or a part ends in
  one (PGPASSWORD, OPENAI_APIKEY_2, GITHUB_PAT); a recipe may name one (api_key_env) but never read its value. Not
  TOKENIZERS_PARALLELISM (TOKENIZERS is not TOKEN) nor MONKEY_PATH (see _SECRET_NAMES).
- `credential_value`: a value shaped like a credential (a URL with a password, a known token format), which a recipe
  may not read from the environment whatever the variable's name (DATABASE_URL=postgres://user:password@host).
- `foreign_credential`: a variable that holds the credential of a service other than an LLM endpoint (the Hub,
  the Ray cluster, a cloud account, ...); a recipe names the endpoint too, so it may not name one of these as
  the endpoint's key, or it could send your Hub token to a server of its author's choosing.
- `key_destination_problem`: where a key the recipe names may go when the recipe also names the endpoint: an LLM
  provider's key (OPENAI_API_KEY, OPENAI_ADMIN_KEY, ...: a variable named after the provider) to that provider's API
  only, any other to this machine only (a loopback endpoint). The endpoint a user gives on the command line is theirs
  to choose (catalog/checks.py).
- `redact`: the second line of defence, applied to every file medrecipe writes and everything it prints: the values
  of such variables, and anything shaped like a Hub or OpenAI token.
- `printable`: text from data (a dataset's rows) without the control characters a terminal would obey.
- `hidden_part`, `links_into_hidden`: a recipe reads no data (nor a parent recipe) from hidden files and folders,
  where credentials and settings are kept (~/.ssh, ~/.kaggle/kaggle.json, ~/.cache/huggingface).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SECRET_WORDS = r"(TOKENS?|KEYS?|SECRETS?|PASSWORDS?|PASSWD|PASSPHRASE|PASS|PWD|PAT|CREDENTIALS?|CREDS?|AUTH|COOKIES?|SESSION|DSN|JWT|BEARER|PRIVATE|WEBHOOKS?)\d*"
_GLUED_SECRET_WORDS = r"(TOKENS?|SECRETS?|PASSWORDS?|PASSWD|PASSPHRASE|CREDENTIALS?|APIKEYS?)\d*"  # no ordinary word ends so
# A secret word as a whole part of a name, wherever it is (a suffix such as _BACKUP or _2 still names the secret), or
# glued to the end of a part (PGPASSWORD, OPENAI_APIKEY): at the end of the name any word, inside it only the words
# that end no ordinary word, as KEY and PASS end MONKEY and COMPASS (MONKEY_PATH, COMPASS_DIR).
_SECRET_NAMES = re.compile(rf"(?i)(^|_){_SECRET_WORDS}(_|$)|{_SECRET_WORDS}$|{_GLUED_SECRET_WORDS}(_|$)")
_NOT_SECRET = {"PWD", "OLDPWD"}  # the shell's working directories
# Prefixes of the variables the tools medrecipe drives (and the machines they run on) read their own credentials
# from; the name of the service each belongs to. Not Google's or Azure's: GOOGLE_API_KEY and AZURE_OPENAI_API_KEY
# are LLM endpoints' keys (Gemini's and Azure OpenAI's OpenAI-compatible APIs).
_FOREIGN_CREDENTIALS = {
    "HF_": "the Hugging Face Hub", "HUGGING_FACE": "the Hugging Face Hub", "HUGGINGFACE": "the Hugging Face Hub",
    "RAY_": "the Ray cluster", "WANDB_": "Weights & Biases", "MLFLOW_": "MLflow", "COMET_": "Comet", "AWS_": "AWS",
    "GITHUB_": "GitHub", "GH_": "GitHub", "GITLAB_": "GitLab", "CI_": "the CI system", "SSH_": "SSH",
    "PYPI_": "PyPI", "TWINE_": "PyPI", "NPM_": "npm", "DOCKER_": "Docker", "SLURM_": "Slurm",
}
# Hub, OpenAI, GitHub, GitLab, Slack and AWS access keys, Slack webhook URLs, Google API keys and OAuth access tokens,
# JSON Web Tokens (CI job tokens, bearer tokens) and PEM private keys
_TOKENS = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b|\bsk-[A-Za-z0-9_-]{20,}|\b(gh[opsu]_|github_pat_)[A-Za-z0-9_]{20,}|\bglpat-[A-Za-z0-9_-]{20,}"
                     r"|hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9/_-]+|\bxox[abprs]-[A-Za-z0-9-]{10,}"
                     r"|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{35}|\bya29\.[0-9A-Za-z_-]{20,}"
                     r"|\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*|-----BEGIN [A-Z ]*PRIVATE KEY-----")
_URL_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
# Control characters (terminal escapes) and lone surrogates (a non-UTF-8 byte on the command line; not writable as UTF-8).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
REDACTED = "[redacted]"

# The variables LLM providers' own SDKs and docs read their API keys from, by the prefix they share with every
# other variable named after that provider (OPENAI_API_KEY and OPENAI_ADMIN_KEY, OPENAI_API_KEY_2), and the hosts of
# each provider's API (the base URLs their docs give for OpenAI-compatible clients). A recipe names both the endpoint
# and the variable whose value is sent to it, so a provider's key goes to that provider's hosts (or their subdomains)
# over HTTPS, never to a server the recipe's author chose. The longest prefix names the provider (AZURE_OPENAI_).
PROVIDER_KEYS = {
    "OPENAI_": ("api.openai.com",),
    "AZURE_OPENAI_": ("openai.azure.com",),
    "ANTHROPIC_": ("api.anthropic.com",),
    "GEMINI_": ("generativelanguage.googleapis.com",),
    "GOOGLE_": ("generativelanguage.googleapis.com",),
    "MISTRAL_": ("api.mistral.ai",),
    "GROQ_": ("api.groq.com",),
    "TOGETHER_": ("api.together.xyz", "api.together.ai"),
    "FIREWORKS_": ("api.fireworks.ai",),
    "DEEPSEEK_": ("api.deepseek.com",),
    "OPENROUTER_": ("openrouter.ai",),
    "XAI_": ("api.x.ai",),
    "CEREBRAS_": ("api.cerebras.ai",),
    "PERPLEXITY_": ("api.perplexity.ai",),
    "DEEPINFRA_": ("api.deepinfra.com",),
    "NVIDIA_": ("integrate.api.nvidia.com",),
    "NGC_": ("integrate.api.nvidia.com",),
    "COHERE_": ("api.cohere.ai", "api.cohere.com"),
}


def provider_hosts(variable: str) -> tuple[str, ...] | None:
    """The API hosts of the provider the variable is named after, or None."""
    upper = variable.upper()
    prefix = max((p for p in PROVIDER_KEYS if upper.startswith(p)), key=len, default=None)
    return PROVIDER_KEYS[prefix] if prefix else None


def key_destination_problem(variable: str, endpoint: str) -> str | None:
    """Why the key in `variable` may not be sent to `endpoint` when the recipe names both, or None: a provider's key
    goes to its API over HTTPS, any other variable's value to this machine only (found by review: a deny-list let
    OPENAI_ADMIN_KEY, KAGGLE_KEY or AZURE_CLIENT_SECRET go to any host a recipe named)."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    hosts = provider_hosts(variable)
    if hosts is not None:
        if parts.scheme == "https" and any(host == allowed or host.endswith(f".{allowed}") for allowed in hosts):
            return None
        return f"{variable} is a key of {hosts[0]}'s API, and medrecipe sends it there only (over HTTPS), not to {host or endpoint}"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = False
    if loopback:
        return None
    return (f"{variable} may hold any secret of yours, and medrecipe sends a key from your environment to a server the "
            f"recipe names only on this machine, not to {host or endpoint}")


def secret_variable(name: str) -> bool:
    return name.upper() not in _NOT_SECRET and bool(_SECRET_NAMES.search(name))


def credential_value(value: str) -> str | None:
    """What makes `value` look like a credential, or None."""
    if _URL_PASSWORD.search(value):
        return "a URL with a password"
    if _TOKENS.search(value):
        return "an access token"
    return None


def foreign_credential(name: str) -> str | None:
    """The service whose credential the variable `name` holds, when it is not an LLM endpoint's."""
    upper = name.upper()
    return next((service for prefix, service in _FOREIGN_CREDENTIALS.items() if upper.startswith(prefix)), None)


def redact(text: str) -> str:
    for name, value in os.environ.items():
        if len(value) >= 8 and secret_variable(name) and value in text:
            text = text.replace(value, REDACTED)
    return _TOKENS.sub(REDACTED, text)


def printable(text: str) -> str:
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)


_LINE_BREAKS = {"\n": "\\n", "\r": "\\r", "\x85": "\\x85", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def one_line(text: str) -> str:
    """Text for one line of a YAML comment: its line breaks (YAML's, and those Python splits lines at) as escapes,
    so that a value written on the command line cannot end the comment and add YAML of its own."""
    return printable(re.sub("[\n\r\x85\u2028\u2029]", lambda found: _LINE_BREAKS[found.group()], text))


def _hidden_parts(path: str | Path) -> list[str]:
    return [part for part in str(path).replace("\\", "/").split("/") if part.startswith(".") and part not in (".", "..")]


def hidden_part(path: str | Path) -> str | None:
    """The first hidden file or folder (a name starting with a dot) that `path` goes through, if any."""
    return next(iter(_hidden_parts(path)), None)


# Where version-control tools keep a dataset's files and link them from the working tree (git-annex and DataLad:
# data.jsonl -> .git/annex/objects/...; DVC with cache.type symlink: -> .dvc/cache/...): data, not settings.
_DATA_STORES = ((".git", "annex", "objects"), (".dvc", "cache"))


def links_into_hidden(path: Path, written: Path | None = None) -> bool:
    """A link (the file, or a folder on its way) that leads into a hidden file or folder which the path as written
    (`written`, else `path` itself) does not go through: a shared recipe's folder can hold `data.jsonl ->
    ~/.kaggle/kaggle.json` (git keeps links), in a project under a dotted folder too (found by review). A link into a
    version-control tool's data store is a dataset's, not a secret."""
    resolved = path.resolve()
    added = set(_hidden_parts(resolved)) - set(_hidden_parts((written or path).absolute()))
    if not added:
        return False
    parts = resolved.parts
    return not any(parts[i : i + len(store)] == store for store in _DATA_STORES for i in range(len(parts)))
