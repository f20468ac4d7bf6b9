"""Where the tools run and what they load offline: the pinned tool environments (`tools`), the models PyPI
packages ship for machines without the Hub (`offline_models`), and medrecipe's own cache folder (`cache`)."""
