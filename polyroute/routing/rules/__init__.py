"""Declarative routing rules: conditions over the request context, compiled once at load."""
