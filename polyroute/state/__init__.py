"""Shared state: what workers and instances must agree on (deployment health, retry budget;
later rate limits, live statistics, caches). Each kind of state is a small Protocol in
`base`; `memory` holds the in-process implementations, a Redis backend comes with the
scale-out work."""
