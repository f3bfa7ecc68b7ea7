"""Where each service's image comes from, decided on the operator's machine before any host is touched.

- `build:` with `build_on: local` (default): built here by the local engine, then shipped.
- `build:` with `build_on: remote`: the context is sent to each host's engine, which builds it.
- no `build:` and the local engine has the image: shipped (registry-less, only missing layers).
- otherwise: pulled by each host from its registry (with the playbook's `registry` login).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provision.deploy import local_engine
from provision.errors import EnvironmentProblem, ProvisionError

SHIP, PULL, BUILD_REMOTE = "ship", "pull", "build on host"


@dataclass
class ImageSource:
    name: str
    how: str  # SHIP | PULL | BUILD_REMOTE
    local_id: str | None = None  # the image id here (SHIP)
    note: str = ""


def registry_domain(name: str) -> str:
    """Docker's rule: the first path component is a registry when it has a dot or port, or is localhost."""
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def split_reference(name: str) -> tuple[str, str]:
    """(repository, tag) of `name`; tag `latest` when none is given."""
    if "@" in name:
        repository, digest = name.split("@", 1)
        return repository, digest
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
        return repository, tag
    return name, "latest"


def local_client():
    """The operator's Docker engine (for building and shipping); a clear error if none answers."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"building or shipping images needs a local Docker engine, and none answers "
                                 f"({str(exc).splitlines()[0][:160]}); start one, or use `build_on: remote`"
                                 ) from None
    return client


def local_image_id(client, name: str) -> str | None:
    import docker.errors

    try:
        return client.images.get(name).id
    except docker.errors.ImageNotFound:
        return None


def build_context(playbook, service) -> dict:
    """docker SDK build kwargs for a service's `build:` (paths resolved against the playbook's folder)."""
    build = service.build
    if isinstance(build, str):
        context, dockerfile, args, target = build, None, {}, None
    else:
        context, dockerfile, args, target = build.context, build.dockerfile, dict(build.args or {}), build.target
    path = (playbook.base_dir / context).resolve()
    if not path.is_dir():
        raise ProvisionError(f"services.{service.name}.build: context {path} is not a folder")
    kwargs = {"path": str(path), "tag": service.image, "rm": True, "forcerm": True,
              "buildargs": {k: str(v) for k, v in args.items()}}
    if dockerfile:
        kwargs["dockerfile"] = dockerfile
    if target:
        kwargs["target"] = target
    return kwargs


def build_locally(client, playbook, service) -> str:
    """Build here; the image id. Build errors name the service and the failing step's output."""
    import docker.errors

    try:
        image, _ = client.images.build(**build_context(playbook, service))
    except docker.errors.BuildError as exc:
        tail = "".join(str(line.get("stream", line.get("error", ""))) for line in exc.build_log)[-800:]
        raise ProvisionError(f"building {service.image} for service {service.name} failed: {exc.msg}\n{tail}") from None
    return image.id


def sources(playbook, *, check: bool, client_factory=local_client) -> dict[str, ImageSource]:
    """Per service: where its image comes from. Builds local images now (not under --check).

    With the default engine (client_factory is local_client) image ids are read over the engine's socket
    without the docker SDK (deploy.local_engine), and a build whose inputs did not change since it was last
    built here is not run again (local_engine.build_fingerprint): a redeploy where nothing changed never
    loads the SDK. Anything that way cannot answer goes through the SDK, as before."""
    result: dict[str, ImageSource] = {}
    by_image: dict[str, ImageSource] = {}
    client = None
    light = client_factory is local_client
    for name in playbook.ordered_services():
        service = playbook.services[name]
        if service.build is not None and service.build_on == "remote":
            result[name] = ImageSource(service.image, BUILD_REMOTE, note="built by each host's engine")
            continue
        if service.image in by_image and service.build is None:
            result[name] = by_image[service.image]
            continue
        if service.build is not None:
            if check:
                answered, image_id = local_engine.image_id(service.image) if light else (False, None)
                if not answered:
                    client = client or client_factory()
                    image_id = local_image_id(client, service.image)
                source = ImageSource(service.image, SHIP, image_id, note="would be built here, then shipped")
            else:
                fingerprint = _fingerprint(playbook, service) if light else None
                image_id = _unchanged_build(fingerprint, service.image)
                if image_id is None:
                    client = client or client_factory()
                    image_id = build_locally(client, playbook, service)
                    if fingerprint is not None:
                        local_engine.BuildCache().put(fingerprint, image_id)
                source = ImageSource(service.image, SHIP, image_id, note="built here")
        else:
            answered, image_id = local_engine.image_id(service.image) if light else (False, None)
            if not answered:
                image_id = _maybe_local(client_factory, service.image)
            source = (ImageSource(service.image, SHIP, image_id, note="present here")
                      if image_id else ImageSource(service.image, PULL, note=f"pulled from {registry_domain(service.image)}"))
        result[name] = by_image[service.image] = source
    return result


def _fingerprint(playbook, service) -> str | None:
    """local_engine.build_fingerprint of a service's `build:` (None: build it, whatever the cache says)."""
    try:
        kwargs = build_context(playbook, service)
    except ProvisionError:
        return None  # build_locally says what is wrong
    return local_engine.build_fingerprint(Path(kwargs["path"]), kwargs.get("dockerfile"), kwargs["buildargs"],
                                          kwargs.get("target"), kwargs["tag"])


def _unchanged_build(fingerprint: str | None, tag: str) -> str | None:
    """The id of the last build here with this fingerprint, while `tag` still points to it; else None."""
    if fingerprint is None:
        return None
    cached = local_engine.BuildCache().get(fingerprint)
    if cached is None:
        return None
    answered, current = local_engine.image_id(tag)
    return cached if answered and current == cached else None


def _maybe_local(client_factory, name: str) -> str | None:
    """The local id of an image, or None when there is no such image (or no local engine at all)."""
    try:
        client = client_factory()
    except EnvironmentProblem:
        return None
    return local_image_id(client, name)


def pull_auth(playbook, name: str, environ) -> dict | None:
    """auth_config for pulling `name` when the playbook's registry serves it (never logged)."""
    registry = playbook.registry
    if registry is None or registry_domain(name) != _strip_scheme(registry.server):
        return None
    return {"username": registry.username, "password": environ.get(registry.password_env, ""),
            "serveraddress": registry.server}


def _strip_scheme(server: str) -> str:
    return server.split("://", 1)[-1].rstrip("/")


# -- free space on the host before a pull or ship --------------------------------------------------
MIN_FREE_VAR = "deploy_min_free_mb"
DEFAULT_MIN_FREE_MB = 512  # the least free space under Docker's data root before any image is fetched
EXTRACTION_FACTOR = 1.5  # an image's size on disk, plus its compressed layers while they are extracted


def min_free_mb(host: str, hostvars: dict) -> int:
    """`deploy_min_free_mb` (host or group var): bad values are bad input (file and line, exit 4)."""
    from provision.config.connection import setting_error

    value = hostvars.get(MIN_FREE_VAR, DEFAULT_MIN_FREE_MB)
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise setting_error(host, hostvars, "deploy_min_free_mb",
                            f"deploy_min_free_mb: must be a whole number of MiB >= 0 (got {value!r})")
    return int(text)


def space_needed(sizes_to_fetch: list[int | None], min_free: int) -> int:
    """Bytes that must be free under Docker's data root to fetch these images (None: a size not known
    before the pull): the larger of the configured minimum and their sizes × EXTRACTION_FACTOR."""
    known = sum(size for size in sizes_to_fetch if size)
    return max(min_free * 1024 * 1024, int(known * EXTRACTION_FACTOR))
