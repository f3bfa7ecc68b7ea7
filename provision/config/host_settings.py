"""Typed, validated per-host settings read from inventory vars (the vars provision itself uses).

Validated for every selected host before any connection: a bad value is bad input (exit 4).
Unknown vars are ignored (an inventory holds many vars for other tools).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from provision.errors import InventoryError


class DockerSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    docker_repo_url: str | None = None
    docker_gpg_url: str | None = None
    docker_version: str | None = None
    docker_hold: bool = False
    docker_daemon: dict[str, Any] = Field(default_factory=dict)
    docker_daemon_defaults: bool = True
    docker_users: list[str] = Field(default_factory=list)
    apt_lock_timeout: int = Field(600, ge=0)
    apt_timeout: int = Field(1800, ge=10)  # one apt step (download + dpkg) as a whole
    cloud_init_timeout: int = Field(900, ge=0)
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None
    verify_hello_image: str = "hello-world"

    @field_validator("docker_version", mode="before")
    @classmethod
    def _version_as_text(cls, value):
        return None if value is None else str(value)

    @property
    def proxy(self) -> dict[str, str]:
        return {k: v for k, v in (("http_proxy", self.http_proxy), ("https_proxy", self.https_proxy),
                                  ("no_proxy", self.no_proxy)) if v}


def _validated(model, host: str, hostvars: dict):
    """The model from a host's vars; the first problem as one line naming host and var (exit 4)."""
    try:
        return model.model_validate(hostvars)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise InventoryError(f"host '{host}': {path}: {first['msg']} (got {first.get('input')!r})") from None


def docker_settings(host: str, hostvars: dict) -> DockerSettings:
    return _validated(DockerSettings, host, hostvars)


class NvidiaSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    gpu: bool | None = None  # force a host to count as a GPU host (or not)
    nvidia_driver_branch: str = "580"
    nvidia_open_modules: bool | None = None  # None: open for Turing and newer (the default from R560)
    nvidia_toolkit_version: str | None = None
    nvidia_default_runtime: bool = False
    nvidia_repo_url: str | None = None  # base of the libnvidia-container repo (mirrors, air-gapped sites)
    verify_gpu_image: str = "nvidia/cuda:12.4.1-base-ubuntu22.04"
    reboot_timeout: int = Field(600, ge=10)
    apt_lock_timeout: int = Field(600, ge=0)
    apt_timeout: int = Field(1800, ge=10)  # one apt step (download + dpkg) as a whole
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None

    @field_validator("nvidia_driver_branch", "nvidia_toolkit_version", mode="before")
    @classmethod
    def _as_text(cls, value):
        return None if value is None else str(value)

    @property
    def proxy(self) -> dict[str, str]:
        return {k: v for k, v in (("http_proxy", self.http_proxy), ("https_proxy", self.https_proxy),
                                  ("no_proxy", self.no_proxy)) if v}


def nvidia_settings(host: str, hostvars: dict) -> NvidiaSettings:
    return _validated(NvidiaSettings, host, hostvars)
