"""Compilers: one per target tool, each turning a recipe into that tool's native inputs."""
