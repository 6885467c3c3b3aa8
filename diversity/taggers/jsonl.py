"""Tags a user already has (from InsTag, an API batch job, annotators), read from a JSONL file.

Each row is an object with a `tags` field (a list of strings) and, optionally, an `id` and/or the tagged
`text`. Rows are matched to the pool's texts by the first of these that applies:
    1. every row has `text`: matched by exact text (robust to reordering and extra rows);
    2. ids were passed to `tag` and every row has `id`: matched by id;
    3. otherwise by row order, which then requires exactly one row per text.
A text without a matching row, or a malformed row, raises an error naming the file, row and field: a silent
mismatch would assign tags to the wrong samples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class JsonlTagger:
    """Read per-text tags from a JSONL file.

    Args:
        path: the JSONL file.
        tags_field: field holding the list of tags.
        id_field: field holding the sample id (used when `tag` gets ids).
        text_field: field holding the tagged text (used when every row has it).
    """

    def __init__(self, path: str, tags_field: str = "tags", id_field: str = "id", text_field: str = "text") -> None:
        self.path = path
        self.tags_field = tags_field
        self.id_field = id_field
        self.text_field = text_field

    def cache_key(self) -> dict[str, Any]:
        """Includes a hash of the file's bytes, so editing the file invalidates cached results."""
        digest = hashlib.sha256(Path(self.path).read_bytes()).hexdigest()[:16] if Path(self.path).exists() else None
        return {
            "class": type(self).__name__,
            "path": str(self.path),
            "file_sha256": digest,
            "tags_field": self.tags_field,
            "id_field": self.id_field,
            "text_field": self.text_field,
        }

    def _rows(self) -> list[dict[str, Any]]:
        path = Path(self.path)
        if not path.exists():
            raise FileNotFoundError(f"JsonlTagger: tags file not found: {path}")
        from core.jsonl import read_jsonl_objects

        rows = []
        for lineno, row in read_jsonl_objects(path):
            tags = row.get(self.tags_field)
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ValueError(
                    f"{path}, row {lineno}: field '{self.tags_field}' must be a list of strings, got {tags!r:.80}"
                )
            row["_line"] = lineno
            rows.append(row)
        return rows

    def tag(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[list[str]]:
        """Tags for each text, aligned as described in the module docstring. O(rows + texts)."""
        rows = self._rows()
        path = self.path
        if rows and all(self.text_field in r for r in rows):
            by_key, keys, field = {r[self.text_field]: r for r in rows}, list(texts), self.text_field
        elif ids is not None and rows and all(self.id_field in r for r in rows):
            by_key, keys, field = (
                {str(r[self.id_field]): r for r in rows},
                [str(i) for i in ids],
                self.id_field,
            )
        else:
            if len(rows) != len(texts):
                raise ValueError(
                    f"{path}: {len(rows)} rows for {len(texts)} texts; without a '{self.text_field}' field "
                    f"(or '{self.id_field}' plus pool ids) rows match by order, so the counts must agree"
                )
            return [list(r[self.tags_field]) for r in rows]
        out = []
        for i, key in enumerate(keys):
            row = by_key.get(key)
            if row is None:
                missing = sum(k not in by_key for k in keys)
                raise ValueError(
                    f"{path}: no row whose '{field}' matches sample {i} ({str(key)[:60]!r}); "
                    f"{missing} of {len(keys)} samples have no row"
                )
            out.append(list(row[self.tags_field]))
        return out
