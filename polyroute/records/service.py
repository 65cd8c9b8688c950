"""Records: the database, the request-record writer and the key repository of a gateway."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from polyroute.config.schema import GatewayConfig, RecordsConfig
from polyroute.records.db import Database, database_url, describe
from polyroute.records.keys import KeyRepository
from polyroute.records.usage import usage_report
from polyroute.records.writer import RecordWriter

log = logging.getLogger("polyroute.records")


class Records:
    """Built with the gateway; `start` opens and migrates the database, `aclose` flushes."""

    def __init__(self, url: str, settings: RecordsConfig) -> None:
        self.db = Database(url)
        self.keys = KeyRepository(self.db)
        self.writer = RecordWriter(
            self.db,
            queue_size=settings.queue_size,
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval,
            shutdown_timeout=settings.shutdown_timeout,
        )

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Records:
        return cls(database_url(config), config.records)

    def __repr__(self) -> str:
        return f"Records({describe(self.db.url)!r})"

    async def start(self) -> None:
        try:
            version = await self.db.migrate()
        except Exception as exc:
            log.error(
                "records: cannot open the database %s (%s: %s)",
                describe(self.db.url),
                type(exc).__name__,
                getattr(exc, "orig", None) or exc,
            )
            raise
        log.info("records: %s (schema version %d)", describe(self.db.url), version)
        self.writer.start()

    async def aclose(self) -> None:
        try:
            await self.writer.close()
        finally:
            await self.db.aclose()

    async def usage(
        self,
        group_by: Sequence[str],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        where: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """The usage report, after writing what is queued (read-your-writes per instance)."""
        await self.writer.flush()
        return await usage_report(self.db, group_by, since=since, until=until, where=where)
