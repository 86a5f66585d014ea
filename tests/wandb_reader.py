"""Read an offline W&B run from its files, for tests (wandb has no reader API for them).

A run's ``run-<id>.wandb`` file is wandb's "LevelDB log" datastore, the format of
wandb/sdk/internal/datastore.py in older releases (0.31 has no Python datastore; wandb-core,
in Go, writes the same bytes, and every chunk's checksum is checked on read):

- a 7-byte file header ``<4sHB`` = (b":W&B", 0xBEE1, 0);
- then 32 KiB blocks (counted from the start of the file) of chunks, each a 7-byte header
  ``<IHB`` = (checksum, length, type) and `length` bytes; a chunk never crosses a block,
  and a block's last < 7 bytes are zeros;
- type FULL=1 holds a whole record; FIRST=2, MIDDLE=3..., LAST=4 hold its pieces;
- the checksum is zlib's CRC-32 of the data seeded with the CRC-32 of the type byte
  (not LevelDB's CRC-32C);
- each record is a serialized ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from wandb.proto import wandb_internal_pb2 as pb

__all__ = ["Artifact", "CorruptRunFile", "Image", "OfflineRun", "offline_run", "records"]

BLOCK = 32 * 1024
HEADER = struct.Struct("<IHB")  # checksum, length, type
FILE_HEADER = struct.Struct("<4sHB")  # ident, magic, version
IDENT, MAGIC, VERSION = b":W&B", 0xBEE1, 0
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}


class CorruptRunFile(ValueError):
    pass


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each chunk after the file header."""
    if len(data) < FILE_HEADER.size or FILE_HEADER.unpack_from(data) != (IDENT, MAGIC, VERSION):
        raise CorruptRunFile(f"not a W&B datastore: header {data[:FILE_HEADER.size]!r}")
    position = FILE_HEADER.size
    while position < len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < HEADER.size:  # block trailer
            if any(data[position : position + left_in_block]):
                raise CorruptRunFile(f"block trailer at byte {position} is not zeros")
            position += left_in_block
            continue
        if position + HEADER.size > len(data):
            raise CorruptRunFile(f"truncated chunk header at byte {position}")
        checksum, length, kind = HEADER.unpack_from(data, position)
        start = position + HEADER.size
        payload = data[start : start + length]
        if len(payload) != length or length > left_in_block - HEADER.size:
            raise CorruptRunFile(f"chunk of {length} bytes at byte {position} overruns its block or the file")
        if kind not in _TYPE_CRC or zlib.crc32(payload, _TYPE_CRC[kind]) != checksum:
            raise CorruptRunFile(f"bad checksum or type {kind} at byte {position}")
        yield kind, payload
        position = start + length


def records(path: str | Path) -> Iterator[pb.Record]:
    """Every Record of a ``run-*.wandb`` file, in order."""
    pieces: list[bytes] | None = None
    for kind, payload in _chunks(Path(path).read_bytes()):
        if kind == FULL:
            if pieces is not None:
                raise CorruptRunFile("FULL chunk inside a FIRST..LAST sequence")
            whole = payload
        elif kind == FIRST:
            if pieces is not None:
                raise CorruptRunFile("FIRST chunk inside a FIRST..LAST sequence")
            pieces = [payload]
            continue
        else:
            if pieces is None:
                raise CorruptRunFile(f"chunk type {kind} without a FIRST")
            pieces.append(payload)
            if kind == MIDDLE:
                continue
            whole, pieces = b"".join(pieces), None
        record = pb.Record()
        record.ParseFromString(whole)
        yield record
    if pieces is not None:
        raise CorruptRunFile("file ends inside a FIRST..LAST sequence")


def _item_path(item: Any) -> list[str]:
    """An item's key as a path: wandb writes a metric as nested_key ["val/psnr"] and a
    logged dict (an image's description) as one item per leaf, ["samples", "_type"]."""
    return [item.key] if item.key else list(item.nested_key)


def _item_value(item: pb.HistoryItem | pb.ConfigItem) -> Any:
    """An item's value: JSON in value_json, or (newer HistoryItems) one typed field."""
    if item.value_json:
        return json.loads(item.value_json)
    which = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if which in (None, "none"):
        return None
    value = getattr(item, which)
    return json.loads(value) if which == "json" else value


def _set_nested(target: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


@dataclass
class OfflineRun:
    """What an offline run holds: its folder, Run record fields, config and history."""

    folder: Path
    run_id: str = ""
    project: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    def values(self, key: str) -> list[Any]:
        """The values `key` took in the history, in order (rows without it skipped)."""
        return [row[key] for row in self.history if key in row]

    def images(self) -> list[Image]:
        """Every image in the history, in order. wandb writes one ``wandb.Image`` as
        ``{"_type": "image-file", "path": ...}`` and a list of them (what Lightning's
        ``log_image`` sends) as ``{"_type": "images/separated", "filenames": [...]}``."""
        found = []
        for row in self.history:
            for key, value in row.items():
                if not isinstance(value, dict):
                    continue
                kind = value.get("_type")
                if kind == "image-file":
                    paths, captions = [value["path"]], [value.get("caption")]
                elif kind == "images/separated":
                    paths = value.get("filenames", [])
                    captions = value.get("captions") or [None] * len(paths)
                else:
                    continue
                for path, caption in zip(paths, captions):
                    found.append(Image(key, self.folder / "files" / path, caption, row.get("trainer/global_step")))
        return found


@dataclass
class Artifact:
    """An artifact the run logged (an offline run keeps it for `wandb sync`): name, type,
    aliases, metadata and its files (path in the artifact -> size in bytes)."""

    name: str
    type: str
    aliases: list[str]
    metadata: dict[str, Any]
    files: dict[str, int]


@dataclass
class Image:
    """An image of the history: its key, its file under ``files/media/images/``, its caption
    and the Lightning step it was logged at."""

    key: str
    file: Path
    caption: str | None
    step: int | None


def offline_run(folder: str | Path) -> OfflineRun:
    """Read ``offline-run-*/`` (or the one under ``<run folder>/wandb/``)."""
    folder = Path(folder)
    if not list(folder.glob("run-*.wandb")):
        [folder] = sorted((folder / "wandb").glob("offline-run-*"))
    [path] = sorted(folder.glob("run-*.wandb"))
    run = OfflineRun(folder)
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.project, run.group, run.name = r.run_id, r.project, r.run_group, r.display_name
            run.tags = list(r.tags)
            for item in r.config.update:
                _set_nested(run.config, _item_path(item), _item_value(item))
        elif kind == "config":
            for item in record.config.update:
                _set_nested(run.config, _item_path(item), _item_value(item))
            for item in record.config.remove:
                path = _item_path(item)
                parent = run.config
                for key in path[:-1]:
                    parent = parent.get(key, {})
                parent.pop(path[-1], None)
        elif kind == "artifact":
            a = record.artifact
            run.artifacts.append(Artifact(
                a.name, a.type, list(a.aliases), json.loads(a.metadata) if a.metadata else {},
                {entry.path: entry.size for entry in a.manifest.contents},
            ))
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _set_nested(row, _item_path(item), _item_value(item))
            run.history.append(row)
    return run
