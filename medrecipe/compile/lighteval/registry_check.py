"""Load a compiled eval/tasks.py into lighteval's own task registry. Runs INSIDE the eval environment.

    python registry_check.py TASKS_PY REQUEST_JSON

REQUEST_JSON: {"tasks": ["medrecipe:medmcqa", ...], "builtins": ["med_mcqa", ...]}. The registry is built
the way `lighteval vllm|accelerate ... --custom-tasks TASKS_PY` builds it: every built-in task module plus
the custom module (a custom name that clashes with a built-in one is lighteval's own error). Each requested
task is then turned into a LightevalTask, which checks its metrics and splits; no dataset is downloaded.

Prints one JSON line {"problems": [...]}.
"""

import json
import sys


def main(tasks_file: str, request: dict) -> list[str]:
    from lighteval.tasks.registry import Registry

    try:
        configs = Registry.load_all_task_configs(custom_tasks=tasks_file)
    except Exception as error:  # the module does not import, or lighteval rejects it
        return [f"lighteval cannot load {tasks_file}: {type(error).__name__}: {error}"]
    problems = [f"{name} is not in lighteval's registry after loading {tasks_file}" for name in request["tasks"] if name not in configs]
    problems += [f"lighteval 0.13 has no built-in task {name!r} (named by medrecipe's benchmark registry)"
                 for name in request["builtins"] if name not in configs]
    present = [name for name in request["tasks"] if name in configs]
    if present:
        try:
            Registry(tasks=",".join(f"{name}|0" for name in present), custom_tasks=tasks_file).load_tasks()
        except Exception as error:
            problems.append(f"lighteval cannot build the tasks: {type(error).__name__}: {error}")
    return problems


if __name__ == "__main__":
    print(json.dumps({"problems": main(sys.argv[1], json.loads(sys.argv[2]))}))
