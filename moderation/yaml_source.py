"""YAML loading that remembers where every value came from.

Policies are edited by hand, so every error must point at `file:line:col`. PyYAML's composed
node tree carries marks; we turn it into plain Python values plus a path → position map.
Duplicate keys are an error (PyYAML silently keeps the last one, which can hide a weakening).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class SourceDoc:
    data: Any
    file: str
    positions: dict[Loc, Position] = field(default_factory=dict)

    def position(self, loc: Loc) -> Position | None:
        """The position of the deepest prefix of `loc` that exists in this document."""
        for n in range(len(loc), -1, -1):
            pos = self.positions.get(tuple(loc[:n]))
            if pos is not None:
                return pos
        return None


class YamlSourceError(ValueError):
    def __init__(self, position: Position | str, message: str) -> None:
        super().__init__(f"{position}: {message}")
        self.position = position
        self.detail = message


def _pos(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, file: str, loc: Loc, positions: dict[Loc, Position]) -> Any:
    positions[loc] = _pos(file, node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlSourceError(_pos(file, key_node), "YAML merge keys ('<<') are not supported in policies")
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError(_pos(file, key_node), "mapping keys must be plain scalars")
            key = _scalar(key_node)
            if key is None:
                raise YamlSourceError(_pos(file, key_node), "empty mapping key")
            key = str(key)
            if key in out:
                raise YamlSourceError(_pos(file, key_node), f"duplicate key {key!r}")
            out[key] = _convert(value_node, file, (*loc, key), positions)
            positions[(*loc, key)] = _pos(file, key_node)  # errors about a key point at the key
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, file, (*loc, i), positions) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml(text: str, file: str) -> SourceDoc:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(file, mark.line + 1, mark.column + 1) if mark else file
        raise YamlSourceError(where, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(file, f"invalid YAML: {exc}") from None
    positions: dict[Loc, Position] = {}
    data = {} if node is None else _convert(node, file, (), positions)
    return SourceDoc(data=data, file=file, positions=positions)


def load_yaml_file(path: Path) -> SourceDoc:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlSourceError(str(path), f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSourceError(str(path), f"not valid UTF-8 (byte {exc.start})") from None
    return load_yaml(text, str(path))
