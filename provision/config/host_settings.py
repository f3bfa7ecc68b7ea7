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


def docker_settings(host: str, hostvars: dict) -> DockerSettings:
    try:
        return DockerSettings.model_validate(hostvars)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise InventoryError(f"host '{host}': {path}: {first['msg']} (got {first.get('input')!r})") from None
