"""An image's config (its ``Env``: ``CUDA_VERSION``, ``NVIDIA_REQUIRE_CUDA``, ...) without pulling it (issue 14).

- A shipped image (present on the operator's machine): the local engine's ``image inspect``.
- A pulled image: the registry's HTTP API v2, as the host's engine would reach it, and without any layer:
  the manifest (``GET /v2/NAME/manifests/REF``; a manifest list / OCI index → the entry for the host's
  ``linux/ARCH``, then that manifest), then the config blob it names (``GET /v2/NAME/blobs/DIGEST``).
  Only those two or three small JSON documents travel. The connection goes through the host's SSH
  connection (a ``direct-tcpip`` channel), so the registry is reached by the name and from the network the
  host's engine uses; the endpoints, their scheme and Docker Hub's mirrors come from the host engine's
  ``RegistryConfig`` (``docker info``): a secure registry over https, an insecure one over https then http,
  as Docker does. Credentials (the playbook's ``registry``) stay in this process: HTTP basic auth or
  the registry's bearer-token flow (``WWW-Authenticate: Bearer realm=...``); never in argv or logs.

Pure parts (``split_name``, ``pick_manifest``, ``parse_challenge``, ``endpoints``) are unit-tested on
responses captured from the sandbox registry (tests/unit/fixtures/registry/).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

from provision.errors import ProvisionError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join((OCI_INDEX, MANIFEST_LIST, OCI_MANIFEST, MANIFEST_V2))
MAX_DOCUMENT = 4 * 1024 * 1024  # manifests and image configs are a few KiB; refuse to read more
TIMEOUT_S = 30.0


class RegistryError(ProvisionError):
    """The registry could not tell the image's config (the message says which request and why)."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # https or http
    host: str
    port: int

    @property
    def base(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{self.host}{'' if self.port == default else f':{self.port}'}"


# ------------------------------------------------------------------------------------------------ pure
def split_name(name: str) -> tuple[str, str, str]:
    """(registry, repository, reference) as Docker reads a name: ``nvidia/cuda:12.4.1-base`` →
    (docker.io, nvidia/cuda, 12.4.1-base); ``ubuntu`` → (docker.io, library/ubuntu, latest);
    ``reg:5000/a/b@sha256:...`` → (reg:5000, a/b, sha256:...)."""
    rest, digest = name.split("@", 1) if "@" in name else (name, "")
    first, _, after = rest.partition("/")
    if after and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, after
    else:
        registry, path = DOCKER_HUB, rest
    tag = ""
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return registry, path, digest or tag or "latest"


def pick_manifest(document: dict, arch: str = "amd64", os_name: str = "linux") -> str | None:
    """From a manifest list / OCI index: the digest of the entry for OS/ARCH (None when there is none)."""
    for entry in document.get("manifests") or []:
        platform = entry.get("platform") or {}
        if platform.get("os") == os_name and platform.get("architecture") == arch:
            return entry.get("digest")
    return None


def is_index(document: dict, media_type: str | None) -> bool:
    kind = (media_type or "").split(";")[0].strip() or document.get("mediaType") or ""
    return kind in (MANIFEST_LIST, OCI_INDEX) or ("manifests" in document and "config" not in document)


def config_digest(document: dict) -> str:
    config = document.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise RegistryError("the image manifest names no config blob")
    return config["digest"]


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`` → ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def _insecure_by_cidr(host: str, cidrs: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost"
    return address.is_loopback or any(address in ipaddress.ip_network(c, strict=False) for c in cidrs)


def endpoints(registry: str, registry_config: dict | None) -> list[Endpoint]:
    """Where the host's engine pulls REGISTRY's images from, in order (docker info's RegistryConfig):
    Docker Hub's mirrors first; https, then http for an insecure registry (as Docker tries them)."""
    config = registry_config or {}
    found: list[Endpoint] = []
    if registry == DOCKER_HUB:
        for mirror in config.get("Mirrors") or []:
            url = urllib.parse.urlsplit(mirror if "://" in mirror else f"https://{mirror}")
            found.append(Endpoint(url.scheme, url.hostname or "", url.port or (443 if url.scheme == "https" else 80)))
        found.append(Endpoint("https", DOCKER_HUB_ENDPOINT, 443))
        return found
    host, _, port = registry.rpartition(":") if re.search(r":\d+$", registry) else (registry, "", "")
    index = (config.get("IndexConfigs") or {}).get(registry) or {}
    secure = index.get("Secure")
    if secure is None:
        secure = not _insecure_by_cidr(host, list(config.get("InsecureRegistryCIDRs") or []))
    found.append(Endpoint("https", host, int(port) if port else 443))
    if not secure:
        found.append(Endpoint("http", host, int(port) if port else 80))
    return found


# ----------------------------------------------------------------------------------------- transport
Connect = Callable[[str, int], socket.socket]


def direct_connect(host: str, port: int) -> socket.socket:
    """From this machine (a host with ``ansible_connection=local``)."""
    return socket.create_connection((host, port), timeout=TIMEOUT_S)


def ssh_connect(transport) -> Connect:
    """Through the host's SSH connection: a direct-tcpip channel, bridged to a local socket pair so that
    http.client and ssl see a real socket."""

    def connect(host: str, port: int) -> socket.socket:
        try:
            channel = transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=TIMEOUT_S)
        except Exception as exc:  # paramiko's ChannelException: the host could not connect
            raise OSError(f"the host cannot connect to {host}:{port} ({exc})") from None
        channel.settimeout(TIMEOUT_S)
        mine, theirs = socket.socketpair()
        mine.settimeout(TIMEOUT_S)

        def pump(read, write, done):
            try:
                while True:
                    data = read(65536)
                    if not data:
                        break
                    write(data)
            except OSError:
                pass
            finally:
                done()

        def close_both():
            for thing in (channel, theirs):
                try:
                    thing.close()
                except OSError:
                    pass

        threading.Thread(target=pump, args=(channel.recv, theirs.sendall, close_both), daemon=True).start()
        threading.Thread(target=pump, args=(theirs.recv, channel.sendall, close_both), daemon=True).start()
        return mine

    return connect


class _Connection(http.client.HTTPConnection):
    def __init__(self, endpoint: Endpoint, connect: Connect):
        super().__init__(endpoint.host, endpoint.port, timeout=TIMEOUT_S)
        self._endpoint, self._connect = endpoint, connect

    def connect(self) -> None:
        sock = self._connect(self._endpoint.host, self._endpoint.port)
        if self._endpoint.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._endpoint.host)
        self.sock = sock


Response = tuple[int, dict[str, str], bytes]
Fetch = Callable[[str, dict[str, str]], Response]  # (url, headers) → (status, headers lower-cased, body)


def http_fetch(connect: Connect) -> Fetch:
    def fetch(url: str, headers: dict[str, str]) -> Response:
        parts = urllib.parse.urlsplit(url)
        endpoint = Endpoint(parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        connection = _Connection(endpoint, connect)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", path or "/", headers={"User-Agent": "provision", **headers})
            response = connection.getresponse()
            body = response.read(MAX_DOCUMENT + 1)
            if len(body) > MAX_DOCUMENT:
                raise RegistryError(f"{url}: the answer is larger than {MAX_DOCUMENT} bytes")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            connection.close()

    return fetch


# ----------------------------------------------------------------------------------------- the reader
class RegistryReader:
    """Reads manifests and config blobs of one registry endpoint; FETCH does the HTTP (tests pass a fake)."""

    def __init__(self, endpoint: Endpoint, fetch: Fetch, auth: dict | None = None):
        self.endpoint, self.fetch, self.auth = endpoint, fetch, auth or {}
        self.authorization: str | None = None

    def _basic(self) -> str | None:
        user, password = self.auth.get("username"), self.auth.get("password")
        if not user:
            return None
        return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()

    def _token(self, challenge: dict[str, str], repository: str) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise RegistryError("the registry asked for a bearer token without naming its realm")
        query = {"service": challenge.get("service", ""), "scope": challenge.get("scope")
                 or f"repository:{repository}:pull"}
        url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
        basic = self._basic()
        status, _, body = self.fetch(url, {"Authorization": basic} if basic else {})
        if status != 200:
            raise RegistryError(f"the registry's token service answered {status}"
                                + (" (check the playbook's registry credentials)" if status in (401, 403) else ""))
        try:
            data = json.loads(body)
        except ValueError:
            raise RegistryError("the registry's token service did not answer JSON") from None
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError("the registry's token service gave no token")
        return f"Bearer {token}"

    def get(self, repository: str, path: str, accept: str | None = None) -> tuple[dict[str, str], bytes]:
        url = f"{self.endpoint.base}/v2/{repository}/{path}"
        for _ in range(5):  # auth once, redirects a few times
            headers = {"Accept": accept} if accept else {}
            same_host = url.startswith(self.endpoint.base + "/")
            if self.authorization and same_host:
                headers["Authorization"] = self.authorization
            status, answer, body = self.fetch(url, headers)
            if status == 200:
                return answer, body
            if status in (301, 302, 303, 307, 308) and answer.get("location"):
                url = urllib.parse.urljoin(url, answer["location"])  # blob storage: no credentials sent there
                continue
            if status == 401 and self.authorization is None and "www-authenticate" in answer:
                scheme, params = parse_challenge(answer["www-authenticate"])
                self.authorization = self._token(params, repository) if scheme == "bearer" else self._basic()
                if self.authorization is None:
                    raise RegistryError(f"{self.endpoint.base} needs credentials (the playbook's `registry`)")
                continue
            if status in (401, 403):
                raise RegistryError(f"{self.endpoint.base} refused access to {repository} ({status}; check the "
                                    "playbook's registry credentials)")
            if status == 404:
                raise RegistryError(f"{self.endpoint.base} has no {repository} {path.split('/', 1)[-1]} (404)")
            raise RegistryError(f"{self.endpoint.base} answered {status} for {repository}/{path}")
        raise RegistryError(f"{self.endpoint.base}: too many redirects for {repository}/{path}")

    def json(self, repository: str, path: str, accept: str | None = None) -> tuple[dict, str | None]:
        headers, body = self.get(repository, path, accept)
        try:
            data = json.loads(body)
        except ValueError:
            raise RegistryError(f"{self.endpoint.base}: {repository}/{path} is not JSON") from None
        if not isinstance(data, dict):
            raise RegistryError(f"{self.endpoint.base}: {repository}/{path} is not a JSON object")
        return data, headers.get("content-type")

    def image_config(self, repository: str, reference: str, arch: str = "amd64") -> dict:
        """The config blob of REPOSITORY:REFERENCE for linux/ARCH: manifest (index → platform entry), then
        the config; no layer is fetched."""
        manifest, media_type = self.json(repository, f"manifests/{reference}", ACCEPT)
        if is_index(manifest, media_type):
            digest = pick_manifest(manifest, arch)
            if digest is None:
                raise RegistryError(f"{repository}:{reference} has no linux/{arch} image")
            manifest, _ = self.json(repository, f"manifests/{digest}", ACCEPT)
        config, _ = self.json(repository, f"blobs/{config_digest(manifest)}")
        return config


def remote_config(name: str, *, fetch: Fetch, registry_config: dict | None, auth: dict | None,
                  arch: str = "amd64") -> dict[str, Any]:
    """The image config of NAME from its registry, trying each endpoint the host's engine would."""
    registry, repository, reference = split_name(name)
    errors: list[str] = []
    for endpoint in endpoints(registry, registry_config):
        try:
            return RegistryReader(endpoint, fetch, auth).image_config(repository, reference, arch)
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            errors.append(f"{endpoint.base}: {exc}")
        except RegistryError as exc:
            errors.append(str(exc))
    raise RegistryError(f"could not read {name}'s config from its registry: " + "; ".join(errors))


def local_config(client, name: str) -> dict[str, Any] | None:
    """The config of an image on the operator's machine (``docker image inspect``); None when absent."""
    import docker.errors

    try:
        return client.images.get(name).attrs
    except docker.errors.ImageNotFound:
        return None
