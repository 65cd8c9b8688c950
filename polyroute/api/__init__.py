"""The HTTP edge: OpenAI-compatible endpoints, auth, request validation, error mapping."""
