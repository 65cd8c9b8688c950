"""Durable records: one row per finished request, and the virtual API keys.

SQLAlchemy 2 (async) over SQLite (aiosqlite, the default: a file) or PostgreSQL (asyncpg).
The request path never waits on the database: `RecordWriter` is an outcome observer that
only appends to a bounded in-memory queue, and a background task writes it in batches
(see polyroute.records.writer). Importing this package is cheap; SQLAlchemy is loaded by
the modules that talk to the database (`db`, `tables`, `writer`, `keys`, `service`).
"""

from polyroute.records.model import KeyRecord

__all__ = ["KeyRecord"]
