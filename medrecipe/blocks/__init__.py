"""datatrove PipelineSteps, one job each: readers, filters, dedup, decontamination, domain curation, LLM steps."""

try:
    from . import distribution_check
except ModuleNotFoundError as missing:  # no datatrove: no step to build; kmeans alone runs (benchmarks/gpu.py)
    if (missing.name or "").partition(".")[0] != "datatrove":
        raise
else:
    # Every process that builds or unpickles a block imports this package first.
    distribution_check.install()
