"""The bad-input corpus: every case runs the real CLI and must exit 4 with one line naming the file
and line of the mistake (a usage error may keep Click's Usage/Try/Error block), no traceback, within
seconds (an alarm) and bounded memory (RLIMIT_AS), and with ZERO TCP connections: every inventory
host points at a local listener that counts the connections it accepts.

Each case runs in its own process forked from a few pre-imported CLI servers (see "Running the
cases"); a sample also runs through a fresh `python -m provision` and must agree, and a control
run shows that the listener does count a real attempt. Remote text holding rich markup goes
through the real renderers at the end of the module.
"""

from __future__ import annotations

import io
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TIME_LIMIT_S = 10.0  # per case; a real one takes about half a second
MEMORY_LIMIT = 1 << 30  # address space of each CLI process (a bomb gets MemoryError, which must not happen)
VAULT = "$ANSIBLE_VAULT;1.1;AES256\n" + "\n".join(["6162636465663031323334353637383961626364656630313233343536373839"] * 4) + "\n"
VAULT_TAGGED = "!vault |\n" + "".join(f"          {line}\n" for line in VAULT.splitlines())
BIG_INT = "9" * 5000  # beyond Python's int-from-text limit (4300 digits)


class CountingListeners:
    """TCP listeners on 127.0.0.1 (one per case) that accept, count and close every connection,
    all served by one thread."""

    def __init__(self, names) -> None:
        self.selector = selectors.DefaultSelector()
        self.port: dict[str, int] = {}
        self.count: dict[str, int] = {}
        for name in names:
            sock = socket.create_server(("127.0.0.1", 0))
            sock.setblocking(False)
            self.port[name] = sock.getsockname()[1]
            self.count[name] = 0
            self.selector.register(sock, selectors.EVENT_READ, name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.selector.select(timeout=0.05):
                try:
                    conn, _ = key.fileobj.accept()
                except OSError:
                    continue
                self.count[key.data] += 1
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

GOOD_INI = "web1 ansible_host=127.0.0.1 ansible_port=@PORT@ ansible_user=root\n"
GOOD_YAML = "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_port: @PORT@\n"
GOOD_PLAYBOOK = "stack: demo\nservices:\n  web:\n    image: busybox:1.36\n"


@dataclass
class Case:
    id: str
    argv: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    where: str | None = None  # the message starts with this (FILE:LINE: or FILE:)
    says: str = ""  # and contains this
    usage: bool = False  # a Click usage error (Usage/Try/Error block)
    special: str | None = None  # "fifo", "unreadable", "sparse", "exec": set up by the runner


def inv(case_id: str, name: str, text: str | bytes, where: str | None, says: str, **extra) -> Case:
    """An inventory case: `provision facts -i NAME` (facts would connect to every host)."""
    files = {name: text, **extra.pop("files", {})}
    return Case(case_id, ["facts", "-i", name], files, where, says, **extra)


def settings(case_id: str, files: dict[str, str], where: str, says: str, command=("docker", "install")) -> Case:
    """A per-host setting case: `provision docker install --check -i inv.yml` (or the .ini given)."""
    inventory = next(name for name in files if name.startswith("inv."))
    return Case(case_id, [*command, "--check", "-i", inventory], files, where, says)


def pb(case_id: str, text: str | bytes, where: str | None, says: str, **extra) -> Case:
    """A playbook case: `provision deploy --check stack.yml -i good.ini`."""
    files = {"stack.yml": text, "good.ini": GOOD_INI, **extra.pop("files", {})}
    return Case(case_id, ["deploy", "--check", "stack.yml", "-i", "good.ini"], files, where, says, **extra)


def cli(case_id: str, args: list[str], says: str, *, usage: bool = True, where: str | None = None) -> Case:
    files = {"good.ini": GOOD_INI, "stack.yml": GOOD_PLAYBOOK, "groups.ini": "[web]\n" + GOOD_INI + "[db]\n"}
    return Case(case_id, args, files, where, says, usage=usage)


def laughs(prefix: str, indent: str) -> str:
    """A billion-laughs document body: 9 levels of 9 aliases each (about 10^9 strings expanded)."""
    lines = [f'{indent}l0: &l0 "lol"']
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"{indent}l{level}: &l{level} [{refs}]")
    return prefix + "\n".join(lines) + "\n"


def service(body: str) -> str:
    """A playbook with one service `web` whose keys are ``body`` (lines at 4 spaces)."""
    return "stack: demo\nservices:\n  web:\n" + body


DEEP_FLOW = "[" * 5000 + "]" * 5000
DEEP_MAP = "{a: " * 3000 + "1" + "}" * 3000

CASES: list[Case] = [
    # -- INI inventories ----------------------------------------------------------------------------
    inv("ini-bad-section-header", "inv.ini", "[web prod]\nweb1\n", "inv.ini:1:", "invalid section header"),
    inv("ini-unknown-section-kind", "inv.ini", "[web:hostz]\nweb1\n", "inv.ini:1:", "unknown type"),
    inv("ini-vars-without-equals", "inv.ini", GOOD_INI + "[all:vars]\nntp\n", "inv.ini:3:", "expected key=value"),
    inv("ini-undefined-child", "inv.ini", GOOD_INI + "[site:children]\nnope\n", "inv.ini:3:", "undefined group 'nope'"),
    inv("ini-vars-undefined-group", "inv.ini", GOOD_INI + "[db:vars]\nx=1\n", "inv.ini:2:", "undefined group 'db'"),
    inv("ini-bad-range", "inv.ini", "web[01:x] ansible_port=@PORT@\n", "inv.ini:1:", "invalid host range"),
    inv("ini-range-bomb", "inv.ini", "web[0:99999999999] ansible_host=127.0.0.1\n", "inv.ini:1:", "too many hosts"),
    inv("ini-nested-range-bomb", "inv.ini", "n[0:9999]-[0:9999]-[0:9999] ansible_host=127.0.0.1\n", "inv.ini:1:",
        "too many hosts"),
    inv("ini-many-ranges", "inv.ini", "".join(f"w{i}-[0:49999] ansible_host=127.0.0.1\n" for i in range(3)),
        "inv.ini:3:", "too many hosts"),
    inv("ini-unterminated-quote", "inv.ini", 'web1 ansible_host="127.0.0.1\n', "inv.ini:1:", "cannot parse host line"),
    inv("ini-token-without-equals", "inv.ini", "web1 ansible_host\n", "inv.ini:1:", "expected key=value"),
    inv("ini-trailing-colon", "inv.ini", "web1: ansible_host=127.0.0.1\n", "inv.ini:1:", "trailing ':'"),
    inv("ini-group-cycle", "inv.ini", GOOD_INI + "[a:children]\nb\n[b:children]\na\n", "inv.ini:", "own ancestor"),
    inv("ini-not-utf8", "inv.ini", GOOD_INI.encode() + b"web2 ansible_user=\xff\xfe\n", "inv.ini:2:", "UTF-8"),
    inv("ini-nul-byte", "inv.ini", b"web1\x00 ansible_host=127.0.0.1\n", "inv.ini:1:", "NUL"),
    inv("ini-binary-file", "inv.ini", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)), "inv.ini:1:",
        ""),
    inv("ini-vault-encrypted", "inv.ini", VAULT, "inv.ini:1:", "ansible-vault"),
    inv("vault-encrypted-no-extension", "hosts", VAULT, "hosts:1:", "ansible-vault"),
    inv("ini-bad-group-priority", "inv.ini", GOOD_INI + "[all:vars]\nansible_group_priority=high\n", "inv.ini:3:",
        "must be an integer"),
    inv("ini-empty-file", "inv.ini", "", "inv.ini:", "no hosts"),
    inv("ini-only-comments", "inv.ini", "# nothing here\n; nor here\n", "inv.ini:", "no hosts"),
    inv("ini-groups-without-hosts", "inv.ini", "[web]\n[db]\n", "inv.ini:", "no hosts"),
    inv("ini-yaml-document-marker", "inv.ini", "---\n" + GOOD_INI, "inv.ini:1:", "looks like a YAML file"),
    inv("ini-huge-port", "inv.ini", f"web1 ansible_host=127.0.0.1 ansible_port={BIG_INT}\n", "inv.ini:1:", "ansible_port"),
    inv("ini-bad-port", "inv.ini", "web1 ansible_host=127.0.0.1 ansible_port=ssh\n", "inv.ini:1:", "ansible_port"),
    inv("ini-bad-become", "inv.ini", GOOD_INI + "[all:vars]\nansible_become=maybe\n", "inv.ini:3:", "ansible_become"),
    inv("ini-bad-connection", "inv.ini", "web1 ansible_connection=winrm ansible_port=@PORT@\n", "inv.ini:1:", "winrm"),
    inv("ini-bad-timeout", "inv.ini", GOOD_INI.rstrip() + " ansible_timeout=soon\n", "inv.ini:1:", "ansible_timeout"),
    inv("ini-bad-proxyjump", "inv.ini", GOOD_INI.rstrip() + " ansible_ssh_common_args='-J bastion:port'\n", "inv.ini:1:",
        "ProxyJump"),
    inv("ini-empty-host-name", "inv.ini", GOOD_INI + "'' ansible_host=127.0.0.1\n", "inv.ini:2:", "empty host name"),
    inv("ini-duplicate-group-var", "inv.ini", GOOD_INI + "[all:vars]\nntp=a\nx=1\nntp=b\n", "inv.ini:5:",
        "duplicate key 'ntp'"),
    inv("ini-duplicate-inline-var", "inv.ini", GOOD_INI.rstrip() + " ansible_user=admin\n", "inv.ini:1:",
        "duplicate key 'ansible_user'"),
    inv("ini-toml", "inv.toml", "[all]\nhosts = []\n", "inv.toml:", "TOML"),
    inv("ini-executable-script", "inv.sh", "#!/bin/sh\necho '{}'\n", "inv.sh:1:", "executable", special="exec"),
    # -- YAML inventories ---------------------------------------------------------------------------
    inv("yaml-syntax-error", "inv.yml", "all:\n  hosts: [\n    web1\n", "inv.yml:", "YAML syntax error"),
    inv("yaml-tab-indent", "inv.yml", "all:\n\thosts:\n\t\tweb1:\n", "inv.yml:2:", "YAML syntax error"),
    inv("yaml-list-document", "inv.yml", "- web1\n- web2\n", "inv.yml:1:", "must be a mapping"),
    inv("yaml-scalar-document", "inv.yml", "just text\n", "inv.yml:", "must be a mapping"),
    inv("yaml-unknown-group-key", "inv.yml", "all:\n  host:\n    web1:\n", "inv.yml:2:", "unknown key 'host'"),
    inv("yaml-group-is-list", "inv.yml", "all: [web1]\n", "inv.yml:1:", "must be a mapping"),
    inv("yaml-hosts-is-list", "inv.yml", "all:\n  hosts: [web1]\n", "inv.yml:2:", "must be a mapping"),
    inv("yaml-host-vars-list", "inv.yml", "all:\n  hosts:\n    web1: [1, 2]\n", "inv.yml:3:", "must be a mapping"),
    inv("yaml-numeric-host", "inv.yml", "all:\n  hosts:\n    123:\n", "inv.yml:3:", "must be a string"),
    inv("yaml-bad-range", "inv.yml", "all:\n  hosts:\n    'web[1:x]':\n", "inv.yml:3:", "invalid host range"),
    inv("yaml-duplicate-group", "inv.yml", GOOD_YAML + "all:\n  hosts:\n    web2:\n", "inv.yml:6:",
        "duplicate key 'all'"),
    inv("yaml-duplicate-host", "inv.yml", GOOD_YAML + "    web1:\n      ansible_port: 2\n", "inv.yml:6:",
        "duplicate key 'web1'"),
    inv("yaml-duplicate-var", "inv.yml", GOOD_YAML + "      ansible_port: 2222\n", "inv.yml:6:",
        "duplicate key 'ansible_port'"),
    inv("json-duplicate-key", "inv.json",
        '{"all": {"hosts": {"web1": {"ansible_port": @PORT@},\n "web1": {"ansible_port": 1}}}}\n', "inv.json:2:",
        "duplicate key 'web1'"),
    inv("yaml-billion-laughs", "inv.yml", GOOD_YAML + laughs("  vars:\n", "    "), "inv.yml:", "alias"),
    inv("yaml-deep-flow-nesting", "inv.yml", GOOD_YAML + "  vars:\n    deep: " + DEEP_FLOW + "\n", "inv.yml:7:",
        "nested"),
    inv("yaml-deep-map-nesting", "inv.yml", "all:\n  vars:\n    deep: " + DEEP_MAP + "\n", "inv.yml:3:", "nested"),
    inv("json-deep-nesting", "inv.json", '{"all": {"vars": {"deep": ' + DEEP_FLOW + "}}}\n", "inv.json:1:", "nested"),
    inv("yaml-recursive-alias", "inv.yml", GOOD_YAML + "  vars: &loop\n    self: *loop\n", "inv.yml:", "recursive"),
    inv("yaml-undefined-alias", "inv.yml", GOOD_YAML + "  vars:\n    x: *nowhere\n", "inv.yml:7:", "alias"),
    inv("yaml-vault-encrypted", "inv.yml", VAULT, "inv.yml:1:", "ansible-vault"),
    inv("yaml-vault-value-used", "inv.yml", GOOD_YAML + "      ansible_user: " + VAULT_TAGGED, "inv.yml:6:",
        "vault"),
    inv("yaml-plugin-config", "inv.yml", "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n", "inv.yml:1:",
        "plugin"),
    inv("yaml-not-utf8", "inv.yml", GOOD_YAML.encode() + b"      ansible_user: \xff\n", "inv.yml:6:", "UTF-8"),
    inv("yaml-nul-byte", "inv.yml", GOOD_YAML.encode() + b"      ansible_user: ro\x00ot\n", "inv.yml:6:", ""),
    inv("yaml-huge-int", "inv.yml", GOOD_YAML + f"      answer: {BIG_INT}\n", "inv.yml:6:", "integer"),
    inv("yaml-empty-file", "inv.yml", "", "inv.yml:", "no hosts"),
    inv("yaml-only-document-marker", "inv.yml", "---\n", "inv.yml:", "no hosts"),
    inv("yaml-groups-without-hosts", "inv.yml", "all:\n  children:\n    web:\n    db:\n", "inv.yml:", "no hosts"),
    inv("yaml-bad-port", "inv.yml", "all:\n  hosts:\n    web1:\n      ansible_port: [22]\n", "inv.yml:4:", "ansible_port"),
    inv("group-vars-syntax-error", "inv.ini", GOOD_INI, "group_vars/all.yml:3:", "YAML syntax error",
        files={"group_vars/all.yml": "x: 1\ny: [\n"}),
    inv("group-vars-vault-file", "inv.ini", GOOD_INI, "group_vars/all.yml:1:", "vault",
        files={"group_vars/all.yml": VAULT}),
    inv("host-vars-is-list", "inv.ini", GOOD_INI, "host_vars/web1.yml:1:", "must be a mapping",
        files={"host_vars/web1.yml": "- 1\n- 2\n"}),
    inv("group-vars-duplicate-key", "inv.ini", GOOD_INI, "group_vars/all.yml:2:", "duplicate key 'ntp'",
        files={"group_vars/all.yml": "ntp: a\nntp: b\n"}),
    inv("group-vars-not-utf8", "inv.ini", GOOD_INI, "group_vars/all.yml:2:", "UTF-8",
        files={"group_vars/all.yml": b"ntp: a\nuser: \xff\n"}),
    inv("host-vars-bad-port", "inv.ini", GOOD_INI, "host_vars/web1.yml:2:", "ansible_port",
        files={"host_vars/web1.yml": "a: 1\nansible_port: 70000\n"}),
    Case("dir-with-bad-member", ["facts", "-i", "invdir"], {"invdir/10-good.ini": GOOD_INI,
         "invdir/20-bad.yml": "all:\n  hosts:\n    web2: [x]\n"}, "invdir/20-bad.yml:3:", "must be a mapping"),
    Case("dir-symlink-loop", ["facts", "-i", "invdir"], {"invdir/10-good.ini": GOOD_INI}, "invdir/sub/again:",
         "symlink loop", special="loop"),
    Case("vars-dir-symlink-loop", ["facts", "-i", "inv.ini"], {"inv.ini": GOOD_INI, "group_vars/all/a.yml": "x: 1\n"},
         "group_vars/all/again:", "symlink loop", special="vars-loop"),
    # -- inventory paths --------------------------------------------------------------------------------
    Case("inventory-missing", ["facts", "-i", "nope.ini"], {}, "nope.ini:", "not found"),
    Case("inventory-empty-path", ["facts", "-i", ""], {}, None, "inventory", usage=True),
    Case("inventory-fifo", ["facts", "-i", "pipe.ini"], {}, "pipe.ini:", "not a regular file", special="fifo"),
    Case("inventory-char-device", ["facts", "-i", "/dev/zero"], {}, "/dev/zero:", "not a regular file"),
    Case("inventory-oversized", ["facts", "-i", "big.ini"], {}, "big.ini:", "too large", special="sparse"),
    Case("inventory-unreadable", ["facts", "-i", "secret.ini"], {"secret.ini": GOOD_INI}, "secret.ini:",
         "cannot read", special="unreadable"),
    # -- per-host settings (docker_*, nvidia_*): file and line of the value ---------------------------------
    settings("docker-version-shell", {"inv.yml": GOOD_YAML + "      docker_version: '27.3; reboot'\n"},
             "inv.yml:6:", "docker_version"),
    settings("docker-version-list", {"inv.yml": GOOD_YAML + "      docker_version: [27]\n"},
             "inv.yml:6:", "docker_version"),
    settings("docker-hold-not-bool", {"inv.yml": GOOD_YAML + "  vars:\n    docker_hold: maybe\n"},
             "inv.yml:7:", "docker_hold"),
    settings("docker-daemon-not-mapping", {"inv.yml": GOOD_YAML + "      docker_daemon: bip=1\n"},
             "inv.yml:6:", "docker_daemon"),
    settings("docker-repo-key-max-age-word", {"inv.yml": GOOD_YAML + "      docker_repo_key_max_age: weekly\n"},
             "inv.yml:6:", "docker_repo_key_max_age"),
    settings("docker-repo-key-max-age-negative", {"inv.yml": GOOD_YAML + "      docker_repo_key_max_age: -5\n"},
             "inv.yml:6:", "docker_repo_key_max_age"),
    settings("nvidia-repo-key-max-age-word", {"inv.yml": GOOD_YAML + "      nvidia_repo_key_max_age: 2 weeks\n"},
             "inv.yml:6:", "nvidia_repo_key_max_age"),
    settings("docker-users-not-list", {"inv.yml": GOOD_YAML + "      docker_users: 5\n"}, "inv.yml:6:",
             "docker_users"),
    settings("apt-lock-timeout-negative", {"inv.yml": GOOD_YAML, "group_vars/all.yml": "a: 1\napt_lock_timeout: -5\n"},
             "group_vars/all.yml:2:", "apt_lock_timeout"),
    settings("docker-setting-in-host-vars", {"inv.yml": GOOD_YAML, "host_vars/web1.yml": "docker_hold: perhaps\n"},
             "host_vars/web1.yml:1:", "docker_hold"),
    settings("docker-setting-ini-group-vars", {"inv.ini": GOOD_INI + "[all:vars]\ndocker_daemon_defaults=sometimes\n"},
             "inv.ini:3:", "docker_daemon_defaults"),
    settings("nvidia-driver-branch-text", {"inv.yml": GOOD_YAML + "      nvidia_driver_branch: latest\n"},
             "inv.yml:6:", "nvidia_driver_branch", command=("nvidia", "install")),
    settings("nvidia-open-modules-not-bool", {"inv.yml": GOOD_YAML + "      nvidia_open_modules: perhaps\n"},
             "inv.yml:6:", "nvidia_open_modules", command=("nvidia", "install")),
    settings("nvidia-reboot-timeout-small", {"inv.yml": GOOD_YAML + "      reboot_timeout: 1\n"},
             "inv.yml:6:", "reboot_timeout", command=("bootstrap",)),
    settings("nvidia-toolkit-version-shell", {"inv.yml": GOOD_YAML + "      nvidia_toolkit_version: '1.17 && id'\n"},
             "inv.yml:6:", "nvidia_toolkit_version", command=("nvidia", "install")),
    settings("gpu-not-bool", {"inv.yml": GOOD_YAML + "      gpu: sometimes\n"}, "inv.yml:6:", "gpu",
             command=("nvidia", "install")),
    settings("docker-setting-vaulted", {"inv.yml": GOOD_YAML + "      docker_version: " + VAULT_TAGGED},
             "inv.yml:6:", "vault"),
    settings("verify-hello-image-invalid", {"inv.yml": GOOD_YAML + "      verify_hello_image: Hello World\n"},
             "inv.yml:6:", "invalid image reference", command=("verify",)),
    settings("verify-gpu-image-invalid", {"inv.yml": GOOD_YAML, "group_vars/all.yml": "verify_gpu_image: 'cuda:'\n"},
             "group_vars/all.yml:1:", "invalid image reference", command=("bootstrap",)),
    settings("swarm-role-unknown", {"inv.yml": GOOD_YAML + "      swarm_role: leader\n"}, "inv.yml:6:", "swarm_role",
             command=("swarm", "init")),
    Case("swarm-no-manager", ["swarm", "init", "-i", "good.ini"], {"good.ini": GOOD_INI}, None, "no swarm manager"),
    Case("swarm-host-in-both-groups", ["swarm", "init", "-i", "inv.ini"],
         {"inv.ini": "[swarm_managers]\n" + GOOD_INI + "[swarm_workers]\nweb1\n"}, None, "in both"),
    # -- playbooks ----------------------------------------------------------------------------------------
    Case("playbook-missing", ["deploy", "--check", "nope.yml", "-i", "good.ini"], {"good.ini": GOOD_INI},
         "nope.yml:", "not found"),
    Case("playbook-is-directory", ["deploy", "--check", "stacks", "-i", "good.ini"],
         {"good.ini": GOOD_INI, "stacks/x.yml": GOOD_PLAYBOOK}, "stacks:", "directory"),
    Case("playbook-char-device", ["deploy", "--check", "/dev/zero", "-i", "good.ini"], {"good.ini": GOOD_INI},
         "/dev/zero:", "not a regular file"),
    pb("playbook-fifo", "", "pipe.yml:", "not a regular file", special="fifo"),
    pb("playbook-is-list", "- stack: demo\n  services: {}\n", "stack.yml:1:", "must be a mapping"),
    pb("playbook-empty", "", "stack.yml:1:", "empty"),
    pb("playbook-scalar", "demo\n", "stack.yml:1:", "must be a mapping"),
    pb("playbook-syntax-error", "stack: demo\nservices:\n  web: {image: busybox\n", "stack.yml:", "YAML syntax error"),
    pb("playbook-tabs", "stack: demo\nservices:\n\tweb:\n\t\timage: busybox\n", "stack.yml:3:", "YAML syntax error"),
    pb("playbook-not-utf8", b"stack: demo\nservices:\n  web:\n    image: busy\xffbox\n", "stack.yml:4:", "UTF-8"),
    pb("playbook-nul-byte", b"stack: demo\nservices:\n  web:\n    image: busy\x00box\n", "stack.yml:4:", ""),
    pb("playbook-vault-encrypted", VAULT, "stack.yml:1:", "ansible-vault"),
    pb("playbook-vault-value", service("    image: busybox\n    environment:\n      PW: " + VAULT_TAGGED),
       "stack.yml:6:", "vault"),
    pb("playbook-duplicate-service", service("    image: busybox\n  web:\n    image: nginx\n"), "stack.yml:5:",
       "duplicate key 'web'"),
    pb("playbook-duplicate-key", service("    image: busybox\n    image: nginx\n"), "stack.yml:5:",
       "duplicate key 'image'"),
    pb("playbook-duplicate-top-key", GOOD_PLAYBOOK + "stack: other\n", "stack.yml:5:", "duplicate key 'stack'"),
    pb("playbook-billion-laughs", laughs("x-bomb:\n", "  ") + GOOD_PLAYBOOK, "stack.yml:", "alias"),
    pb("playbook-deep-nesting", GOOD_PLAYBOOK + "x-deep: " + DEEP_FLOW + "\n", "stack.yml:5:", "nested"),
    pb("playbook-recursive-alias", GOOD_PLAYBOOK + "x-loop: &loop\n  self: *loop\n", "stack.yml:", "recursive"),
    pb("playbook-huge-int", service(f"    image: busybox\n    deploy: {{replicas: {BIG_INT}}}\n"), "stack.yml:5:",
       "integer"),
    pb("playbook-too-many-replicas", service("    image: busybox\n    deploy: {replicas: 1000000000000}\n"),
       "stack.yml:5:", "replicas"),
    pb("image-uppercase", service("    image: Busybox:1.36\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-bad-tag-char", service("    image: busybox:1.36!\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-empty", service("    image: ''\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-space", service("    image: busy box\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-trailing-colon", service("    image: 'busybox:'\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-double-slash", service("    image: library//busybox\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-tag-too-long", service(f"    image: busybox:{'a' * 129}\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-bad-digest", service("    image: busybox@sha256:xyz\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-leading-separator", service("    image: _busybox\n"), "stack.yml:4:", "invalid image reference"),
    pb("image-bad-registry-port", service("    image: 'registry.local:port/app:1'\n"), "stack.yml:4:",
       "invalid image reference"),
    pb("build-context-missing", service("    image: demo/web:1\n    build: ./nope\n"), "stack.yml:5:", "./nope"),
    pb("build-context-missing-long", service("    image: demo/web:1\n    build:\n      context: ./nope\n"),
       "stack.yml:6:", "./nope"),
    pb("build-context-is-file", service("    build: ./Dockerfile\n"), "stack.yml:4:", "not a folder",
       files={"Dockerfile": "FROM busybox\n"}),
    pb("env-file-missing", service("    image: busybox\n    env_file: .env\n"), "stack.yml:5:", "not found"),
    pb("env-file-is-directory", service("    image: busybox\n    env_file: [conf]\n"), "stack.yml:5:", "directory",
       files={"conf/x": "A=1\n"}),
    pb("env-file-fifo", service("    image: busybox\n    env_file: [.env]\n"), "stack.yml:5:", "not a regular file",
       special="env-fifo"),
    pb("env-file-bad-line", service("    image: busybox\n    env_file: .env\n"), ".env:2:", "KEY=VALUE",
       files={".env": "A=1\nthis is not a variable\n"}),
    pb("env-file-not-utf8", service("    image: busybox\n    env_file: .env\n"), ".env:1:", "UTF-8",
       files={".env": b"A=\xff\n"}),
    pb("env-file-vault", service("    image: busybox\n    env_file: .env\n"), ".env:1:", "ansible-vault",
       files={".env": VAULT}),
    pb("playbook-hosts-empty", "stack: demo\nhosts: ''\nservices:\n  web: {image: busybox}\n", "stack.yml:2:",
       "empty host pattern"),
    pb("service-hosts-empty", service("    image: busybox\n    hosts: ' , '\n"), "stack.yml:5:", "empty host pattern"),
    pb("service-hosts-unclosed", service("    image: busybox\n    hosts: 'gpu[0'\n"), "stack.yml:5:", "unclosed"),
    pb("playbook-unknown-key", service("    image: busybox\n    imagee: nginx\n"), "stack.yml:5:", "unknown key"),
    pb("playbook-bad-port", service("    image: busybox\n    ports: ['80:x']\n"), "stack.yml:5:", "invalid port"),
    pb("playbook-bad-stack-name", "stack: Demo App\nservices:\n  web: {image: busybox}\n", "stack.yml:1:", "stack"),
    # -- the command line -----------------------------------------------------------------------------------
    cli("forks-zero", ["facts", "-i", "good.ini", "--forks", "0"], "--forks"),
    cli("forks-negative", ["facts", "-i", "good.ini", "--forks", "-3"], "--forks"),
    cli("forks-text", ["facts", "-i", "good.ini", "--forks", "many"], "--forks"),
    cli("forks-float", ["facts", "-i", "good.ini", "--forks", "1.5"], "--forks"),
    cli("forks-empty", ["facts", "-i", "good.ini", "--forks", ""], "--forks"),
    cli("forks-huge", ["facts", "-i", "good.ini", "--forks", BIG_INT], "--forks"),
    cli("limit-empty", ["facts", "-i", "good.ini", "-l", ""], "--limit"),
    cli("limit-blank", ["facts", "-i", "good.ini", "-l", "  "], "--limit"),
    cli("limit-only-separators", ["facts", "-i", "good.ini", "-l", ",:"], "--limit"),
    cli("limit-empty-on-deploy", ["deploy", "--check", "stack.yml", "-i", "good.ini", "-l", ""], "--limit"),
    cli("limit-empty-on-hosts", ["hosts", "-i", "good.ini", "-l", ""], "--limit"),
    cli("limit-unknown-host", ["facts", "-i", "good.ini", "-l", "nosuch"], "not a host or group", usage=False,
        where="good.ini:"),
    cli("limit-one-unknown-host", ["facts", "-i", "good.ini", "-l", "web1,nosuch"], "'nosuch' is not a host or group",
        usage=False, where="good.ini:"),
    cli("limit-unknown-in-union", ["facts", "-i", "good.ini", "-l", "all:web9"], "'web9'", usage=False,
        where="good.ini:"),
    cli("limit-unclosed-bracket", ["facts", "-i", "good.ini", "-l", "web[0"], "unclosed", usage=False),
    cli("limit-dangling-exclusion", ["facts", "-i", "good.ini", "-l", "all:!"], "missing pattern", usage=False),
    cli("limit-empty-group", ["facts", "-i", "groups.ini", "-l", "db"], "matches no host", usage=False,
        where="groups.ini:"),
    cli("limit-bad-regex", ["facts", "-i", "good.ini", "-l", "~web(("], "regular expression", usage=False),
    cli("logs-tail-below-minus-one", ["logs", "web", "-i", "good.ini", "--tail", "-2"], "--tail"),
    cli("sandbox-zero-hosts", ["sandbox", "up", "--hosts", "0"], "--hosts"),
    cli("exec-without-command", ["exec", "web", "-i", "good.ini"], "Missing argument"),
    cli("unknown-option", ["facts", "-i", "good.ini", "--forkz", "2"], "--forkz"),
    cli("unknown-command", ["factz"], "factz"),
    cli("missing-argument", ["run", "-i", "good.ini"], "Missing argument"),
    cli("known-hosts-empty", ["facts", "-i", "good.ini", "--known-hosts", ""], "--known-hosts"),
    cli("known-hosts-directory", ["facts", "-i", "good.ini", "--known-hosts", "."], "--known-hosts"),
]


# ---------------------------------------------------------------------------
# Running the cases
# ---------------------------------------------------------------------------
#
# Starting Python and importing typer/pydantic/yaml/rich costs about half a second per process, too
# much for 140 cases on a small machine. So a few "fork servers" (fresh interpreters started with
# `python -c`) import provision's CLI once and fork one child per case: each case still runs in its
# own process, with its own folder, stdout/stderr, exit code, memory limit and alarm clock, through
# the same `provision.cli.app.main` that `python -m provision` calls. A sample of cases also runs
# through a completely fresh `python -m provision` and must give the same answer.

FORK_SERVER = r"""
import json, os, resource, signal, sys, time
sys.argv = ["provision"]
import importlib, pkgutil
import provision.cli.app, provision.cli.render, provision.workflows, provision.executor.known_hosts
for module in pkgutil.iter_modules(provision.workflows.__path__):  # what the commands import lazily
    importlib.import_module("provision.workflows." + module.name)
limit_s, memory = int(os.environ["BI_TIME"]), int(os.environ["BI_MEMORY"])
for request in sys.stdin:
    job = json.loads(request)
    out, err = job["cwd"] + "/.stdout", job["cwd"] + "/.stderr"
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(job["cwd"])
            for fd, name in ((1, out), (2, err)):
                os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            sys.stdin = open(os.devnull)
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            signal.alarm(limit_s)
            provision.cli.app.main(job["argv"])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 99
        try:
            sys.stdout.flush(); sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    with open(out, errors="replace") as o, open(err, errors="replace") as e:
        reply = {"rc": rc, "stdout": o.read(), "stderr": e.read(), "seconds": time.monotonic() - started}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    connections: int = 0


def _env(folder: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "COLUMNS": "120",
            "PROVISION_HOME": str(folder / ".provision"), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "LANG": "C.UTF-8", "BI_TIME": str(int(TIME_LIMIT_S)), "BI_MEMORY": str(MEMORY_LIMIT)}


def _limits() -> None:  # in a fresh CLI process, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _prepare(case: Case, folder: Path, port: int) -> list[str]:
    """Write the case's files into ``folder``; the argv to run there."""
    argv = list(case.argv)
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.replace("@PORT@", str(port)).encode()
        path.write_bytes(content)
    # Every host of every inventory connects to the case's listener (unless the case sets its own all vars).
    for base in (folder, folder / "invdir"):
        if base.is_dir() and not (base / "group_vars" / "all").exists() and not (base / "group_vars" / "all.yml").exists():
            (base / "group_vars").mkdir(exist_ok=True)
            (base / "group_vars" / "all.yml").write_text(f"ansible_host: 127.0.0.1\nansible_port: {port}\n")
    if case.special == "fifo":
        os.mkfifo(folder / ("pipe.ini" if argv[0] == "facts" else "pipe.yml"))
        argv = [arg.replace("stack.yml", "pipe.yml") for arg in argv]
    elif case.special == "loop":
        (folder / "invdir" / "sub").mkdir()
        (folder / "invdir" / "sub" / "again").symlink_to("..")
    elif case.special == "vars-loop":
        (folder / "group_vars" / "all" / "again").symlink_to(".")
    elif case.special == "env-fifo":
        os.mkfifo(folder / ".env")
    elif case.special == "sparse":
        with open(folder / "big.ini", "wb") as handle:
            handle.write(GOOD_INI.replace("@PORT@", str(port)).encode())
            handle.truncate(256 << 20)  # 256 MiB of holes: no disk used
    elif case.special == "exec":
        for name in case.files:
            (folder / name).chmod(0o755)
    elif case.special == "unreadable":
        for name in case.files:
            (folder / name).chmod(0)
        if os.geteuid() == 0:  # root reads any file whatever its mode; /proc/self/mem fails with EIO
            argv = [arg.replace("secret.ini", "/proc/self/mem") for arg in argv]
    return argv


def _where(case: Case) -> str | None:
    if case.special == "unreadable" and os.geteuid() == 0:
        return "/proc/self/mem:"
    return case.where


def _run_fresh(argv: list[str], folder: Path) -> Outcome:
    """`python -m provision ARGV` in a fresh interpreter."""
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "provision", *argv], cwd=folder, env=_env(folder),
                              capture_output=True, text=True, errors="replace", timeout=TIME_LIMIT_S,
                              preexec_fn=_limits, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return Outcome(-1, str(exc.stdout), f"TIMEOUT after {TIME_LIMIT_S}s\n{exc.stderr}", TIME_LIMIT_S)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


class ForkServer:
    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER], cwd=root, env=_env(root), text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, argv: list[str], folder: Path) -> Outcome:
        import json

        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(folder)}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if reply["rc"] == -14:  # SIGALRM: the case ran past its time limit
            reply["stderr"] = f"TIMEOUT after {TIME_LIMIT_S}s\n" + reply["stderr"]
        return Outcome(reply["rc"], reply["stdout"], reply["stderr"], reply["seconds"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


WORKERS = 3


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Every case in its own forked CLI process (a few at a time), each against its own counting listener."""
    root = tmp_path_factory.mktemp("bad_input")
    listeners = CountingListeners(case.id for case in CASES)
    servers = [ForkServer(root) for _ in range(WORKERS)]
    shares = [CASES[index::WORKERS] for index in range(WORKERS)]

    def work(server: ForkServer, cases: list[Case]) -> dict[str, Outcome]:
        done = {}
        for case in cases:
            folder = root / case.id
            folder.mkdir()
            done[case.id] = server.run(_prepare(case, folder, listeners.port[case.id]), folder)
        return done

    results: dict[str, Outcome] = {}
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for part in pool.map(work, servers, shares):
                results.update(part)
    finally:
        for server in servers:
            server.close()
        listeners.close()
    for case_id, outcome in results.items():
        outcome.connections = listeners.count[case_id]
    return results


def test_corpus_size() -> None:
    assert len(CASES) >= 80
    assert len({case.id for case in CASES}) == len(CASES)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _check(case: Case, out: Outcome) -> None:
    detail = f"rc={out.rc} {out.seconds:.1f}s stderr:\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stderr, detail
    assert out.rc == 4, detail
    assert out.connections == 0, detail
    assert out.seconds < TIME_LIMIT_S, detail
    lines = _error_lines(out.stderr)
    if case.usage:
        assert any(line.startswith("Error:") for line in lines), detail
        assert len(lines) <= 4, detail
        assert case.says in out.stderr, detail
        return
    assert len(lines) == 1, detail
    line = lines[0]
    assert line.startswith("provision: error: "), detail
    message = line.removeprefix("provision: error: ")
    where = _where(case)
    if where:
        # vars files are named by their real path: allow a folder in front of the expected name
        at = message.find(where)
        assert at == 0 or (at > 0 and message[at - 1] == "/" and " " not in message[:at]), detail
    assert case.says in message, detail


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, outcomes: dict[str, Outcome]) -> None:
    _check(case, outcomes[case.id])


FRESH_SAMPLE = ("ini-vault-encrypted", "yaml-billion-laughs", "yaml-duplicate-host", "inventory-fifo",
                "playbook-deep-nesting", "image-uppercase", "build-context-missing", "docker-hold-not-bool",
                "limit-empty", "forks-zero")


@pytest.mark.parametrize("case_id", FRESH_SAMPLE)
def test_fresh_process_agrees(case_id: str, outcomes: dict[str, Outcome], tmp_path: Path) -> None:
    """`python -m provision` in a fresh interpreter answers as the forked CLI did."""
    case = next(case for case in CASES if case.id == case_id)
    listener = CountingListeners([case_id])
    try:
        out = _run_fresh(_prepare(case, tmp_path, listener.port[case_id]), tmp_path)
    finally:
        listener.close()
    out.connections = listener.count[case_id]
    _check(case, out)
    forked = outcomes[case_id]
    assert _error_lines(out.stderr)[-1].replace(str(tmp_path), "") == \
        _error_lines(forked.stderr)[-1].replace(str(tmp_path.parent), "").replace(f"/{case_id}", "", 1) or case.usage


@pytest.mark.parametrize("inventory", [GOOD_INI, "[web]\nweb1\n"], ids=["host-vars", "group-vars-file"])
def test_listener_counts_connections(inventory: str, tmp_path: Path) -> None:
    """The control: a good inventory does get connected to (through its own vars, or through the
    group_vars/all.yml every case folder gets), so the zeros above mean something."""
    listener = CountingListeners(["control"])
    try:
        case = Case("control", ["facts", "-i", "good.ini"], {"good.ini": inventory})
        out = _run_fresh(_prepare(case, tmp_path, listener.port["control"]), tmp_path)
    finally:
        listener.close()
    assert out.rc == 3, out.stderr
    assert listener.count["control"] >= 1


# ---------------------------------------------------------------------------
# Remote text with rich markup: printed as written, never a crash, never a lost report
# ---------------------------------------------------------------------------

HOSTILE = ["[/]", "[bold]loud[/bold]", "[link=http://evil.example]click[/link]", "[red", "x [/red] y",
           "[[escaped]]", "\\[not markup]", "[/bold]", "back\\", "[@click=app.quit]q[/]"]


def _hostile_report():
    from provision.report import HostResult, Report, StepResult

    report = Report("run")
    for index, text in enumerate(HOSTILE):
        name = f"web{index}"
        result = HostResult(name, steps=[StepResult("command", "failed", f"exit 1: {text}", 0.1)])
        result.extra.update({"rc": 1, "stdout": f"{text}\n", "stderr": f"err {text}\n",
                             "facts": {"os": {"pretty_name": f"Debian {text}"}, "arch": "x86_64", "kernel": text,
                                       "cpus": 2, "memory_mib": 512, "systemd": True,
                                       "docker": {"version": text, "running": True}, "gpus": [],
                                       "nvidia": {"driver": text, "cuda": "12.4"}},
                             "plan": [{"step": "docker packages", "action": "create", "object": f"svc {text}",
                                       "reason": text, "commands": [f"echo {text}"], "diff": f"+ {text}"}],
                             "services": [{"stack": "demo", "service": "web", "replica": 1, "image": text,
                                           "state": "running", "role": "serving", "health": text,
                                           "ports": text, "started": text}],
                             "logs": [{"container": "demo-web-1", "line": text}],
                             "container": "demo-web-1", "exit_code": 1, "output": text})
        report.add(result)
    report.add(HostResult("gone", unreachable="ssh: [/] banner [bold]x"))
    report.add(HostResult("skip", skipped="[link=x]no gpu[/link] [/]"))
    return report


@pytest.mark.parametrize("terminal", [False, True], ids=["plain", "terminal"])
def test_markup_in_remote_text_is_printed_as_written(terminal: bool, capsys) -> None:
    from rich.console import Console

    from provision.cli import deploy_cmds, facts_cmds, ops_cmds, render

    report = _hostile_report()
    buffer = io.StringIO()
    console = Console(file=buffer, width=400, force_terminal=terminal, color_system=None, highlight=False,
                      soft_wrap=False)
    progress = render.LiveProgress(console, "run", len(report.hosts))
    for result in report.hosts.values():
        progress.host_finished(result)
    for renderer in (facts_cmds.render_output, facts_cmds.render_facts, render.render_plan, deploy_cmds.render_deploy,
                     ops_cmds.render_status, ops_cmds.render_logs, ops_cmds.render_exec):
        renderer(console, report)
    render.recap(console, report, verbose=1)
    render.emit_json(report)
    shown = buffer.getvalue()
    for text in HOSTILE:
        assert shown.count(text) >= 8, (text, shown)  # progress, recap, output, facts, plan, status, logs, exec
    assert "ssh: [/] banner [bold]x" in shown and "[link=x]no gpu[/link] [/]" in shown
    assert "unreachable=1" in shown and "skipped=1" in shown and "failed=10" in shown  # the recap's summary
    document = json.loads(capsys.readouterr().out)
    assert [document["hosts"][f"web{i}"]["steps"][0]["message"] for i in range(len(HOSTILE))] == \
        [f"exit 1: {text}" for text in HOSTILE]


@pytest.mark.parametrize("reference", [
    "busybox", "busybox:1.36", "library/busybox:latest", "nvidia/cuda:12.4.1-base-ubuntu22.04",
    "ghcr.io/chroma-core/chroma:0.5.5", "localhost:5000/app", "127.0.0.1:5000/team/app:v1_2.3-rc",
    "registry.example.com:443/a/b/c:TAG", "[::1]:5000/app:1", "my_app__x--y.z/svc:1",
    "quay.io/org/app@sha256:" + "a" * 64, "app:1@sha256:" + "0123456789abcdef" * 4, "provision-hello/web:1",
])
def test_valid_image_references_are_accepted(reference: str) -> None:
    from provision.config.image_ref import check_image_reference

    assert check_image_reference(reference) == reference
