"""Containers -> records: JSON / JSON lines (optionally gzipped), Parquet, `save_to_disk` folders, Hub ids.

Every reader yields `(index, label, record)`, where `label` is what an error shows to find the row ("line 7" in
JSON lines, "row 3" in an array or table). A file that cannot be read at all raises `PoolError` naming the file
and, where there is one, the line. A JSON array cut off mid-file is refused unless the caller allows a
truncated tail (the offline ShareGPT asset is cut; a user's file that ends early has lost data), and then the
lost characters are counted in `stats["truncated_tail_chars"]`.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.assets import asset_package
from diversity.pools.base import PoolError

Row = tuple[int, str, Any]
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


def read_records(source: str, split: str, allow_truncated_tail: bool, stats: dict[str, Any]) -> Iterator[Row]:
    """Yield the records of any supported container (see the module docstring)."""
    if not source or not source.strip():
        raise PoolError("pool source is empty: set data.source to a file, folder or dataset id")
    if asset_package(source) is not None:
        yield from _read_package(source, allow_truncated_tail, stats)
        return
    path = Path(source).expanduser()
    if path.is_file():
        yield from read_file(path, allow_truncated_tail, stats)
    elif path.is_dir():
        yield from _read_saved_dataset(path, split)
    elif source.count("/") == 1 and not source.startswith((".", "/", "~")) and not path.suffix:
        yield from _read_hub(source, split)
    else:
        raise PoolError(f"pool not found: {source} (no such file or folder, and not a Hugging Face dataset id)")


def read_file(path: Path, allow_truncated_tail: bool, stats: dict[str, Any]) -> Iterator[Row]:
    """A .json (an array, {"data": [...]} or JSON lines), .jsonl, or .parquet file; gzip is detected."""
    name = path.name.lower().removesuffix(".gz")
    suffix = Path(name).suffix
    if suffix == ".parquet":
        yield from _read_parquet(path)
    elif suffix in (".json", ".jsonl"):
        text = decode(path, _read_bytes(path))
        if suffix == ".jsonl":  # JSON lines by name, even if a line holds an array
            if not text.strip():
                raise PoolError(f"{path}: line 1: the file is empty")
            yield from _read_lines(path, text, allow_truncated_tail, stats)
        else:
            yield from read_json_text(path, text, allow_truncated_tail, stats)
    else:
        raise PoolError(f"{path}: unsupported pool file type '{path.suffix}' (use .json, .jsonl or .parquet)")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise PoolError(f"{path}: cannot read the file ({err.strerror or err})") from None


def decode(path: Path, raw: bytes) -> str:
    """Bytes -> text: gzip and a UTF-8/UTF-16 byte-order mark are handled; anything else must be UTF-8."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise PoolError(f"{path}: line 1: gzip-compressed but corrupt ({err})") from None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as err:
            raise PoolError(f"{path}: byte {err.start}: invalid UTF-16 after a UTF-16 byte-order mark") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.end == len(raw) and err.reason == "unexpected end of data":  # cut mid-character: a truncated tail
            return raw[: err.start].decode("utf-8")
        line = raw.count(b"\n", 0, err.start) + 1
        raise PoolError(
            f"{path}: line {line}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save the file as UTF-8"
        ) from None


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def read_json_text(path: Path, text: str, allow_truncated_tail: bool, stats: dict[str, Any]) -> Iterator[Row]:
    """A JSON array, an object holding one under "data" or "train", a single record, or JSON lines."""
    pos = _skip(text, 0)
    if pos == len(text):
        raise PoolError(f"{path}: line 1: the file is empty")
    if text[pos] == "[":
        yield from _read_array(path, text, pos, allow_truncated_tail, stats)
        return
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as err:
        raise PoolError(f"{path}: line {err.lineno}: invalid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise PoolError(f"{path}: line {_line(text, pos)}: JSON nested too deeply") from None
    rest = _skip(text, end)
    if rest < len(text):
        if "\n" not in text[pos:end]:  # the first value fits on its line: JSON lines
            yield from _read_lines(path, text, allow_truncated_tail, stats)
            return
        raise PoolError(f"{path}: line {_line(text, rest)}: unexpected data after the JSON value ends")
    if isinstance(value, dict) and ("data" in value or "train" in value):
        key = "data" if "data" in value else "train"
        if not isinstance(value[key], list):
            raise PoolError(f"{path}: field '{key}' is not a list of records ({type(value[key]).__name__})")
        yield from ((i, f"row {i} of '{key}'", record) for i, record in enumerate(value[key]))
        return
    yield 0, f"line {_line(text, pos)}", value  # a single record


def _read_lines(path: Path, text: str, allow_truncated_tail: bool, stats: dict[str, Any]) -> Iterator[Row]:
    lines = text.split("\n")  # not splitlines(): U+2028 may sit raw inside a JSON string
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"line {i + 1}"
        try:
            record, end = _DECODER.raw_decode(line, _skip(line, 0))
        except json.JSONDecodeError as err:
            if i == last and allow_truncated_tail and not text.endswith("\n"):
                stats["truncated_tail_chars"] = len(line)
                return
            hint = " (the file ends mid-record)" if i == last and not text.endswith("\n") else ""
            raise PoolError(f"{path}: {where}: invalid JSON ({err.msg} at column {err.colno}){hint}") from None
        except RecursionError:
            raise PoolError(f"{path}: {where}: JSON nested too deeply") from None
        if _skip(line, end) != len(line):
            raise PoolError(f"{path}: {where}: unexpected text after the JSON value (two records on one line?)")
        yield i, where, record


def _read_array(path: Path, text: str, pos: int, allow_truncated_tail: bool, stats: dict[str, Any]) -> Iterator[Row]:
    """Decode a JSON array element by element, so a fault names its row and earlier rows stream out."""
    pos, row = _skip(text, pos + 1), 0
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            where = f"row {row}"
            try:
                record, pos = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                if text.rstrip().endswith("]"):
                    raise PoolError(f"{path}: {where} (line {err.lineno}): invalid JSON ({err.msg})") from None
                if allow_truncated_tail and row > 0:
                    stats["truncated_tail_chars"] = len(text) - pos
                    return
                raise PoolError(
                    f"{path}: {where} (line {err.lineno}): the JSON array is cut off (no closing ']'); "
                    "repair the file, or set allow_truncated_tail (data.allow_truncated_tail=true) to keep "
                    "the complete rows before the cut"
                ) from None
            except RecursionError:
                raise PoolError(f"{path}: {where} (line {_line(text, pos)}): JSON nested too deeply") from None
            yield row, where, record
            row += 1
            pos = _skip(text, pos)
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            if pos >= len(text) or text[pos] != ",":
                if pos >= len(text) and allow_truncated_tail:
                    stats["truncated_tail_chars"] = 0
                    return
                found = "the end of the file" if pos >= len(text) else repr(text[pos])
                raise PoolError(f"{path}: row {row} (line {_line(text, pos)}): expected ',' or ']', found {found}")
            pos = _skip(text, pos + 1)
    pos = _skip(text, pos)
    if pos < len(text):
        raise PoolError(
            f"{path}: line {_line(text, pos)}: unexpected data after the JSON array ends "
            "(a second array or trailing garbage)"
        )


def _read_package(source: str, allow_truncated_tail: bool, stats: dict[str, Any]) -> Iterator[Row]:
    from core.assets import package_dir

    try:
        folder = package_dir(asset_package(source))
    except FileNotFoundError as err:
        raise PoolError(f"{source}: {err}") from None
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise PoolError(f"{source}: no JSON data file in {folder}")
    yield from read_file(files[0], allow_truncated_tail, stats)


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096)
    except (pa.ArrowException, OSError) as err:
        raise PoolError(f"{path}: not a readable Parquet file ({err})") from None
    row = 0
    while True:
        try:
            batch = next(batches, None)
            records = batch.to_pylist() if batch is not None else []
        except (pa.ArrowException, OSError) as err:
            raise PoolError(f"{path}: row {row}: unreadable Parquet data ({err})") from None
        if batch is None:
            return
        for record in records:
            yield row, f"row {row}", record
            row += 1


def _read_saved_dataset(path: Path, split: str) -> Iterator[Row]:
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001 - any failure here means "not a readable dataset folder"
        raise PoolError(
            f"{path}: not a dataset folder saved with datasets.save_to_disk ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})"
        ) from None
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise PoolError(f"{path}: no split '{split}' (splits: {sorted(data)}); set data.split")
        data = data[split]
    yield from ((i, f"row {i}", record) for i, record in enumerate(data))


def _read_hub(source: str, split: str) -> Iterator[Row]:
    import datasets

    try:
        data = datasets.load_dataset(source, split=split)
    except Exception as err:  # noqa: BLE001 - network, auth, unknown id, unknown split: one line, not a traceback
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PoolError(
            f"{source}: cannot load this Hugging Face dataset (split '{split}'): {message}. Offline "
            "(HF_HUB_OFFLINE=1) only datasets already in the local cache load; a local path needs './' or '/'"
        ) from None
    yield from ((i, f"row {i}", record) for i, record in enumerate(data))
