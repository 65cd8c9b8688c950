"""Adapters between the OpenAI wire format and upstream model servers."""
