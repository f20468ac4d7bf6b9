"""datatrove PipelineSteps, one job each: readers, filters, dedup, decontamination, domain curation, LLM steps."""

# Every process that builds or unpickles a block imports this package first.
from . import distribution_check  # noqa: F401  (answers datatrove's per-step distribution check without a full scan)
