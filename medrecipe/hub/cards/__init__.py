"""The model and dataset cards: metadata built with huggingface_hub's own card classes, text from hub_cards/*.j2.

A card is a function of the recipe and of what the run has produced so far, passed in as data: without
scores the model card has no model-index and says how to evaluate; without the data stage's stats the
dataset card lists every curation step with its parameters and no counts. Nothing in a card depends on the
time or the machine, so an unchanged release renders the same bytes and re-publishing it makes no commit.
"""

from .dataset_card import dataset_card
from .model_card import model_card

__all__ = ["dataset_card", "model_card"]
