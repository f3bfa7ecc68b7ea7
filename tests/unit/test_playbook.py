"""provision.deploy.playbook: the docs/playbook.md example, every error kind (exact FILE:LINE text),
env files, mounts, GPUs and the normalized accessors the deploy engine uses."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from provision.deploy.playbook import (GpuRequest, Mount, Playbook, PortSpec, load_playbook, parse_duration,
                                       parse_size, read_env_file)
from provision.errors import EXIT_BAD_INPUT, InputError
from provision.secret import Secret

DOC = Path(__file__).resolve().parents[2] / "docs" / "playbook.md"
ENV = {"HF_TOKEN": "hf_secret_value", "REGISTRY_TOKEN": "registry-secret"}


def doc_example() -> str:
    """The YAML block of docs/playbook.md (the contract)."""
    text = DOC.read_text()
    start = text.index("```yaml\n") + len("```yaml\n")
    return text[start:text.index("```", start)]


def write(tmp_path: Path, text: str, name: str = "stack.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, **kwargs) -> Playbook:
    kwargs.setdefault("environ", {})
    return load_playbook(write(tmp_path, text), **kwargs)


def error(tmp_path: Path, text: str, **kwargs) -> str:
    path = write(tmp_path, text)
    kwargs.setdefault("environ", {})
    with pytest.raises(InputError) as info:
        load_playbook(path, **kwargs)
    assert info.value.exit_code == EXIT_BAD_INPUT
    rendered = str(info.value)
    assert "\n" not in rendered
    return rendered.removeprefix(f"{path}:")


@pytest.fixture
def ml(tmp_path: Path) -> Playbook:
    (tmp_path / ".env").write_text("# settings\nLOG_LEVEL=info\nCHROMA_HOST=from-file\n")
    return load_playbook(write(tmp_path, doc_example(), "ml.yml"), environ=ENV)


# ---------------------------------------------------------------------------
# The documented example
# ---------------------------------------------------------------------------


def test_doc_example_top_level(ml: Playbook, tmp_path: Path) -> None:
    assert ml.stack == "ml"
    assert ml.hosts == "all"
    assert ml.path == tmp_path / "ml.yml"
    assert ml.base_dir == tmp_path
    assert ml.remote_dir == "/srv/provision/ml"
    assert ml.network_name("ml-network") == "ml_ml-network"
    assert ml.networks["ml-network"].driver == "bridge"
    assert ml.volume_name("hf-cache") == "hf-cache"
    assert ml.volume_name("chroma-data") == "ml_chroma-data"
    assert ml.default_network == "ml_default"
    assert (ml.registry.server, ml.registry.username, ml.registry.password_env) == ("ghcr.io", "bot",
                                                                                    "REGISTRY_TOKEN")
    assert list(ml.services) == ["chromadb", "app"]
    assert ml.ordered_services() == ["chromadb", "app"]


def test_doc_example_app_service(ml: Playbook, tmp_path: Path) -> None:
    app = ml.services["app"]
    assert app.name == "app"
    assert app.image == "myapp:v1"
    assert app.build.context == "./app" and app.build_on == "local"
    assert app.command == ["python", "serve.py"] and app.entrypoint is None
    assert app.secrets == ["HF_TOKEN"]
    assert app.environment_dict(ml) == {"LOG_LEVEL": "info", "CHROMA_HOST": "chromadb"}
    assert app.networks_list(ml) == ["ml_ml-network"]
    assert app.mounts(ml) == [
        Mount("volume", "hf-cache", "/root/.cache/huggingface", False, None),
        Mount("bind", "/srv/provision/ml/data", "/workspace/data", True, tmp_path / "data"),
    ]
    assert app.gpu_request() == GpuRequest(-1, [], ["gpu"])
    assert app.restart == "unless-stopped"
    assert app.healthcheck.test == ["CMD", "curl", "-f", "http://localhost:8080/health"]
    assert (app.healthcheck.interval, app.healthcheck.retries) == (5.0, 10)
    assert app.depends_on == ["chromadb"]
    assert ml.service_hosts(app) == "gpu" and ml.service_hosts("chromadb") == "all"
    assert app.labels == {"team": "ml"} and app.user == "1000:1000" and app.working_dir == "/workspace"
    assert app.shm_size == 2 * 1024**3 and app.mem_limit == 8 * 1024**3 and app.cpus == 2.5
    assert {k: (u.soft, u.hard) for k, u in app.ulimits.items()} == {
        "memlock": (-1, -1), "stack": (67108864, 67108864), "nofile": (65536, 65536)}
    assert app.stop_grace_period == 10.0
    assert app.replicas == 1 and app.rollout_order == "start-first" and app.health_timeout_s == 60.0
    assert app.deploy.endpoint_mode == "vip"
    assert app.deploy.placement.constraints == ["node.labels.gpu==true"]


def test_doc_example_chromadb_defaults(ml: Playbook) -> None:
    chroma = ml.services["chromadb"]
    assert chroma.port_list() == [PortSpec(target=8000, published=8000)]
    assert chroma.rollout_order == "stop-first"  # a fixed published port
    assert chroma.health_timeout_s == 60.0
    assert chroma.mounts(ml) == [Mount("volume", "ml_chroma-data", "/chroma/chroma", False, None)]
    assert chroma.gpu_request() is None and chroma.healthcheck is None


def test_secret_values_are_wrapped(ml: Playbook) -> None:
    values = ml.secret_values(ENV)
    assert list(values) == ["HF_TOKEN"] and isinstance(values["HF_TOKEN"], Secret)
    assert values["HF_TOKEN"].reveal() == "hf_secret_value"
    assert "hf_secret_value" not in repr(values)
    assert ml.registry.password(ENV).reveal() == "registry-secret"


# ---------------------------------------------------------------------------
# Errors: one line, FILE:LINE: PATH: problem
# ---------------------------------------------------------------------------

ERRORS = {
    "unknown key": ("""\
        stack: web
        services:
          app:
            image: nginx
            imagee: nginx
        """, "5: services.app: unknown key 'imagee'"),
    "unknown top-level key": ("""\
        stack: web
        version: "3.8"
        services: {app: {image: nginx}}
        """, "2: unknown key 'version'"),
    "bad port": ("""\
        stack: web
        services:
          app:
            image: nginx
            ports:
              - "8080:80"
              - "80:x"
        """, "7: services.app.ports[1]: invalid port '80:x'"),
    "bad port protocol": ("""\
        stack: web
        services:
          app: {image: nginx, ports: ["80/sctp"]}
        """, "3: services.app.ports[0]: invalid port '80/sctp'"),
    "bad duration": ("""\
        stack: web
        services:
          app:
            image: nginx
            healthcheck:
              test: curl -f localhost
              interval: 5x
        """, "7: services.app.healthcheck.interval: invalid duration '5x' (e.g. 5s, 1m30s, 500ms, or seconds)"),
    "bad size": ("""\
        stack: web
        services:
          app:
            image: nginx
            shm_size: 2q
        """, "5: services.app.shm_size: invalid size '2q' (e.g. 512m, 2g, 1024k, 100b, or bytes)"),
    "undeclared network": ("""\
        stack: web
        networks:
          back: {}
        services:
          app:
            image: nginx
            networks:
              - back
              - front
        """, "9: services.app.networks[1]: undeclared network 'front' (declare it under networks:)"),
    "undeclared volume": ("""\
        stack: web
        services:
          app:
            image: nginx
            volumes:
              - ./conf:/etc/nginx/conf.d:ro
              - foo:/data
        """, "7: services.app.volumes[1]: undeclared volume 'foo' (declare it under volumes:)"),
    "bad volume syntax": ("""\
        stack: web
        services:
          app:
            image: nginx
            volumes: ["data"]
        """, ("5: services.app.volumes[0]: invalid volume 'data' (expected SOURCE:TARGET[:ro|rw] "
             "with an absolute TARGET)")),
    "unknown depends_on": ("""\
        stack: web
        services:
          app:
            image: nginx
            depends_on: [db]
        """, "5: services.app.depends_on[0]: unknown service 'db'"),
    "cycle": ("""\
        stack: web
        services:
          a:
            image: nginx
            depends_on: [b]
          b:
            image: nginx
            depends_on: [c]
          c:
            image: nginx
            depends_on: [b]
        """, "8: services.b.depends_on: dependency cycle b -> c -> b"),
    "self dependency": ("""\
        stack: web
        services:
          a:
            image: nginx
            depends_on: [a]
        """, "5: services.a.depends_on: dependency cycle a -> a"),
    "missing secret": ("""\
        stack: web
        services:
          app:
            image: nginx
            secrets:
              - API_KEY
        """, "6: services.app.secrets[0]: secret 'API_KEY' is not set in the environment"),
    "invalid secret name": ("""\
        stack: web
        services:
          app: {image: nginx, secrets: [api-key]}
        """, "3: services.app.secrets[0]: invalid secret name 'api-key' (must be an environment variable name)"),
    "start-first with published port": ("""\
        stack: web
        services:
          app:
            image: nginx
            ports: ["80:80"]
            deploy:
              update_config:
                order: start-first
        """, ("8: services.app.deploy.update_config.order: start-first cannot be used with published port 80 "
             "(the new container could not bind it; use stop-first)")),
    "replicas with published port": ("""\
        stack: web
        services:
          app:
            image: nginx
            ports:
              - "9000"
              - "127.0.0.1:8080:80"
            deploy: {replicas: 3}
        """, ("7: services.app.ports[1]: published port 8080 would collide between 3 replicas "
             "(drop the published port or use replicas: 1)")),
    "build_on remote without build": ("""\
        stack: web
        services:
          app:
            image: nginx
            build_on: remote
        """, "5: services.app.build_on: build_on: remote needs 'build'"),
    "bad build_on": ("""\
        stack: web
        services:
          app: {image: nginx, build_on: cloud}
        """, "3: services.app.build_on: input should be 'local' or 'remote', got 'cloud'"),
    "yaml syntax error": ("""\
        stack: web
        services:
          app:
            image: [nginx
        """, "5: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
    "empty services": ("""\
        stack: web
        x-common: &common {image: nginx}
        services: {}
        """, "3: services: no services defined (at least one is required)"),
    "null services": ("""\
        stack: web
        services:
        """, "2: services: no services defined (at least one is required)"),
    "missing services": ("""\
        stack: web
        hosts: all
        """, "1: missing required key 'services'"),
    "bad stack name": ("""\
        hosts: all
        stack: Web App
        services: {app: {image: nginx}}
        """, ("2: stack: invalid stack name 'Web App' (lowercase letters, digits, '_' and '-', "
             "starting with a letter or digit)")),
    "no image nor build": ("""\
        stack: web
        services:
          app:
            command: sleep 1
        """, "3: services.app: needs 'image' or 'build'"),
    "service not a mapping": ("""\
        stack: web
        services:
          app:
        """, "3: services.app: expected a mapping, got null"),
    "wrong type": ("""\
        stack: web
        services:
          app:
            image: nginx
            deploy: {replicas: many}
        """, "5: services.app.deploy.replicas: expected an integer, got str 'many'"),
    "bad restart": ("""\
        stack: web
        services:
          app: {image: nginx, restart: sometimes}
        """, ("3: services.app.restart: invalid restart policy 'sometimes' (no, always, unless-stopped, "
             "on-failure[:N])")),
    "bad gpus": ("""\
        stack: web
        services:
          app: {image: nginx, gpus: 0}
        """, "3: services.app.gpus: invalid gpus 0 (all, a count >= 1, a list of device ids, or a mapping)"),
    "gpus count and ids": ("""\
        stack: web
        services:
          app:
            image: nginx
            gpus: {count: 1, device_ids: ["0"]}
        """, "5: services.app.gpus: gpus: set count or device_ids, not both"),
    "bad healthcheck test": ("""\
        stack: web
        services:
          app:
            image: nginx
            healthcheck: {test: [curl, localhost]}
        """, ("5: services.app.healthcheck.test: test must start with CMD, CMD-SHELL or NONE, "
             "got ['curl', 'localhost']")),
    "relative remote_dir": ("""\
        stack: web
        remote_dir: srv/web
        services: {app: {image: nginx}}
        """, "2: remote_dir: must be an absolute path, got 'srv/web'"),
    "bad service name": ("""\
        stack: web
        services:
          -app: {image: nginx}
        """, "3: services.-app: invalid name '-app' (letters, digits, '_', '.' and '-')"),
    "registry password missing": ("""\
        stack: web
        registry:
          server: ghcr.io
          username: bot
          password_env: GHCR_TOKEN
        services: {app: {image: nginx}}
        """, "5: registry.password_env: environment variable 'GHCR_TOKEN' is not set"),
    "missing env file": ("""\
        stack: web
        services:
          app:
            image: nginx
            env_file: [.env, prod.env]
        """, "5: services.app.env_file[0]: env file '.env' not found (relative to the playbook)"),
    "not a mapping": ("""\
        - stack: web
        """, "1: a playbook must be a mapping, got list"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_error_is_one_line_with_file_line_and_path(tmp_path: Path, case: str) -> None:
    text, expected = ERRORS[case]
    assert error(tmp_path, text) == expected


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_playbook(tmp_path / "nope.yml")
    assert str(info.value) == f"{tmp_path / 'nope.yml'}: playbook not found"


def test_empty_file(tmp_path: Path) -> None:
    assert error(tmp_path, "# nothing\n") == "1: the playbook is empty"


def test_missing_secret_message_names_the_variable_not_a_value(tmp_path: Path) -> None:
    text = "stack: web\nservices: {app: {image: nginx, secrets: [API_KEY, DB_PASSWORD]}}\n"
    message = error(tmp_path, text, environ={"API_KEY": "s3cr3t"})
    assert message == "2: services.app.secrets[1]: secret 'DB_PASSWORD' is not set in the environment"
    assert "s3cr3t" not in message


def test_secrets_not_required_for_ops_commands(tmp_path: Path) -> None:
    text = """\
        stack: web
        registry: {server: ghcr.io, username: bot, password_env: GHCR_TOKEN}
        services: {app: {image: nginx, secrets: [API_KEY]}}
        """
    playbook = load(tmp_path, text, require_secrets=False)
    assert playbook.services["app"].secrets == ["API_KEY"]
    assert playbook.secret_values({}) == {}


def test_secrets_default_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "from-os")
    path = write(tmp_path, "stack: web\nservices: {app: {image: nginx, secrets: [API_KEY]}}\n")
    assert load_playbook(path).secret_values()["API_KEY"].reveal() == "from-os"


def test_x_keys_at_top_level_are_ignored_and_anchors_work(tmp_path: Path) -> None:
    text = """\
        stack: web
        x-defaults: &defaults
          image: nginx:1.27
          restart: always
        services:
          app:
            <<: *defaults
            command: nginx -g 'daemon off;'
        """
    app = load(tmp_path, text).services["app"]
    assert (app.image, app.restart) == ("nginx:1.27", "always")
    assert app.command == ["nginx", "-g", "daemon off;"]


def test_x_keys_inside_a_service_are_errors(tmp_path: Path) -> None:
    text = "stack: web\nservices:\n  app:\n    image: nginx\n    x-note: hi\n"
    assert error(tmp_path, text) == "5: services.app: unknown key 'x-note'"


# ---------------------------------------------------------------------------
# Fields and normalization
# ---------------------------------------------------------------------------


def test_env_file_parsing(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("# comment\n\nPLAIN=value\nexport EXPORTED=1\nDOUBLE=\"quoted value\"\n"
                   "SINGLE='it''s'\nEMPTY=\nEQUALS=a=b\n  SPACED = padded  \n")
    assert read_env_file(env) == {"PLAIN": "value", "EXPORTED": "1", "DOUBLE": "quoted value",
                                  "SINGLE": "it''s", "EMPTY": "", "EQUALS": "a=b", "SPACED": "padded"}


def test_env_file_bad_line_points_into_the_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GOOD=1\n# fine\nBROKEN LINE\n")
    text = "stack: web\nservices: {app: {image: nginx, env_file: .env}}\n"
    with pytest.raises(InputError) as info:
        load(tmp_path, text)
    assert str(info.value) == f"{tmp_path / '.env'}:3: invalid line (expected KEY=VALUE)"


def test_environment_merges_env_files_then_environment(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("A=1\nB=from-a\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "b.env").write_text("B=from-b\nC=from-b\n")
    text = """\
        stack: web
        services:
          app:
            image: nginx
            env_file: [a.env, conf/b.env]
            environment:
              C: 3
              DEBUG: true
              QUIET: false
              EMPTY:
              RATIO: 0.5
        """
    playbook = load(tmp_path, text)
    assert playbook.services["app"].environment_dict(playbook) == {
        "A": "1", "B": "from-b", "C": "3", "DEBUG": "true", "QUIET": "false", "EMPTY": "", "RATIO": "0.5"}


def test_environment_list_form(tmp_path: Path) -> None:
    text = "stack: web\nservices: {app: {image: nginx, environment: [A=1, B=x=y, C]}}\n"
    playbook = load(tmp_path, text)
    assert playbook.services["app"].environment_dict(playbook) == {"A": "1", "B": "x=y", "C": ""}


def test_relative_binds_resolve_under_remote_dir(tmp_path: Path) -> None:
    text = """\
        stack: web
        remote_dir: /opt/web
        volumes:
          data: {}
          shared: {name: shared-data}
        services:
          app:
            image: nginx
            volumes:
              - ./html:/usr/share/nginx/html:ro
              - ../common/conf:/etc/common
              - .:/srv/all:rw
              - /var/log/web:/var/log/nginx
              - data:/data
              - shared:/shared:ro
        """
    playbook = load(tmp_path, text)
    assert playbook.services["app"].mounts(playbook) == [
        Mount("bind", "/opt/web/html", "/usr/share/nginx/html", True, tmp_path / "html"),
        Mount("bind", "/opt/common/conf", "/etc/common", False, tmp_path.parent / "common" / "conf"),
        Mount("bind", "/opt/web", "/srv/all", False, tmp_path),
        Mount("bind", "/var/log/web", "/var/log/nginx", False, None),
        Mount("volume", "web_data", "/data", False, None),
        Mount("volume", "shared-data", "/shared", True, None),
    ]


@pytest.mark.parametrize(("gpus", "expected"), [
    ("all", GpuRequest(-1, [], ["gpu"])),
    ("2", GpuRequest(2, [], ["gpu"])),
    ('["0", "3"]', GpuRequest(0, ["0", "3"], ["gpu"])),
    ("[0, 1]", GpuRequest(0, ["0", "1"], ["gpu"])),
    ("{count: all, capabilities: [compute, utility]}", GpuRequest(-1, [], ["compute", "utility"])),
    ("{count: 1}", GpuRequest(1, [], ["gpu"])),
    ('{device_ids: ["GPU-5d3c"]}', GpuRequest(0, ["GPU-5d3c"], ["gpu"])),
    ("{capabilities: [gpu, video]}", GpuRequest(-1, [], ["gpu", "video"])),
    ("null", None),
])
def test_gpu_variants(tmp_path: Path, gpus: str, expected: GpuRequest | None) -> None:
    playbook = load(tmp_path, f"stack: ml\nservices:\n  app:\n    image: cuda\n    gpus: {gpus}\n")
    assert playbook.services["app"].gpu_request() == expected


@pytest.mark.parametrize("gpus", ["some", "-1", "true", "[]", "{count: 0}", "{device_ids: []}"])
def test_gpu_invalid(tmp_path: Path, gpus: str) -> None:
    message = error(tmp_path, f"stack: ml\nservices:\n  app:\n    image: cuda\n    gpus: {gpus}\n")
    assert message.startswith("5: services.app.gpus: ")


@pytest.mark.parametrize(("text", "expected"), [
    ('"8000"', PortSpec(target=8000)),
    ("8000", PortSpec(target=8000)),
    ('"8080:80"', PortSpec(target=80, published=8080)),
    ('"127.0.0.1:8080:80"', PortSpec(target=80, published=8080, host_ip="127.0.0.1")),
    ('"127.0.0.1::80"', PortSpec(target=80, host_ip="127.0.0.1")),
    ('"[::1]:53:53/udp"', PortSpec(target=53, published=53, protocol="udp", host_ip="::1")),
    ('"5353:53/udp"', PortSpec(target=53, published=5353, protocol="udp")),
    ("{target: 80, published: 8080, protocol: tcp, mode: host}", PortSpec(target=80, published=8080, mode="host")),
])
def test_port_forms(tmp_path: Path, text: str, expected: PortSpec) -> None:
    playbook = load(tmp_path, f"stack: web\nservices:\n  app:\n    image: nginx\n    ports: [{text}]\n")
    assert playbook.services["app"].port_list() == [expected]


@pytest.mark.parametrize("text", ['"80:x"', '"0"', '"70000"', '"a:80:80:80"', '":80"', '"80:80/sctp"', "true"])
def test_port_invalid(tmp_path: Path, text: str) -> None:
    message = error(tmp_path, f"stack: web\nservices:\n  app:\n    image: nginx\n    ports: [{text}]\n")
    assert message.startswith("5: services.app.ports[0]: ")


@pytest.mark.parametrize(("value", "seconds"), [
    ("5s", 5.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), (10, 10.0), (1.5, 1.5), ("1h2m3s", 3723.0)])
def test_durations(value, seconds) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "5", "5x", "s", "-1s", -1, True, None, "1 m"])
def test_bad_durations(value) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


@pytest.mark.parametrize(("value", "size"), [
    ("512m", 512 * 1024**2), ("2g", 2 * 1024**3), ("1024k", 1024**2), ("100b", 100), (4096, 4096),
    ("2GB", 2 * 1024**3), ("1.5g", int(1.5 * 1024**3)), ("100", 100)])
def test_sizes(value, size) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["2q", "g", "", -1, True, "1t"])
def test_bad_sizes(value) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)


def test_defaults_and_names(tmp_path: Path) -> None:
    text = """\
        stack: web
        hosts: webservers
        networks:
          front: {name: shared-front, driver: overlay, attachable: true}
          back:
        services:
          api:
            build: ./api
            networks: [front, back]
          worker:
            image: worker:1
            restart: on-failure:3
            stop_grace_period: 1m
        """
    playbook = load(tmp_path, text)
    api, worker = playbook.services["api"], playbook.services["worker"]
    assert api.image == "web-api" and api.build.context == "./api" and api.build.dockerfile is None
    assert api.networks_list(playbook) == ["shared-front", "web_back"]
    assert playbook.networks["back"].driver is None and playbook.networks["front"].attachable
    assert worker.networks_list(playbook) == ["web_default"]
    assert playbook.service_hosts(worker) == "webservers"
    assert playbook.remote_dir == "/srv/provision/web"
    assert worker.restart == "on-failure:3" and worker.stop_grace_period == 60.0
    assert worker.rollout_order == "start-first" and worker.replicas == 1


def test_rollout_order_and_monitor(tmp_path: Path) -> None:
    text = """\
        stack: web
        services:
          web:
            image: nginx
            ports: ["80:80"]
            deploy: {update_config: {order: stop-first, monitor: 2m}}
          api:
            image: api
            ports: ["8000"]
            deploy: {replicas: 3, update_config: {monitor: 90}}
        """
    playbook = load(tmp_path, text)
    web, api = playbook.services["web"], playbook.services["api"]
    assert (web.rollout_order, web.health_timeout_s) == ("stop-first", 120.0)
    assert (api.rollout_order, api.health_timeout_s, api.replicas) == ("start-first", 90.0, 3)


def test_ordered_services_is_topological_with_file_order_ties(tmp_path: Path) -> None:
    text = """\
        stack: web
        services:
          web: {image: nginx, depends_on: [api, cache]}
          api: {image: api, depends_on: [db]}
          cache: {image: redis}
          db: {image: postgres}
          tools: {image: busybox}
        """
    assert load(tmp_path, text).ordered_services() == ["cache", "db", "api", "web", "tools"]


def test_build_long_form_and_labels_list(tmp_path: Path) -> None:
    text = """\
        stack: web
        services:
          app:
            image: app:dev
            build: {context: ., dockerfile: Dockerfile.prod, args: {VERSION: 2, DEBUG: false}, target: runtime}
            build_on: remote
            labels: [tier=front, owner]
            user: 1000
            healthcheck: {disable: true}
        """
    app = load(tmp_path, text).services["app"]
    assert (app.build.context, app.build.dockerfile, app.build.target) == (".", "Dockerfile.prod", "runtime")
    assert app.build.args == {"VERSION": "2", "DEBUG": "false"}
    assert app.labels == {"tier": "front", "owner": ""}
    assert app.user == "1000"
    assert app.healthcheck.disabled


def test_healthcheck_string_test_is_cmd_shell(tmp_path: Path) -> None:
    text = "stack: web\nservices:\n  app:\n    image: nginx\n    healthcheck: {test: curl -f localhost, timeout: 3s}\n"
    health = load(tmp_path, text).services["app"].healthcheck
    assert health.test == ["CMD-SHELL", "curl -f localhost"] and health.timeout == 3.0
