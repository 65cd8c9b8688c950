"""The live dashboard (/dashboard) and the playground (/playground).

`traffic` is the outcome observer that keeps the rolling statistics (no aiohttp import, so
the Gateway can build it cheaply); `views` serves the pages, their packaged assets
(`static/`, no CDN) and the JSON the pages read (/admin/stats, /playground/api/...).
"""
