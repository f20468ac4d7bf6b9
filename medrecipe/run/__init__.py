"""Running compiled stages: the pinned tool environments and the stage runners."""
