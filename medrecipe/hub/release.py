"""What a recipe publishes and where: its artifacts, their repository ids, and the tag naming the recipe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from ..errors import UserError
from ..recipe import Recipe

HUB_URL = "https://huggingface.co"  # cards link to the public Hub, wherever HF_ENDPOINT points the upload

# Shown where no namespace is known without asking the Hub (--dry-run, --to-dir): a valid id that says what to change.
PLACEHOLDER_NAMESPACE = "your-namespace"

# The curated dataset's parquet shards in its repository; the dataset card's `configs` point at this glob.
DATASET_FILES = "data/train-*.parquet"


def dataset_file(index: int, count: int) -> str:
    return f"data/train-{index:05d}-of-{count:05d}.parquet"


@dataclass(frozen=True)
class HubRepo:
    """One repository of the release."""

    kind: Literal["dataset", "sft", "model"]  # model: the final model (the RL output, else the SFT output)
    repo_id: str
    stage: Literal["data", "sft", "rl"]  # the stage whose output the repository holds

    @property
    def repo_type(self) -> Literal["dataset", "model"]:
        return "dataset" if self.kind == "dataset" else "model"

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[1]

    @property
    def url(self) -> str:
        return hub_url(self.repo_id, self.repo_type)


def hub_url(repo_id: str, repo_type: Literal["dataset", "model"] = "model") -> str:
    return f"{HUB_URL}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


@dataclass(frozen=True)
class Release:
    """Every artifact a recipe publishes under one namespace."""

    recipe: Recipe
    recipe_sha256: str  # lock.json's hash of the resolved recipe
    namespace: str
    artifacts: tuple[HubRepo, ...]

    def get(self, kind: str) -> HubRepo | None:
        return next((a for a in self.artifacts if a.kind == kind), None)

    @property
    def tag(self) -> str:
        """The tag every pushed commit gets, so that each artifact names the recipe that made it."""
        return f"recipe-{self.recipe_sha256[:12]}"

    @property
    def evaluated(self) -> HubRepo | None:
        """The published model that `eval.model` names, whose card carries the scores (None: base or external)."""
        recipe = self.recipe
        if recipe.eval is None:
            return None
        choice = recipe.evaluated_model()
        return next((a for a in self.artifacts if a.kind != "dataset" and a.stage == choice), None)


def release(recipe: Recipe, recipe_sha256: str, namespace: str) -> Release:
    """The artifacts `recipe.publish` asks for (Recipe.published), in `namespace`."""
    artifacts = tuple(HubRepo(kind, f"{namespace}/{recipe.repo_name(kind)}", stage) for kind, stage in recipe.published().items())
    return Release(recipe, recipe_sha256, namespace, artifacts)


def reproduced_namespaces(recipe: Recipe) -> set[str]:
    """Namespaces of the published originals a recipe reproduces; publishing never goes there by default."""
    reproduces = recipe.hub.reproduces
    if reproduces is None:
        return set()
    return {repo.split("/", 1)[0] for repo in (reproduces.model, reproduces.dataset) if repo and "/" in repo}


def namespace_for(recipe: Recipe, explicit: str | None, account: Callable[[], str]) -> str:
    """--namespace, else the recipe's `hub.namespace`, else the logged-in account (`account()`). The namespace
    of a release the recipe reproduces is refused unless given explicitly with --namespace."""
    if explicit:
        return explicit
    namespace = recipe.hub.namespace or account()
    if namespace.lower() in {name.lower() for name in reproduced_namespaces(recipe)}:
        raise UserError(
            f"refusing to publish into {namespace!r}, the namespace of the release this recipe reproduces",
            f"publish under your own namespace with --namespace NAME, or pass --namespace {namespace} to publish there on purpose",
        )
    return namespace


def offline_namespace(recipe: Recipe, explicit: str | None) -> str:
    """The namespace for --dry-run and --to-dir, which contact nobody: a placeholder when none is given."""
    return namespace_for(recipe, explicit, lambda: PLACEHOLDER_NAMESPACE)


def why_not_published(recipe: Recipe, stage: str) -> str:
    """Why `--stage STAGE` publishes nothing for this recipe."""
    if getattr(recipe, stage) is None:
        return f"the recipe has no `{stage}` section"
    if stage == "data":
        return "publish.dataset is false"
    if stage == "sft":
        return "publish.sft_model is false" if recipe.rl else "publish.model is false"
    if stage == "rl":
        return "publish.model is false"
    return f"the recipe evaluates `{recipe.eval.model}`, which is not a model this release publishes"
