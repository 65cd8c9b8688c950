"""Labelled example files for content routes: (text, label) rows from JSONL, JSON or CSV.

The format follows the file's extension, so a file exported from any labelling tool or
notebook needs no conversion step:

- ``.jsonl``: one JSON object per line with string fields ``text`` and ``label``
  (blank lines are skipped);
- ``.json``: a JSON list whose items are ``[text, label]`` pairs or such objects;
- ``.csv``: a header row naming columns ``text`` and ``label`` (other columns ignored).

Relative paths are resolved against the gateway's working directory. Every problem is a
ValueError naming the file and, where there is one, the line or item.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

Example = tuple[str, str]


def load_labelled(path: str | Path) -> list[Example]:
    """All (text, label) rows of `path`; ValueError if it cannot be read or parsed."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot read {str(path)!r}: {reason}") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl(path, content)
    if suffix == ".json":
        return _json(path, content)
    if suffix == ".csv":
        return _csv(path, content)
    raise ValueError(f"{str(path)!r}: unknown format; use a .jsonl, .json or .csv file")


def _row(item: object, where: str) -> Example:
    if isinstance(item, dict):
        text, label = item.get("text"), item.get("label")
    elif isinstance(item, list) and len(item) == 2:
        text, label = item
    else:
        raise ValueError(f"{where}: expected {{'text': ..., 'label': ...}} or [text, label]")
    if not isinstance(text, str) or not isinstance(label, str):
        raise ValueError(f"{where}: 'text' and 'label' must be strings")
    return text, label


def _jsonl(path: Path, content: str) -> list[Example]:
    rows: list[Example] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{str(path)!r} line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: invalid JSON ({exc.msg})") from None
        rows.append(_row(item, where))
    return rows


def _json(path: Path, content: str) -> list[Example]:
    try:
        items = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
    if not isinstance(items, list):
        raise ValueError(f"{str(path)!r}: expected a JSON list of [text, label] pairs")
    return [_row(item, f"{str(path)!r} item {index}") for index, item in enumerate(items)]


def _csv(path: Path, content: str) -> list[Example]:
    reader = csv.DictReader(io.StringIO(content))
    if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
        raise ValueError(f"{str(path)!r}: the header row must name columns 'text' and 'label'")
    rows: list[Example] = []
    for record in reader:
        text, label = record.get("text"), record.get("label")
        if not text or not label:
            raise ValueError(f"{str(path)!r} line {reader.line_num}: empty text or label")
        rows.append((text, label))
    return rows


class CategorySource(Protocol):
    """A category defined by example texts and/or the rows of a labelled file."""

    @property
    def examples(self) -> Sequence[str]: ...

    @property
    def data(self) -> str | None: ...

    @property
    def label(self) -> str | None: ...


def category_examples(categories: Mapping[str, CategorySource]) -> list[tuple[str, str]]:
    """Every category's examples plus its rows from data files (each file read once);
    ValueError naming ``categories.<name>.data`` for a file that is unusable or has no
    rows for the category."""
    files: dict[str, list[tuple[str, str]]] = {}
    examples: list[tuple[str, str]] = []
    for name, spec in categories.items():
        examples.extend((text, name) for text in spec.examples)
        if spec.data is None:
            continue
        if spec.data not in files:
            try:
                files[spec.data] = load_labelled(spec.data)
            except ValueError as exc:
                raise ValueError(f"categories.{name}.data: {exc}") from None
        wanted = spec.label or name
        rows = [(text, name) for text, label in files[spec.data] if label == wanted]
        if not rows:
            raise ValueError(
                f"categories.{name}.data: no rows labelled {wanted!r} in {spec.data!r}"
            )
        examples.extend(rows)
    return examples
