"""Word lists: the shipped term and name lists plus a policy's additions, removals and files.

Lists are data, not code: they ship as package data under `policies/lists/` so an installed wheel
carries them, they are parsed once per process, and the resolved content has a hash that feeds the
policy hash, so an audit record always says which lists judged a prompt.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from moderation.normalise import fold
from moderation.taxonomy import OPENAI_CATEGORIES, Category

# Term lists: one per OpenAI category. Name lists carry aliases instead of weights.
TERM_LISTS: tuple[str, ...] = tuple(c.value for c in OPENAI_CATEGORIES)
NAME_LISTS: tuple[str, ...] = ("public-figures", "living-artists", "dead-artists")
AUX_TERM_LISTS: tuple[str, ...] = ("allow", "minors")
LIST_NAMES: tuple[str, ...] = TERM_LISTS + AUX_TERM_LISTS + NAME_LISTS
# Lists that guard the hard block: a policy may add to them but never take anything away.
PROTECTED: frozenset[str] = frozenset({Category.SEXUAL_MINORS.value, "minors"})

_FILE_NAMES: dict[str, str] = {
    **{name: name.replace("/", "__") + ".txt" for name in TERM_LISTS + AUX_TERM_LISTS},
    "public-figures": "public_figures.txt",
    "living-artists": "living_artists.txt",
    "dead-artists": "dead_artists.txt",
}


class ListError(ValueError):
    """A word list or a policy's list edit that cannot be used."""


@dataclass(frozen=True, slots=True)
class Term:
    """One list entry. For name lists `text` is the canonical name and `aliases` its other spellings."""

    text: str
    weight: float = 1.0
    source: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Identity for de-duplication and removal: two spellings that fold alike are one term."""
        return _folded(self.text)


@lru_cache(maxsize=16384)
def _folded(text: str) -> str:
    return fold(text)


def file_name(name: str) -> str:
    """The shipped file that holds list `name` (e.g. `sexual/minors` -> `sexual__minors.txt`)."""
    return _FILE_NAMES[canonical_name(name)]


def canonical_name(name: str) -> str:
    """Accept a list name as spelt in policies (`sexual/minors`) or as its file stem (`sexual__minors`)."""
    if not isinstance(name, str):
        raise ListError(f"list name must be a string, got {type(name).__name__}")
    cleaned = name.strip().lower().replace("__", "/")
    cleaned = {"public_figures": "public-figures", "living_artists": "living-artists"}.get(cleaned, cleaned)
    cleaned = {"dead_artists": "dead-artists"}.get(cleaned, cleaned)
    if cleaned not in _FILE_NAMES:
        raise ListError(f"unknown list {name!r}; lists: {', '.join(LIST_NAMES)}")
    return cleaned


def _parse_weight(raw: str, where: str) -> float:
    try:
        weight = float(raw)
    except ValueError:
        raise ListError(f"{where}: weight {raw.strip()!r} is not a number") from None
    if not math.isfinite(weight) or not 0.0 < weight <= 1.0:
        raise ListError(f"{where}: weight {weight} must be in (0, 1]")
    return weight


def parse_entry(line: str, *, list_name: str, where: str) -> Term | None:
    """One line of a list file (or one policy `add` item); None for blanks and comments."""
    text = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
    if not text:
        return None
    parts = [p.strip() for p in text.split("|")]
    head = " ".join(parts[0].split())
    if not head:
        raise ListError(f"{where}: entry has no text before '|'")
    if list_name in NAME_LISTS:
        aliases = tuple(" ".join(p.split()) for p in parts[1:])
        if any(not a for a in aliases):
            raise ListError(f"{where}: empty alias")
        return Term(text=head, weight=1.0, source=where, aliases=aliases)
    if len(parts) > 2:
        raise ListError(f"{where}: expected 'term' or 'term | weight', got {len(parts) - 1} '|' separators")
    weight = _parse_weight(parts[1], where) if len(parts) == 2 else 1.0
    if not _folded(head).strip():
        raise ListError(f"{where}: term {head!r} is empty after normalisation")
    return Term(text=head, weight=weight, source=where)


def parse_text(text: str, *, list_name: str, origin: str) -> tuple[Term, ...]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        term = parse_entry(line, list_name=list_name, where=f"{origin}:{lineno}")
        if term is not None:
            out.append(term)
    return tuple(out)


@cache
def _shipped() -> dict[str, tuple[Term, ...]]:
    """Parse every shipped list once per process."""
    folder = resources.files("policies").joinpath("lists")
    lists: dict[str, tuple[Term, ...]] = {}
    for name in LIST_NAMES:
        fname = _FILE_NAMES[name]
        try:
            text = folder.joinpath(fname).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ListError(f"shipped list {fname} cannot be read: {exc}") from None
        lists[name] = parse_text(text, list_name=name, origin=f"policies/lists/{fname}")
    return lists


def _merge_terms(terms: Sequence[Term]) -> tuple[Term, ...]:
    """De-duplicate by folded text, keeping the first spelling and the highest weight.

    Keeping the maximum means an `add` can never quietly weaken a shipped term; to lower a weight,
    remove the term and add it back.
    """
    by_key: dict[str, Term] = {}
    for term in terms:
        seen = by_key.get(term.key)
        if seen is None:
            by_key[term.key] = term
        elif term.weight > seen.weight or (term.aliases and term.aliases != seen.aliases):
            merged_aliases = tuple(dict.fromkeys(seen.aliases + term.aliases))
            by_key[term.key] = Term(seen.text, max(seen.weight, term.weight), seen.source, merged_aliases)
    return tuple(by_key.values())


class WordLists(Mapping[str, tuple[Term, ...]]):
    """Resolved lists by name; `sha256` covers exactly what the classifiers will match."""

    def __init__(self, lists: Mapping[str, Sequence[Term]]) -> None:
        self._lists: dict[str, tuple[Term, ...]] = {name: tuple(lists.get(name, ())) for name in LIST_NAMES}

    def __getitem__(self, name: str) -> tuple[Term, ...]:
        try:
            return self._lists[canonical_name(name)]
        except ListError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)

    def __hash__(self) -> int:
        return hash(self.sha256)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordLists) and other.sha256 == self.sha256

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self._lists.items())
        return f"WordLists({sizes}, sha256={self.sha256[:12]})"

    @property
    def sha256(self) -> str:
        cached = self.__dict__.get("_sha256")
        if cached is None:
            body = {
                name: [[t.text, t.weight, list(t.aliases)] for t in sorted(terms, key=lambda t: t.key)]
                for name, terms in self._lists.items()
            }
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            cached = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
            self.__dict__["_sha256"] = cached
        return cached


_EMPTY: Mapping[str, Sequence[str]] = {}
_NO_FILES: Mapping[str, Path] = {}


def _read_file(name: str, path: Path) -> tuple[Term, ...]:
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise ListError(f"list file for {name!r} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ListError(f"list file for {name!r} cannot be read: {path}: {exc}") from None
    return parse_text(text, list_name=name, origin=str(path))


def _as_items(name: str, items: object, what: str) -> list[str]:
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise ListError(f"lists.{what}.{name} must be a list of strings")
    for item in items:
        if not isinstance(item, str):
            raise ListError(f"lists.{what}.{name}: {item!r} is not a string")
    return list(items)


def load_lists(
    *,
    add: Mapping[str, Sequence[str]] = _EMPTY,
    remove: Mapping[str, Sequence[str]] = _EMPTY,
    files: Mapping[str, Path] = _NO_FILES,
) -> WordLists:
    """The shipped lists, then `files` (appended), then `remove`, then `add`.

    Removing from `sexual/minors` or `minors` is refused: those lists guard the hard block.
    Removing a term that is not in the list is an error too, so a typo cannot pass for a change.
    """
    if not add and not remove and not files:
        return shipped_lists()
    resolved: dict[str, list[Term]] = {name: list(terms) for name, terms in _shipped().items()}
    for raw_name, path in files.items():
        name = canonical_name(raw_name)
        resolved[name].extend(_read_file(name, Path(path)))
    for raw_name, items in remove.items():
        name = canonical_name(raw_name)
        values = _as_items(raw_name, items, "remove")
        if name in PROTECTED and values:
            raise ListError(f"lists.remove.{raw_name}: the {name!r} list guards a hard block; nothing may be removed")
        keys = {_folded(" ".join(v.split("|", 1)[0].split())): v for v in values}
        present = {t.key for t in resolved[name]}
        missing = [v for k, v in keys.items() if k not in present]
        if missing:
            raise ListError(f"lists.remove.{raw_name}: not in the list: {', '.join(map(repr, missing))}")
        resolved[name] = [t for t in resolved[name] if t.key not in keys]
    for raw_name, items in add.items():
        name = canonical_name(raw_name)
        for i, item in enumerate(_as_items(raw_name, items, "add")):
            term = parse_entry(item, list_name=name, where=f"lists.add.{raw_name}[{i}]")
            if term is None:
                raise ListError(f"lists.add.{raw_name}[{i}]: empty term")
            resolved[name].append(term)
    return WordLists({name: _merge_terms(terms) for name, terms in resolved.items()})


def shipped_lists() -> WordLists:
    """The shipped lists with no edits (parsed once per process)."""
    return _shipped_word_lists()


@cache
def _shipped_word_lists() -> WordLists:
    return WordLists({name: _merge_terms(terms) for name, terms in _shipped().items()})
