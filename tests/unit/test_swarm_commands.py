"""Swarm: exact command strings, the probe parsers on output captured from sandbox hosts, role selection,
the decisions, and the whole workflow against fake executors (no network).

Captures: the probe scripts of provision.facts.swarm run with `sh -s` as root on sandbox hosts (Debian 12,
Debian's docker.io 20.10.24) on 2026-11-22: a fresh engine (INACTIVE), the swarm's first manager (MANAGER),
a worker (WORKER), the engine stopped (DAEMON_DOWN), and the cluster probe on the leader of a swarm with a
second manager (CLUSTER_TWO_MANAGERS; the secret part of both join tokens replaced by REDACTED).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from provision.commands import swarm as cmd
from provision.config.connection import connection_settings
from provision.errors import EXIT_BAD_INPUT, InputError
from provision.executor.base import CommandResult, as_shell
from provision.secret import Secret
from provision.facts import swarm as facts
from provision.operations.base import Change, NoChange, Refusal
from provision.config.host_settings import SwarmSettings
from provision.operations import swarm as decide
from provision.operations.gpu_host import NO_GPU
from provision.workflows import swarm as wf
from provision.workflows import swarm_targets as members
from provision.workflows.fanout import RunOptions
from provision.workflows.targets import Target

INACTIVE = r'''@@provision-facts-begin 1
@@provision-fact swarm
{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}
@@provision-rc swarm 0
@@provision-fact route
default via 172.19.0.1 dev eth0 
@@provision-rc route 0
@@provision-fact addrs
2: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\       valid_lft forever preferred_lft forever
7: docker_gwbridge    inet 172.18.0.1/16 brd 172.18.255.255 scope global docker_gwbridge\       valid_lft forever preferred_lft forever
751: eth0    inet 172.19.0.5/16 brd 172.19.255.255 scope global eth0\       valid_lft forever preferred_lft forever
@@provision-rc addrs 0
@@provision-facts-end
'''

MANAGER = r'''@@provision-facts-begin 1
@@provision-fact swarm
{"NodeID":"xvhxlmr6sug6f117i637mutnb","NodeAddr":"172.19.0.4","LocalNodeState":"active","ControlAvailable":true,"Error":"","RemoteManagers":[{"NodeID":"xvhxlmr6sug6f117i637mutnb","Addr":"172.19.0.4:2377"}],"Nodes":2,"Managers":1,"Cluster":{"ID":"ledsd6ijd26jr97zd4jnyitq8","Version":{"Index":10},"CreatedAt":"2026-11-22T06:31:56.708037947Z","UpdatedAt":"2026-11-22T06:31:56.817818149Z","Spec":{"Name":"default","Labels":{},"Orchestration":{"TaskHistoryRetentionLimit":5},"Raft":{"SnapshotInterval":10000,"KeepOldSnapshots":0,"LogEntriesForSlowFollowers":500,"ElectionTick":10,"HeartbeatTick":1},"Dispatcher":{"HeartbeatPeriod":5000000000},"CAConfig":{"NodeCertExpiry":7776000000000000},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}},"TLSInfo":{"TrustRoot":"-----BEGIN CERTIFICATE-----\nMIIBajCCARCgAwIBAgIUJd3hrbxIZuIOg4d+K8WevL5NIsIwCgYIKoZIzj0EAwIw\nEzERMA8GA1UEAxMIc3dhcm0tY2EwHhcNMjYxMTIyMDYyNzAwWhcNNDYxMTE3MDYy\nNzAwWjATMREwDwYDVQQDEwhzd2FybS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\nA0IABIpvR2+24eb1GX64jp7+hM1B1fFD7djMmU3gu1BHcsyKgKZxwDy5JVKERyfY\nYOiPgcQ07Sf3D+YXWTE51+RfFE+jQjBAMA4GA1UdDwEB/wQEAwIBBjAPBgNVHRMB\nAf8EBTADAQH/MB0GA1UdDgQWBBTDpf2a31BPzrfkEIeHmg+qob4wADAKBggqhkjO\nPQQDAgNIADBFAiEArPwOMMwjtSDhpVRz8/Q7e0wnMNFuUkfWILmz22hivvQCIHdq\njVE4+REejNgB4s0lGOyzlGCQ+501uSd1gSd9oS0W\n-----END CERTIFICATE-----\n","CertIssuerSubject":"MBMxETAPBgNVBAMTCHN3YXJtLWNh","CertIssuerPublicKey":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEim9Hb7bh5vUZfriOnv6EzUHV8UPt2MyZTeC7UEdyzIqApnHAPLklUoRHJ9hg6I+BxDTtJ/cP5hdZMTnX5F8UTw=="},"RootRotationInProgress":false,"DefaultAddrPool":["10.0.0.0/8"],"SubnetSize":24,"DataPathPort":4789}}
@@provision-rc swarm 0
@@provision-fact route
default via 172.19.0.1 dev eth0 
@@provision-rc route 0
@@provision-fact addrs
2: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\       valid_lft forever preferred_lft forever
7: docker_gwbridge    inet 172.18.0.1/16 brd 172.18.255.255 scope global docker_gwbridge\       valid_lft forever preferred_lft forever
749: eth0    inet 172.19.0.4/16 brd 172.19.255.255 scope global eth0\       valid_lft forever preferred_lft forever
@@provision-rc addrs 0
@@provision-facts-end
'''

WORKER = r'''@@provision-facts-begin 1
@@provision-fact swarm
{"NodeID":"ay19339ew27y3s7d94kwue24q","NodeAddr":"172.19.0.5","LocalNodeState":"active","ControlAvailable":false,"Error":"","RemoteManagers":[{"NodeID":"xvhxlmr6sug6f117i637mutnb","Addr":"172.19.0.4:2377"}]}
@@provision-rc swarm 0
@@provision-fact route
default via 172.19.0.1 dev eth0 
@@provision-rc route 0
@@provision-fact addrs
2: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\       valid_lft forever preferred_lft forever
7: docker_gwbridge    inet 172.18.0.1/16 brd 172.18.255.255 scope global docker_gwbridge\       valid_lft forever preferred_lft forever
751: eth0    inet 172.19.0.5/16 brd 172.19.255.255 scope global eth0\       valid_lft forever preferred_lft forever
@@provision-rc addrs 0
@@provision-facts-end
'''

DAEMON_DOWN = r'''@@provision-facts-begin 1
@@provision-fact swarm

template: :1:7: executing "" at <.Swarm>: reflect: indirection through nil pointer to embedded struct field Info
@@provision-rc swarm 1
@@provision-fact route
default via 172.19.0.1 dev eth0 
@@provision-rc route 0
@@provision-fact addrs
2: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\       valid_lft forever preferred_lft forever
7: docker_gwbridge    inet 172.18.0.1/16 brd 172.18.255.255 scope global docker_gwbridge\       valid_lft forever preferred_lft forever
751: eth0    inet 172.19.0.5/16 brd 172.19.255.255 scope global eth0\       valid_lft forever preferred_lft forever
@@provision-rc addrs 0
@@provision-facts-end
'''

CLUSTER_TWO_MANAGERS = r'''@@provision-facts-begin 1
@@provision-fact swarm
{"NodeID":"j2idnb194qn4gpc9vrixksks9","NodeAddr":"172.19.0.4","LocalNodeState":"active","ControlAvailable":true,"Error":"","RemoteManagers":[{"NodeID":"etvfwzooc9r1zj6qzxoq8nmi9","Addr":"172.19.0.5:2377"},{"NodeID":"j2idnb194qn4gpc9vrixksks9","Addr":"172.19.0.4:2377"}],"Nodes":3,"Managers":2,"Cluster":{"ID":"63bdd74m0fz9w1ejf2ikt1gxb","Version":{"Index":10},"CreatedAt":"2026-11-22T06:37:25.517619273Z","UpdatedAt":"2026-11-22T06:37:25.624562944Z","Spec":{"Name":"default","Labels":{},"Orchestration":{"TaskHistoryRetentionLimit":5},"Raft":{"SnapshotInterval":10000,"KeepOldSnapshots":0,"LogEntriesForSlowFollowers":500,"ElectionTick":10,"HeartbeatTick":1},"Dispatcher":{"HeartbeatPeriod":5000000000},"CAConfig":{"NodeCertExpiry":7776000000000000},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}},"TLSInfo":{"TrustRoot":"-----BEGIN CERTIFICATE-----\nMIIBaTCCARCgAwIBAgIUCaOzxdpaYOClCz9a6n+QA4UQIu4wCgYIKoZIzj0EAwIw\nEzERMA8GA1UEAxMIc3dhcm0tY2EwHhcNMjYxMTIyMDYzMjAwWhcNNDYxMTE3MDYz\nMjAwWjATMREwDwYDVQQDEwhzd2FybS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\nA0IABKgfQFcPMTK++ERYsgAdfg9efJLahyLnGWmT5VK7AMgnVNkHziIvVVz8vYEg\nNfU3qTksojoA8E2wxua/QJaE+oGjQjBAMA4GA1UdDwEB/wQEAwIBBjAPBgNVHRMB\nAf8EBTADAQH/MB0GA1UdDgQWBBTW0nf/++L1ZcilgqnzauiPNrrwijAKBggqhkjO\nPQQDAgNHADBEAiAocIZnsy3XYT4LYVkcoCg3UONac0u+cYQOLmkFotSq2QIgX283\nbuEhXFRfHE8Av1YhdDHbPXosP+sI+CG8iDLJdNE=\n-----END CERTIFICATE-----\n","CertIssuerSubject":"MBMxETAPBgNVBAMTCHN3YXJtLWNh","CertIssuerPublicKey":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqB9AVw8xMr74RFiyAB1+D158ktqHIucZaZPlUrsAyCdU2QfOIi9VXPy9gSA19TepOSyiOgDwTbDG5r9AloT6gQ=="},"RootRotationInProgress":false,"DefaultAddrPool":["10.0.0.0/8"],"SubnetSize":24,"DataPathPort":4789},"Warnings":["WARNING: Running Swarm in a two-manager configuration. This configuration provides\n         no fault tolerance, and poses a high risk to lose control over the cluster.\n         Refer to https://docs.docker.com/engine/swarm/admin_guide/ to configure the\n         Swarm for fault-tolerance."]}
@@provision-rc swarm 0
@@provision-fact token_manager
SWMTKN-1-REDACTED-aynym025y6dr3atlef2r8q7c0
@@provision-rc token_manager 0
@@provision-fact token_worker
SWMTKN-1-REDACTED-8u6xciwdla2lu3l323xhc1ywh
@@provision-rc token_worker 0
@@provision-fact nodes
j2idnb194qn4gpc9vrixksks9 manager {}
e6gwj6zbxmov9cujxwq3i5mmv worker {"provision.gpu":"true"}
etvfwzooc9r1zj6qzxoq8nmi9 manager {"provision.gpu":"true"}
@@provision-rc nodes 0
@@provision-facts-end
'''

NODES_LABELLED = r'''xvhxlmr6sug6f117i637mutnb manager {}
ay19339ew27y3s7d94kwue24q worker {"provision.gpu":"true","zone":"a"}
'''

ROUTE = "default via 172.19.0.1 dev eth0 "  # as captured, trailing space included


def section(capture: str, name: str) -> str:
    from provision.facts.script import split_sections

    return split_sections(capture)[name].text


def output(*sections: tuple[str, str, int]) -> str:
    """A probe's output in the script's format, from (name, text, rc)."""
    lines = ["@@provision-facts-begin 1"]
    for name, text, rc in sections:
        lines += [f"@@provision-fact {name}", *([text] if text else []), f"@@provision-rc {name} {rc}"]
    return "\n".join(lines + ["@@provision-facts-end"]) + "\n"


ADDRS = section(WORKER, "addrs")
TOKEN_WORKER = "SWMTKN-1-REDACTED-8u6xciwdla2lu3l323xhc1ywh"
TOKEN_MANAGER = "SWMTKN-1-REDACTED-aynym025y6dr3atlef2r8q7c0"


# -- commands: exact strings -----------------------------------------------------------------
def test_command_lines():
    assert as_shell(cmd.info()) == "docker info --format '{{json .Swarm}}'"
    assert as_shell(cmd.init("172.19.0.4")) == "docker swarm init --advertise-addr 172.19.0.4"
    assert as_shell(cmd.init("eth0")) == "docker swarm init --advertise-addr eth0"
    assert cmd.join_request("SWMTKN-1-abc-def", "172.19.0.4:2377", "172.19.0.5") == {
        "RemoteAddrs": ["172.19.0.4:2377"], "ListenAddr": "0.0.0.0:2377", "JoinToken": "SWMTKN-1-abc-def",
        "AdvertiseAddr": "172.19.0.5"}
    assert cmd.describe_join("worker", "172.19.0.4:2377", "172.19.0.5") == (
        'docker API: POST /swarm/join {"AdvertiseAddr": "172.19.0.5", "JoinToken": "<worker-join-token>", '
        '"ListenAddr": "0.0.0.0:2377", "RemoteAddrs": ["172.19.0.4:2377"]}')
    assert as_shell(cmd.label_add("ay19339ew27y3s7d94kwue24q")) == (
        "docker node update --label-add provision.gpu=true -- ay19339ew27y3s7d94kwue24q")
    assert as_shell(cmd.label_rm("ay19339ew27y3s7d94kwue24q")) == (
        "docker node update --label-rm provision.gpu -- ay19339ew27y3s7d94kwue24q")
    assert cmd.node_labels() == (
        "docker node ls -q | xargs -r docker node inspect --format '{{.ID}} {{.Spec.Role}} {{json .Spec.Labels}}'")
    assert cmd.default_route() == "ip -4 route show default"
    assert cmd.global_ipv4_addresses() == "ip -o -4 addr show scope global"


def test_hostile_values_stay_one_argument_and_a_node_is_never_an_option():
    assert as_shell(cmd.init("-x $(id)")) == "docker swarm init --advertise-addr '-x $(id)'"
    assert as_shell(cmd.label_add("--force", "a b", "`id`")) == "docker node update --label-add 'a b=`id`' -- --force"
    assert as_shell(cmd.label_rm("-q", "k;x")) == "docker node update --label-rm 'k;x' -- -q"
    with pytest.raises(ValueError, match="^swarm_advertise_addr contains a NUL byte"):
        cmd.init("eth0\0")


def test_describe_join_refuses_an_unknown_role():
    with pytest.raises(ValueError):
        cmd.describe_join("leader", "172.19.0.4:2377", "172.19.0.5")


def test_no_builder_puts_a_join_token_on_a_command_line():
    public = [name for name in dir(cmd) if not name.startswith("_") and callable(getattr(cmd, name))]
    assert "join" not in public and "join_token" not in public  # the CLI forms (token in argv) are gone
    assert "join-token" not in facts.cluster_probe() and "SWMTKN" not in facts.cluster_probe()


@pytest.mark.parametrize("addr, expected", [
    ("172.19.0.4", "172.19.0.4:2377"), ("172.19.0.4:4000", "172.19.0.4:4000"),
    ("fd00::4", "[fd00::4]:2377"), ("[fd00::4]", "[fd00::4]:2377"), ("[fd00::4]:4000", "[fd00::4]:4000"),
])
def test_join_address(addr, expected):
    assert cmd.join_address(addr) == expected


# -- parsers on captured output --------------------------------------------------------------
def test_parse_inactive_capture():
    state = facts.parse(INACTIVE)
    assert state.docker_error is None
    assert state.info == facts.SwarmInfo(state="inactive")
    assert not state.info.active and not state.info.is_manager
    # docker0 and docker_gwbridge come first in `ip addr`: the default route's interface decides
    assert (state.default_iface, state.default_ipv4) == ("eth0", "172.19.0.5")


def test_parse_manager_capture():
    info = facts.parse(MANAGER).info
    assert (info.state, info.node_id, info.node_addr, info.control_available, info.cluster_id) == (
        "active", "xvhxlmr6sug6f117i637mutnb", "172.19.0.4", True, "ledsd6ijd26jr97zd4jnyitq8")
    assert info.remote_managers == [("xvhxlmr6sug6f117i637mutnb", "172.19.0.4:2377")]
    assert (info.nodes, info.managers) == (2, 1)
    assert info.is_manager and info.manager_addr == "172.19.0.4:2377"
    assert info.describe() == "manager xvhxlmr6sug6f117i637mutnb of swarm ledsd6ijd26jr97zd4jnyitq8"


def test_parse_worker_capture():
    info = facts.parse(WORKER).info
    assert (info.state, info.node_id, info.node_addr, info.control_available, info.cluster_id) == (
        "active", "ay19339ew27y3s7d94kwue24q", "172.19.0.5", False, "")  # workers do not see the cluster
    assert info.remote_managers == [("xvhxlmr6sug6f117i637mutnb", "172.19.0.4:2377")]
    assert info.active and not info.is_manager
    assert info.describe() == "worker ay19339ew27y3s7d94kwue24q of the swarm managed at 172.19.0.4:2377"


def test_parse_daemon_down_capture():
    state = facts.parse(DAEMON_DOWN)
    assert state.info is None
    assert "nil pointer" in state.docker_error
    assert "is docker running?" in decide.engine_problem(state).reason


def test_parse_docker_not_installed():
    state = facts.parse(output(("swarm", "", 127), ("route", ROUTE, 0), ("addrs", ADDRS, 0)))
    assert state.docker_error == "Docker is not installed"
    assert "run `provision docker install` first" in decide.engine_problem(state).reason


def test_parse_json_among_client_warnings():
    info = facts.parse_swarm_info("WARNING: No swap limit support\n" + section(WORKER, "swarm"))
    assert info.node_id == "ay19339ew27y3s7d94kwue24q"
    with pytest.raises(ValueError):
        facts.parse_swarm_info("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")


def test_parse_cluster_capture_with_two_managers():
    cluster = facts.parse_cluster(CLUSTER_TWO_MANAGERS)
    assert cluster.error is None
    # the leader's own manager address, not the first one listed
    assert cluster.info.remote_managers[0] == ("etvfwzooc9r1zj6qzxoq8nmi9", "172.19.0.5:2377")
    assert cluster.info.manager_addr == "172.19.0.4:2377"
    assert cluster.info.cluster_id == "63bdd74m0fz9w1ejf2ikt1gxb"
    assert cluster.nodes == {
        "j2idnb194qn4gpc9vrixksks9": ("manager", {}),
        "e6gwj6zbxmov9cujxwq3i5mmv": ("worker", {"provision.gpu": "true"}),
        "etvfwzooc9r1zj6qzxoq8nmi9": ("manager", {"provision.gpu": "true"}),
    }


# `GET /swarm` on a manager (docker SDK `client.api.inspect_swarm()`), trimmed; secrets replaced by REDACTED
INSPECT_SWARM = {"ID": "ledsd6ijd26jr97zd4jnyitq8", "Version": {"Index": 10},
                 "JoinTokens": {"Worker": TOKEN_WORKER, "Manager": TOKEN_MANAGER}, "RootRotationInProgress": False}


def test_parse_join_tokens_from_the_engine_api():
    tokens = facts.parse_join_tokens(INSPECT_SWARM)
    assert {role: token.reveal() for role, token in tokens.items()} == {"manager": TOKEN_MANAGER, "worker": TOKEN_WORKER}
    assert "SWMTKN" not in repr(tokens)
    assert facts.parse_join_tokens({"ID": "x"}) == {} and facts.parse_join_tokens(None) == {}
    assert facts.parse_join_tokens({"JoinTokens": {"Worker": "", "Manager": TOKEN_MANAGER}}).keys() == {"manager"}


def test_parse_node_labels_capture():
    assert facts.parse_node_labels(NODES_LABELLED) == {
        "xvhxlmr6sug6f117i637mutnb": ("manager", {}),
        "ay19339ew27y3s7d94kwue24q": ("worker", {"provision.gpu": "true", "zone": "a"}),
    }


def test_cluster_probe_failure_is_reported():
    broken = output(("swarm", section(MANAGER, "swarm"), 0),
                    ("nodes", "Error response from daemon: This node is not a swarm manager.", 1))
    assert facts.parse_cluster(broken).error == "nodes: Error response from daemon: This node is not a swarm manager."


@pytest.mark.parametrize("route, addrs, expected", [
    (ROUTE, None, ("eth0", "172.19.0.5")),
    ("default via 10.0.0.1 dev ens5 proto dhcp src 10.0.0.23 metric 100\n", "", ("ens5", "10.0.0.23")),
    ("default via 10.0.0.1 dev ens5 proto dhcp metric 100\ndefault via 10.1.0.1 dev ens6 metric 200\n",
     "2: ens5    inet 10.0.0.23/24 brd 10.0.0.255 scope global dynamic ens5\\       valid_lft 3000sec\n"
     "2: ens5    inet 10.0.0.99/24 scope global secondary ens5\\       valid_lft forever\n"
     "3: ens6    inet 10.1.0.5/24 scope global ens6\\       valid_lft forever\n", ("ens5", "10.0.0.23")),
    ("", None, (None, None)),
    ("default dev wg0 scope link\n", "", ("wg0", None)),
])
def test_default_route_address(route, addrs, expected):
    assert facts.parse_default_ipv4(route, ADDRS if addrs is None else addrs) == expected


# -- roles ----------------------------------------------------------------------------------
def _t(name: str, **hostvars) -> Target:
    return Target(name, connection_settings(name, {"ansible_user": "root"}), hostvars)


def test_roles_from_groups_and_host_var():
    targets = members.resolve_roles([_t("a"), _t("b"), _t("c", swarm_role="manager"), _t("d"), _t("e", swarm_role="worker")],
                               managers=["a"], workers=["b", "e"])
    assert [members.role_of(t) for t in targets] == ["manager", "worker", "manager", None, "worker"]
    assert members.manager_target(targets).name == "a"
    assert members.resolve_roles([_t("x", swarm_role="worker")], managers=["x"], workers=[])[0].hostvars["swarm_role"] == "worker"


def test_roles_errors():
    with pytest.raises(InputError, match="both swarm_managers and swarm_workers"):
        members.resolve_roles([_t("a")], managers=["a"], workers=["a"])
    with pytest.raises(InputError, match="swarm_role"):
        members.resolve_roles([_t("a", swarm_role="leader")], managers=[], workers=[])
    with pytest.raises(InputError, match="no swarm manager among the selected hosts"):
        members.manager_target(members.resolve_roles([_t("a"), _t("b")], managers=[], workers=["a", "b"]))


INI = """[swarm_managers]
m1 ansible_host=127.0.0.1 ansible_port=1
m2 ansible_host=127.0.0.1 ansible_port=2
[swarm_workers]
w1 ansible_host=127.0.0.1 ansible_port=3
[other]
x ansible_host=127.0.0.1 ansible_port=4
"""


def test_load_swarm_targets_from_inventory(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(INI)
    targets = members.load_swarm_targets(path)
    assert {t.name: members.role_of(t) for t in targets} == {"m1": "manager", "m2": "manager", "w1": "worker", "x": None}
    assert members.manager_target(targets).name == "m1"
    assert members.manager_target(members.load_swarm_targets(path, "m2:w1")).name == "m2"
    with pytest.raises(InputError) as exc:
        members.load_swarm_targets(path, "swarm_workers")
    assert exc.value.exit_code == EXIT_BAD_INPUT


def test_cli_no_manager_is_bad_input_before_any_connection(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(INI)  # ports 1-4 on loopback: a connection attempt would fail differently
    proc = subprocess.run([sys.executable, "-m", "provision", "swarm", "init", "-i", str(path), "-l", "w1", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "no swarm manager among the selected hosts" in proc.stderr and proc.stdout == ""


# -- decisions ------------------------------------------------------------------------------
def _probed(capture: str, gpu: bool = False, advertise: str | None = "172.19.0.5") -> decide.Probed:
    return decide.Probed(facts.parse(capture), gpu, "inventory sets gpu: true" if gpu else "no NVIDIA GPU",
                     advertise, "test")


THIS = decide.Cluster("sbx1", "172.19.0.4:2377", "ledsd6ijd26jr97zd4jnyitq8", {"xvhxlmr6sug6f117i637mutnb",
                  "ay19339ew27y3s7d94kwue24q"}, tokens={"worker": Secret(TOKEN_WORKER)})


def test_leader_plan():
    init = decide.leader_plan(_probed(INACTIVE))
    assert isinstance(init, Change) and init.commands == ["docker swarm init --advertise-addr 172.19.0.5"]
    ok = decide.leader_plan(_probed(MANAGER))
    assert isinstance(ok, NoChange) and ok.reason == "leader: already a manager of swarm ledsd6ijd26jr97zd4jnyitq8, 2 node(s)"
    worker = decide.leader_plan(_probed(WORKER))
    assert isinstance(worker, Refusal) and "not a manager" in worker.reason
    no_route = decide.leader_plan(_probed(INACTIVE, advertise=None))
    assert isinstance(no_route, Refusal)


def test_member_joins_with_the_token_of_its_role():
    step, notes = decide.member_plan(_probed(INACTIVE), "worker", THIS)
    assert isinstance(step, Change) and notes == []
    # the token is used only by the API call, never in what the plan/report shows
    assert step.commands == [cmd.describe_join("worker", "172.19.0.4:2377", "172.19.0.5")]
    assert TOKEN_WORKER not in step.reason + repr(step.commands)
    planned = decide.Cluster("sbx1", "172.19.0.4:2377")  # --check before the init: no token exists yet
    step, _ = decide.member_plan(_probed(INACTIVE), "manager", planned)
    assert step.commands == [cmd.describe_join("manager", "172.19.0.4:2377", "172.19.0.5")]


def test_member_already_in_this_swarm_is_ok():
    step, notes = decide.member_plan(_probed(WORKER), "worker", THIS)
    assert isinstance(step, NoChange) and notes == []
    assert step.reason == "already a worker of this swarm (node ay19339ew27y3s7d94kwue24q, 172.19.0.5)"
    step, notes = decide.member_plan(_probed(MANAGER), "worker", THIS)  # the leader's own capture: same cluster
    assert isinstance(step, NoChange)
    assert notes and "docker node demote" in notes[0]


def test_member_in_another_swarm_fails_and_is_left_alone():
    other = facts.parse_cluster(CLUSTER_TWO_MANAGERS).info  # cluster 63bdd..., not ledsd6...
    probed = decide.Probed(facts.SwarmHostState(info=other), False, "", "172.19.0.5", "")
    step, _ = decide.member_plan(probed, "manager", THIS)
    assert isinstance(step, Refusal)
    assert step.reason.startswith("already in another swarm: manager j2idnb194qn4gpc9vrixksks9 of swarm "
                                  "63bdd74m0fz9w1ejf2ikt1gxb, not the one led by sbx1.")
    assert "never leaves or forces" in step.reason
    unknown_worker = decide.Cluster("sbx1", "172.19.0.4:2377", "ledsd6ijd26jr97zd4jnyitq8", {"xvhxlmr6sug6f117i637mutnb"})
    assert isinstance(decide.member_plan(_probed(WORKER), "worker", unknown_worker)[0], Refusal)
    # --check before the init: any swarm a member is in is another one
    assert isinstance(decide.member_plan(_probed(WORKER), "worker", decide.Cluster("sbx1", "x:2377"))[0], Refusal)


def test_member_in_a_pending_or_error_state_is_refused():
    state = facts.SwarmHostState(info=facts.SwarmInfo(state="error", error="rpc error: context deadline exceeded"))
    step, _ = decide.member_plan(decide.Probed(state, False, "", "10.0.0.2", ""), "worker", THIS)
    assert isinstance(step, Refusal)
    assert "'error': rpc error: context deadline exceeded" in step.reason


def test_gpu_label_plan():
    node = "ay19339ew27y3s7d94kwue24q"
    add = decide.label_plan(node, {}, True, "2 NVIDIA GPU(s) found")
    assert isinstance(add, Change) and add.commands == [f"docker node update --label-add provision.gpu=true -- {node}"]
    assert isinstance(decide.label_plan(node, {"provision.gpu": "true"}, True, ""), NoChange)
    rm = decide.label_plan(node, {"provision.gpu": "true", "zone": "a"}, False, "inventory sets gpu: false")
    assert rm.commands == [f"docker node update --label-rm provision.gpu -- {node}"]
    assert decide.label_plan(node, {"zone": "a"}, False, NO_GPU) is None


def test_gpu_node_from_facts_or_var():
    settings = SwarmSettings()
    assert decide.gpu_node(settings, {"gpus": [{"index": 0}]}) == (True, "1 NVIDIA GPU(s) found")
    assert decide.gpu_node(settings, {"gpus": []}) == (False, NO_GPU)
    assert decide.gpu_node(SwarmSettings(gpu=True), {"gpus": []}) == (True, "inventory sets gpu: true")
    assert decide.gpu_node(SwarmSettings(gpu=False), {"gpus": [{"index": 0}]})[0] is False


def test_the_gpu_node_decision_is_nvidia_install_s():
    """One decision, one wording: the label of `swarm init` and the GPU steps of `nvidia install`."""
    from provision.config.host_settings import NvidiaSettings
    from provision.operations.nvidia_install import is_gpu_host

    for gpu in (None, True, False):
        for host_facts in ({"gpus": []}, {"gpus": [{"index": 0}, {"index": 1}]}):
            assert decide.gpu_node(SwarmSettings(gpu=gpu), host_facts) == is_gpu_host(host_facts, NvidiaSettings(gpu=gpu))


def test_role_from_the_var_or_the_groups():
    assert decide.role_for("a", SwarmSettings(swarm_role="worker"), ["a"], []) == "worker"  # the var wins
    assert decide.role_for("a", SwarmSettings(), ["a"], ["b"]) == "manager"
    assert decide.role_for("b", SwarmSettings(), ["a"], ["b"]) == "worker"
    assert decide.role_for("c", SwarmSettings(), ["a"], ["b"]) is None
    with pytest.raises(InputError, match="in both swarm_managers and swarm_workers"):
        decide.role_for("a", SwarmSettings(), ["a"], ["a"])
    assert decide.role_for("a", SwarmSettings(swarm_role="manager"), ["a"], ["a"]) == "manager"
    assert "no swarm manager among the selected hosts" in str(decide.no_manager())


def test_advertise_address():
    state = facts.parse(INACTIVE)
    assert decide.advertise_address(SwarmSettings(), state) == (
        "172.19.0.5", "the IPv4 address of eth0, the default route's interface")
    assert decide.advertise_address(SwarmSettings(swarm_advertise_addr="ens6"), state) == ("ens6", "swarm_advertise_addr")
    assert decide.advertise_address(SwarmSettings(), facts.SwarmHostState())[0] is None


def test_leader_is_the_first_manager_already_managing_a_swarm():
    probed = {"m1": _probed(INACTIVE), "m2": _probed(MANAGER), "m3": _probed(MANAGER)}
    assert decide.choose_leader(["m1", "m2", "m3"], probed) == "m2"
    assert decide.choose_leader(["m1"], {"m1": _probed(INACTIVE)}) == "m1"
    assert decide.choose_leader(["m1", "m2"], {"m2": _probed(INACTIVE)}) == "m1"  # m1 unreachable: still m1


# -- the workflow on fake executors -----------------------------------------------------------
@dataclass
class Scripted:
    """Answers by regex; a list of outputs is consumed in order (the last one repeats)."""

    name: str
    answers: list[tuple[str, list[str]]]
    commands: list[str] = field(default_factory=list)

    def run(self, command, *, become=False, timeout=None):
        shell = as_shell(command)
        self.commands.append(shell)
        for pattern, outputs in self.answers:
            if re.search(pattern, shell):
                return CommandResult(shell, 0, outputs.pop(0) if len(outputs) > 1 else outputs[0])
        return CommandResult(shell, 0, "")

    def close(self):
        pass


PROBE, CLUSTER = r"ip -4 route show default", r"docker node ls -q"


@dataclass
class FakeEngine:
    """The Engine API calls of the workflow (docker SDK `client.api`), recorded; the join can fail."""

    swarm: dict = field(default_factory=lambda: dict(INSPECT_SWARM))
    join_error: Exception | None = None
    calls: list[tuple[str, dict]] = field(default_factory=list)
    closed: int = 0

    @property
    def api(self):
        return self

    def inspect_swarm(self):
        self.calls.append(("inspect_swarm", {}))
        return self.swarm

    def join_swarm(self, **kwargs):
        self.calls.append(("join_swarm", kwargs))
        if self.join_error:
            raise self.join_error
        return True

    def close(self):
        self.closed += 1


def _run(executors: dict[str, Scripted], check: bool = False, engines: dict[str, FakeEngine] | None = None):
    targets = [_t("sbx1", swarm_role="manager", gpu=False), _t("sbx2", swarm_role="worker", gpu=True),
               _t("other")]
    engines = engines if engines is not None else {}
    report = wf.init_swarm(targets, RunOptions(check=check), executor_factory=lambda t, o: executors[t.name],
                           docker_factory=lambda target, executor: engines.setdefault(executor.name, FakeEngine()))
    return report, {name: list(e.commands) for name, e in executors.items()}


def test_fresh_hosts_leader_inits_then_worker_joins_and_gets_the_gpu_label():
    joined = facts.parse(WORKER).info.node_id
    executors = {"sbx1": Scripted("sbx1", [(CLUSTER, [CLUSTER_TWO_MANAGERS]), (PROBE, [INACTIVE])]),
                 "sbx2": Scripted("sbx2", [(PROBE, [INACTIVE, WORKER])])}
    engines: dict[str, FakeEngine] = {}
    report, commands = _run(executors, engines=engines)
    assert commands["sbx1"][1] == "set -e\ndocker swarm init --advertise-addr 172.19.0.5"
    assert commands["sbx1"][2] == facts.cluster_probe()
    assert commands["sbx1"][3] == f"set -e\ndocker node update --label-add provision.gpu=true -- {joined}"
    assert len(commands["sbx1"]) == 4 and len(commands["sbx2"]) == 2  # probe, (API join), probe for the node ID
    # the tokens are read from the leader's engine and the join is the member's engine's API call
    assert engines["sbx1"].calls == [("inspect_swarm", {})]
    assert engines["sbx2"].calls == [("join_swarm", {"remote_addrs": ["172.19.0.4:2377"], "join_token": TOKEN_WORKER,
                                                     "listen_addr": "0.0.0.0:2377", "advertise_addr": "172.19.0.5"})]
    assert engines["sbx1"].closed == engines["sbx2"].closed == 1
    assert not any("SWMTKN" in c for cs in commands.values() for c in cs)  # no command line carries a token
    doc = report.to_dict()
    assert [s["name"] for s in doc["hosts"]["sbx1"]["steps"]] == ["swarm"]
    assert [(s["name"], s["status"]) for s in doc["hosts"]["sbx2"]["steps"]] == [("swarm", "changed"), ("gpu label", "changed")]
    assert doc["hosts"]["sbx2"]["swarm"]["node_id"] == joined
    assert doc["hosts"]["sbx1"]["swarm"]["manager_addr"] == "172.19.0.4:2377"
    assert doc["hosts"]["other"]["status"] == "skipped"
    assert "SWMTKN" not in json.dumps(doc)
    assert report.exit_code() == 0


def test_check_mode_runs_only_the_probes():
    executors = {"sbx1": Scripted("sbx1", [(PROBE, [INACTIVE])]), "sbx2": Scripted("sbx2", [(PROBE, [INACTIVE])])}
    engines: dict[str, FakeEngine] = {}
    report, commands = _run(executors, check=True, engines=engines)
    assert all(len(c) == 1 and PROBE in c[0] for c in commands.values())
    assert engines == {}  # --check never opens the Engine API (no token is read)
    plan = report.to_dict()["hosts"]["sbx2"]["plan"]
    assert [p["commands"] for p in plan] == [
        ['docker API: POST /swarm/join {"AdvertiseAddr": "172.19.0.5", "JoinToken": "<worker-join-token>", '
         '"ListenAddr": "0.0.0.0:2377", "RemoteAddrs": ["172.19.0.5:2377"]}'],
        ["docker node update --label-add provision.gpu=true -- '<node-id>'"]]


def test_second_run_changes_nothing():
    cluster = output(("swarm", section(MANAGER, "swarm"), 0), ("token_worker", "x", 0), ("nodes", NODES_LABELLED.strip(), 0))
    executors = {"sbx1": Scripted("sbx1", [(CLUSTER, [cluster]), (PROBE, [MANAGER])]),
                 "sbx2": Scripted("sbx2", [(PROBE, [WORKER])])}
    engines: dict[str, FakeEngine] = {}
    report, commands = _run(executors, engines=engines)
    assert report.summary() == {"ok": 2, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 1}
    assert not any(c.startswith("set -e") for cs in commands.values() for c in cs)
    assert engines == {}  # nobody joins: no token is read
    assert [s.name for s in report.hosts["sbx2"].steps] == ["swarm", "gpu label"]


def test_a_failed_leader_skips_the_others():
    executors = {"sbx1": Scripted("sbx1", [(PROBE, [DAEMON_DOWN])]), "sbx2": Scripted("sbx2", [(PROBE, [INACTIVE])])}
    report, commands = _run(executors)
    assert report.hosts["sbx1"].status == "failed"
    assert report.hosts["sbx2"].status == "skipped" and "swarm leader sbx1 is not available" in report.hosts["sbx2"].skipped
    assert report.exit_code() == 2 and len(commands["sbx2"]) == 1


def test_a_refused_join_is_a_failed_step_that_never_shows_the_token():
    import docker.errors

    executors = {"sbx1": Scripted("sbx1", [(CLUSTER, [CLUSTER_TWO_MANAGERS]), (PROBE, [INACTIVE])]),
                 "sbx2": Scripted("sbx2", [(PROBE, [INACTIVE])])}
    refused = docker.errors.APIError("500 Server Error", explanation=f"invalid join token {TOKEN_WORKER}")
    engines = {"sbx2": FakeEngine(join_error=refused)}
    report, commands = _run(executors, engines=engines)
    step = report.hosts["sbx2"].steps[0]
    assert (step.name, step.status) == ("swarm", "failed")
    assert step.message == "swarm join (Engine API): invalid join token ********"
    assert "SWMTKN" not in json.dumps(report.to_dict())
    assert len(commands["sbx2"]) == 1 and engines["sbx2"].closed == 1  # no probe after a failed join
    assert report.exit_code() == 2


def test_leader_without_a_token_fails_and_the_members_are_skipped():
    executors = {"sbx1": Scripted("sbx1", [(CLUSTER, [CLUSTER_TWO_MANAGERS]), (PROBE, [INACTIVE])]),
                 "sbx2": Scripted("sbx2", [(PROBE, [INACTIVE])])}
    engines = {"sbx1": FakeEngine(swarm={"ID": "x"})}
    report, commands = _run(executors, engines=engines)
    assert report.hosts["sbx1"].steps[-1].message == "cannot read the swarm from sbx1: the engine gave no worker join token"
    assert report.hosts["sbx2"].status == "skipped"
    assert "sbx2" not in engines
