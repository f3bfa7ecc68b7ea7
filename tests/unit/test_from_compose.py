"""Compose files as stacks: provision.deploy.stack.from_compose (ComposeProject → Playbook), load_stack's
two formats, the x-provision settings and their refusals at FILE:LINE, the new keys in the docker create
arguments and the spec hash, Swarm's refusals, and Compose secrets on the host (exact commands with a
RecordingExecutor; the value never in a command)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import docker
import pytest

from provision.commands import deploy_host as commands
from provision.deploy import images as image_sources
from provision.deploy import remote_docker, swarm_spec
from provision.deploy.container_spec import container_specs, create_kwargs, secrets_folder, spec_hash
from provision.deploy.playbook import load_stack
from provision.errors import InputError
from provision.workflows import deploy
from tests.unit.test_workflow_deploy import DF, IMAGE, ROOT, RUN, Engine
from tests.unit.workflow_support import drive, freeze_lock

ENV = {"DB_PASSWORD": "hunter2-secret-value", "HOME": "/root"}
API = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.44")


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


def write(tmp_path: Path, text: str, name: str = "compose.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, **kwargs):
    return load_stack([write(tmp_path, text)], environ=ENV, **kwargs)


FULL = """\
    name: shop
    x-provision:
      hosts: web
      registry: {server: registry.example.com, username: ci, password_env: REG_PW}
      remote_dir: /srv/shop
      rollout: {monitor: 30s}
    services:
      db:
        image: postgres:16
        healthcheck: {test: [CMD, pg_isready], interval: 5s, start_period: 20s, start_interval: 1s}
        secrets: [db_password]
        volumes: [data:/var/lib/postgresql/data, {type: tmpfs, target: /scratch, tmpfs: {size: 1048576}}]
      migrate:
        image: busybox:1.36
        command: echo done
        depends_on: {db: {condition: service_healthy}}
      app:
        image: busybox:1.36
        x-provision: {hosts: gpu, rollout: {order: stop-first}}
        command: [sleep, "1d"]
        depends_on:
          db: {condition: service_healthy, restart: true}
          migrate: {condition: service_completed_successfully}
        cap_add: [NET_ADMIN]
        cap_drop: [MKNOD]
        devices: ["/dev/fuse:/dev/fuse"]
        tmpfs: ["/tmp:size=1m"]
        extra_hosts: ["gw:host-gateway"]
        logging: {driver: json-file, options: {max-size: 10m}}
        init: true
        expose: ["9000"]
        sysctls: {net.core.somaxconn: 1024}
        hostname: app-host
        ipc: shareable
        security_opt: [no-new-privileges:true]
        stop_signal: SIGINT
        stop_grace_period: 1m
        networks: {front: {aliases: [web, www]}, default: {}}
        ports: ["8080:80", {target: 81, published: "8081", protocol: udp, host_ip: 127.0.0.1}]
        deploy:
          resources:
            limits: {cpus: "0.5", memory: 100M, pids: 50}
            reservations: {devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}
        labels: [tier=front]
        user: "1000"
        working_dir: /w
        environment: {A: "1"}
        ulimits: {nofile: {soft: 1024, hard: 2048}}
        shm_size: 64m
        restart: always
        secrets:
          - source: db_password
            target: db
            uid: "1000"
            gid: "1000"
            mode: 0440
    networks:
      front: {}
    volumes:
      data: {}
    secrets:
      db_password: {environment: DB_PASSWORD}
"""


# -- translation ---------------------------------------------------------------------------------------
def test_the_project_name_and_x_provision_settings_make_the_playbook(tmp_path):
    pb = load(tmp_path, FULL, require_secrets=False)
    assert pb.stack == "shop"
    assert pb.hosts == "web"
    assert pb.remote_dir == "/srv/shop"
    assert (pb.registry.server, pb.registry.username, pb.registry.password_env) == \
        ("registry.example.com", "ci", "REG_PW")
    assert pb.service_hosts("app") == "gpu" and pb.service_hosts("db") == "web"
    assert pb.services["app"].rollout_order == "stop-first"
    assert pb.services["app"].health_timeout_s == 30.0 and pb.services["db"].health_timeout_s == 30.0
    assert pb.ordered_services() == ["db", "migrate", "app"]
    assert pb.warnings == []


def test_each_service_key_is_translated(tmp_path):
    pb = load(tmp_path, FULL, require_secrets=False)
    app = pb.services["app"]
    assert app.command == ["sleep", "1d"] and app.environment == {"A": "1"}
    assert app.cap_add == ["NET_ADMIN"] and app.cap_drop == ["MKNOD"]
    assert app.devices == ["/dev/fuse:/dev/fuse:rwm"]
    assert app.tmpfs == ["/tmp:size=1m"]
    assert app.extra_hosts == ["gw:host-gateway"]
    assert (app.logging.driver, app.logging.options) == ("json-file", {"max-size": "10m"})
    assert app.init is True and app.expose == ["9000"] and app.sysctls == {"net.core.somaxconn": "1024"}
    assert (app.hostname, app.ipc, app.stop_signal) == ("app-host", "shareable", "SIGINT")
    assert app.security_opt == ["no-new-privileges:true"]
    assert app.stop_grace_period == 60.0 and app.shm_size == 64 * 2**20
    assert (app.cpus, app.mem_limit, app.pids_limit) == (0.5, 100 * 2**20, 50)
    assert app.gpu_request().count == 1
    assert [(p.target, p.published, p.protocol, p.host_ip) for p in app.ports] == \
        [(80, 8080, "tcp", None), (81, 8081, "udp", "127.0.0.1")]
    assert app.labels == {"tier": "front"} and app.user == "1000" and app.working_dir == "/w"
    assert app.restart == "always" and pb.services["db"].restart == "no"  # Compose's default
    assert app.ulimits["nofile"].soft == 1024
    assert app.aliases(pb) == {"shop_front": ["app", "web", "www"], "shop_default": ["app"]}
    assert {k: v.condition for k, v in app.dependencies.items()} == \
        {"db": "service_healthy", "migrate": "service_completed_successfully"}
    assert [(s.source, s.target, s.uid, s.gid, s.mode) for s in app.file_secrets] == \
        [("db_password", "/run/secrets/db", "1000", "1000", 0o440)]
    db = pb.services["db"]
    assert [(s.source, s.target, s.uid, s.mode) for s in db.file_secrets] == \
        [("db_password", "/run/secrets/db_password", "0", 0o400)]
    assert db.healthcheck.start_period == 20.0 and db.healthcheck.start_interval == 1.0
    mounts = db.mounts(pb)
    assert [(m.kind, m.source, m.target, m.tmpfs_size) for m in mounts] == \
        [("volume", "shop_data", "/var/lib/postgresql/data", None), ("tmpfs", "", "/scratch", 1048576)]


def test_a_relative_bind_is_synced_under_remote_dir(tmp_path):
    (tmp_path / "conf").mkdir()
    pb = load(tmp_path, """\
        services:
          web: {image: busybox, volumes: ["./conf:/etc/conf:ro", "/var/log:/host-log"]}
        """)
    assert pb.stack == re.sub(r"[^a-z0-9_-]", "", tmp_path.name.lower())
    mounts = pb.services["web"].mounts(pb)
    assert (mounts[0].kind, mounts[0].source, mounts[0].read_only, mounts[0].local_source) == \
        ("bind", f"{pb.remote_dir}/conf", True, tmp_path / "conf")
    assert (mounts[1].source, mounts[1].local_source) == ("/var/log", None)


def test_project_name_and_profiles_are_passed_to_compose(tmp_path):
    pb = load(tmp_path, """\
        services:
          web: {image: busybox}
          debug: {image: busybox, profiles: [debug]}
        """, project_name="other")
    assert pb.stack == "other" and list(pb.services) == ["web"]
    pb = load(tmp_path, "services:\n  web: {image: busybox}\n  debug: {image: busybox, profiles: [debug]}\n",
              profiles=["debug"])
    assert list(pb.services) == ["web", "debug"]


def test_several_files_are_merged(tmp_path):
    base = write(tmp_path, "name: s\nservices:\n  web: {image: busybox, environment: {A: '1'}}\n")
    over = write(tmp_path, "services:\n  web: {environment: {B: '2'}}\n", "compose.override.yaml")
    pb = load_stack([base, over], environ=ENV)
    assert pb.services["web"].environment == {"A": "1", "B": "2"}


def test_compose_warnings_reach_the_playbook(tmp_path):
    pb = load(tmp_path, "version: '3.8'\nname: s\nservices:\n  web: {image: busybox, environment: {A: '${TAG}'}}\n")
    assert any("version" in w and "obsolete" in w for w in pb.warnings)
    assert any("'TAG'" in w for w in pb.warnings)


def test_the_old_format_is_a_deprecated_alias(tmp_path):
    path = write(tmp_path, "stack: demo\nservices:\n  web: {image: busybox}\n", "stack.yml")
    pb = load_stack(path, environ={})
    assert pb.stack == "demo" and pb.services["web"].restart == "unless-stopped"
    assert len(pb.warnings) == 1 and "deprecated" in pb.warnings[0] and str(path) in pb.warnings[0]


# -- refusals at FILE:LINE ------------------------------------------------------------------------------
def refusal(tmp_path, text: str, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        load(tmp_path, text, **kwargs)
    return str(info.value)


def test_unknown_x_provision_keys_are_refused_at_their_line(tmp_path):
    said = refusal(tmp_path, "name: s\nx-provision:\n  hots: web\nservices:\n  web: {image: busybox}\n")
    assert said.startswith(f"{tmp_path}/compose.yaml:3: x-provision.hots: unknown key"), said
    said = refusal(tmp_path, "name: s\nservices:\n  web:\n    image: busybox\n    x-provision:\n"
                             "      rollout: {ordr: stop-first}\n")
    assert said.startswith(f"{tmp_path}/compose.yaml:6: services.web.x-provision.rollout.ordr: unknown key"), said


def test_bad_x_provision_values_are_refused_at_their_line(tmp_path):
    said = refusal(tmp_path, "name: s\nservices:\n  web:\n    image: busybox\n    x-provision:\n"
                             "      build_on: moon\n")
    assert said.startswith(f"{tmp_path}/compose.yaml:6: services.web.x-provision.build_on:"), said


def test_a_non_gpu_device_request_is_refused(tmp_path):
    said = refusal(tmp_path, """\
        name: s
        services:
          web:
            image: busybox
            deploy:
              resources:
                reservations:
                  devices: [{driver: tpu, count: 1, capabilities: [tpu]}]
        """)
    assert f"{tmp_path}/compose.yaml:" in said and "reservations.devices[0]: device request" in said, said
    # a service that happens to be named `gpus` gets the same check (only the `gpus:` key is GPUs by itself)
    said = refusal(tmp_path, """\
        name: s
        services:
          gpus:
            image: busybox
            deploy:
              resources:
                reservations:
                  devices: [{driver: tpu, count: 1, capabilities: [tpu]}]
        """)
    assert "services.gpus.deploy.resources.reservations.devices[0]: device request" in said, said


def test_an_unset_secret_variable_is_refused_when_deploying(tmp_path):
    said = refusal(tmp_path, "name: s\nservices:\n  web: {image: busybox, secrets: [k]}\n"
                             "secrets:\n  k: {environment: NOT_SET_ANYWHERE}\n")
    assert said.startswith(f"{tmp_path}/compose.yaml:5: secrets.k.environment:"), said


def test_container_name_with_replicas_is_refused(tmp_path):
    said = refusal(tmp_path, "name: s\nservices:\n  web:\n    image: busybox\n    container_name: w\n"
                             "    deploy: {replicas: 2}\n")
    assert said.startswith(f"{tmp_path}/compose.yaml:5: services.web.container_name:"), said


def test_swarm_refuses_what_it_cannot_do_at_the_key(tmp_path):
    pb = load(tmp_path, "name: s\nservices:\n  web:\n    image: busybox\n    cap_add: [NET_ADMIN]\n")
    with pytest.raises(InputError) as info:
        swarm_spec.validate(pb)
    assert str(info.value).startswith(f"{tmp_path}/compose.yaml:5: services.web.cap_add: not supported by "
                                      "provision under --swarm"), info.value


# -- docker create arguments and the hash ------------------------------------------------------------------
def test_create_arguments_carry_the_compose_keys(tmp_path):
    pb = load(tmp_path, FULL, require_secrets=False)
    spec = container_specs(pb, "app", "sha256:" + "a" * 64)[0]
    kw = create_kwargs(spec, API, name="shop-app-1", secret_values={}, hash="h")
    hc = kw["host_config"]
    assert kw["hostname"] == "app-host" and kw["stop_signal"] == "SIGINT"
    assert kw["environment"] == {"A": "1"}  # no secret in the environment
    assert hc["CapAdd"] == ["CAP_NET_ADMIN"] and hc["CapDrop"] == ["CAP_MKNOD"]  # as the docker CLI and Compose send them
    assert hc["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                              "CgroupPermissions": "rwm"}]
    assert hc["Tmpfs"] == {"/tmp": "size=1m"}
    assert hc["ExtraHosts"] == ["gw:host-gateway"]
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m"}}
    assert hc["Init"] is True and hc["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert hc["IpcMode"] == "shareable" and hc["SecurityOpt"] == ["no-new-privileges:true"]
    assert hc["PidsLimit"] == 50 and hc["NanoCpus"] == 500_000_000 and hc["Memory"] == 100 * 2**20
    assert hc["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    assert hc["DeviceRequests"][0]["Count"] == 1
    assert {"Target": "/run/secrets/db", "Source": f"{secrets_folder('shop', 'app')}/db_password",
            "Type": "bind", "ReadOnly": True} in [{k: m[k] for k in ("Target", "Source", "Type", "ReadOnly")}
                                                   for m in hc["Mounts"]]
    assert ("9000", "tcp") in [(str(p), proto) for p, proto in kw["ports"]]
    assert kw["networking_config"]["EndpointsConfig"]["shop_front"]["Aliases"] == ["app", "web", "www"]


def test_tmpfs_mounts_and_start_interval(tmp_path):
    pb = load(tmp_path, FULL, require_secrets=False)
    spec = container_specs(pb, "db", "sha256:" + "a" * 64)[0]
    kw = create_kwargs(spec, API, name="shop-db-1", secret_values={}, hash="h")
    tmpfs = [m for m in kw["host_config"]["Mounts"] if m["Type"] == "tmpfs"]
    assert tmpfs == [{"Target": "/scratch", "Source": None, "Type": "tmpfs", "ReadOnly": False,
                      "TmpfsOptions": {"SizeBytes": 1048576}}]
    assert kw["healthcheck"]["StartInterval"] == 1_000_000_000 and kw["healthcheck"]["StartPeriod"] == 20 * 10**9


def test_network_mode_and_service_modes(tmp_path):
    pb = load(tmp_path, "name: s\nservices:\n  db: {image: busybox}\n"
                        "  side: {image: busybox, network_mode: 'service:db', pid: 'service:db'}\n")
    spec = container_specs(pb, "side", "")[0]
    kw = create_kwargs(spec, API, name="s-side-1", secret_values={}, hash="h")
    assert kw["host_config"]["NetworkMode"] == "container:s-db-1"
    assert kw["host_config"]["PidMode"] == "container:s-db-1"
    assert kw["networking_config"] is None


@pytest.mark.parametrize("change", ["cap_add: [SYS_ADMIN]", "sysctls: {net.core.somaxconn: 2048}",
                                    "extra_hosts: ['db:10.0.0.2']", "init: false", "tmpfs: [/run]",
                                    "logging: {driver: local}", "hostname: h2",
                                    "networks: {default: {aliases: [x]}}"])
def test_a_change_of_a_new_key_changes_the_spec_hash(tmp_path, change):
    base = "name: s\nservices:\n  web:\n    image: busybox\n"
    before = spec_hash(container_specs(load(tmp_path, base), "web", "")[0], {})
    after = spec_hash(container_specs(load(tmp_path, base + f"    {change}\n"), "web", "")[0], {})
    assert before != after


def test_an_unset_new_key_leaves_the_hash_of_an_old_playbook_alone(tmp_path):
    """Upgrading provision does not recreate containers: new fields at their default are not hashed."""
    from provision.deploy.container_spec import canonical_json

    path = write(tmp_path, "stack: demo\nservices:\n  web:\n    image: busybox\n"
                           "    healthcheck: {test: [CMD, 'true']}\n", "stack.yml")
    spec = container_specs(load_stack(path, environ={}), "web", "")[0]
    text = canonical_json(spec, {})
    for name in ("cap_add", "sysctls", "aliases", "secrets_version", "start_interval", "tmpfs_size"):
        assert f'"{name}"' not in text


# -- Compose secrets on the host -----------------------------------------------------------------------------
SECRET_STACK = """\
    name: shop
    services:
      web:
        image: busybox:1.36
        command: [sleep, 1d]
        secrets: [db_password]
    secrets:
      db_password: {environment: DB_PASSWORD}
"""


def test_secret_builders_are_exact():
    assert commands.make_secrets_folder("/run/provision/secrets/shop/web") == (
        "mkdir -p -m 0700 /run/provision/secrets/shop/web && chmod 0700 /run/provision/secrets/shop/web && "
        "[ \"$(stat -f -c %T /run/provision/secrets/shop/web)\" = tmpfs ] || "
        "{ echo '/run/provision/secrets/shop/web is not on a tmpfs: refusing to write secrets there' >&2; exit 5; }")
    assert commands.make_secrets_stage() == (
        "d=$(mktemp -d /dev/shm/provision-secrets.XXXXXX) && "
        "if [ \"$(stat -f -c %T \"$d\")\" = tmpfs ]; then echo \"$d\"; "
        "else rmdir \"$d\"; echo '/dev/shm is not a tmpfs: refusing to write secrets there' >&2; exit 5; fi")
    assert commands.install_secret("/dev/shm/p.1/k", "/run/provision/secrets/s/w/k", "0", "0", 0o400) == (
        "if cmp -s /dev/shm/p.1/k /run/provision/secrets/s/w/k; then rm -f -- /dev/shm/p.1/k; "
        "else mv -f -- /dev/shm/p.1/k /run/provision/secrets/s/w/k; fi && "
        "chown 0:0 /run/provision/secrets/s/w/k && chmod 0400 /run/provision/secrets/s/w/k && "
        "stat -c %i-%Y /run/provision/secrets/s/w/k")
    assert commands.secret_versions(["/a", "/b"]) == \
        "stat -c %i-%Y /a 2>/dev/null || echo -; stat -c %i-%Y /b 2>/dev/null || echo -"
    assert commands.remove_secrets_stage("/dev/shm/p.1") == "rm -rf -- /dev/shm/p.1"
    assert commands.remove_secrets_folder("/run/provision/secrets/s/w") == "rm -rf -- /run/provision/secrets/s/w"


def deploy_secrets(tmp_path, monkeypatch, executor, engine):
    path = write(tmp_path, SECRET_STACK)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    monkeypatch.setattr(remote_docker, "client_for", lambda ex, settings: engine)
    playbook, targets, services_by_host = deploy.load([path], inventory, None, environ=ENV)
    sources = {"web": image_sources.ImageSource(IMAGE, image_sources.PULL, note="pulled")}
    context = deploy.DeployContext(playbook, services_by_host, sources, {}, ENV, False, run_id=RUN,
                                   file_secrets=playbook.file_secret_values(ENV))
    return drive("deploy", deploy.host_work(context), executor), playbook


def secrets_host(version: str = "42-1700000000"):
    from provision.commands import host_health
    from provision.executor.fake import RecordingExecutor

    executor = RecordingExecutor("h1")
    executor.respond(re.escape(host_health.free_space(ROOT)), stdout=DF)
    executor.respond(re.escape(commands.make_secrets_stage()), stdout="/dev/shm/provision-secrets.abc\n")
    executor.respond("^if cmp -s", stdout=version + "\n")
    return executor


def test_a_secret_is_written_to_the_tmpfs_folder_by_sftp_and_never_in_a_command(tmp_path, monkeypatch):
    executor, engine = secrets_host(), Engine()
    result, _ = deploy_secrets(tmp_path, monkeypatch, executor, engine)
    assert result.status == "changed", result.steps
    folder = "/run/provision/secrets/shop/web"
    stage = "/dev/shm/provision-secrets.abc"
    shells = executor.shells
    i = shells.index(commands.make_secrets_folder(folder))
    assert shells[i:i + 4] == [commands.make_secrets_folder(folder), commands.make_secrets_stage(),
                               commands.install_secret(f"{stage}/db_password", f"{folder}/db_password", "0", "0",
                                                       0o400),
                               commands.remove_secrets_stage(stage)]
    assert [become for shell, become in executor.commands[i:i + 4]] == [True, False, True, False]
    assert executor.puts == [(f"{stage}/db_password", b"hunter2-secret-value", 0o600)]
    everything = " ".join(shells) + repr(result.steps) + repr(engine.changes)
    assert "hunter2" not in everything


def test_a_changed_secret_changes_the_spec_hash_without_its_digest(tmp_path, monkeypatch):
    from dataclasses import replace

    pb = load(tmp_path, SECRET_STACK)
    spec = container_specs(pb, "web", "")[0]
    one = spec_hash(replace(spec, secrets_version="42-1700000000"), {})
    two = spec_hash(replace(spec, secrets_version="43-1700000100"), {})
    assert one != two
    from provision.deploy.container_spec import canonical_json

    assert "hunter2" not in canonical_json(replace(spec, secrets_version="42-1700000000"), {})


def test_external_networks_and_volumes_are_kept_external(tmp_path):
    pb = load(tmp_path, "name: s\nservices:\n  web: {image: busybox, networks: [proxy], volumes: [data:/d]}\n"
                        "networks:\n  proxy: {external: true}\nvolumes:\n  data: {external: true, name: shared}\n")
    assert pb.networks["proxy"].external and pb.network_name("proxy") == "proxy"
    assert pb.volumes["data"].external and pb.volume_name("data") == "shared"


# -- depends_on conditions at deploy time ----------------------------------------------------------------------
DEPENDS_STACK = """\
    name: shop
    services:
      db:
        image: busybox:1.36
        healthcheck: {test: [CMD, "true"]}
      migrate:
        image: busybox:1.36
        depends_on: {db: {condition: service_healthy}}
      web:
        image: busybox:1.36
        depends_on:
          migrate: {condition: service_completed_successfully}
          db: {condition: service_started}
"""


def test_depends_on_conditions_wait_in_order(tmp_path, monkeypatch):
    from provision.commands import host_health
    from provision.deploy import rollout
    from provision.executor.fake import RecordingExecutor

    waits = []
    monkeypatch.setattr(rollout, "wait_healthy", lambda client, name, timeout, stop: waits.append(("healthy", name)))
    monkeypatch.setattr(rollout, "wait_exited_ok", lambda client, name, timeout, stop: waits.append(("exit 0", name)))
    path = write(tmp_path, DEPENDS_STACK)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    engine = Engine()
    monkeypatch.setattr(remote_docker, "client_for", lambda ex, settings: engine)
    playbook, targets, services_by_host = deploy.load([path], inventory, None, environ=ENV)
    sources = {n: image_sources.ImageSource(IMAGE, image_sources.PULL, note="pulled") for n in playbook.services}
    context = deploy.DeployContext(playbook, services_by_host, sources, {}, ENV, False, run_id=RUN)
    executor = RecordingExecutor("h1")
    executor.respond(re.escape(host_health.free_space(ROOT)), stdout=DF)
    result = drive("deploy", deploy.host_work(context), executor)
    assert result.status == "changed", result.steps
    assert waits == [("healthy", "shop-db-1"), ("exit 0", "shop-migrate-1")]
    created = [c[1] for c in engine.changes if c[0] == "create container"]
    assert created == ["shop-db-1.next", "shop-migrate-1.next", "shop-web-1.next"]


def test_a_failed_wait_stops_the_host_before_the_dependent_service(tmp_path, monkeypatch):
    from provision.commands import host_health
    from provision.deploy import rollout
    from provision.executor.fake import RecordingExecutor

    def unhealthy(client, name, timeout, stop):
        raise rollout.RolloutFailed("healthcheck reports unhealthy")

    monkeypatch.setattr(rollout, "wait_healthy", unhealthy)
    path = write(tmp_path, DEPENDS_STACK)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    engine = Engine()
    monkeypatch.setattr(remote_docker, "client_for", lambda ex, settings: engine)
    loaded = deploy.load([path], inventory, None, environ=ENV)
    sources = {n: image_sources.ImageSource(IMAGE, image_sources.PULL, note="pulled") for n in loaded[0].services}
    context = deploy.DeployContext(loaded[0], loaded[2], sources, {}, ENV, False, run_id=RUN)
    executor = RecordingExecutor("h1")
    executor.respond(re.escape(host_health.free_space(ROOT)), stdout=DF)
    result = drive("deploy", deploy.host_work(context), executor)
    assert result.status == "failed"
    assert "depends_on db (service_healthy): healthcheck reports unhealthy" in repr(result.steps)
    assert [c[1] for c in engine.changes if c[0] == "create container"] == ["shop-db-1.next"]


def test_gpu_driver_and_bind_host_paths_as_compose_sends_them(tmp_path):
    pb = load(tmp_path, "name: s\nservices:\n  web:\n    image: busybox\n    volumes: ['/data/models:/models']\n"
                        "    deploy: {resources: {reservations: {devices: [{driver: nvidia, capabilities: [gpu]}]}}}\n")
    spec = container_specs(pb, "web", "")[0]
    hc = create_kwargs(spec, API, name="s-web-1", secret_values={}, hash="h")["host_config"]
    assert hc["DeviceRequests"] == [{"Driver": "nvidia", "Count": -1, "DeviceIDs": [],
                                     "Capabilities": [["gpu"]], "Options": {}}]
    mount = pb.services["web"].mounts(pb)[0]
    assert (mount.kind, mount.source, mount.local_source, mount.create_host_path) == \
        ("bind", "/data/models", None, True)


def test_swarm_tasks_restart_when_a_compose_service_says_nothing(tmp_path):
    pb = load(tmp_path, "name: s\nservices:\n  a: {image: busybox}\n  b: {image: busybox, restart: 'no'}\n")
    assert (pb.services["a"].restart, pb.services["a"].swarm_restart) == ("no", "always")
    assert pb.services["b"].swarm_restart == "no"
    kwargs = swarm_spec.service_kwargs(pb, "a", "busybox", {}, "h")
    assert kwargs["task_template"]["RestartPolicy"]["Condition"] == "any"
