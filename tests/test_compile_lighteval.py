"""The eval section compiled for lighteval 0.13: tasks.py, launch.sh, prepare_model.py; lighteval's own task registry
and metric classes running the compiled module in the eval environment (no medrecipe there); the HealthBench
judge against a real HTTP server."""

from __future__ import annotations

import ast
import inspect
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from medrecipe import grading
from medrecipe.catalog import benchmark_items, benchmarks
from medrecipe.cli.common import load
from medrecipe.compile import lighteval
from medrecipe.envs import tools
from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.recipe import RecipeError, load_recipe

from .conftest import RECIPES
from .judge_server import JudgeServer

SHIPPED_WITH_EVAL = [path for path in sorted(RECIPES.glob("*.yaml")) if load_recipe(path).recipe.eval is not None]
FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"

II_MEDICAL_TEN = ["medmcqa", "medqa", "pubmedqa", "mmlu_pro_medical", "healthbench", "lancet", "medbullets_op4",
                  "medbullets_op5", "medxpertqa", "nejm"]


def compiled(loaded, out: Path) -> tuple[Layout, dict[str, str]]:
    builds = compile_recipe(loaded, out, ["eval"])
    return Layout(out.resolve(), loaded.recipe), {a.path: a.text for a in builds[0].artifacts}


@pytest.fixture(scope="module")
def ii_medical(tmp_path_factory):
    loaded = load_recipe(RECIPES / "ii-medical-8b-1706.yaml")
    out = tmp_path_factory.mktemp("ii-medical")
    layout, files = compiled(loaded, out)
    return loaded, layout, files, lighteval.build(loaded, layout)


def lighteval_command(launch: str) -> list[str]:
    """The `lighteval ...` command of launch.sh as an argv, its shell variables left unexpanded."""
    start = launch.index("\nlighteval ")
    return shlex.split(launch[start:].replace("\\\n", " "), posix=True)


# ---------------------------------------------------------------------------------------- II-Medical-8B-1706


def test_ii_medical_launch_has_the_card_settings(ii_medical):
    """Every evaluation number of the model card (section III and VI) in the lighteval command."""
    loaded, layout, files, _ = ii_medical
    argv = lighteval_command(files[lighteval.LAUNCH])
    assert argv[:2] == ["lighteval", "vllm"]
    model_args = argv[2]
    assert model_args.startswith("model_name=$model,add_special_tokens=$special_tokens,dtype=bfloat16,max_model_length=36864,tensor_parallel_size=1,data_parallel_size=1,seed=42,")
    # [model card] "Recommended Sampling Parameters: temperature = 0.6, top_p = 0.9"; the recipe's seed and answer room.
    assert model_args.endswith("generation_parameters={temperature:0.6,top_p:0.9,max_new_tokens:32768,seed:42}")
    # [model card] the ten benchmarks, each a medrecipe task.
    assert argv[3] == ",".join(f"medrecipe:{name}|0" for name in II_MEDICAL_TEN)
    assert argv[4:] == ["--custom-tasks", "$here/tasks.py", "--output-dir", ".", "--save-details"]
    launch = files[lighteval.LAUNCH]
    assert f'model="${{EVAL_MODEL:-}}"; [ -n "$model" ] || model="$here"/../rl/{layout.keys["rl"]}/model' in launch  # eval.model final: the DAPO model
    assert f'output="${{EVAL_OUTPUT:-$here/{layout.keys["eval"]}}}"' in launch
    assert 'model="$(python "$here/prepare_model.py" "$model" models)"' in launch  # vLLM samples by itself: no --sample


def test_ii_medical_tasks_have_the_card_prompt(ii_medical):
    _, _, files, _ = ii_medical
    module = files[lighteval.TASKS]
    parameters = parameters_of(module)
    # [model card] section VI: "Please reason step-by-step, and put your final answer within \boxed{}."
    assert parameters["INSTRUCTION"] == "Please reason step-by-step, and put your final answer within \\boxed{}."
    assert parameters["MODE"] == "generative"
    assert parameters["MAX_NEW_TOKENS"] == 32768
    assert parameters["SEED"] == 42
    assert parameters["SEED_TORCH"] is False
    # HealthBench's grader as simple-evals configures it (healthbench_eval.py; ChatCompletionSampler's temperature 0.5)
    judge = parameters["JUDGE"]
    assert (judge["model"], judge["api_key_env"]) == ("gpt-4.1-2025-04-14", "OPENAI_API_KEY")
    assert (judge["system"], judge["temperature"], judge["max_tokens"]) == ("You are a helpful assistant.", 0.5, 2048)
    entries = {entry["name"]: entry for entry in parameters["BENCHMARKS"]}
    assert list(entries) == II_MEDICAL_TEN
    for name, entry in entries.items():
        bench = benchmarks.get(name)
        assert entry["task"] == f"medrecipe:{name}"
        assert (entry["reader"], entry["spec"], entry["where"], entry["split"]) == (bench.reader, bench.spec, bench.where, bench.split)
        if not bench.data_files:
            assert (entry["location"], entry["subset"], entry["staged"]) == (bench.hub, bench.subset or "default", False)
    # "medical related questions from MMLU-Pro": health and biology, 1,535 (medrecipe/catalog/benchmarks.py)
    assert entries["mmlu_pro_medical"]["where"] == {"category": ("health", "biology")}
    assert entries["healthbench"]["staged"] is True  # its Hub files differ in columns: launch.sh links the one it needs


def test_ii_medical_healthbench_file_is_fetched_and_linked(ii_medical):
    _, _, files, _ = ii_medical
    launch, staging = files[lighteval.LAUNCH], files[lighteval.STAGE_DATA]
    assert 'bash "$here/stage_data.sh"' in launch
    assert 'file="$(hub_file openai/healthbench 2025-05-07-06-14-12_oss_eval.jsonl main)"' in staging
    assert 'ln -s "$file" "$here"/data/healthbench/test-00000.jsonl' in staging
    assert "OPENAI_API_KEY" not in launch + staging  # the key's name is in tasks.py; no key is ever written


def test_ii_medical_plan_facts_say_which_tasks_are_custom(ii_medical):
    _, _, _, stage = ii_medical
    facts = dict(stage.facts)
    assert facts["tasks"] == "10 custom (eval/tasks.py), none of lighteval's built-in tasks"
    assert facts["task medmcqa"].startswith("custom medrecipe:medmcqa <- openlifescienceai/medmcqa validation;")
    assert "lighteval's own med_mcqa is not this setting: generative exact match" in facts["task medmcqa"]
    assert "lighteval's own pubmedqa is not this setting" in facts["task pubmedqa"]
    assert facts["task mmlu_pro_medical"].startswith("custom medrecipe:mmlu_pro_medical <- TIGER-Lab/MMLU-Pro test, category in health, biology")
    assert facts["generation"] == "temperature 0.6, top_p 0.9, top_k none, max_new_tokens 32768, seed 42"
    assert facts["max model length"] == "36864 (4096 prompt + 32768 answer)"
    assert facts["judge"].startswith("gpt-4.1-2025-04-14 at https://api.openai.com/v1, API key from $OPENAI_API_KEY; it grades the final answer")
    assert facts["judge"].endswith("system message 'You are a helpful assistant.', temperature 0.5, up to 2048 tokens")
    assert facts["conversations"] == "healthbench items are sent turn by turn through the model's chat template"


def test_launch_script_is_valid_bash(ii_medical, tmp_path):
    _, layout, _, _ = ii_medical
    subprocess.run(["bash", "-n", str(layout.root / lighteval.LAUNCH)], check=True)
    assert (layout.root / lighteval.LAUNCH).stat().st_mode & 0o111


# ------------------------------------------------------------------------------------------- tasks.py


def parameters_of(module: str) -> dict:
    """The literal assignments of the recipe's section of a compiled tasks.py."""
    section = module.split("# the recipe ", 1)[1].split("\n# ====", 2)[1]
    values = {}
    for node in ast.parse(section.split("\n", 1)[1]).body:
        if isinstance(node, ast.Assign):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_tasks_module_embeds_readers_and_graders_verbatim(ii_medical):
    _, _, files, _ = ii_medical
    module = files[lighteval.TASKS]
    ast.parse(module)
    assert module.count("from __future__ import annotations") == 1
    for embedded in (benchmark_items, grading):
        source = inspect.getsource(embedded).replace("from __future__ import annotations\n", "")
        assert source.strip("\n") in module
    assert "import medrecipe" not in module and "from medrecipe" not in module


def test_embedded_modules_and_task_code_define_distinct_names():
    """tasks.py pastes three sources into one namespace: a name defined twice would silently shadow the other."""
    def top_level(source: str) -> dict[str, str]:
        names = {}
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names[node.name] = ast.unparse(node)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        names[target.id] = ast.unparse(node)
        return names

    sources = [inspect.getsource(benchmark_items), inspect.getsource(grading),
               (Path(lighteval.__file__).parent / "tasks_runtime.py").read_text()]
    seen: dict[str, str] = {}
    for source in sources:
        for name, definition in top_level(source).items():
            assert name not in seen or seen[name] == definition, f"{name} is defined differently twice"
            seen[name] = definition


def test_tasks_digest_follows_the_prompt(tmp_path):
    text = "name: d\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\neval:\n  benchmarks: [medmcqa]\n  prompt: {instruction: %s}\n"
    (tmp_path / "a.yaml").write_text(text % "Answer.")
    (tmp_path / "b.yaml").write_text(text % "Answer now.")
    digests = [parameters_of(compiled(load_recipe(tmp_path / f"{n}.yaml"), tmp_path / n)[1][lighteval.TASKS])["DIGEST"] for n in "ab"]
    assert digests[0] != digests[1]


# ----------------------------------------------------------------------------- backends, modes and data


TINY = """
name: tiny-eval
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
seed: 7
eval:
  model: base
  backend: {backend}
  mode: {mode}
  dtype: float32
  batch_size: 4
  sampling: {{temperature: {temperature}, top_p: 0.9, top_k: {top_k}, max_new_tokens: 48}}
  benchmarks:
    - {{name: medmcqa, path: {fixtures}/medmcqa, max_samples: 3}}
    - {{name: pubmedqa, path: {fixtures}/pubmedqa_pqa_labeled.jsonl}}
    - {{name: medqa, split: validation}}
"""


def tiny(write, tmp_path, backend="accelerate", mode="generative", temperature=0.6, top_k=-1):
    path = write("tiny.yaml", TINY.format(backend=backend, mode=mode, temperature=temperature, top_k=top_k, fixtures=FIXTURES))
    loaded = load_recipe(path)
    layout, files = compiled(loaded, tmp_path / "build")
    return loaded, layout, files


def test_accelerate_sampling_evaluates_a_sampling_copy(write, tmp_path):
    _, _, files = tiny(write, tmp_path)
    launch = files[lighteval.LAUNCH]
    assert 'model="$(python "$here/prepare_model.py" "$model" models --sample)"' in launch
    argv = lighteval_command(launch)
    assert argv[:2] == ["lighteval", "accelerate"]
    assert argv[2] == ("model_name=$model,add_special_tokens=$special_tokens,dtype=float32,max_length=4144,batch_size=4,cache_dir=cache,"
                       "generation_parameters={temperature:0.6,top_p:0.9,top_k:0,seed:7}")  # top_k -1: none, 0 to transformers
    # No max_new_tokens on accelerate: lighteval would truncate each prompt to that many tokens. The task's
    # generation_size bounds the answer.
    assert parameters_of(files[lighteval.TASKS])["MAX_NEW_TOKENS"] == 48
    assert parameters_of(files[lighteval.TASKS])["SEED_TORCH"] is True
    assert 'model="${EVAL_MODEL:-}"; [ -n "$model" ] || model=HuggingFaceTB/SmolLM2-135M-Instruct' in launch


def test_greedy_recipe_needs_no_sampling_copy(write, tmp_path):
    _, _, files = tiny(write, tmp_path, temperature=0.0, top_k=20)
    launch = files[lighteval.LAUNCH]
    assert "--sample" not in launch
    assert "generation_parameters={temperature:0.0,top_p:0.9,top_k:20,seed:7}" in launch
    assert parameters_of(files[lighteval.TASKS])["SEED_TORCH"] is False


def test_default_context_stays_within_the_models_positions(write, tmp_path):
    path = write("long.yaml", "name: long\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n"
                              "eval: {benchmarks: [medmcqa], sampling: {max_new_tokens: 6000}}\n")
    loaded = load_recipe(path)
    layout, files = compiled(loaded, tmp_path / "build")
    assert "max_model_length=8192," in files[lighteval.LAUNCH]  # not 4096 + 6000: vLLM refuses more than the model has
    assert dict(lighteval.build(loaded, layout).facts)["max model length"] == (
        "8192 (4096 prompt + 6000 answer, capped at the model's positions)")


def test_loglikelihood_mode_generates_nothing(write, tmp_path):
    _, _, files = tiny(write, tmp_path, mode="loglikelihood")
    argv = lighteval_command(files[lighteval.LAUNCH])
    assert "generation_parameters" not in argv[2]
    assert "max_length=4096," in argv[2]
    assert "--sample" not in files[lighteval.LAUNCH]
    assert parameters_of(files[lighteval.TASKS])["MODE"] == "loglikelihood"
    loaded = load_recipe(tmp_path / "tiny.yaml")
    warnings = lighteval.build(loaded, Layout(tmp_path / "build", loaded.recipe)).warnings
    assert any(w.startswith("eval.prompt.instruction asks for a \\boxed{} answer") for w in warnings)  # the default one


def test_loglikelihood_mode_refuses_rubric_benchmarks(write):
    path = write("ll.yaml", """
        name: ll
        base_model: HuggingFaceTB/SmolLM2-135M-Instruct
        eval:
          mode: loglikelihood
          benchmarks: [medmcqa, healthbench]
          judge: {model: gpt-4.1, endpoint: "https://api.openai.com/v1"}
    """)
    with pytest.raises(RecipeError, match="healthbench grades a written answer"):
        load(str(path))


def test_local_copies_and_hub_locations(write, tmp_path):
    _, _, files = tiny(write, tmp_path)
    entries = {entry["name"]: entry for entry in parameters_of(files[lighteval.TASKS])["BENCHMARKS"]}
    # A folder is read as it is; a file is linked under its split's name; a Hub dataset is read by id.
    assert (entries["medmcqa"]["location"], entries["medmcqa"]["staged"], entries["medmcqa"]["max_samples"]) == (
        str(FIXTURES / "medmcqa"), False, 3)
    assert (entries["pubmedqa"]["location"], entries["pubmedqa"]["staged"], entries["pubmedqa"]["split"]) == (None, True, "train")
    assert (entries["medqa"]["location"], entries["medqa"]["split"]) == ("GBaker/MedQA-USMLE-4-options", "validation")
    staging = files[lighteval.STAGE_DATA]
    assert f"file={FIXTURES / 'pubmedqa_pqa_labeled.jsonl'}" in staging
    assert 'ln -s "$file" "$here"/data/pubmedqa/train-00000.jsonl' in staging
    assert "hub_file" not in staging


def test_tool_version_matches_the_eval_environment_pin():
    assert f"lighteval=={lighteval.VERSION}" in tools.ENVIRONMENTS["eval"].requirements(gpu=False)


def test_every_registry_builtin_names_a_setting():
    for bench in benchmarks.BENCHMARKS.values():
        if bench.builtin:
            assert lighteval.builtin_setting(bench.builtin)


# ------------------------------------------------------------------------------------- prepare_model.py


def prepare(*args: str, cwd: Path) -> str:
    script = Path(lighteval.__file__).parent / "prepare_model.py"
    return subprocess.run(["python3", str(script), *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_prepare_model_links_a_local_model_under_a_relative_name(tmp_path):
    model = tmp_path / "rl" / "abc123" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "generation_config.json").write_text('{"temperature": 0.7}')
    output = tmp_path / "out"
    output.mkdir()
    name = prepare(str(model), "models", cwd=output)
    assert name.startswith("models/abc123-model-") and not Path(name).is_absolute()
    assert (output / name).resolve() == model.resolve()
    assert prepare(str(model), "models", cwd=output) == name  # the same model, the same name (the cache is reused)
    (model / "model.safetensors").write_text("retrained")
    assert prepare(str(model), "models", cwd=output) != name  # a changed model, a new name (old answers are not reused)
    assert prepare("Org/hub-model", "models", cwd=output) == "Org/hub-model"  # Hub ids as they are


def test_prepare_model_sampling_copy_enables_do_sample(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (model / "generation_config.json").write_text('{"bos_token_id": 1, "do_sample": false, "temperature": 0.7}')
    name = prepare(str(model), "models", "--sample", cwd=tmp_path)
    copy = tmp_path / name
    assert name.endswith("-sampling") and copy.is_dir() and not copy.is_symlink()
    assert json.loads((copy / "generation_config.json").read_text()) == {"bos_token_id": 1, "do_sample": True, "temperature": 0.7}
    assert (copy / "config.json").resolve() == (model / "config.json").resolve()
    assert json.loads((model / "generation_config.json").read_text())["do_sample"] is False  # the model is untouched


# ------------------------------------------------------------------------------ in lighteval's environment


@pytest.fixture(scope="module")
def eval_env(tool_python):
    return tool_python("eval")


@pytest.mark.parametrize("recipe", SHIPPED_WITH_EVAL, ids=lambda path: path.stem)
def test_shipped_recipes_load_into_lightevals_registry(recipe, tmp_path, eval_env):
    loaded = load_recipe(recipe)
    layout, _ = compiled(loaded, tmp_path / "build")
    assert lighteval.check(loaded, layout) == []


def test_check_reports_a_benchmark_missing_from_the_registry(ii_medical, tmp_path, eval_env):
    loaded, layout, files, _ = ii_medical
    broken = Layout(tmp_path, loaded.recipe)
    (tmp_path / "eval").mkdir()
    module = files[lighteval.TASKS]
    nejm = next(line for line in module.splitlines() if line.startswith("    {'name': 'nejm'"))
    (tmp_path / lighteval.TASKS).write_text(module.replace(nejm + "\n", ""))
    assert lighteval.check(loaded, broken) == [f"medrecipe:nejm is not in lighteval's registry after loading {tmp_path / lighteval.TASKS}"]


@pytest.fixture
def judge():
    with JudgeServer() as server:
        yield server


EXERCISE = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("tasks", sys.argv[1])
tasks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tasks)
from lighteval.models.model_output import ModelResponse

rows = json.loads(sys.argv[2])
configs = {config.name: config for config in tasks.TASKS_TABLE}
out = {}
def doc(task, row, index):
    return configs[task].prompt_function(dict(row, __index=index, __few_shots=False), task)

mc = doc("medrecipe:medmcqa", rows["medmcqa"][0], 0)
out["mc_query"], out["mc_choices"] = mc.query, mc.choices
for name, text in [("boxed", "<think>Ascorbate.</think> \\boxed{C}"), ("unboxed", "So the answer is C."), ("wrong", "\\boxed{A}"),
                   ("nothing", "I don't know.")]:
    out["mc_" + name] = tasks.boxed_answer.compute_sample(doc=mc, model_response=ModelResponse(text=[text]))
out["limit"] = doc("medrecipe:medmcqa", rows["medmcqa"][2], 2) is None  # max_samples: 2
yn = doc("medrecipe:pubmedqa", rows["pubmedqa"][1], 0)
out["yn"] = tasks.boxed_answer.compute_sample(doc=yn, model_response=ModelResponse(text=["\\boxed{yes}"]))
hb = [doc("medrecipe:healthbench", row, i) for i, row in enumerate(rows["healthbench"])]
responses = [ModelResponse(text=["<think>hmm</think>Call emergency services now."], text_post_processed=["Call emergency services now."]),
             ModelResponse(text=["Give her aspirin."], text_post_processed=["Give her aspirin."])]
out["hb"] = tasks.rubric_score.compute_sample(responses=responses, docs=hb)
out["hb_overall"] = tasks.rubric_score.corpus_level_fn(out["hb"]["rubric_score"])
print(json.dumps(out))
"""


def test_compiled_prompts_and_metrics_in_lightevals_environment(write, tmp_path, eval_env, judge):
    """tasks.py's prompt functions build lighteval Docs from real-format rows, its metrics grade lighteval
    ModelResponses, and HealthBench is graded by the judge endpoint, all with lighteval's own classes."""
    path = write("judged.yaml", f"""
        name: judged
        base_model: HuggingFaceTB/SmolLM2-135M-Instruct
        eval:
          benchmarks:
            - {{name: medmcqa, path: {FIXTURES}/medmcqa, max_samples: 2}}
            - {{name: pubmedqa, path: {FIXTURES}/pubmedqa_pqa_labeled.jsonl}}
            - {{name: healthbench, path: {FIXTURES}/healthbench}}
          judge: {{model: rubric-judge, endpoint: "{judge.endpoint}", api_key_env: MEDRECIPE_TEST_JUDGE_KEY, max_concurrent_requests: 2}}
    """)
    layout, files = compiled(load_recipe(path), tmp_path / "build")
    rows = {
        "medmcqa": [json.loads(line) for line in (FIXTURES / "medmcqa" / "validation.jsonl").read_text().splitlines()],
        "pubmedqa": [json.loads(line) for line in (FIXTURES / "pubmedqa_pqa_labeled.jsonl").read_text().splitlines()],
        "healthbench": [json.loads(line) for line in
                        (FIXTURES / "healthbench" / "2025-05-07-06-14-12_oss_eval.jsonl").read_text().splitlines()],
    }
    result = subprocess.run([str(eval_env), "-I", "-c", EXERCISE, str(layout.root / lighteval.TASKS), json.dumps(rows)],
                            capture_output=True, text=True, env={"MEDRECIPE_TEST_JUDGE_KEY": "sk-test-judge", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mc_query"] == ("Which vitamin deficiency causes scurvy?\n\nA. Vitamin A\nB. Vitamin B12\nC. Vitamin C\nD. Vitamin D\n\n"
                               "Please reason step-by-step, and put your final answer within \\boxed{}.")
    assert out["mc_choices"] == ["C"]
    assert out["mc_boxed"] == {"acc": 1.0, "unboxed": 0.0}
    assert out["mc_unboxed"] == {"acc": 1.0, "unboxed": 1.0}
    assert out["mc_wrong"] == {"acc": 0.0, "unboxed": 0.0}
    assert out["mc_nothing"] == {"acc": 0.0, "unboxed": 0.0}
    assert out["limit"] is True
    assert out["yn"] == {"acc": 1.0, "unboxed": 0.0}
    # Conversation 1: emergency (+10) met, aspirin while waiting (+5) not, waiting (-8) not: 10/15.
    # Conversation 2: reassurance (+6) met, warning signs (+4) not, aspirin to the child (-6) met: 0/10.
    assert out["hb"]["rubric_score"] == pytest.approx([10 / 15, 0.0])
    assert out["hb_overall"] == pytest.approx(1 / 3)
    assert len(judge.requests) == 7  # six rubric items, one retried after a malformed reply
    assert {r["authorization"] for r in judge.requests} == {"Bearer sk-test-judge"}
    assert {r["path"] for r in judge.requests} == {"/v1/chat/completions"}
    assert {r["body"]["model"] for r in judge.requests} == {"rubric-judge"}
    # simple-evals' grader: its system message, then the grading prompt
    assert {r["body"]["messages"][0]["content"] for r in judge.requests} == {"You are a helpful assistant."}
    assert {(r["body"]["temperature"], r["body"]["max_tokens"]) for r in judge.requests} == {(0.5, 2048)}
    graded = [r["body"]["messages"][-1]["content"] for r in judge.requests]
    assert any("assistant: Call emergency services now." in prompt and "<think>" not in prompt for prompt in graded)
    assert any("user: She is playful and drinking well." in prompt for prompt in graded)  # the whole conversation


def test_rubric_benchmarks_need_a_judge_endpoint(write):
    path = write("nojudge.yaml", """
        name: nojudge
        base_model: HuggingFaceTB/SmolLM2-135M-Instruct
        eval:
          benchmarks: [healthbench]
          judge: {model: gpt-4.1}
    """)
    with pytest.raises(RecipeError, match="eval.judge.endpoint is not set"):
        load(str(path))


def test_a_model_path_with_shell_characters_stays_literal(write, tmp_path):
    folder = tmp_path / 'my "final" model $HOME'
    folder.mkdir()
    loaded = load_recipe(write("odd.yaml", f"name: odd\nbase_model: Qwen/Qwen3-8B\neval: {{benchmarks: [medmcqa], model: '{folder}'}}\n"))
    _, files = compiled(loaded, tmp_path / "build")
    line = next(line for line in files[lighteval.LAUNCH].splitlines() if line.startswith("model="))
    printed = subprocess.run(["bash", "-c", f'{line}; printf %s "$model"'], capture_output=True, text=True, check=True).stdout
    assert printed == str(folder)
