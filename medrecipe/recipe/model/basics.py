"""What every section of the recipe builds on: the strict base model and the checked value types (Hub ids,
splits, Slurm words, bounded numbers, template placeholders)."""

import re
import string
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..untrusted import foreign_credential, hidden_part


class Strict(BaseModel):
    """Base of every recipe model: unknown keys are errors, defaults are validated, numbers are finite (an
    infinity or NaN would be written into configs, scripts and JSON that cannot hold it)."""

    # defer_build: nested models are compiled once, inside Recipe's schema, not each on its own (import time).
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True, allow_inf_nan=False)


# Names that reach file paths, scripts and URLs follow the rules of the system that owns them, so that a recipe
# written to break out of a path or a script is an error at its line.
_HUB_PART = re.compile(r"[A-Za-z0-9_]([\w.-]{0,94}[A-Za-z0-9_])?", re.ASCII)


def hub_id_problem(value: str) -> str | None:
    """Which of the Hub's repository-id rules `value` breaks, if any (huggingface_hub utils/_validators.py,
    validate_repo_id): alphanumerics, '-', '_' and '.', at most 96 on each side of one '/', no '--' or '..', not
    ending in '.git'."""
    parts = value.split("/")
    if len(parts) > 2:
        return "it has more than one '/' (namespace/name)"
    if not all(_HUB_PART.fullmatch(part) for part in parts):
        return ("each part is 1 to 96 letters, digits, '-', '_' or '.', and begins and ends with a letter, digit or "
                "'_'")
    if "--" in value or ".." in value:
        return "it may not hold '--' or '..'"
    if value.endswith(".git"):
        return "it may not end in '.git'"
    return None


def _hub_id(value: str) -> str:
    if problem := hub_id_problem(value):
        raise ValueError(f"{value!r} is not a Hub repository id: {problem}")
    return value


def hub_namespace(value: str) -> str:
    """A Hub user or organisation name (the namespace part of a repository id)."""
    if "/" in value:
        raise ValueError(f"{value!r} is not a Hub user or organisation name")
    return _hub_id(value)


def _model_reference(value: str) -> str:
    """A Hub model id, or a local path (which may hold anything but control characters, ',' and '=': lighteval reads
    its model as one `key=value,key=value` argument, where a path with `,trust_remote_code=True` would add a key)."""
    if "," in value or "=" in value:
        raise ValueError(f"{value!r}: a model or data reference may not contain ',' or '=' (lighteval's model arguments "
                         "and OpenRLHF's dataset lists read them as separators)")
    if value.startswith(("/", ".", "~")) or "/" in value and value.count("/") > 1:
        return value
    return _hub_id(value)


def model_choice(own: tuple[str, ...]) -> Any:
    """A model of the recipe's own (one of the words `own`: a stage's output or its base) or a ModelRef."""
    return Annotated[str, AfterValidator(lambda value: value if value in own else _model_reference(value))]


def _repo_path(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/") or "\\" in value:
        raise ValueError(f"{value!r} is not a path inside the repository")
    return value


SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")
Slug = Annotated[
    str,
    Field(pattern=f"^{SLUG.pattern}$", max_length=96, description="Lower-case letters, digits, '.', '_', '-'."),
]
RepoName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=96, description="A Hub repository name (no namespace)."),
    AfterValidator(_hub_id),
]
HubId = Annotated[str, AfterValidator(_hub_id)]
def visible_path(value: str) -> str:
    """A path a recipe reads data from may not pass through a hidden file or folder: credentials and settings live there
    (~/.ssh, ~/.kaggle/kaggle.json, ~/.cache/huggingface), and what a data stage reads can be published."""
    hidden = hidden_part(value)
    if hidden:
        raise ValueError(f"{value!r} goes through {hidden!r}, a hidden file or folder, where credentials and settings are "
                         "kept: a recipe does not read data there (move or link the data elsewhere)")
    return value


ModelRef = Annotated[str, AfterValidator(_model_reference)]
# A model named to an endpoint, or to the vLLM server datatrove starts (`vllm serve <model>`: never an option there).
ModelName = Annotated[str, Field(pattern=r"^[^\s-]\S*$", max_length=256)]
DataPath = Annotated[str, AfterValidator(visible_path)]  # a local file, folder or glob of data
DataRef = Annotated[str, AfterValidator(_model_reference), AfterValidator(visible_path)]  # a Hub id or a DataPath
Namespace = Annotated[str, AfterValidator(hub_namespace)]
RepoPath = Annotated[str, AfterValidator(_repo_path)]
ColumnName = Annotated[str, Field(min_length=1, max_length=256)]  # a column (or a key inside one) that rows must have
# datasets' split-name rule (datasets/naming.py, _split_re); configuration names as the Hub shows them.
SplitName = Annotated[str, Field(pattern=r"^\w+(\.\w+)*$", max_length=128)]
ConfigName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)]
Url = Annotated[str, Field(pattern=r"^https?://[^\s<>\"'`]+$", max_length=2048)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]


# What each pattern above asks, in words: the hint of a value that does not match.
PATTERN_WORDS = {
    f"^{SLUG.pattern}$": "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit",
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$": "letters, digits, '.', '_' and '-', starting with a letter or digit",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$": "letters, digits, '.', '_' and '-', starting with a letter or digit",
    r"^[^\s-]\S*$": "no spaces, and not starting with '-'",
    r"^\w+(\.\w+)*$": "letters, digits and '_', in parts joined by '.' (train, test, validation)",
    r"^https?://[^\s<>\"'`]+$": "an http:// or https:// URL, without spaces or quotes",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable's name: letters, digits and '_', not starting with a digit",
    r"^[A-Za-z0-9_.-]+$": "letters, digits, '.', '_' and '-'",
    r"^[a-z][a-z0-9-]*$": "lower-case letters, digits and '-', starting with a letter",
    r"^[A-Za-z0-9_.,:=/@%+-]*$": "letters, digits and _ . , : = / @ % + -",
    r"^[a-z0-9][a-z0-9.+-]{0,63}$": "a licence identifier as the Hub writes it: lower-case, such as apache-2.0 or llama3.1",
    r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$": "[days-]hours:minutes:seconds, such as 24:00:00 or 2-00:00:00",
    r"^[a-z][a-z0-9_]*$": "lower-case letters, digits and '_', starting with a letter",
    r"^[A-Za-z0-9][A-Za-z0-9._/-]*$": "a branch, tag or commit: letters, digits, '.', '_', '/' and '-'",
    r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$": "a language code, such as en, zh or pt-BR",
    r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$": "letters, digits and _ . : + -, such as medical or region:us",
    r"^[A-Za-z0-9_./~+@:%=,-]+$": "letters, digits and _ . / ~ + @ : % = , -",
}


def _endpoint_key(name: str) -> str:
    if service := foreign_credential(name):
        raise ValueError(f"{name} holds a credential of {service}, not an LLM endpoint's key: a recipe may not send it "
                         "to the endpoint it names (name the variable that holds that endpoint's own key, e.g. OPENAI_API_KEY)")
    return name


# The variable whose value is sent to the endpoint the recipe names: never another service's credential.
ApiKeyEnv = Annotated[EnvName, AfterValidator(_endpoint_key)]

# Slurm names and #SBATCH values go into a batch script, where a shell quote cannot protect them: a safe alphabet.
SlurmName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=128)]
# The #SBATCH options a recipe may add: those that shape what the job asks of the scheduler (resources, placement,
# priority, timing), by their full names in sbatch(1). Any other option can reach outside the job's request: name files
# Slurm writes or reads (--output, --chdir, --nodefile, --bbf), set the job's environment (--export=BASH_ENV=<file>
# runs that file in bash before the script), choose a container (--container), or change how sbatch itself runs
# (--wrap, --wait, --array). An allow-list, because sbatch parses #SBATCH lines with getopt_long (SchedMD/slurm
# src/sbatch/opt.c), which also takes any unambiguous prefix of an option ("--out" is --output).
SBATCH_OPTIONS = frozenset({
    "account", "begin", "cluster-constraint", "clusters", "comment", "constraint", "contiguous", "core-spec",
    "cores-per-socket", "cpu-freq", "cpus-per-gpu", "cpus-per-task", "deadline", "distribution", "exclude", "exclusive",
    "extra-node-info", "gpu-bind", "gpu-freq", "gpus", "gpus-per-node", "gpus-per-socket", "gpus-per-task", "gres",
    "gres-flags", "hint", "licenses", "mem", "mem-bind", "mem-per-cpu", "mem-per-gpu", "mincpus", "network", "nice",
    "nodelist", "nodes", "ntasks", "ntasks-per-core", "ntasks-per-gpu", "ntasks-per-node", "ntasks-per-socket",
    "overcommit", "oversubscribe", "partition", "prefer", "priority", "qos", "reservation", "signal",
    "sockets-per-node", "spread-job", "switches", "threads-per-core", "time", "time-min", "tmp", "use-min-nodes",
    "wckey",
})


def _sbatch_option(name: str) -> str:
    if name not in SBATCH_OPTIONS:
        raise ValueError(f"--{name} is not an sbatch option a recipe may set: only those that shape the job's request "
                         "(resources, placement, priority, timing), by their full names, e.g. constraint, gres, mem, "
                         "exclusive, reservation, nodelist; the job's log, folder and environment are medrecipe's")
    return name


SbatchOption = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64), AfterValidator(_sbatch_option)]
SbatchValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.,:=/@%+-]*$", max_length=256)]
# Paths and image names datatrove's Slurm executor writes into its batch script unquoted.
ScriptWord = Annotated[str, Field(pattern=r"^[A-Za-z0-9_./~+@:%=,-]+$", max_length=1024)]
# Bounded so that no number reaches a tool that its integers cannot hold.
INT_LIMIT = 2**31 - 1
PositiveInt = Annotated[int, Field(gt=0, le=INT_LIMIT)]
NonNegativeInt = Annotated[int, Field(ge=0, le=INT_LIMIT)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def placeholders(template: str, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> str:
    """Check a str.format template: only `allowed` fields, every `required` one, literal braces doubled. A worker
    that formats it must never fail on a brace the recipe meant as text."""
    try:
        parsed = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"{what}: {error}; write a literal brace as {{{{ or }}}}") from None
    fields = [name for name, _, _ in parsed]
    unknown = sorted({name for name in fields if name not in allowed})
    if unknown:
        raise ValueError(f"{what} has the placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; it takes "
                         f"{', '.join('{' + n + '}' for n in allowed)} (write a literal brace as {{{{ or }}}})")
    if any(spec or conversion for _, spec, conversion in parsed):
        raise ValueError(f"{what}: placeholders take no format (write {{name}}, and a literal brace as {{{{ or }}}})")
    missing = [name for name in required if name not in fields]
    if missing:
        raise ValueError(f"{what} must contain {', '.join('{' + n + '}' for n in missing)}")
    return template
