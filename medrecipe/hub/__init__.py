"""Publishing a recipe's results on the Hugging Face Hub.

release.py  what a recipe publishes and where (repository ids, the recipe tag, which model carries the scores)
cards.py    the model and dataset cards, rendered from the hub_cards/ templates, the recipe and the run's outputs
repos.py    each repository's exact contents (files + card), written to a folder or described for --dry-run
publish.py  pushing those contents with huggingface_hub: repositories, one commit per change, the recipe tag
"""
