"""medrecipe: one YAML recipe for a whole medical-LLM release."""

__version__ = "0.1.0"
