"""Secrets stay secret: with a Hub token and an API key planted in the environment, nothing medrecipe writes
(build folders, compiled configs, lock.json, cards, --to-dir repositories, what a push uploads, its output)
contains either of them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from medrecipe.cli.common import load
from medrecipe.compile.layout import Layout, recipe_sha256
from medrecipe.hub.cards import dataset_card, model_card
from medrecipe.hub.release import release

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
