"""The recipe's `hub` and `publish` sections: where the release goes on the Hub and what is published."""

from typing import Annotated

from pydantic import Field

from .basics import HubId, Namespace, RepoName, Strict, Url


# One word each: they are card metadata, which the Hub reads as language codes and filters by tag.
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]  # en, zh, pt-BR
HubTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$")]  # medical, reward-model, region:us


class Reproduces(Strict):
    """The published artifacts a recipe reproduces. Cards link to them; publishing never pushes there by default."""

    model: HubId | None = Field(None, description="Hub id of the published model, e.g. Intelligent-Internet/II-Medical-8B-1706.")
    dataset: HubId | None = Field(None, description="Hub id of the published training dataset.")
    paper: Url | None = Field(None, description="URL of the paper or report describing the original system.")


class Hub(Strict):
    """Where the release is published on the Hugging Face Hub."""

    namespace: Namespace | None = Field(
        None,
        description="User or organisation to publish under. Unset: `medrecipe publish --namespace`, else the logged-in account.",
    )


    private: bool = Field(True, description="Create repositories as private. Set false to publish openly.")
    model_repo: RepoName | None = Field(None, description="Repository of the final model. Default: the recipe name.")
    sft_repo: RepoName | None = Field(None, description="Repository of the SFT checkpoint. Default: `<name>-sft`.")
    dataset_repo: RepoName | None = Field(None, description="Repository of the curated dataset. Default: `<name>-data`.")
    reproduces: Reproduces | None = Field(None, description="The original published artifacts this recipe reproduces.")

# --------------------------------------------------------------------------------------------- publish


class Card(Strict):
    """Text of the generated cards that the recipe, not the run, knows."""

    overview: str = Field("", description="Opening paragraph of the model card.")
    limitations: list[str] = Field([], description="Limitations and considerations, one per line.")
    citation: str | None = Field(None, description="BibTeX entry to cite.")
    language: list[LanguageCode] = Field(["en"], min_length=1, description="Languages (ISO 639-1) for card metadata.")
    tags: list[HubTag] = Field(["medical"], description="Extra Hub tags.")


class Publish(Strict):
    """What `medrecipe publish` pushes."""

    dataset: bool = Field(True, description="Publish the curated dataset.")
    sft_model: bool = Field(True, description="Publish the SFT checkpoint.")
    model: bool = Field(True, description="Publish the final model.")
    tag_recipe_hash: bool = Field(True, description="Tag every pushed commit `recipe-<hash>` so each artifact names the recipe that made it.")
    card: Card = Field({}, description="Card text.")
