"""Whether an OpenAI-compatible endpoint a recipe calls (HealthBench's judge, the curation's generator and judge)
will answer: its key is set, it accepts the key, and it serves the model named. `preflight` asks this of each."""

from __future__ import annotations

import os


def endpoint_problem(endpoint: str, model: str, api_key_env: str | None) -> tuple[str, str | None] | None:
    """Why an OpenAI-compatible endpoint cannot serve `model` with the key in `api_key_env`, or None. Asks for the
    model list only (GET /models, as OpenAI and vLLM serve it): nothing is generated."""
    import openai

    key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not key:
        return f"${api_key_env} is not set, and {endpoint} needs its key", f"export {api_key_env}=... where the stage runs"
    client = openai.OpenAI(base_url=endpoint, api_key=key or "unused", timeout=20.0, max_retries=1)
    try:
        served = [entry.id for entry in client.models.list()]
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        return f"{endpoint} refused the key in ${api_key_env}", "check the key, and that it may use this endpoint"
    except openai.NotFoundError:
        return None  # an endpoint that lists no models: it answered, which is what can be checked
    except openai.APIConnectionError as exc:
        return f"{endpoint} cannot be reached ({exc.__cause__ or exc})", "check the URL, and the network from where the stage runs"
    except openai.APIStatusError as exc:
        return f"{endpoint} answered HTTP {exc.status_code} when asked for its models", None
    if served and model not in served:
        listed = ", ".join(served[:8]) + (" ..." if len(served) > 8 else "")
        return f"{endpoint} does not serve {model!r}; it lists {listed}", "name a model the endpoint lists"
    return None
