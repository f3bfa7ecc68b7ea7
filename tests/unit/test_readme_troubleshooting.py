"""README's troubleshooting section quotes what provision prints: each quoted part still occurs in the source
(when a message changes, update README's table with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# the fixed parts of the messages README quotes (placeholders such as HOST left out)
QUOTED = [
    "connection refused by ", "timed out after ", "cannot resolve ", "stopped answering (",
    "(provision_command_timeout)", "authentication failed for ", " with key ",
    " has CHANGED: ", "the host presents ", "refusing to connect. If the host was ",
    "rebuilt, re-run with --accept-new-host-keys to record the new key",
    " needs a password for ", ": set PROVISION_BECOME_PASSWORD ", "or pass --ask-become-pass",
    "sudo rejected the become password for ",
    "s for the dpkg lock held by ", "'s lock is still held by ", "(apt_lock_timeout): wait for it to finish ",
    "(or stop it), then re-run; nothing was changed",
    "; partial changes undone", "cannot fetch the repository key ",
    'could not select device driver "" with capabilities: [[gpu]]',
    "docker has no GPU support: install the NVIDIA Container Toolkit and restart docker",
    "reboot required: re-run with --reboot", "Driver/library version mismatch",
    "the loaded NVIDIA kernel module and the user-space driver differ", "No devices were found",
    "the driver sees no GPU: check the GPU is attached to this VM",
    "rolled back: ", "new container failed: ", "cannot start: ", "pull failed: ", " failed: ",
    "build on the host failed: ", "must be a port number, got ", "expected key=value host variable, got ",
    "provision: error: ", "refusing to overwrite ", ": nothing was written",
]


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Troubleshooting\n")
    return readme[start:readme.index("\n## ", start + 1)]


def _source() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "provision").rglob("*.py")))


SOURCE = _source()


@pytest.mark.parametrize("fragment", QUOTED)
def test_each_quoted_message_is_in_readme_and_in_the_source(fragment):
    assert fragment in _section(), f"README's troubleshooting no longer quotes {fragment!r}"
    assert fragment in SOURCE, f"provision no longer prints {fragment!r}: update README's troubleshooting table"


def test_the_section_covers_the_classic_failures():
    section = _section().lower()
    for topic in ("unreachable", "host key changed", "sudo needs a password", "lock held", "key mismatch",
                  "gpu not visible", "reboot", "port already allocated", "image not found", "build fails",
                  "bad inventory line", "exit 4"):
        assert topic in section, topic
