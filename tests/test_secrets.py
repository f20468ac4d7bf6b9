"""Secrets stay secret: with a Hub token and an API key planted in the environment, nothing medrecipe writes
(build folders, compiled configs, lock.json, cards, --to-dir repositories, what a push uploads, its output)
contains either of them."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from medrecipe.cli.common import load
from medrecipe.compile.layout import Layout, recipe_sha256
from medrecipe.hub.cards import dataset_card, model_card
from medrecipe.hub.release import release
from medrecipe.recipe import load_recipe
from medrecipe.recipe.untrusted import REDACTED, redact

from .conftest import RECIPES
from .release_fixtures import write_recipe, write_run


def test_no_file_medrecipe_writes_contains_a_planted_secret(cli, local_hub, tmp_path, monkeypatch):
    hub_token = f"hf_{secrets.token_hex(16)}"
    api_key = f"sk-{secrets.token_hex(20)}"
    monkeypatch.setenv("HF_TOKEN", hub_token)
    monkeypatch.setenv("OPENAI_API_KEY", api_key)  # the key the II-Medical judge steps name
    local_hub.tokens[hub_token] = "tester"
    work = tmp_path / "work"
    write_recipe(work)
    monkeypatch.chdir(work)
    outputs = []

    # compile: every stage of the tiny recipe and of II-Medical (whose judge steps read OPENAI_API_KEY)
    for args in (["recipe.yaml"], [str(RECIPES / "ii-medical-8b-1706.yaml"), "--out", "build/ii-medical"]):
        result = cli("compile", *args)
        assert result.code == 0, result.err
        outputs += [result.out, result.err]

    # the cards, as rendered from a finished run, and II-Medical's before any run
    loaded, _ = load("recipe.yaml", warn=False)
    layout = Layout((work / "build" / "tiny-med").resolve(), loaded.recipe)
    write_run(layout)
    ii_medical, _ = load(str(RECIPES / "ii-medical-8b-1706.yaml"), warn=False)
    ii_release = release(ii_medical.recipe, recipe_sha256(ii_medical.recipe), "tester")
    cards = work / "cards"
    cards.mkdir()
    (cards / "model.md").write_text(model_card(ii_medical, ii_release, ii_release.get("model")))
    (cards / "dataset.md").write_text(dataset_card(ii_medical, ii_release, ii_release.get("dataset")))

    # publish --to-dir and --dry-run, then a real push with the planted token
    for args in (["--to-dir", "hub"], ["--dry-run"]):
        result = cli("publish", "recipe.yaml", *args)
        assert result.code == 0, result.err
        outputs += [result.out, result.err]
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(local_hub.client_env(hub_token, tmp_path / "hf-home"))
    pushed = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "publish", "recipe.yaml"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    assert set(local_hub.files("model", "tester/tiny-med")) >= {"README.md", "model.safetensors"}
    outputs += [pushed.stdout, pushed.stderr]

    scanned = [path for path in tmp_path.rglob("*") if path.is_file()]  # the work folder, the Hub's storage, HF_HOME
    assert any(path.name == "lock.json" for path in scanned) and any(path.parent.name == "lfs" for path in scanned)
    for secret in (hub_token, api_key):
        leaked = [str(path) for path in scanned if secret.encode() in path.read_bytes()]
        assert not leaked, f"{secret[:3]}... written to {leaked}"
        assert not any(secret in text for text in outputs)


# A secret word anywhere in the name, not only at its end; a part of the name must be the word (or end in one of the
# words no ordinary word ends in): TOKENIZERS is not TOKEN, MONKEY is not KEY.
SECRET_NAMES = ["HF_TOKEN_BACKUP", "OPENAI_API_KEY_2", "DB_PASSWORD_PROD", "SECRET_KEY_BASE", "AWS_SECRET_ACCESS_KEY_ID",
                "OPENAI_API_KEY2", "PGPASSWORD_PROD", "OPENAI_APIKEY_2", "GOOGLE_APPLICATION_CREDENTIALS", "hf_token_old",
                "MY_CREDS", "SLACK_WEBHOOK_URL"]
PLAIN_NAMES = ["II_MEDICAL_EVOL_INSTRUCT", "INTERNIST_DATA", "TOKENIZERS_PARALLELISM", "MONKEY_PATH", "KEYBOARD_LAYOUT",
               "COMPASS_DIR", "BYPASS_CACHE"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_recipe_cannot_read_a_variable_named_for_a_secret_anywhere_in_its_name(cli, write, monkeypatch, name):
    value = "myplainbackupsecret42"
    monkeypatch.setenv(name, value)
    write("r.yaml", f"extends: quickstart\ndescription: 'notes ${{env:{name}}}'\n")
    for command in ("validate", "compile"):
        result = cli(command, "r.yaml")
        assert result.code == 2, result.err
        assert f"error: r.yaml:2:14: description: ${{env:{name}}} would write a secret into the build" in result.err
        assert value not in result.out + result.err
    result = cli("validate", "r.yaml", "--set", f"description=${{env:{name}}}")
    assert result.code == 2 and "would write a secret" in result.err and value not in result.err
    assert not Path("build").exists()
    assert redact(f"a card that says {value}") == f"a card that says {REDACTED}"  # the same rule keeps it out of output


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_a_variable_whose_name_only_resembles_a_secret_word_is_read(write, monkeypatch, name):
    monkeypatch.setenv(name, "data/medical")
    recipe = load_recipe(write("r.yaml", f"extends: quickstart\ndescription: 'from ${{env:{name}}}'\n")).recipe
    assert recipe.description == "from data/medical"
    assert redact("from data/medical") == "from data/medical"


def test_the_shipped_recipes_still_read_their_data_folders_from_the_environment(monkeypatch):
    monkeypatch.setenv("II_MEDICAL_EVOL_INSTRUCT", "/data/evol.jsonl")
    monkeypatch.setenv("INTERNIST_DATA", "/data/internist")
    assert "/data/evol.jsonl" in json.dumps(load_recipe(RECIPES / "ii-medical-8b-1706.yaml").tree.data)
    assert "/data/internist/guidelines.jsonl" in json.dumps(load_recipe(RECIPES / "internist-7b.yaml").tree.data)


@pytest.mark.parametrize("at, entry, variable", [
    ("rl.openrlhf", "{logger.wandb.key: 0123456789abcdef0123456789abcdef01234567}", "WANDB_API_KEY"),
    ("sft.axolotl", "{comet_api_key: 0123456789abcdef0123456789abcdef01234567}", "COMET_API_KEY"),
])
def test_a_passthrough_credential_is_refused_and_the_tools_own_variable_named(cli, write, tmp_path, at, entry, variable):
    """A W&B key in `rl.openrlhf` went into lock.json, the cards, args.json and launch.sh, and so to the Hub (review)."""
    section, key_name = at.split(".")
    write("r.yaml", f"extends: quickstart\n{section}:\n  {key_name}: {entry}\n")
    result = cli("compile", "r.yaml", "--out", str(tmp_path / "build"))
    key = entry.split(": ")[1].rstrip("}")
    assert result.code == 2 and "error: r.yaml:3:" in result.err and "holds a credential" in result.err
    assert f"export {variable}=..." in result.err
    assert key not in result.out + result.err and not (tmp_path / "build").exists()
    if variable == "WANDB_API_KEY":  # the flag also turns W&B logging on: a switch value does, the key read by W&B
        switched = cli("compile", "quickstart", "--set", "rl.openrlhf={logger.wandb.key: 'on'}", "--out", str(tmp_path / "b2"))
        assert switched.code == 0, switched.err
        assert "--logger.wandb.key on" in (tmp_path / "b2" / "rl" / "launch.sh").read_text()


def test_a_slack_webhook_url_is_redacted():
    url = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    assert url.split("/services/")[1] not in redact(f"notify {url} when done")
