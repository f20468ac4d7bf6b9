"""datatrove PipelineSteps, one job each: readers, filters, dedup, decontamination, domain curation, LLM steps."""
