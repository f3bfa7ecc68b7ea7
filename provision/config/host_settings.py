"""Typed, validated per-host settings read from inventory vars (the vars provision itself uses).

Validated for every selected host before any connection: a bad value is bad input (exit 4).
Unknown vars are ignored (an inventory holds many vars for other tools).

The pydantic models (built on first use by ``_models()``) are the definition of what is valid and of every error
message. pydantic is imported only when a value needs them (issue 12: import + schema build cost ~0.1 s of CPU
per `provision docker install`): a value that already has its field's plain type and passes the field's own
check (the same functions the models' validators call) is taken as it is, which is what the model would return
for it (tests/unit/test_host_settings_fast.py compares both on many values); anything else, a conversion
(`"600"` → 600, `yes` → True) or an error, goes through the model.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Literal

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



def _driver_branch(value: str) -> str:
    if not _DRIVER_BRANCH.fullmatch(value):
        raise ValueError(f"invalid nvidia_driver_branch {value!r} (a driver branch number such as 580 or 550)")
    return value


# -- the fast path: a value already of its field's plain type, checked by the validators' own functions ------------
class _Slow(Exception):
    """This value needs the pydantic model (a conversion, or an error to word)."""


def _plain(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if type(value) is not kind or (kind is int and value is True):
            raise _Slow
        return value
    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _at_least(minimum: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if type(value) is not int or value < minimum:
            raise _Slow
        return value
    return check


def _checked(convert: Callable[[Any], Any], kind: type, after: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], Any]:
    """CONVERT (a model's mode="before" validator), then the type, then AFTER (its after-validator)."""
    def check(value: Any) -> Any:
        try:
            value = convert(value)
            if type(value) is not kind:
                raise _Slow
            return after(value)
        except ValueError:
            raise _Slow from None
    return check


def _str_dict(value: Any) -> dict:
    if not isinstance(value, dict) or any(type(k) is not str for k in value):
        raise _Slow
    return dict(value)


def _str_list(value: Any) -> list:
    if not isinstance(value, list) or any(type(v) is not str for v in value):
        raise _Slow
    return list(value)


_STR, _BOOL = _plain(str), _plain(bool)
_OPT_STR, _OPT_BOOL = _optional(_STR), _optional(_BOOL)
_IMAGE = _checked(lambda v: v, str, check_image_reference)


class _Settings:
    """Plain settings: FIELDS maps each var to (fast check, default factory); MODEL names its pydantic model."""

    FIELDS: dict[str, tuple[Callable[[Any], Any], Callable[[], Any]]] = {}
    MODEL = ""
    model_fields: dict[str, Any] = {}  # the var names, as pydantic models name them

    def __init_subclass__(cls) -> None:
        cls.model_fields = dict.fromkeys(cls.FIELDS)

    def __init__(self, **values: Any) -> None:
        """Validated as the model validates (pydantic's ValidationError for a bad value)."""
        try:
            self.__dict__.update(_fast(type(self), values))
        except _Slow:
            model = getattr(_models(), self.MODEL).model_validate(values)
            self.__dict__.update({name: getattr(model, name) for name in self.FIELDS})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    @property
    def proxy(self) -> dict[str, str]:
        values = self.__dict__
        return {k: values[k] for k in ("http_proxy", "https_proxy", "no_proxy") if values.get(k)}


def _fast(cls: type[_Settings], values: dict) -> dict[str, Any]:
    return {name: check(values[name]) if name in values else default() for name, (check, default) in cls.FIELDS.items()}


def _const(value: Any) -> Callable[[], Any]:
    return lambda: value


_PROXY_FIELDS = {"http_proxy": (_OPT_STR, _const(None)), "https_proxy": (_OPT_STR, _const(None)),
                 "no_proxy": (_OPT_STR, _const(None))}


class DockerSettings(_Settings):
    MODEL = "DockerModel"
    FIELDS = {
        "docker_repo_url": (_OPT_STR, _const(None)),
        "docker_gpg_url": (_OPT_STR, _const(None)),
        "docker_version": (_optional(_checked(_number_as_text, str, lambda v: _deb_version(v, "docker_version"))),
                           _const(None)),
        "docker_hold": (_BOOL, _const(False)),
        "docker_daemon": (_str_dict, dict),
        "docker_daemon_defaults": (_BOOL, _const(True)),
        "docker_users": (_str_list, list),
        "apt_lock_timeout": (_at_least(0), _const(600)),
        "apt_timeout": (_at_least(10), _const(1800)),  # one apt step (download + dpkg) as a whole
        "cloud_init_timeout": (_at_least(0), _const(900)),
        # seconds between downloads of the repository key (0: every run)
        "docker_repo_key_max_age": (_checked(lambda v: _age_seconds(v, "docker_repo_key_max_age"), int),
                                    _const(86400)),
        **_PROXY_FIELDS,
        "verify_hello_image": (_IMAGE, _const("hello-world")),
    }


class NvidiaSettings(_Settings):
    MODEL = "NvidiaModel"
    FIELDS = {
        "gpu": (_OPT_BOOL, _const(None)),  # force a host to count as a GPU host (or not)
        "nvidia_driver_branch": (_checked(_number_as_text, str, _driver_branch), _const("580")),
        # None: open for Turing and newer (the default from R560)
        "nvidia_open_modules": (_OPT_BOOL, _const(None)),
        "nvidia_toolkit_version": (_optional(_checked(_number_as_text, str,
                                                      lambda v: _deb_version(v, "nvidia_toolkit_version"))),
                                   _const(None)),
        "nvidia_default_runtime": (_BOOL, _const(False)),
        # base of the libnvidia-container repo (mirrors, air-gapped sites)
        "nvidia_repo_url": (_OPT_STR, _const(None)),
        "verify_gpu_image": (_IMAGE, _const("nvidia/cuda:12.4.1-base-ubuntu22.04")),
        # The CUDA workload of `provision verify` (vectorAdd). NVIDIA's public cuda-sample image on NGC; this tag is
        # the newest the NGC catalog lists (NVIDIA/cuda-samples#384, "vectoradd-cuda12.5.0-ubi8" as the latest tag;
        # NVIDIA/cloud-native-docs#97 moved NVIDIA's GPU Operator docs to it). Its NVIDIA_REQUIRE_CUDA asks for
        # CUDA 12.5, or a datacenter driver branch it lists: hosts with older drivers set an older tag.
        "verify_cuda_image": (_IMAGE, _const("nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubi8")),
        # `--deep` without dcgmi on the host: NVIDIA's DCGM container to run it in
        "verify_dcgm_image": (_optional(_IMAGE), _const(None)),
        "reboot_timeout": (_at_least(10), _const(600)),
        "apt_lock_timeout": (_at_least(0), _const(600)),
        "apt_timeout": (_at_least(10), _const(1800)),  # one apt step (download + dpkg) as a whole
        # seconds between downloads of the toolkit's key and list (0: every run)
        "nvidia_repo_key_max_age": (_checked(lambda v: _age_seconds(v, "nvidia_repo_key_max_age"), int),
                                    _const(86400)),
        **_PROXY_FIELDS,
    }


def _swarm_role(value: str) -> str:
    if value not in ("manager", "worker"):
        raise ValueError(value)  # the model words it
    return value


class SwarmSettings(_Settings):
    """The vars `provision swarm init` reads (roles also come from the swarm_managers/swarm_workers groups)."""

    MODEL = "SwarmModel"
    FIELDS = {
        "swarm_role": (_optional(_checked(lambda v: v, str, _swarm_role)), _const(None)),
        "swarm_advertise_addr": (_OPT_STR, _const(None)),
        "gpu": (_OPT_BOOL, _const(None)),  # true/false forces a node to count as a GPU node (or not)
    }


def validated_settings(model: type[_Settings], host: str, hostvars: dict):
    """The settings from a host's vars; the first problem as one line naming the file and line where
    the var was set, the host and the var (exit 4)."""
    refuse_vaulted(host, hostvars, model.FIELDS)
    try:
        return model(**{k: hostvars[k] for k in model.FIELDS if k in hostvars})
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        got = repr(first.get("input"))
        got = "" if first["type"] == "value_error" else f" (got {got if len(got) <= 80 else got[:77] + '...'})"
        raise setting_error(host, hostvars, first["loc"][0] if first["loc"] else None,
                            f"{path}: {message}{got}") from None


def docker_settings(host: str, hostvars: dict) -> DockerSettings:
    return validated_settings(DockerSettings, host, hostvars)


def nvidia_settings(host: str, hostvars: dict) -> NvidiaSettings:
    return validated_settings(NvidiaSettings, host, hostvars)


def swarm_settings(host: str, hostvars: dict) -> SwarmSettings:
    return validated_settings(SwarmSettings, host, hostvars)


# -- the models: what is valid, and the words of every error ----------------------------------------------------
_MODELS: Any = None


def _models():
    """The pydantic models (DockerModel, NvidiaModel, SwarmModel), built once, on first need."""
    global _MODELS
    if _MODELS is not None:
        return _MODELS
    from types import SimpleNamespace

    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class DockerModel(BaseModel):
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


    class NvidiaModel(BaseModel):
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
            return _driver_branch(value)

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


    class SwarmModel(BaseModel):
        """The vars `provision swarm init` reads (roles also come from the swarm_managers/swarm_workers groups)."""

        model_config = ConfigDict(extra="ignore", defer_build=True)

        swarm_role: Literal["manager", "worker"] | None = None
        swarm_advertise_addr: str | None = None
        gpu: bool | None = None  # true/false forces a node to count as a GPU node (or not)
    _MODELS = SimpleNamespace(DockerModel=DockerModel, NvidiaModel=NvidiaModel, SwarmModel=SwarmModel)
    return _MODELS
