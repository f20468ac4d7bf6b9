"""datatrove PipelineSteps, one job each: readers, filters, dedup, decontamination, domain curation, LLM steps."""

from . import distribution_check

# Every process that builds or unpickles a block imports this package first.
distribution_check.install()
