"""Typed keys for what the aiohttp application stores."""

from __future__ import annotations

from aiohttp import web

from polyroute.gateway import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
