"""Typed, validated per-host settings read from inventory vars (the vars provision itself uses).

Validated for every selected host before any connection: a bad value is bad input (exit 4).
Unknown vars are ignored (an inventory holds many vars for other tools).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from provision.config.connection import refuse_vaulted, setting_error
from provision.config.image_ref import check_image_reference

# Debian package versions ([epoch:]upstream[-revision]); nothing a shell would read specially.
_DEB_VERSION = re.compile(r"(?:\d+:)?[0-9][A-Za-z0-9.+~-]*")
_DRIVER_BRANCH = re.compile(r"[0-9]{3,4}")
_AGE = re.compile(r"([0-9]+)\s*([smhd]?)")
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _age_seconds(value: Any, what: str) -> Any:
    """An age in seconds: a whole number (seconds) or text like `90s`, `30m`, `12h`, `1d`."""
    if isinstance(value, bool):
        raise ValueError(f"invalid {what} {value!r} (seconds, or a number with s, m, h or d: 3600, 12h, 1d; 0: every run)")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid {what} {value!r} (must be 0 or more)")
        return value
    match = _AGE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"invalid {what} {value!r} (seconds, or a number with s, m, h or d: 3600, 12h, 1d; 0: every run)")
    return int(match.group(1)) * _AGE_UNITS[match.group(2)]


def _number_as_text(value: Any) -> Any:
    """YAML/INI numbers (``27``, ``27.3``) as the text they were written as; other types as they are."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _deb_version(value: str | None, what: str) -> str | None:
    if value is not None and not _DEB_VERSION.fullmatch(value):
        raise ValueError(f"invalid {what} {value!r} (a package version such as 27.3.1 or 5:27.3.1-1~debian.12~bookworm)")
    return value


class DockerSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

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
    docker_repo_key_max_age: int = 86400  # seconds between downloads of the repository key (0: every run)
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None
    verify_hello_image: str = "hello-world"

    @field_validator("docker_repo_key_max_age", mode="before")
    @classmethod
    def _key_max_age(cls, value):
        return _age_seconds(value, "docker_repo_key_max_age")

    @field_validator("docker_version", mode="before")
    @classmethod
    def _version_as_text(cls, value):
        return _number_as_text(value)

    @field_validator("docker_version")
    @classmethod
    def _version(cls, value):
        return _deb_version(value, "docker_version")

    @field_validator("verify_hello_image")
    @classmethod
    def _image(cls, value):
        return check_image_reference(value)

    @property
    def proxy(self) -> dict[str, str]:
        return {k: v for k, v in (("http_proxy", self.http_proxy), ("https_proxy", self.https_proxy),
                                  ("no_proxy", self.no_proxy)) if v}


def validated_settings(model, host: str, hostvars: dict):
    """The model from a host's vars; the first problem as one line naming the file and line where
    the var was set, the host and the var (exit 4)."""
    refuse_vaulted(host, hostvars, model.model_fields)
    try:
        return model.model_validate(dict(hostvars))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        got = repr(first.get("input"))
        got = "" if first["type"] == "value_error" else f" (got {got if len(got) <= 80 else got[:77] + '...'})"
        raise setting_error(host, hostvars, first["loc"][0] if first["loc"] else None,
                            f"{path}: {message}{got}") from None


def docker_settings(host: str, hostvars: dict) -> DockerSettings:
    return validated_settings(DockerSettings, host, hostvars)


class NvidiaSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    gpu: bool | None = None  # force a host to count as a GPU host (or not)
    nvidia_driver_branch: str = "580"
    nvidia_open_modules: bool | None = None  # None: open for Turing and newer (the default from R560)
    nvidia_toolkit_version: str | None = None
    nvidia_default_runtime: bool = False
    nvidia_repo_url: str | None = None  # base of the libnvidia-container repo (mirrors, air-gapped sites)
    verify_gpu_image: str = "nvidia/cuda:12.4.1-base-ubuntu22.04"
    # The CUDA workload of `provision verify` (vectorAdd). NVIDIA's public cuda-sample image on NGC; this tag is
    # the newest the NGC catalog lists (NVIDIA/cuda-samples#384, "vectoradd-cuda12.5.0-ubi8" as the latest tag;
    # NVIDIA/cloud-native-docs#97 moved NVIDIA's GPU Operator docs to it). Its NVIDIA_REQUIRE_CUDA asks for
    # CUDA 12.5, or a datacenter driver branch it lists: hosts with older drivers set an older tag.
    verify_cuda_image: str = "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubi8"
    verify_dcgm_image: str | None = None  # `--deep` without dcgmi on the host: NVIDIA's DCGM container to run it in
    reboot_timeout: int = Field(600, ge=10)
    apt_lock_timeout: int = Field(600, ge=0)
    apt_timeout: int = Field(1800, ge=10)  # one apt step (download + dpkg) as a whole
    nvidia_repo_key_max_age: int = 86400  # seconds between downloads of the toolkit's key and list (0: every run)
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None

    @field_validator("nvidia_repo_key_max_age", mode="before")
    @classmethod
    def _key_max_age(cls, value):
        return _age_seconds(value, "nvidia_repo_key_max_age")

    @field_validator("nvidia_driver_branch", "nvidia_toolkit_version", mode="before")
    @classmethod
    def _as_text(cls, value):
        return _number_as_text(value)

    @field_validator("nvidia_driver_branch")
    @classmethod
    def _branch(cls, value):
        if not _DRIVER_BRANCH.fullmatch(value):
            raise ValueError(f"invalid nvidia_driver_branch {value!r} (a driver branch number such as 580 or 550)")
        return value

    @field_validator("nvidia_toolkit_version")
    @classmethod
    def _toolkit_version(cls, value):
        return _deb_version(value, "nvidia_toolkit_version")

    @field_validator("verify_gpu_image", "verify_cuda_image")
    @classmethod
    def _image(cls, value):
        return check_image_reference(value)

    @field_validator("verify_dcgm_image")
    @classmethod
    def _optional_image(cls, value):
        return None if value is None else check_image_reference(value)

    @property
    def proxy(self) -> dict[str, str]:
        return {k: v for k, v in (("http_proxy", self.http_proxy), ("https_proxy", self.https_proxy),
                                  ("no_proxy", self.no_proxy)) if v}


def nvidia_settings(host: str, hostvars: dict) -> NvidiaSettings:
    return validated_settings(NvidiaSettings, host, hostvars)


class SwarmSettings(BaseModel):
    """The vars `provision swarm init` reads (roles also come from the swarm_managers/swarm_workers groups)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    swarm_role: Literal["manager", "worker"] | None = None
    swarm_advertise_addr: str | None = None
    gpu: bool | None = None  # true/false forces a node to count as a GPU node (or not)


def swarm_settings(host: str, hostvars: dict) -> SwarmSettings:
    return validated_settings(SwarmSettings, host, hostvars)
