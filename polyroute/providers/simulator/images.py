"""Real, deterministic PNGs drawn from a prompt hash, written with zlib and struct only.

An image is named by a key that holds its seed and size, so the HTTP simulator can serve
`response_format="url"` images by regenerating them from the URL alone. Drawing works a
row at a time with byte-slice fills (a vertical gradient, then rectangles and circles), so
even 1024x1024 costs milliseconds; the encoded PNG is cached per key.
"""

from __future__ import annotations

import math
import random
import re
import struct
import zlib
from functools import lru_cache

MAX_SIDE = 1024
DEFAULT_SIZE = (256, 256)
_KEY_RE = re.compile(r"^([0-9a-f]{32})-([0-9]{1,4})x([0-9]{1,4})$")
_SIZE_RE = re.compile(r"^([0-9]{1,5})x([0-9]{1,5})$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def parse_size(size: object) -> tuple[int, int] | None:
    """(width, height) of a "WxH" size up to 1024x1024 ("auto" or None: the default)."""
    if size is None or size == "auto":
        return DEFAULT_SIZE
    if not isinstance(size, str):
        return None
    match = _SIZE_RE.match(size)
    if match is None:
        return None
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        return None
    return width, height


def image_key(digest_hex: str, width: int, height: int) -> str:
    """The name of one image: 32 hex digits of seed, then its size."""
    return f"{digest_hex[:32]}-{width}x{height}"


def parse_key(key: str) -> tuple[bytes, int, int] | None:
    """(seed bytes, width, height) of a valid key, else None."""
    match = _KEY_RE.match(key)
    if match is None:
        return None
    width, height = int(match[2]), int(match[3])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        return None
    return bytes.fromhex(match[1]), width, height


@lru_cache(maxsize=64)
def png_for_key(key: str) -> bytes | None:
    """The PNG a key names (cached), or None for a malformed key."""
    parsed = parse_key(key)
    if parsed is None:
        return None
    return render_png(*parsed)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _color(rng: random.Random) -> bytes:
    return bytes(int(rng.random() * 256) for _ in range(3))


def render_png(seed: bytes, width: int, height: int) -> bytes:
    """An 8-bit RGB PNG: a gradient background with a few filled circles and rectangles."""
    rng = random.Random(seed)
    top, bottom = _color(rng), _color(rng)
    shapes: list[tuple[str, float, float, float, float, bytes]] = []
    for _ in range(3 + int(rng.random() * 4)):
        kind = "circle" if rng.random() < 0.5 else "rect"
        x, y = rng.random() * width, rng.random() * height
        a = (0.05 + rng.random() * 0.25) * width
        b = (0.05 + rng.random() * 0.25) * height
        shapes.append((kind, x, y, a, b, _color(rng)))

    rows = []
    for row_y in range(height):
        t = row_y / (height - 1) if height > 1 else 0.0
        bg = bytes(round(top[c] + (bottom[c] - top[c]) * t) for c in range(3))
        row = bytearray(bg * width)
        for kind, x, y, a, b, color in shapes:
            dy = row_y + 0.5 - y
            if kind == "rect":
                if abs(dy) > b:
                    continue
                half = a
            else:
                radius = min(a, b)
                if abs(dy) > radius:
                    continue
                half = math.sqrt(radius * radius - dy * dy)
            x0, x1 = max(0, round(x - half)), min(width, round(x + half))
            if x1 > x0:
                row[x0 * 3 : x1 * 3] = color * (x1 - x0)
        rows.append(b"\x00" + bytes(row))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    text = b"Software\x00polyroute simulator (a simulated image, not a model's output)"
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", ihdr),
            _chunk(b"tEXt", text),
            _chunk(b"IDAT", zlib.compress(b"".join(rows), 6)),
            _chunk(b"IEND", b""),
        )
    )
