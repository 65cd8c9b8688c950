"""polyroute: one OpenAI-compatible endpoint in front of many models, routing each request."""

__version__ = "0.1.0"
