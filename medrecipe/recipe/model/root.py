"""The whole recipe: every section under one model."""

from typing import Literal

from pydantic import Field

from .basics import ModelRef, Slug, Strict, Url
from .compute import Compute
from .data import Data
from .eval import RECIPE_MODELS, Eval
from .hub import Hub, Publish
from .rl import RL
from .sft import SFT
from .steps import Generate, JudgeFilter, LLMCall, LLMClassifier

# The fields where a recipe names the model a stage starts from or evaluates in base_model's stead, each with the
# values that mean the recipe's own (made from base_model).
MODEL_FIELDS = {("sft", "base_model"): (), ("rl", "init_from"): ("sft",), ("eval", "model"): RECIPE_MODELS}


class Recipe(Strict):
    """A whole medical-LLM release: data, SFT, RL, evaluation and publishing."""

    name: Slug = Field(description="Name of the recipe; default repository names derive from it.")
    description: str = Field("", description="One line on what the recipe builds.")
    base_model: ModelRef = Field(description="The model everything starts from (Hub id or path).")
    license: str = Field("apache-2.0", pattern=r"^[a-z0-9][a-z0-9.+-]{0,63}$",
                         description="License of the released artifacts (a Hub license id: apache-2.0, llama3, other, ...).")
    license_name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.+-]{0,63}$",
                                     description="With `license: other`, the license's name on the Hub (its license_name).")
    license_link: Url | None = Field(None, description="With `license: other`, where the license's text is (a URL).")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="The one seed every tool receives.")
    hub: Hub = Field({}, description="Hub publishing targets.")
    data: Data | None = Field(None, description="Data curation.")
    sft: SFT | None = Field(None, description="Supervised fine-tuning.")
    rl: RL | None = Field(None, description="Post-SFT stage: DAPO / GRPO, DPO, or a reward model.")
    eval: Eval | None = Field(None, description="Evaluation.")
    publish: Publish = Field({}, description="What is published.")
    compute: Compute = Field({}, description="Where the work runs: GPUs, nodes and the data executor.")

    def evaluated_model(self) -> str:
        """What `eval.model` names once `final` is resolved: "rl", "sft", "base", or a model id / path."""
        assert self.eval is not None
        if self.eval.model == "final":
            return "rl" if self.rl else ("sft" if self.sft else "base")
        return self.eval.model

    def evaluated_architecture(self) -> str:
        """The model whose architecture the evaluated model has (training changes no sizes): for this recipe's own
        stages, the model the stage that made it started from (RL's `init_from` where it names one, SFT's base model),
        else `eval.model`."""
        assert self.eval is not None
        evaluated = self.eval.model
        if evaluated not in RECIPE_MODELS:
            return evaluated
        if evaluated in ("rl", "final") and self.rl and self.rl.init_from != "sft":
            return self.rl.init_from
        if evaluated != "base" and self.sft and self.sft.base_model:
            return self.sft.base_model
        return self.base_model

    def named_models(self) -> list[tuple[tuple, str]]:
        """(recipe path, model) of every model the recipe names in base_model's stead (MODEL_FIELDS)."""
        named = []
        for (section, field), own in MODEL_FIELDS.items():
            value = getattr(getattr(self, section), field, None)
            if value and value not in own:
                named.append(((section, field), value))
        return named

    def published(self) -> dict[Literal["dataset", "sft", "model"], Literal["data", "sft", "rl"]]:
        """The artifacts `publish` asks for that the recipe makes, each with the stage whose output it is: the curated
        dataset, the SFT checkpoint when RL follows it, and the final model (the RL output, else the SFT output)."""
        found: dict = {}
        if self.data and self.publish.dataset:
            found["dataset"] = "data"
        if self.sft and self.rl and self.publish.sft_model:
            found["sft"] = "sft"
        if self.publish.model and (self.rl or self.sft):
            found["model"] = "rl" if self.rl else "sft"
        return found

    def model_calls(self) -> list[tuple[tuple, LLMCall]]:
        """Every language model the recipe calls (curation steps, the domain classifier, the evaluation judge), each
        with the recipe path of its settings."""
        found: list[tuple[tuple, LLMCall]] = []
        for index, step in enumerate(self.data.steps if self.data else []):
            if isinstance(step, (Generate, JudgeFilter)):
                found.append((("data", "steps", index), step))
            elif isinstance(getattr(step, "classifier", None), LLMClassifier):
                found.append((("data", "steps", index, "classifier"), step.classifier))
        if self.eval and self.eval.judge:
            found.append((("eval", "judge"), self.eval.judge))
        return found

    def served_models(self) -> list[tuple[tuple, LLMCall]]:
        """The curation steps' model calls without an endpoint: datatrove starts vLLM for each, where its tasks run
        (the evaluation judge always has an endpoint)."""
        return [(path, call) for path, call in self.model_calls() if path[0] == "data" and call.endpoint is None]

    def repo_name(self, artifact: Literal["model", "sft", "dataset"]) -> str:
        """The Hub repository name of an artifact (namespace excluded)."""
        explicit = {"model": self.hub.model_repo, "sft": self.hub.sft_repo, "dataset": self.hub.dataset_repo}[artifact]
        return explicit or {"model": self.name, "sft": f"{self.name}-sft", "dataset": f"{self.name}-data"}[artifact]
