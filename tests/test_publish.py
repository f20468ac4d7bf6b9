"""Publishing through the real huggingface_hub client to a local Hub on 127.0.0.1 (tests/hub_server.py).

Pushes run `medrecipe publish` in a subprocess: huggingface_hub reads HF_ENDPOINT when it is imported, and
this process has imported it already. --dry-run and --to-dir contact nobody and run in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, ModelCard

from medrecipe.cli.common import load
from medrecipe.compile.layout import Layout, recipe_sha256
from medrecipe.errors import UserError
from medrecipe.hub.release import PLACEHOLDER_NAMESPACE, namespace_for
from medrecipe.hub.repos import write_repos

from .release_fixtures import CHECKPOINT_FILES, write_checkpoint, write_dataset, write_recipe, write_run, write_scores

DATASET, SFT, MODEL = ("dataset", "tester/tiny-med-data"), ("model", "tester/tiny-med-sft"), ("model", "tester/tiny-med")
SHARDS = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]


@dataclass
class Release:
    folder: Path
    recipe: Path
    layout: Layout
    tag: str


@pytest.fixture
def release(tmp_path, monkeypatch) -> Release:
    """The tiny recipe in a working folder (also the working directory), with no run outputs yet."""
    folder = tmp_path / "work"
    recipe = write_recipe(folder)
    monkeypatch.chdir(folder)
    loaded, _ = load(str(recipe), warn=False)
    layout = Layout((folder / "build" / "tiny-med").resolve(), loaded.recipe)
    return Release(folder, recipe, layout, f"recipe-{recipe_sha256(loaded.recipe)[:12]}")


def publish(hub, release: Release, *args: str, token: str = "hf_test") -> subprocess.CompletedProcess:
    """`medrecipe publish recipe.yaml ARGS` in a fresh process whose huggingface_hub talks to `hub`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING_FACE"))}
    env.update(hub.client_env(token, release.folder / "hf-home"))
    command = [sys.executable, "-m", "medrecipe.cli.main", "publish", "recipe.yaml", *args]
    return subprocess.run(command, cwd=release.folder, env=env, capture_output=True, text=True, timeout=300)


def puts(hub, since: int = 0) -> set[str]:
    """sha256 of every LFS object uploaded since request number `since`."""
    return {path.split("/")[2] for method, path in hub.requests[since:] if method == "PUT" and path.startswith("/_lfs/")}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_publish_pushes_each_repository_with_its_card_and_tag_then_changes_nothing(local_hub, release):
    write_run(release.layout, scores=False)
    first = publish(local_hub, release)
    assert first.returncode == 0, first.stderr

    data = local_hub.files(*DATASET)
    assert set(data) == {".gitattributes", "README.md", *SHARDS}
    shards = sorted(release.layout.data_output().glob("*.parquet"))
    assert [data[path] for path in SHARDS] == [shard.read_bytes() for shard in shards]
    card = DatasetCard(data["README.md"].decode())
    assert card.data.license == "apache-2.0"
    assert card.data.size_categories == "n<1K"
    assert card.data.configs == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]

    for repo, stage_output in ((SFT, release.layout.sft_output()), (MODEL, release.layout.rl_output())):
        files = local_hub.files(*repo)
        assert set(files) == {".gitattributes", "README.md", *CHECKPOINT_FILES}  # no optimizer state, no trainer card
        assert files["model.safetensors"] == (stage_output / "model.safetensors").read_bytes()
        card = ModelCard(files["README.md"].decode())
        assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert card.data.pipeline_tag == "text-generation"
        assert card.data.eval_results is None  # not evaluated yet, and the card is still valid
    # The curated dataset links the card to it; the RL prompts are a local file, so they do not.
    assert ModelCard(local_hub.files(*MODEL)["README.md"].decode()).data.datasets == ["tester/tiny-med-data"]

    for repo in (DATASET, SFT, MODEL):
        assert local_hub.repo(*repo).private
        assert local_hub.repo(*repo).tags == {release.tag: local_hub.repo(*repo).branches["main"]}
        assert len(local_hub.commits(*repo)) == 2  # the Hub's initial commit, then ours
    assert first.stdout.count("(new)") == 3 and first.stdout.count("(created)") == 3

    requests = len(local_hub.requests)
    again = publish(local_hub, release)
    assert again.returncode == 0, again.stderr
    assert all(len(local_hub.commits(*repo)) == 2 for repo in (DATASET, SFT, MODEL))
    assert not puts(local_hub, requests)
    assert again.stdout.count("(unchanged)") == 6  # three commits, three tags

    # The evaluation finishes: --stage eval adds the scores and the chart to the final model's card only.
    write_scores(release.layout)
    weights = local_hub.files(*MODEL)["model.safetensors"]
    scored = publish(local_hub, release, "--stage", "eval")
    assert scored.returncode == 0, scored.stderr
    assert len(local_hub.commits(*DATASET)) == len(local_hub.commits(*SFT)) == 2
    history = local_hub.commits(*MODEL)
    assert len(history) == 3
    changed = {path for path, entry in history[0].tree.items() if history[1].tree.get(path) != entry}
    assert changed == {"README.md", "scores.png"}
    files = local_hub.files(*MODEL)
    assert files["model.safetensors"] == weights
    results = ModelCard(files["README.md"].decode()).data.eval_results
    assert [(r.dataset_type, r.dataset_split, r.metric_type, r.metric_value) for r in results] == [
        ("openlifescienceai/medmcqa", "validation", "accuracy", 41.25),
        ("qiaojin/PubMedQA", "train", "accuracy", 52.0),
    ]
    assert local_hub.repo(*MODEL).tags == {release.tag: history[0].oid}  # the tag moved to the new commit
    assert "(moved)" in scored.stdout

    # What arrived is what the real client downloads (HEAD + GET on /resolve).
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(local_hub.client_env("hf_test", release.folder / "hf-home"))
    script = "from huggingface_hub import hf_hub_download; print(open(hf_hub_download('tester/tiny-med', 'README.md')).read(), end='')"
    downloaded = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert downloaded.stdout == files["README.md"].decode()


def test_an_interrupted_publish_finishes_when_rerun(local_hub, release):
    write_run(release.layout)
    sft_weights = sha256((release.layout.sft_output() / "model.safetensors").read_bytes())
    local_hub.fail("PUT", f"^/_lfs/{sft_weights}/")  # the signed upload URL expires mid-publish

    failed = publish(local_hub, release)
    assert failed.returncode == 2
    assert "publishing tester/tiny-med-sft failed" in failed.stderr and "rerun the same command" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert len(local_hub.commits(*DATASET)) == 2  # the dataset was complete before the failure
    assert len(local_hub.commits(*SFT)) == 1  # nothing committed for the checkpoint
    stored = {path.name for path in (local_hub.root / "lfs").iterdir()}

    requests = len(local_hub.requests)
    resumed = publish(local_hub, release)
    assert resumed.returncode == 0, resumed.stderr
    uploaded = puts(local_hub, requests)
    assert sft_weights in uploaded
    assert not uploaded & stored  # what reached the Hub before is not sent again
    assert len(local_hub.commits(*DATASET)) == 2
    assert set(local_hub.files(*SFT)) == {".gitattributes", "README.md", *CHECKPOINT_FILES}
    assert set(local_hub.files(*MODEL)) == {".gitattributes", "README.md", "scores.png", *CHECKPOINT_FILES}


def test_republishing_a_changed_dataset_removes_files_it_no_longer_has(local_hub, release):
    write_dataset(release.layout, shards=2)
    public = ("--stage", "data", "--set", "hub.private=false", "--set", "publish.tag_recipe_hash=false")
    assert publish(local_hub, release, *public).returncode == 0
    assert not local_hub.repo(*DATASET).private  # the recipe says public
    assert local_hub.repo(*DATASET).tags == {}  # and asks for no tag

    write_dataset(release.layout, shards=1, records_per_shard=5)
    second = publish(local_hub, release, *public)
    assert second.returncode == 0, second.stderr
    assert set(local_hub.files(*DATASET)) == {".gitattributes", "README.md", "data/train-00000-of-00001.parquet"}
    assert "5 conversations in 1 parquet file " in local_hub.files(*DATASET)["README.md"].decode()
    assert len(local_hub.commits(*DATASET)) == 3


def test_scores_go_only_into_a_model_repository_that_exists(local_hub, release):
    write_run(release.layout)
    result = publish(local_hub, release, "--stage", "eval")
    assert result.returncode == 2
    assert "tester/tiny-med does not exist yet" in result.stderr and "--stage rl" in result.stderr
    assert local_hub.repos == {}


def test_scores_of_another_model_go_into_no_card(local_hub, release):
    # `run --stage eval --model ORG/OTHER` writes the build's scores.json too: they are not this model's
    write_run(release.layout)
    scores = json.loads(release.layout.eval_scores().read_text())
    release.layout.eval_scores().write_text(json.dumps({**scores, "model": "Intelligent-Internet/II-Medical-8B-1706"}))
    assert publish(local_hub, release).returncode == 0
    files = local_hub.files(*MODEL)
    assert "scores.png" not in files and ModelCard(files["README.md"].decode()).data.eval_results is None
    result = publish(local_hub, release, "--stage", "eval")
    assert result.returncode == 2 and "holds the scores of Intelligent-Internet/II-Medical-8B-1706" in result.stderr


def test_scores_go_only_onto_the_weights_they_describe(local_hub, release):
    write_run(release.layout)
    assert publish(local_hub, release).returncode == 0
    commits = len(local_hub.commits(*MODEL))
    # the RL stage is run again (another seed of its weights), evaluated, and the new checkpoint not published
    write_checkpoint(release.layout.rl_output(), "rl again")
    result = publish(local_hub, release, "--stage", "eval")
    assert result.returncode == 2, result.stdout
    assert "tester/tiny-med does not hold this recipe's rl checkpoint (model.safetensors differs" in result.stderr
    assert "--stage rl" in result.stderr and len(local_hub.commits(*MODEL)) == commits
    assert publish(local_hub, release, "--stage", "rl").returncode == 0
    assert publish(local_hub, release, "--stage", "eval").returncode == 0


def test_dry_run_shows_every_repository_file_and_card_and_contacts_nobody(local_hub, release):
    write_run(release.layout)
    result = publish(local_hub, release, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert local_hub.requests == []
    out = result.stdout
    for repo in ("dataset your-namespace/tiny-med-data (private)", "model your-namespace/tiny-med-sft (private)",
                 "model your-namespace/tiny-med (private)"):
        assert repo in out
    assert out.count(f"revision: main, tagged {release.tag}") == 3
    for path in [*SHARDS, *CHECKPOINT_FILES, "scores.png"]:
        assert f"    {path}  " in out
    assert "    # tiny-med-data" in out and "    ## Curation steps" in out and "    ## Evaluation" in out
    assert "no namespace given" in result.stderr


def test_publishing_without_a_valid_token_is_a_clear_error(local_hub, release):
    write_run(release.layout)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(local_hub.client_env("unused", release.folder / "hf-home"))
    del env["HF_TOKEN"]
    command = [sys.executable, "-m", "medrecipe.cli.main", "publish", "recipe.yaml"]
    result = subprocess.run(command, cwd=release.folder, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "not logged in to the Hugging Face Hub" in result.stderr and "hf auth login" in result.stderr
    assert local_hub.requests == []

    wrong = publish(local_hub, release, token="hf_wrong")
    assert wrong.returncode == 2 and "the Hub did not accept the token" in wrong.stderr
    # a rerun cannot get past a refusal: the hint says what to change, not "rerun"
    elsewhere = publish(local_hub, release, "--namespace", "someone-else")
    assert elsewhere.returncode == 2
    assert "publishing someone-else/tiny-med-data failed" in elsewhere.stderr and "rights" in elsewhere.stderr
    assert "the token may not write to someone-else/tiny-med-data" in elsewhere.stderr and "rerun" not in elsewhere.stderr
    assert local_hub.repos == {}

    # the Hub failing is not the token failing (review: a 503 was reported as a refused token)
    local_hub.fail("GET", "^/api/whoami", status=503, message="Service Unavailable")
    down = publish(local_hub, release)
    assert down.returncode == 2 and "could not say whose the token is" in down.stderr and "try again later" in down.stderr
    assert "did not accept the token" not in down.stderr and "Traceback" not in down.stderr


def test_the_summary_shows_the_visibility_the_repository_has(local_hub, release):
    """An existing repository keeps its visibility: the table says what it is, not what the recipe asked for."""
    write_dataset(release.layout)
    local_hub.seed(*DATASET, {"main": {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}}, private=False)
    result = publish(local_hub, release, "--stage", "data")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(DATASET[1]))
    assert "public (kept; the recipe asks for private)" in row
    assert not local_hub.repo(*DATASET).private and "exists and is public" in result.stderr


def test_a_repository_medrecipe_did_not_publish_is_left_as_it_is(local_hub, release):
    """Found by review: publishing into an existing repository that someone made by hand (its own card and files)
    replaced its card and deleted its files without a word, where --to-dir leaves a folder it did not write alone."""
    write_run(release.layout)
    theirs = {"README.md": b"---\nlicense: mit\n---\n# Someone's notes\n", "notes.md": b"made by hand"}
    local_hub.seed(*DATASET, {"main": theirs})
    result = publish(local_hub, release)
    assert result.returncode == 2
    assert "tester/tiny-med-data exists and holds files medrecipe did not publish (README.md, notes.md)" in result.stderr
    assert "--namespace" in result.stderr and "Traceback" not in result.stderr
    assert local_hub.files(*DATASET) == theirs and len(local_hub.commits(*DATASET)) == 1
    assert set(local_hub.repos) == {DATASET}  # refused before anything was pushed

    # an empty repository made by hand (the Hub's .gitattributes only) is published into
    local_hub.repos.clear()
    local_hub.seed(*DATASET, {"main": {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}}, private=True)
    assert (first := publish(local_hub, release)).returncode == 0, first.stderr
    assert publish(local_hub, release).returncode == 0  # and again: what medrecipe published is its to replace


def test_a_failed_repository_is_summarised_with_those_pushed_before_it(local_hub, release):
    """Found by review: when one repository failed, the summary table was not printed, so what had been pushed
    (commits, tags) went unsaid."""
    write_run(release.layout)
    local_hub.fail("POST", "^/api/models/tester/tiny-med/commit/", status=500, message="Internal Error", times=20)
    result = publish(local_hub, release)
    assert result.returncode == 2 and "publishing tester/tiny-med failed" in result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("tester/")}
    assert "(new)" in rows["tester/tiny-med-data"] and "(created)" in rows["tester/tiny-med-data"]
    assert "(new)" in rows["tester/tiny-med-sft"]
    assert "failed" in rows["tester/tiny-med"] and "(new)" not in rows["tester/tiny-med"]


# ---------------------------------------------------------------------------------- offline (in-process)


def test_a_to_dir_write_cut_off_midway_is_finished_by_the_rerun(cli, release, monkeypatch):
    """Ctrl-C while the first repository is copied: the rerun finishes it (the folder is in the manifest before a
    byte of it is written), instead of refusing a folder 'medrecipe did not write'."""
    from medrecipe.hub import repos

    write_run(release.layout)
    write = repos.write_folder

    def cut_off(content, folder):
        folder.mkdir(parents=True)
        (folder / "half-written").write_text("")
        raise KeyboardInterrupt

    monkeypatch.setattr(repos, "write_folder", cut_off)
    assert cli("publish", "recipe.yaml", "--to-dir", "hub", "--namespace", "me").code == 130
    monkeypatch.setattr(repos, "write_folder", write)
    rerun = cli("publish", "recipe.yaml", "--to-dir", "hub", "--namespace", "me")
    assert rerun.code == 0, rerun.err
    assert not any((release.folder / "hub").rglob("half-written"))


def test_the_published_chart_is_of_the_published_scores_and_names_the_repository(cli, release):
    """Found by review: `compare` drew eval/scores.png of the first evaluation, the eval stage ran again and rewrote
    scores.json, and publish put the old chart beside the new table, its legend naming the local checkpoint folder."""
    from medrecipe.report import compare

    write_run(release.layout)
    assert cli("compare", str(release.layout.eval_scores()), "--reference", "recipe.yaml").code == 0
    stale = release.layout.eval_chart().read_bytes()
    write_scores(release.layout, medmcqa=20.0)  # the second evaluation
    result = cli("publish", "recipe.yaml", "--to-dir", "hub", "--namespace", "me")
    assert result.code == 0, result.err
    published = (release.folder / "hub" / "tiny-med" / "scores.png").read_bytes()
    assert "| 20.00 ± 1.50 |" in (release.folder / "hub" / "tiny-med" / "README.md").read_text()
    assert sha256(published) != sha256(stale)
    # the chart of the scores.json published, its legend naming our model by its repository
    loaded, _ = load("recipe.yaml", warn=False)
    comparison = compare.compare(json.loads(release.layout.eval_scores().read_text()), loaded.recipe.eval.published)
    compare.plot(comparison, release.folder / "expected.png", "me/tiny-med")
    assert sha256(published) == sha256((release.folder / "expected.png").read_bytes())


def test_a_dry_run_writes_no_chart_and_leaves_compares(cli, release):
    """Found by review: publish drew its chart into the build's eval/scores.png, so a dry run ("contacts nobody")
    overwrote the chart `compare` had drawn, its legend a placeholder namespace. It is drawn in memory now."""
    write_run(release.layout)
    assert cli("compare", str(release.layout.eval_scores()), "--reference", "recipe.yaml").code == 0
    drawn = release.layout.eval_chart().read_bytes()
    result = cli("publish", "recipe.yaml", "--dry-run")
    assert result.code == 0, result.err
    assert "scores.png" in result.out and "<- generated chart" in result.out
    assert release.layout.eval_chart().read_bytes() == drawn


def test_without_matplotlib_the_card_has_no_chart(cli, release, monkeypatch):
    """matplotlib is the `plot` extra: publish draws the chart with it, and without it publishes the card alone."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    write_run(release.layout)
    result = cli("publish", "recipe.yaml", "--to-dir", "hub", "--namespace", "me")
    assert result.code == 0, result.err
    assert not (release.folder / "hub" / "tiny-med" / "scores.png").exists()
    card = (release.folder / "hub" / "tiny-med" / "README.md").read_text()
    assert "| 41.25 ± " in card and "scores.png" not in card


def test_to_dir_writes_each_repository_exactly(cli, release):
    write_run(release.layout)
    result = cli("publish", "recipe.yaml", "--to-dir", "hub", "--namespace", "me")
    assert result.code == 0, result.err
    folders = {path.name: {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
               for path in (release.folder / "hub").iterdir() if path.is_dir()}
    assert json.loads((release.folder / "hub" / ".medrecipe-repos.json").read_text()) == sorted(folders)  # what may be replaced
    assert folders == {
        "tiny-med-data": {"README.md", *SHARDS},
        "tiny-med-sft": {"README.md", *CHECKPOINT_FILES},
        "tiny-med": {"README.md", "scores.png", *CHECKPOINT_FILES},
    }
    card = ModelCard((release.folder / "hub" / "tiny-med" / "README.md").read_text())
    assert card.data.datasets == ["me/tiny-med-data"]
    assert "me/tiny-med" in result.out

    # The dataset card's `configs` are what `datasets` loads the folder by.
    from datasets import load_dataset

    folder = release.folder / "hub" / "tiny-med-data"
    loaded_back = load_dataset(str(folder), split="train", cache_dir=str(release.folder / "datasets-cache"))
    assert loaded_back.num_rows == 8 and loaded_back.column_names == ["id", "source", "messages", "answer", "metadata"]

    # The function `medrecipe run` calls writes the same folders; a shard that is gone is removed.
    write_dataset(release.layout, shards=1)
    loaded, _ = load("recipe.yaml", warn=False)
    written = write_repos(loaded, release.layout, release.folder / "hub", ["data"], namespace="me")
    assert written == [("me/tiny-med-data", release.folder / "hub" / "tiny-med-data")]
    assert {p.name for p in (release.folder / "hub" / "tiny-med-data" / "data").iterdir()} == {"train-00000-of-00001.parquet"}


def test_a_link_out_of_the_build_is_refused_not_published(cli, release):
    """A symbolic link in an output folder would be followed by the upload and by --to-dir's copy: one that leads
    out of the build is refused before anything is written; one to a file in the build is a file of the build."""
    write_run(release.layout)
    secret = release.folder / "private-key.pem"
    secret.write_text("PRIVATE KEY\n")
    (release.layout.rl_output() / "notes.txt").symlink_to(secret)
    for args in (["--dry-run"], ["--to-dir", "hub", "--namespace", "me"]):
        result = cli("publish", "recipe.yaml", *args)
        assert result.code == 2
        assert f"notes.txt leads out of the build, to {secret}" in result.err and "copy the file into the build" in result.err
    assert not (release.folder / "hub").exists()

    (release.layout.rl_output() / "notes.txt").unlink()
    (release.layout.rl_output() / "notes.txt").symlink_to(release.layout.sft_output() / "config.json")
    assert cli("publish", "recipe.yaml", "--to-dir", "hub", "--namespace", "me").code == 0
    assert (release.folder / "hub" / "tiny-med" / "notes.txt").read_bytes() == (release.layout.sft_output() / "config.json").read_bytes()


def test_a_missing_output_names_the_stage_to_run(cli, release):
    write_dataset(release.layout)
    write_checkpoint(release.layout.sft_output(), "sft")
    result = cli("publish", "recipe.yaml", "--dry-run")
    assert result.code == 2
    assert "no RL checkpoint in build/tiny-med/rl/" in result.err
    assert "medrecipe run recipe.yaml --stage rl" in result.err
    assert "Traceback" not in result.err
    # The dry run still shows what is ready, and which repository waits for what.
    assert "tiny-med-data (private)" in result.out and "    data/train-00000-of-" in result.out
    summary = result.out[result.out.index("Repository  "):]
    assert re.search(r"tiny-med-data\s+private\s+\d+", summary) and re.search(r"tiny-med\s+-\s+not ready", summary)

    assert cli("publish", "recipe.yaml", "--dry-run", "--stage", "data", "--stage", "sft").code == 0
    result = cli("publish", "recipe.yaml", "--dry-run", "--stage", "eval")
    assert result.code == 2 and "medrecipe run recipe.yaml --stage eval" in result.err

    release.layout.data_stats().unlink()
    result = cli("publish", "recipe.yaml", "--dry-run", "--stage", "data")
    assert result.code == 2 and "medrecipe run recipe.yaml --stage data" in result.err


def test_an_empty_curated_dataset_is_said_to_be_empty_not_missing(cli, release):
    """Found by review: a data stage that kept no record writes stats.json and no parquet file (datatrove's writers open
    a file at the first document: DiskWriter.write in datatrove/pipeline/writers/disk_base.py, 0.10.1), and publish said to run the data stage,
    which says it is done. An empty dataset is not published: its card's `configs` would match no file."""
    write_run(release.layout)
    for shard in release.layout.data_output().glob("*.parquet"):
        shard.unlink()
    stats = json.loads(release.layout.data_stats().read_text())
    stats["output"].update(records=0, files=[], bytes=0)
    release.layout.data_stats().write_text(json.dumps(stats))
    result = cli("publish", "recipe.yaml", "--dry-run", "--stage", "data")
    assert result.code == 2
    assert "the curated dataset is empty: the data stage kept none of the 10 records it read" in result.err
    assert "run the data stage first" not in result.err and "build/tiny-med/data/" in result.err
    # the SFT stage, which trains on it, says the same, and that no stage of a run makes it (it is refused at once)
    from medrecipe.run import sft
    from medrecipe.run.stages import RunOptions

    maker, error = sft.missing_input(load("recipe.yaml", warn=False)[0], release.layout, RunOptions())
    assert maker is None and "the curated dataset is empty: the data stage kept none of the 10 records" in str(error)


def test_a_file_over_the_hubs_limit_is_refused_before_anything_is_uploaded(cli, release):
    """Found by review: the Hub takes files up to 50 GB (https://huggingface.co/docs/hub/storage-limits; HfApi.upload_file,
    huggingface_hub 2.4.0) and transformers 5 saves shards up to 50GB (save_pretrained's max_shard_size): a larger
    file was hashed and uploaded for hours, then refused. A dry run and a push now refuse it first."""
    from medrecipe.hub import publish as hub_publish
    from medrecipe.hub.repos import plan, release_of

    write_run(release.layout)
    with open(release.layout.rl_output() / "model.safetensors", "r+b") as weights:
        weights.truncate(50 * 1000**3 + 1)  # sparse: no disk used
    result = cli("publish", "recipe.yaml", "--dry-run")
    assert result.code == 2
    assert "your-namespace/tiny-med: model.safetensors is 50.0 GB, over the Hub's limit of 50.0 GB for one file" in result.err
    assert "max_shard_size" in result.err and "    model.safetensors  50.0 GB" in result.out  # the plan is still shown

    loaded, _ = load("recipe.yaml", warn=False)
    published = release_of(loaded, "tester")
    contents = plan(loaded, release.layout, published, ["all"])
    with pytest.raises(UserError, match="over the Hub's limit"):
        hub_publish.push(None, contents, published, log=print)  # refused before the Hub is asked anything


def test_a_stage_the_recipe_does_not_publish_is_an_error(cli, release):
    write_run(release.layout)
    result = cli("publish", "recipe.yaml", "--dry-run", "--stage", "sft", "--set", "publish.sft_model=false")
    assert result.code == 2 and "publish.sft_model is false" in result.err
    result = cli("publish", "recipe.yaml", "--dry-run", "--stage", "eval", "--set", "eval.model=base")
    assert result.code == 2 and "evaluates `base`" in result.err
    result = cli("publish", "recipe.yaml", "--dry-run", "--to-dir", "x")
    assert result.code == 2 and "exclude each other" in result.err


def test_the_reproduced_release_namespace_is_never_the_default(cli, release):
    write_run(release.layout)
    refused = cli("publish", "recipe.yaml", "--dry-run", "--set", "hub.namespace=Original-Org")
    assert refused.code == 2
    assert "refusing to publish into 'Original-Org'" in refused.err and "--namespace Original-Org" in refused.err
    assert cli("publish", "recipe.yaml", "--dry-run", "--namespace", "original-org").code == 0  # explicit: allowed

    loaded, _ = load("recipe.yaml", warn=False)
    assert namespace_for(loaded.recipe, None, lambda: "tester") == "tester"
    assert namespace_for(loaded.recipe, None, lambda: PLACEHOLDER_NAMESPACE) == PLACEHOLDER_NAMESPACE
    with pytest.raises(UserError, match="refusing"):
        namespace_for(loaded.recipe, None, lambda: "original-org")  # logged in as the original's owner


@pytest.mark.parametrize("keep_metadata", [True, False])
def test_the_dataset_cards_columns_are_the_pushed_shards_columns(cli, tmp_path, monkeypatch, keep_metadata):
    """Found by review: the card's "Dataset structure" table listed id, source and metadata whatever the recipe's
    data.output.keep_metadata, and called `metadata` a JSON object of further source columns. The table lists each
    column the published shards have, in their order, and no other; `metadata`'s row names each key its JSON has."""
    from .test_data_llm_steps import write_jsonl

    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "qa.jsonl", [{"question": f"What does drug {i} treat in adults?", "response": f"Condition {i}.",
                                         "topic": "pharmacology"} for i in range(3)])
    (tmp_path / "recipe.yaml").write_text(f"""
name: columns
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
license: apache-2.0
data:
  output: {{keep_metadata: {str(keep_metadata).lower()}}}
  sources:
    - {{name: qa, path: qa.jsonl, fields: {{prompt: question, response: response, metadata: [topic]}}}}
compute: {{tasks: 1, workers: 1}}
""")
    assert (ran := cli("run", "recipe.yaml", "--stage", "data")).code == 0, ran.err
    assert (published := cli("publish", "recipe.yaml", "--to-dir", "hub", "--namespace", "me")).code == 0, published.err
    import pyarrow.parquet as pq

    folder = tmp_path / "hub" / "columns-data"
    shards = sorted((folder / "data").glob("*.parquet"))
    assert shards and {tuple(pq.read_schema(shard).names) for shard in shards} == {
        ("id", "source", "messages", "answer", "metadata") if keep_metadata else ("messages", "answer")}
    card = (folder / "README.md").read_text()
    structure = card.split("## Dataset structure", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in structure.splitlines() if line.startswith("| `")]
    assert [row[0].strip() for row in rows] == [f"`{name}`" for name in pq.read_schema(shards[0]).names]
    if keep_metadata:
        described = dict((row[0].strip(), row[2]) for row in rows)["`metadata`"]
        keys = json.loads(pq.read_table(shards[0]).to_pylist()[0]["metadata"])
        assert keys["extra"] == {"topic": "pharmacology"}
        assert all(f"`{key}`" in described for key in keys), (described, keys)


def test_the_helps_to_dir_example_publishes_what_a_run_of_the_recipe_curates(cli, release):
    """The help's `--to-dir` example asked for every repository, and stopped for want of an SFT checkpoint after
    `medrecipe run recipes/quickstart.yaml`, which curates and trains nothing (found running the example; the
    quickstart's RL needs GPUs, so it could not succeed on a CPU at all)."""
    write_dataset(release.layout)
    example = next(line for line in cli("publish", "--help").out.splitlines()
                   if line.strip().startswith("medrecipe publish") and "--to-dir" in line)
    arguments = shlex.split(example.split("#")[0])[2:]  # after `medrecipe publish`
    arguments[0] = "recipe.yaml"  # this release's recipe in place of the quickstart
    result = cli("publish", *arguments)
    assert result.code == 0, result.err
    assert "tiny-med-data" in result.out
