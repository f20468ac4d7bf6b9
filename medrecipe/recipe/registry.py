"""Where the shipped resources live: in a checkout, the repository's top-level folders; in a wheel, bundled copies."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_CHECKOUT = _PACKAGE.parent


def resource_dir(name: str) -> Path:
    """`recipes`, `hub_cards` or `schemas`: the checkout's folder when running from one, else the wheel's copy."""
    in_checkout = _CHECKOUT / name
    if in_checkout.is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return in_checkout
    return _PACKAGE / "_bundled" / name


def shipped_recipes_dir() -> Path:
    return resource_dir("recipes")
