"""The usage report behind GET /admin/usage: requests, errors, tokens and cost, grouped by
any of key, model, deployment, route and day (UTC)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, false, func, select

from polyroute.records.db import Database
from polyroute.records.tables import requests

GROUPS: dict[str, ColumnElement[Any]] = {
    "key": requests.c.key_id,
    "model": requests.c.model,
    "deployment": requests.c.deployment,
    "route": requests.c.route,
    "day": requests.c.day,
}
FILTERS: dict[str, ColumnElement[Any]] = {
    "key": requests.c.key_id,
    "model": requests.c.model,
    "deployment": requests.c.deployment,
    "route": requests.c.route,
}
_FIGURES = ("prompt_tokens", "completion_tokens", "cached_tokens", "images")


async def usage_report(
    db: Database,
    group_by: Sequence[str] = (),
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    where: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One dict per group (one in all without `group_by`), ordered by the groups."""
    columns = [GROUPS[name].label(name) for name in group_by]
    figures = [
        func.count().label("requests"),
        func.sum(case((requests.c.ok == false(), 1), else_=0)).label("errors"),
        *(func.coalesce(func.sum(requests.c[name]), 0).label(name) for name in _FIGURES),
        func.sum(case((requests.c.estimated, 1), else_=0)).label("estimated"),
        func.coalesce(func.sum(requests.c.cost), 0.0).label("cost_usd"),
    ]
    query = select(*columns, *figures)
    if since is not None:
        query = query.where(requests.c.time >= since)
    if until is not None:
        query = query.where(requests.c.time < until)
    for name, value in (where or {}).items():
        query = query.where(FILTERS[name] == value)
    if columns:
        query = query.group_by(*columns).order_by(*columns)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    report = []
    for row in rows:
        entry = dict(row._mapping)
        if not entry["requests"]:
            continue
        for name in ("errors", "estimated", *_FIGURES):
            entry[name] = int(entry[name] or 0)
        entry["total_tokens"] = entry["prompt_tokens"] + entry["completion_tokens"]
        entry["cost_usd"] = round(float(entry["cost_usd"] or 0.0), 10)
        report.append(entry)
    return report
