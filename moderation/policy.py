"""The policy: pydantic models of the YAML that operators edit, and its loader.

All thresholds and actions live here, never in classifiers. Loading resolves `extends:`, checks
the result strictly (`extra="forbid"`), refuses anything that would lower the hard block, and
reports every problem as `file:line:col: field: message`. The resolved policy has a stable
SHA-256 that every decision carries, so an audit record names exactly what decided it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from moderation.taxonomy import HARD_BLOCK, HARD_BLOCK_MAX_THRESHOLD, Category, parse_category
from moderation.types import Action, Stage
from moderation.yaml_source import Loc, SourceDoc, YamlSourceError, load_yaml, load_yaml_file

PRESETS = ("strict", "default", "permissive")
_Score = Field(ge=0.0, le=1.0)


class LocatedError(ValueError):
    """A validation failure that knows the exact field path it concerns (for file:line:col)."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryRule(_Strict):
    """Thresholds per action for one category; the most severe action whose threshold is met wins."""

    flag: float | None = Field(default=None, ge=0.0, le=1.0, description="Score at or above which to flag.")
    blur: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Score at or above which to blur (image stage only)."
    )
    block: float | None = Field(default=None, ge=0.0, le=1.0, description="Score at or above which to block.")

    def triggered(self, score: float) -> tuple[Action, float] | None:
        """The most severe (action, threshold) this score meets, or None."""
        for action in (Action.BLOCK, Action.BLUR, Action.FLAG):
            threshold = getattr(self, action.value)
            if threshold is not None and score >= threshold:
                return action, threshold
        return None


class ClassifierSpec(_Strict):
    name: str = Field(description="Registered classifier name, e.g. lexicon, names, minors, embedding, nudenet.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword options passed to the classifier.")


def _category_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {parse_category(str(k)): v for k, v in value.items()}
    return value


class LanguageRule(_Strict):
    """What to do with a prompt written in a language the prompt classifiers were not built for."""

    supported: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = Field(
        default_factory=lambda: ["en"],
        min_length=1,
        description="ISO 639-1 codes of the languages the prompt classifiers cover (the shipped ones: en).",
    )
    other: Literal["allow", "flag", "block"] = Field(
        default="block",
        description="Action for a prompt the language classifier reads as none of them (needs the language "
        "classifier in prompt.classifiers): block fails closed, flag lets it through for review, allow unread.",
    )


class PromptStage(_Strict):
    timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="Per-classifier time limit per 64 prompts; over it fails closed."
    )
    classifiers: list[ClassifierSpec] = Field(default_factory=list, description="Prompt classifiers to run, in order.")
    categories: dict[Category, CategoryRule] = Field(
        default_factory=dict, description="Per-category thresholds; a category not listed is never acted on."
    )
    languages: LanguageRule = Field(
        default_factory=LanguageRule, description="Prompts in languages the classifiers do not read."
    )

    _keys = field_validator("categories", mode="before")(_category_keys)

    @model_validator(mode="after")
    def _no_blur_for_text(self) -> PromptStage:
        for category, rule in self.categories.items():
            if rule.blur is not None:
                raise ValueError(f"categories.{category}: 'blur' applies to images only; use flag or block")
        return self


class BlurSettings(_Strict):
    mode: Literal["regions", "full"] = Field(
        default="regions", description="Obscure only detected regions (falls back to full) or the whole image."
    )
    method: Literal["pixelate", "gaussian"] = Field(default="pixelate", description="How regions are obscured.")
    padding: float = Field(default=0.15, ge=0.0, le=1.0, description="Box padding as a fraction of box size.")


class ImageStage(_Strict):
    timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Per-classifier time limit per 8 images; over it fails closed."
    )
    classifiers: list[ClassifierSpec] = Field(default_factory=list, description="Image classifiers to run.")
    categories: dict[Category, CategoryRule] = Field(
        default_factory=dict, description="Per-category thresholds for generated or submitted images."
    )
    blur: BlurSettings = Field(default_factory=BlurSettings, description="How images with action blur are obscured.")
    blocked_output: Literal["black", "drop"] = Field(
        default="black", description="What a blocked image becomes: a black image (diffusers) or nothing."
    )
    max_bytes: int = Field(default=20_000_000, gt=0, description="Largest encoded image accepted.")
    max_pixels: int = Field(default=40_000_000, gt=0, description="Largest decoded image (width × height) accepted.")

    _keys = field_validator("categories", mode="before")(_category_keys)


class ListsSpec(_Strict):
    add: dict[str, list[str]] = Field(default_factory=dict, description="Terms to add, per list name.")
    remove: dict[str, list[str]] = Field(default_factory=dict, description="Shipped terms to remove, per list.")
    files: dict[str, str] = Field(
        default_factory=dict, description="Extra list files per list name, relative to the policy file."
    )


class AuditSpec(_Strict):
    store_inputs: Literal["none", "hash", "redacted", "full"] = Field(
        default="hash", description="How prompts appear in the audit log: not at all, salted hash, redacted, full."
    )
    store_images: Literal["hash", "phash", "full"] = Field(
        default="hash", description="How images appear: SHA-256, SHA-256 plus perceptual hash, or the pixels."
    )
    required: bool = Field(default=False, description="Refuse to run without an audit directory.")


class Policy(_Strict):
    """A resolved moderation policy."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$", description="Policy identifier.")
    version: str = Field(default="1", min_length=1, max_length=64, description="Operator-chosen version string.")
    description: str = Field(default="", description="Free text for humans.")
    extends: str | None = Field(default=None, description="Preset name or path (relative to this file) to inherit.")
    max_prompt_chars: int = Field(default=4000, ge=1, le=100_000, description="Longer prompts are refused.")
    on_error: Literal["block"] = Field(
        default="block", description="A classifier that fails or times out blocks the request (fail closed)."
    )
    trust_prompt_embeds: bool = Field(
        default=False, description="Allow callers to pass precomputed prompt embeddings (bypasses text checks)."
    )
    prompt: PromptStage = Field(default_factory=PromptStage, description="Checks before generation.")
    image: ImageStage = Field(default_factory=ImageStage, description="Checks after generation.")
    lists: ListsSpec = Field(default_factory=ListsSpec, description="Word-list edits on top of the shipped lists.")
    audit: AuditSpec = Field(default_factory=AuditSpec, description="What the audit log may keep.")

    _source: str = PrivateAttr(default="<memory>")
    _base_dir: Path | None = PrivateAttr(default=None)

    @field_validator("prompt", "image", mode="after")
    @classmethod
    def _known_classifiers(cls, stage_cfg: PromptStage | ImageStage, info: Any) -> PromptStage | ImageStage:
        from classifiers import registry

        stage = Stage.PROMPT if info.field_name == "prompt" else Stage.IMAGE
        known = registry.names(stage)
        for spec in stage_cfg.classifiers:
            if spec.name not in known:
                raise ValueError(f"unknown {stage.value} classifier {spec.name!r}; known: {', '.join(known)}")
        return stage_cfg

    @model_validator(mode="after")
    def _hard_block_holds(self) -> Policy:
        for stage_name, stage_cfg in (("prompt", self.prompt), ("image", self.image)):
            for category in HARD_BLOCK:
                rule = stage_cfg.categories.get(category)
                loc: Loc = (stage_name, "categories", category.value)
                if rule is None:
                    if stage_name == "prompt":
                        raise LocatedError(
                            loc[:2],
                            f"{category} is a hard block and must be present with block <= {HARD_BLOCK_MAX_THRESHOLD}",
                        )
                    continue
                if rule.block is None or rule.block > HARD_BLOCK_MAX_THRESHOLD:
                    raise LocatedError(
                        loc,
                        f"{category} is a hard block: its block threshold must be set and <= "
                        f"{HARD_BLOCK_MAX_THRESHOLD} (got {rule.block})",
                    )
        return self

    @model_validator(mode="after")
    def _language_rule_has_its_classifier(self) -> Policy:
        # A policy that states a language rule (or inherits one) but runs no language classifier
        # would let every other-language prompt through unread while saying it blocks them.
        stage = self.prompt
        if (
            "languages" in stage.model_fields_set
            and stage.languages.other != "allow"
            and not any(spec.name == "language" for spec in stage.classifiers)
        ):
            raise LocatedError(
                ("prompt", "languages", "other"),
                f"languages.other is {stage.languages.other!r} but prompt.classifiers has no 'language' "
                "classifier to read the prompt's language; add {name: language} or set other: allow",
            )
        return self

    # --- derived -------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self._source

    def rules(self, stage: Stage) -> dict[Category, CategoryRule]:
        return self.prompt.categories if stage is Stage.PROMPT else self.image.categories

    def classifier_specs(self, stage: Stage) -> list[ClassifierSpec]:
        return self.prompt.classifiers if stage is Stage.PROMPT else self.image.classifiers

    @cached_property
    def word_lists(self) -> Any:
        """The shipped lists with this policy's additions, removals and files applied."""
        from moderation.lists import load_lists

        base = self._base_dir or Path.cwd()
        files = {name: (base / rel) for name, rel in self.lists.files.items()}
        return load_lists(add=self.lists.add, remove=self.lists.remove, files=files)

    @cached_property
    def sha256(self) -> str:
        body = self.model_dump(mode="json", exclude={"extends"})
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode())
        digest.update(self.word_lists.sha256.encode())
        return digest.hexdigest()


class PolicyError(ValueError):
    """A policy file that cannot be used; `problems` are `file:line:col: field: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --- loading -----------------------------------------------------------------------------


def _preset_text(name: str) -> str:
    return resources.files("policies").joinpath(f"{name}.yaml").read_text("utf-8")


def _merge(base: Any, child: Any, loc: Loc = ()) -> Any:
    """Mappings merge key by key; sequences replace, except word-list add/remove, which append.

    A category rule (`prompt.categories.sexual`) replaces the inherited rule whole, so that
    `sexual: {flag: 0.5}` in a child means exactly that and not "flag 0.5, plus the base's block".
    """
    is_rule = len(loc) == 3 and loc[1] == "categories"
    if isinstance(base, dict) and isinstance(child, dict) and not is_rule:
        out = dict(base)
        for key, value in child.items():
            out[key] = _merge(base[key], value, (*loc, key)) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(child, list)
        and len(loc) == 3
        and loc[:1] == ("lists",)
        and loc[1] in ("add", "remove")
    ):
        return base + [v for v in child if v not in base]
    return copy.deepcopy(child)


def _is_path_ref(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml"))


def _load_chain(doc: SourceDoc, base_dir: Path | None, seen: tuple[str, ...]) -> list[tuple[SourceDoc, Path | None]]:
    """This document and its ancestors, root first."""
    if not isinstance(doc.data, dict):
        raise PolicyError([f"{doc.position(()) or doc.file}: a policy must be a YAML mapping"])
    ref = doc.data.get("extends")
    if ref is None:
        return [(doc, base_dir)]
    if not isinstance(ref, str) or not ref.strip():
        raise PolicyError([f"{doc.position(('extends',))}: extends: must be a preset name or a path"])
    if _is_path_ref(ref):
        parent_path = ((base_dir or Path.cwd()) / ref).resolve()
        key = str(parent_path)
        if key in seen:
            raise PolicyError([f"{doc.position(('extends',))}: extends: cycle through {ref}"])
        try:
            parent = load_yaml_file(parent_path)
        except YamlSourceError as exc:
            raise PolicyError([str(exc)]) from None
        parent_dir: Path | None = parent_path.parent
    else:
        if ref not in PRESETS and ref != "no-agpl":
            raise PolicyError(
                [f"{doc.position(('extends',))}: extends: unknown preset {ref!r}; presets: {', '.join(PRESETS)}"]
            )
        key = f"preset:{ref}"
        if key in seen:
            raise PolicyError([f"{doc.position(('extends',))}: extends: cycle through preset {ref}"])
        parent = load_yaml(_preset_text(ref), f"<preset {ref}>")
        parent_dir = None
    return [*_load_chain(parent, parent_dir, (*seen, key)), (doc, base_dir)]


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<policy>"


def _problems(exc: ValidationError, chain: list[tuple[SourceDoc, Path | None]]) -> list[str]:
    """Blame the file that spells out the most of each failing field's path (the most derived on ties)."""
    out = []
    for err in exc.errors(include_url=False):
        located = (err.get("ctx") or {}).get("error")
        loc = tuple(located.loc) if isinstance(located, LocatedError) else tuple(err["loc"])
        position: Any = None
        best = -1
        for doc, _ in reversed(chain):
            for n in range(len(loc), 0, -1):
                if loc[:n] in doc.positions:
                    if n > best:
                        position, best = doc.positions[loc[:n]], n
                    break
        if position is None:
            position = chain[-1][0].position(()) or chain[-1][0].file
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (typo?)"
        out.append(f"{position}: {_format_loc(loc)}: {message}")
    return out


def _build(doc: SourceDoc, base_dir: Path | None) -> Policy:
    chain = _load_chain(doc, base_dir, ())
    merged: Any = {}
    for part, _ in chain:
        merged = _merge(merged, part.data)
    merged["extends"] = doc.data.get("extends")
    try:
        policy = Policy.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(_problems(exc, chain)) from None
    policy._source = doc.file
    policy._base_dir = base_dir
    try:
        _ = policy.sha256  # resolves word lists: a bad list file is a load error, not a later surprise
    except (ValueError, OSError) as exc:
        where = doc.position(("lists",)) or doc.file
        raise PolicyError([f"{where}: lists: {exc}"]) from None
    return policy


def load_policy(ref: str | Path) -> Policy:
    """Load a preset by name (`default`, `strict`, `permissive`, `no-agpl`) or a policy file by path."""
    if isinstance(ref, str) and not _is_path_ref(ref) and not Path(ref).exists():
        try:
            text = _preset_text(ref)
        except FileNotFoundError:
            raise PolicyError([f"{ref}: no such policy file or preset (presets: {', '.join(PRESETS)})"]) from None
        return _build(load_yaml(text, f"<preset {ref}>"), None)
    path = Path(ref)
    if not path.is_file():
        raise PolicyError([f"{path}: no such policy file"])
    try:
        doc = load_yaml_file(path)
    except YamlSourceError as exc:
        raise PolicyError([str(exc)]) from None
    return _build(doc, path.resolve().parent)


def load_policy_text(text: str, *, name: str = "<string>", base_dir: Path | None = None) -> Policy:
    """Load a policy from YAML text (tests, HTTP uploads)."""
    try:
        doc = load_yaml(text, name)
    except YamlSourceError as exc:
        raise PolicyError([str(exc)]) from None
    return _build(doc, base_dir)


def policy_json_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fluxwarden policy"
    return schema
