"""The cards in the build folder: cards/<artifact>/README.md, rendered from the recipe and what the runs wrote."""

from __future__ import annotations

from ..compile.build import Artifact, StageBuild, write_artifact
from ..compile.layout import Layout
from ..recipe import LoadedRecipe
from . import cards
from .release import offline_namespace
from .repos import RunOutputs, release_of


def write_cards(loaded: LoadedRecipe, layout: Layout) -> StageBuild:
    """Write cards/<artifact>/README.md as they stand: from the recipe and whatever the runs have written so far.
    They change as stages finish, so lock.json (what the recipe compiled to) does not list them."""
    release = release_of(loaded, offline_namespace(loaded.recipe, None))
    outputs = RunOutputs(loaded, layout)
    stats = outputs.stats(required=False) if loaded.recipe.data else None
    scores = outputs.scores(required=False) if loaded.recipe.eval else None
    chart = "scores.png" if outputs.comparison() else None  # publish draws it (repos._evaluation_files)
    build = StageBuild("cards")
    for artifact in release.artifacts:
        text = (cards.dataset_card(loaded, release, artifact, stats=stats) if artifact.kind == "dataset"
                else cards.model_card(loaded, release, artifact, stats=stats, scores=scores, chart=chart,
                                      rl_trained=outputs.trained("rl")))
        build.artifacts.append(Artifact(f"cards/{artifact.kind}/README.md", text))
    for artifact in build.artifacts:
        write_artifact(layout.root, artifact)
    return build
