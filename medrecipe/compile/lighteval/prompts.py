"""What lighteval feeds the model and how it scores: the compiled tasks through lighteval's own code. Runs INSIDE
the eval environment (medrecipe is not installed there).

    python prompts.py TASKS_PY TOKENIZER_DIR REQUEST.json

REQUEST.json holds {"tasks": ["medrecipe:medmcqa", ...], "documents": N, "responses": {task: [text, ...]}}. The
tasks are loaded into lighteval's registry from the compiled tasks.py (as --custom-tasks does) and their documents
read (the dataset, from the Hub or the local copy tasks.py names). For each of a task's first N documents (1 by
default): the prompt lighteval's PromptManager renders (with the tokenizer's chat template when lighteval uses
one), the BOS tokens that open it once tokenized as launch.sh makes lighteval tokenize it (add_special_tokens as
prepare_model.py decides, beside tasks.py; the tokenizer as prepare_model.py hands it over) and as lighteval's
default would, and each given response scored by the
task's own metrics. Prints one JSON line {task: [{"query", "gold", "prompt", "leading_bos", "leading_bos_default",
"scores": [{metric: value}, ...]}, ...]}.
"""

import json
import sys
import tempfile
from pathlib import Path


def leading(ids: list[int], bos: int | None) -> int:
    count = 0
    while bos is not None and count < len(ids) and ids[count] == bos:
        count += 1
    return count


def scores(task, doc, responses: list[str]) -> list[dict]:
    from lighteval.models.model_output import ModelResponse

    found = []
    for text in responses:
        response = ModelResponse(text=[text])
        result: dict = {}
        for metric in task.metrics:
            if getattr(metric, "batched_compute", False):
                values = metric.sample_level_fn.compute(responses=[response], docs=[doc])
                result[metric.metric_name] = values[0]
            else:
                value = metric.sample_level_fn.compute(doc=doc, model_response=response)
                result.update(value if isinstance(value, dict) else {metric.metric_name: value})
        found.append(result)
    return found


def main(tasks_file: str, tokenizer_dir: str, request: dict) -> dict:
    from transformers import AutoTokenizer

    from lighteval.models.utils import uses_chat_template
    from lighteval.tasks.prompt_manager import PromptManager
    from lighteval.tasks.registry import Registry

    sys.path.insert(0, str(Path(tasks_file).resolve().parent))
    from prepare_model import main as prepare, special_tokens  # what launch.sh gives lighteval

    model_name = prepare(tokenizer_dir, Path(tempfile.mkdtemp(prefix="lighteval-models-")), sample=False)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    manager = PromptManager(use_chat_template=uses_chat_template(tokenizer=tokenizer), tokenizer=tokenizer)
    add_special_tokens = special_tokens(model_name) == "true"
    tasks = Registry(tasks=",".join(f"{name}|0" for name in request["tasks"]), custom_tasks=tasks_file).load_tasks()
    result = {}
    for key, task in tasks.items():
        name = key.split("|")[0]
        documents = []
        for doc in task.eval_docs()[: request.get("documents", 1)]:
            prompt = manager.prepare_prompt(doc)
            bos = tokenizer.bos_token_id
            documents.append({
                "query": doc.query, "gold": doc.get_golds()[0], "prompt": prompt,
                "leading_bos": leading(tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"], bos),
                "leading_bos_default": leading(tokenizer(prompt, add_special_tokens=True)["input_ids"], bos),
                "scores": scores(task, doc, request.get("responses", {}).get(name, [])),
            })
        result[name] = documents
    return result


if __name__ == "__main__":
    with open(sys.argv[3], encoding="utf-8") as handle:
        print(json.dumps(main(sys.argv[1], sys.argv[2], json.load(handle))))
