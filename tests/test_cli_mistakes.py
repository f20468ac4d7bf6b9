"""Mistakes users make at the command line, and interruptions: each is a clear error (exit 2 or 130), never a
traceback, and nothing half-written stands in the way of the rerun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from medrecipe.recipe.load import display

from .conftest import RECIPES

QUICKSTART = str(RECIPES / "quickstart.yaml")
TOKEN = "hf_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7"


def test_a_verbose_run_streams_the_tool_through_the_redacting_output(tmp_path, cli, monkeypatch):
    """`run --verbose` shows the tool's own output as it comes (it used to fail on the first byte), scrubbed."""
    from medrecipe.run.console import run_logged

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    program = "import os; print('step 1/2, loss 0.5'); print('token', os.environ['HF_TOKEN'])"

    def tool():
        run_logged([sys.executable, "-c", program], {}, tmp_path, "sft", tmp_path / "sft.log", verbose=True)

    monkeypatch.setattr("medrecipe.cli.validate.summary", lambda recipe: tool() or "ran")
    result = cli("validate", QUICKSTART)
    assert result.code == 0, result.err
    assert "step 1/2, loss 0.5" in result.out and "token [redacted]" in result.out and TOKEN not in result.out


def test_ctrl_c_says_how_to_resume(cli, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("medrecipe.cli.validate.load", interrupted)
    result = cli("validate", QUICKSTART)
    assert result.code == 130 and "interrupted: finished work is kept; rerun the same command to resume" in result.err


def test_two_repositories_of_one_name_are_refused_where_the_recipe_names_them(cli):
    result = cli("validate", QUICKSTART, "--set", "hub.sft_repo=quickstart")
    assert result.code == 2 and "hub.sft_repo: the sft repository is named 'quickstart', as the model repository is" in result.err


def test_a_repository_name_the_hub_refuses_is_an_error_before_anything_is_pushed(cli):
    """Repository names derived from the recipe's name keep the Hub's rules (huggingface_hub 2.4.0
    utils/_validators.py, validate_repo_id: no '--' or '..', no '.git' at the end, 96 characters, a letter, digit
    or '_' at each end). They failed only when the Hub refused them, after the repositories before had been pushed."""
    ends_in_git = cli("validate", QUICKSTART, "--set", "name=quickstart.git")
    assert ends_in_git.code == 2
    assert ("name: the model repository would be named 'quickstart.git', which the Hub refuses: it may not end in '.git'"
            in ends_in_git.err) and "--set hub.model_repo=..." in ends_in_git.err
    assert cli("validate", QUICKSTART, "--set", "name=quickstart.git", "--set", "hub.model_repo=quickstart").code == 0
    derived = cli("validate", QUICKSTART, "--set", "name=quick-")
    assert "the dataset repository would be named 'quick--data', which the Hub refuses: it may not hold '--' or '..'" in derived.err
    assert "the model repository would be named 'quick-', which the Hub refuses: each part is 1 to 96" in derived.err
    too_long = cli("validate", QUICKSTART, "--set", "name=" + "q" * 92)
    assert too_long.code == 2 and f"'{'q' * 92}-data'" in too_long.err and "model repository" not in too_long.err
    # a repository the recipe does not publish needs no name
    assert cli("validate", QUICKSTART, "--set", "name=" + "q" * 92, "--set", "publish.dataset=false").code == 0


def test_training_from_the_model_the_recipe_says_it_reproduces_is_refused(tmp_path, cli):
    """A child recipe that inherits the parent's hub.reproduces and trains from the parent's released model would
    publish cards naming one model as both its base and the model it reproduces."""
    child = tmp_path / "rm.yaml"
    child.write_text(f"extends: {RECIPES / 'ultramedical-rm-llama3-8b.yaml'}\nname: rm\nhub: {{reproduces: {{model: TsinghuaC3I/Llama-3-8B-UltraMedical}}}}\n")
    result = cli("validate", str(child))
    assert result.code == 2
    assert ("rm.yaml:3:27: hub.reproduces.model: this recipe trains from TsinghuaC3I/Llama-3-8B-UltraMedical, the model it "
            "says it reproduces") in result.err and "--set hub.reproduces.model=~" in result.err
    # where SFT starts from its own base model, that is the one compared
    child.write_text(f"extends: {RECIPES / 'ultramedical-llama3-8b.yaml'}\nname: sft\nrl: ~\n"
                     "sft: {base_model: TsinghuaC3I/Llama-3-8B-UltraMedical}\n")
    result = cli("validate", str(child))
    assert result.code == 2 and "this recipe trains from TsinghuaC3I/Llama-3-8B-UltraMedical" in result.err


def test_generating_longer_responses_than_sft_trains_is_a_warning_at_the_step(cli):
    """Axolotl leaves out the records longer than sft.sequence_len: a generation that runs to max_tokens would be
    paid for and never trained (the review read it in ii-medical's three generate steps, 16384 against 16378)."""
    recipe = str(RECIPES / "ii-medical-8b-1706.yaml")
    assert "max_tokens" not in cli("validate", recipe).err
    result = cli("validate", recipe, "--set", "data.steps.2.max_tokens=16384")
    assert result.code == 0
    assert ("data.steps[2].max_tokens: responses of up to 16384 tokens, but SFT trains records of at most "
            "sft.sequence_len = 16378 tokens with their prompts: Axolotl leaves the longer ones out") in result.err


def test_new_reports_a_set_path_the_parent_lacks_and_writes_no_token(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    for wrong, says in ((["data.sources.3.path=/x.jsonl"], "data.sources[3]: no such list item"),  # past the list
                        (["sft.epochs=1", "sft.epochs.x=1"], "sft.epochs: is int, which has no 'x' to set")):  # under a number
        result = cli("new", "fork", "--from", "quickstart", "--dir", str(tmp_path), *(f"--set={w}" for w in wrong))
        assert result.code == 2 and f"--set {wrong[-1]}: {says}" in result.err
        assert not (tmp_path / "fork.yaml").exists()
    assert cli("new", "tok", "--from", "quickstart", "--dir", str(tmp_path), "--set", f"description=my token {TOKEN}").code == 0
    assert TOKEN not in (tmp_path / "tok.yaml").read_text()


def test_malformed_scores_and_options_are_errors(tmp_path, cli):
    scores = tmp_path / "scores.json"
    for content in ([], {"benchmarks": {"medmcqa": 41.0}}, {"benchmarks": {"medmcqa": {"score": "x"}}}):
        scores.write_text(json.dumps(content))
        result = cli("compare", str(scores))
        assert result.code == 2 and "error:" in result.err, content
    assert cli("run", QUICKSTART, "--workers", "0", "--dry-run").code == 2
    assert cli("publish", QUICKSTART, "--dry-run", "--namespace", "bad name!").code == 2


def test_a_dry_run_does_not_replace_another_recipes_build(tmp_path, cli):
    """A queued job reads its compiled config when it starts: a dry run with other overrides must not rewrite it."""
    out = ["--out", str(tmp_path / "build")]
    assert cli("compile", QUICKSTART, *out).code == 0
    config = (tmp_path / "build" / "sft" / "axolotl.yaml").read_text()
    # the data stage's dry run needs no tool environment; every stage's dry run compiles the whole build first
    result = cli("run", QUICKSTART, "--stage", "data", "--dry-run", *out, "--set", "sft.epochs=3")
    assert result.code == 2 and "--dry-run would rewrite" in result.err
    assert (tmp_path / "build" / "sft" / "axolotl.yaml").read_text() == config
    same = cli("run", QUICKSTART, "--stage", "data", "--dry-run", *out)  # the same recipe: the same files
    assert same.code == 0, same.err
    assert (tmp_path / "build" / "sft" / "axolotl.yaml").read_text() == config


def test_a_missing_stage_hint_repeats_the_overrides_and_the_build_folder(tmp_path, cli):
    """The command a hint gives builds into the same folder with the same recipe: without --set and --out it would
    run the stage into another build (stage folders are keyed by the recipe's content)."""
    result = cli("publish", QUICKSTART, "--set", "name=fork", "--out", str(tmp_path / "b"), "--dry-run")
    assert result.code == 2
    recipe = display(Path(QUICKSTART))
    assert f"hint: run the data stage first: medrecipe run {recipe} --set name=fork --out {tmp_path / 'b'} --stage data" in result.err


def test_a_set_under_a_plain_value_is_refused_at_the_set(cli):
    result = cli("validate", QUICKSTART, "--set", "sft.learning_rate.x=1")
    assert result.code == 2 and "--set sft.learning_rate.x=1: sft.learning_rate: is float, which has no 'x' to set" in result.err
    result = cli("validate", QUICKSTART, "--set", "data.sources.0.x.y=1")  # a mapping the --set creates is placed at it
    assert result.code == 2 and "error: --set data.sources.0.x.y=1: data.sources[0].x: unknown key 'x'" in result.err


def test_a_folder_given_as_the_recipe_is_named_as_one(tmp_path, cli):
    (tmp_path / "mine.yaml").mkdir()
    result = cli("validate", str(tmp_path / "mine.yaml"))
    assert result.code == 2 and "this is a folder, not a recipe file" in result.err
    result = cli("validate", str(RECIPES))
    assert result.code == 2 and f"recipes in it: {RECIPES / 'ii-medical-8b-1706.yaml'}" in result.err


def test_run_says_its_warnings_on_stderr(tmp_path, cli):
    """`run` printed the compile warnings on stdout, among what it ran and where (found by review); `compile` and
    `validate` say theirs on stderr."""
    result = cli("run", QUICKSTART, "--stage", "data", "--dry-run", "--out", str(tmp_path / "build"))
    assert result.code == 0, result.err
    assert "warning rl: rl.max_prompt_length" in result.err and "warning" not in result.out


def test_a_misspelt_command_is_told_the_one_meant(cli):
    """`medrecipe valdate` said only "No such command" (found by review): click suggests from the commands it holds,
    and the lazy group holds none until one is imported."""
    result = cli("valdate", QUICKSTART)
    assert result.code == 2 and "No such command 'valdate'. Did you mean 'validate'?" in result.err
    assert "Traceback" not in result.err


def test_a_commands_option_given_before_the_command_is_told_where_it_goes(cli):
    """`medrecipe --set sft.epochs=2 validate r.yaml` said only "No such option '--set'" (the group has no such
    option); the command's options are named with the command line that puts them after it."""
    result = cli("--set", "sft.epochs=2", "-q", "validate", QUICKSTART)
    assert result.code == 2 and "Traceback" not in result.err
    assert ("No such option '--set'. It is an option of `medrecipe validate`, and goes after the command: "
            f"medrecipe validate {QUICKSTART} --set sft.epochs=2 -q") in result.err
    assert cli("validate", QUICKSTART, "--set", "sft.epochs=2", "-q").code == 0  # as told
    result = cli("--bogus", "validate", QUICKSTART)
    assert result.code == 2 and result.err.rstrip().endswith("No such option '--bogus'.")


def test_options_of_a_stage_that_does_not_run_are_usage_errors(cli):
    result = cli("run", QUICKSTART, "--stage", "data", "--model", "org/model", "--dry-run")
    assert result.code == 2 and "--model names the model the eval stage evaluates" in result.err
    result = cli("run", QUICKSTART, "--stage", "sft", "--workers", "2", "--dry-run")
    assert result.code == 2 and "--workers sets how the data stage runs, which --stage sft does not run" in result.err
    # found by review: the data stage ran on this machine, the launcher ignored
    for option in (("--launcher", "slurm"), ("--gpu",)):
        result = cli("run", QUICKSTART, "--stage", "data", *option, "--dry-run")
        assert result.code == 2 and f"{option[0]} sets how training and evaluation run, which --stage data does not run; " \
                                    "the data stage runs on --executor (local, ray or slurm)" in result.err


def test_a_model_folder_to_evaluate_that_is_not_one_is_refused_before_anything_runs(tmp_path, cli):
    """`--model` with a path was taken as a Hub id when the folder was not there, and lighteval failed late."""
    out = str(tmp_path / "build")
    result = cli("run", QUICKSTART, "--out", out, "--stage", "eval", "--model", str(tmp_path / "nowhere"), "--dry-run")
    assert result.code == 2 and f"--model {tmp_path / 'nowhere'}: no model folder there" in result.err
    (tmp_path / "empty").mkdir()
    result = cli("run", QUICKSTART, "--out", out, "--stage", "eval", "--model", str(tmp_path / "empty"), "--dry-run")
    assert result.code == 2 and "the folder has no config.json" in result.err and "Traceback" not in result.err
    result = cli("run", QUICKSTART, "--out", out, "--stage", "eval", "--model", "org/model", "--dry-run")
    assert result.code == 0 and "EVAL_MODEL=org/model" in result.out
    # A Hub id has one slash at most: more is a relative path, and it was taken for a Hub id.
    result = cli("run", QUICKSTART, "--out", out, "--stage", "eval", "--model", "build/quickstart/sft/model", "--dry-run")
    assert result.code == 2 and "--model build/quickstart/sft/model: no model folder there" in result.err
    # Found before any stage runs, not after the data stage.
    result = cli("run", QUICKSTART, "--out", out, "--stage", "data", "--stage", "eval", "--model", str(tmp_path / "nowhere"))
    assert result.code == 2 and "no model folder there" in result.err
    assert not list((tmp_path / "build" / "data").glob("*/source_files.json"))  # the data stage never began


def test_a_stage_whose_input_no_stage_of_the_run_makes_is_refused_before_any_runs(tmp_path, cli):
    """`--stage data --stage rl` without an SFT model failed after curating the data (review)."""
    result = cli("run", QUICKSTART, "--out", str(tmp_path / "build"), "--stage", "data", "--stage", "rl")
    assert result.code == 2 and "the SFT model this stage starts from is missing" in result.err
    assert "--stage sft" in result.err and not list((tmp_path / "build" / "data").glob("*/source_files.json"))


def test_batch_launchers_submit_one_training_or_evaluation_stage_at_a_time(tmp_path, cli):
    """Each stage is its own job, submitted at once: the eval job ran before the SFT job had made its model."""
    result = cli("run", QUICKSTART, "--out", str(tmp_path / "build"), "--stage", "sft", "--stage", "eval",
                 "--launcher", "slurm", "--dry-run")
    assert result.code == 2 and "--launcher slurm submits sft, eval as separate jobs" in result.err
    assert "--stage sft, then --stage eval when it has finished" in result.err


def test_a_tokenizer_folder_that_does_not_exist_is_refused_before_anything_is_read(cli):
    result = cli("inspect", QUICKSTART, "--tokenizer", "/models/Qwen3-8B")
    assert result.code == 2 and "/models/Qwen3-8B is not a folder" in result.err


def test_a_tokenizer_on_a_hub_that_cannot_be_reached_is_refused_at_once(tmp_path):
    """`inspect --tokenizer org/name` without the Hub compiled, started Axolotl's environment, and ended in the last
    15 lines of transformers' traceback (found by review); it now says so before anything runs, as it does of datasets."""
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "inspect", QUICKSTART, "--tokenizer", "some-org/tok"],
                            env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert ("error: the tokenizer some-org/tok is on the Hub, which cannot be reached at http://127.0.0.1:9, and is not in "
            "the Hugging Face cache") in result.stderr
    assert "hint: give a local copy of it: --tokenizer DIR" in result.stderr


def test_a_build_or_repositories_written_into_a_data_folder_are_refused(tmp_path, cli):
    """The review's: `--out` inside a folder source ran, and the next run read the build's excluded records,
    decisions and parquet files as rows of that source."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "rows.jsonl").write_text((RECIPES / "data" / "quickstart" / "medical_en.jsonl").read_text())
    folder_source = f"data.sources.0.path={source}"
    for option, target in (("--out", source / "build"), ("--out", source)):
        result = cli("run", QUICKSTART, "--set", folder_source, option, str(target), "--dry-run")
        assert result.code == 2 and f"writes into the data folder {source} (data.sources[0].path)" in result.err, target
    result = cli("publish", QUICKSTART, "--set", folder_source, "--out", str(tmp_path / "build"), "--to-dir", str(source / "hub"))
    assert result.code == 2 and f"--to-dir {source / 'hub'} writes into the data folder {source}" in result.err
    # beside the data, and holding a data folder it does not write into, a build is fine
    assert cli("run", QUICKSTART, "--set", folder_source, "--out", str(tmp_path / "build"), "--dry-run").code == 0
    assert cli("run", QUICKSTART, "--set", folder_source, "--out", str(tmp_path), "--dry-run").code == 0


def test_a_dry_run_of_a_training_or_evaluation_contacts_nobody(tmp_path, cli, monkeypatch):
    """It used to ask the Hub (a HEAD request) whether it was online, to choose the tool's environment."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked = []

    class Hub(BaseHTTPRequestHandler):
        def do_HEAD(self):
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        for stage in ("sft", "eval"):
            result = cli("run", QUICKSTART, "--out", str(tmp_path / "build"), "--stage", stage, "--dry-run")
            assert result.code == 0, result.err
    finally:
        server.shutdown()
        server.server_close()
    assert asked == []


def test_stages_named_together_run_in_the_pipelines_order(tmp_path, cli):
    """`--stage` is repeatable, as compile's and publish's are (it kept only the last one)."""
    result = cli("run", QUICKSTART, "--out", str(tmp_path / "build"), "--stage", "eval", "--stage", "sft", "--dry-run")
    assert result.code == 0, result.err
    assert result.out.index("sft") < result.out.index("eval") and "dry-run" in result.out
    result = cli("run", QUICKSTART, "--out", str(tmp_path / "build"), "--stage", "all", "--stage", "sft", "--dry-run")
    assert result.code == 2 and "--stage main and --stage all stand alone" in result.err


def test_compiling_a_stage_the_recipe_does_not_have_is_an_error_not_a_traceback(tmp_path, cli):
    result = cli("compile", "ultramedical-rm-llama3-8b", "--stage", "sft", "--out", str(tmp_path / "build"))
    assert result.code == 2 and "error: the recipe has no `sft` section" in result.err and "Traceback" not in result.err
    assert "its stages: rl" in result.err and not (tmp_path / "build").exists()


def test_a_value_not_of_a_fields_form_is_told_the_form_in_words(tmp_path, cli):
    """It was told the regular expression it did not match."""
    (tmp_path / "r.yaml").write_text("name: My Recipe\nbase_model: Qwen/Qwen3-8B\nlicense: Apache 2\n")
    result = cli("validate", str(tmp_path / "r.yaml"))
    assert result.code == 2 and "r.yaml:1:7: name: not of the form this field takes: 'My Recipe'" in result.err
    assert "hint: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit" in result.err
    assert "such as apache-2.0" in result.err and "should match pattern" not in result.err


def test_every_pattern_of_the_recipe_language_is_said_in_words():
    import json

    from medrecipe.recipe.model import Recipe
    from medrecipe.recipe.model.basics import PATTERN_WORDS

    patterns = set()

    def collect(node):
        if isinstance(node, dict):
            patterns.update([node["pattern"]] if isinstance(node.get("pattern"), str) else [])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(json.loads(json.dumps(Recipe.model_json_schema())))
    assert patterns and patterns <= set(PATTERN_WORDS), patterns - set(PATTERN_WORDS)


def test_a_section_given_no_mapping_and_a_set_with_a_line_break_read_plainly(cli):
    result = cli("validate", "quickstart", "--set", "sft=")
    assert result.code == 2 and "--set sft=: sft: needs a mapping of its fields, not ''" in result.err
    assert "Input should be a valid dictionary" not in result.err
    result = cli("validate", "quickstart", "--set", "seed=-1\n#x")
    assert result.code == 2 and result.err.startswith("error: --set seed=-1\\n#x: seed:")  # one line, its break shown


def test_a_kmeans_sample_smaller_than_its_clusters_is_refused(cli):
    """A training sample of fewer points than K fitted fewer centres: the clusters came out fewer than asked, unsaid."""
    result = cli("validate", "quickstart", "--set", "data.steps.0.kmeans.max_training_points=2")
    assert result.code == 2 and "max_training_points (2) is fewer than clusters (8)" in result.err
