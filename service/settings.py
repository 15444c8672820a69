"""Sidecar settings: defaults < config file (YAML) < `FLUXWARDEN_*` environment < explicit values.

One `Settings` object describes a whole deployment (bind address, policies per tenant, hashed API
keys, limits), so the app factory can be handed one in tests and the CLI can build one from the
environment in every uvicorn worker process.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

CONFIG_ENV = "FLUXWARDEN_CONFIG"
TINY_MODEL = "tiny"
NO_MODEL = "none"
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ApiKey(BaseModel):
    """One API key, stored only as the SHA-256 of the key (keys are long random tokens, not passwords)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, description="Names the key in logs and audit events.")
    sha256: str = Field(description="Hex SHA-256 of the key; make one with `fluxwarden serve-key`.")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("sha256:")
        if not _HEX64.match(value):
            raise ValueError("must be the 64-character hex SHA-256 of the key")
        return value


class Tenant(BaseModel):
    """A team: its keys and the policy its requests are checked against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str | None = Field(default=None, description="Preset or policy file; the service policy if unset.")
    keys: list[ApiKey] = Field(default_factory=list, description="Keys that authenticate as this tenant.")


def parse_size(value: str) -> tuple[int, int]:
    """'1024x768' -> (width, height); raises ValueError with the expected form."""
    match = _SIZE.match(value.strip())
    if match is None:
        raise ValueError(f"size must look like 1024x1024 (WIDTHxHEIGHT), got {value!r}")
    return int(match.group(1)), int(match.group(2))


class Settings(BaseSettings):
    """Everything the sidecar needs; every field can be set as FLUXWARDEN_<NAME> or in the config file."""

    model_config = SettingsConfigDict(env_prefix="FLUXWARDEN_", extra="forbid", env_nested_delimiter="__")

    config: Path | None = Field(default=None, description="YAML config file (also FLUXWARDEN_CONFIG).")
    host: str = Field(default="127.0.0.1", description="Bind address; non-loopback needs API keys.")
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes (each loads the models).")
    policy: str = Field(default="default", description="Policy for requests without a tenant-specific one.")
    model: str = Field(
        default=TINY_MODEL,
        description="Local diffusers folder of a FLUX pipeline, 'tiny' (random weights, images are noise) or 'none'.",
    )
    device: str = Field(default="cpu", description="Device of the generator: cpu or cuda[:N].")
    torch_dtype: str | None = Field(default=None, description="bfloat16, float16 or float32 for the generator.")
    audit_dir: Path | None = Field(default=None, description="Write an audit event per decision here.")
    tenants: dict[str, Tenant] = Field(default_factory=dict, description="Tenant name -> policy and hashed keys.")

    max_body_bytes: int = Field(default=30_000_000, ge=1024, description="Larger request bodies get 413.")
    max_prompt_chars: int = Field(default=4000, ge=1, description="Cap on top of the policy's max_prompt_chars.")
    max_inputs: int = Field(default=64, ge=1, description="Most inputs in one /v1/moderations request.")
    max_n: int = Field(default=4, ge=1, le=16, description="Most images per generation request.")
    max_image_pixels: int = Field(default=2_097_152, ge=256, description="Largest width×height generated.")
    default_size: str = Field(default="1024x1024", description="Size used for size=auto or no size.")
    default_steps: int | None = Field(default=None, ge=1, description="Denoising steps if unset (tiny: 2, else 28).")
    max_steps: int = Field(default=100, ge=1, description="Most denoising steps a request may ask for.")
    generation_queue: int = Field(
        default=8, ge=0, description="Generation requests that may wait behind the running one; more get 429."
    )
    generation_timeout_s: float = Field(default=600.0, gt=0, description="Per generation request, queue included.")
    request_timeout_s: float = Field(default=30.0, gt=0, description="Per moderation request.")
    moderation_threads: int = Field(default=4, ge=1, le=64, description="Thread pool running the classifiers.")
    batch_window_ms: float = Field(default=2.0, ge=0, le=100, description="Micro-batching window for prompts.")
    batch_max_items: int = Field(default=32, ge=1, le=1024, description="Flush a prompt batch at this many.")
    batch_max_in_flight: int = Field(
        default=2, ge=1, le=64, description="Prompt batches running at once; later prompts wait and batch up."
    )
    access_log: bool = Field(default=False, description="uvicorn access log lines (metrics count requests anyway).")

    @field_validator("default_size")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value

    @model_validator(mode="after")
    def _unique_keys(self) -> Settings:
        seen: dict[str, str] = {}
        for name, tenant in self.tenants.items():
            for key in tenant.keys:
                if key.sha256 in seen:
                    raise ValueError(f"tenants: key {key.id!r} of {name!r} is also a key of {seen[key.sha256]!r}")
                seen[key.sha256] = name
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get(CONFIG_ENV)
        if config:
            path = Path(config)
            if not path.is_file():
                raise FileNotFoundError(f"{CONFIG_ENV}={config}: no such config file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    # --- derived ---------------------------------------------------------------------------
    @property
    def auth_enabled(self) -> bool:
        return any(t.keys for t in self.tenants.values())

    @property
    def tiny_model(self) -> bool:
        return self.model == TINY_MODEL

    @property
    def generation_enabled(self) -> bool:
        return self.model != NO_MODEL

    def steps_default(self) -> int:
        if self.default_steps is not None:
            return self.default_steps
        return 2 if self.tiny_model else 28

    def policy_refs(self) -> dict[str, str]:
        """Tenant name -> policy reference ('' is the tenant of unauthenticated requests)."""
        refs = {"": self.policy}
        for name, tenant in self.tenants.items():
            refs[name] = tenant.policy or self.policy
        return refs

    def resolve_policy(self, ref: str) -> str:
        """A relative policy path written in the config file is relative to that file."""
        is_path = "/" in ref or ref.endswith((".yaml", ".yml"))
        if self.config is not None and is_path and not Path(ref).is_absolute():
            return str(Path(self.config).parent / ref)
        return ref


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UnsafeBindError(RuntimeError):
    """Refusing to listen beyond this machine with no API keys configured."""


def check_bind(settings: Settings) -> list[str]:
    """Raise UnsafeBindError for an open non-loopback bind; return warnings for an open loopback one."""
    if settings.auth_enabled:
        return []
    if not is_loopback(settings.host):
        raise UnsafeBindError(
            f"refusing to listen on {settings.host} without API keys: anyone who can reach it could use it. "
            "Configure tenants with keys (see docs/service.md) or bind to 127.0.0.1."
        )
    return [f"no API keys configured: every request on {settings.host} is accepted (loopback only)"]


def settings_env(values: dict[str, Any]) -> dict[str, str]:
    """CLI overrides as FLUXWARDEN_* variables, so that every uvicorn worker process sees them."""
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        out[f"FLUXWARDEN_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
