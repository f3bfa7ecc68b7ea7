"""Which exceptions mean "the connection to a host's Docker engine was lost", and the one-line message
that says so: the one place where a deploy step (workflows.deploy_host) tells a cut SSH connection or a
dead `docker system dial-stdio` channel from a bug, so the host ends with a failed step naming what was
lost (its other steps kept, the other hosts going on) instead of a bare "error".

What counts, raised by a docker SDK call (or a command) riding the host's SSH connection:
- requests' ConnectionError (the channel closed mid-request: "Connection aborted.", "Socket is closed"),
  ChunkedEncodingError (closed mid-stream: a pull's or build's events) and Timeout (no answer in time);
- urllib3's ProtocolError / ReadTimeoutError, when a streamed body is read past requests;
- paramiko's SSHException (no new channel on a dead transport: "SSH session not active");
- EOFError, Python's ConnectionError family (reset, broken pipe), TimeoutError, and a bare OSError with
  no errno (paramiko's `OSError('Socket is closed')`); not a local file's error (those carry an errno);
- any exception whose cause or context is one of the above (a docker.errors.DockerException wrapping it).

Not: docker.errors.APIError (the engine answered and refused: its own message), the executor's
HostUnreachable (the SSH executor's own verdict), Interrupted, KeyboardInterrupt (never caught here).
"""

from __future__ import annotations

from provision.errors import ProvisionError
from provision.redaction import redact_text

DETAIL_CHARS = 200


def is_lost_connection(exc: BaseException) -> bool:
    """Does this exception (or one it was raised from) mean the host's Docker engine connection is gone?
    One of provision's own errors is its own verdict, whatever it was raised from (the SSH executor's
    HostUnreachable raised while handling a socket error; an Interrupted): never a lost connection here."""
    if isinstance(exc, ProvisionError):
        return False
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _lost(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _lost(exc: BaseException) -> bool:
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: never a lost connection
        return False
    import docker.errors
    import paramiko
    import requests.exceptions
    import urllib3.exceptions

    if isinstance(exc, docker.errors.APIError):  # the engine answered
        return False
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.Timeout, urllib3.exceptions.ProtocolError,
                        urllib3.exceptions.ReadTimeoutError, paramiko.SSHException, EOFError, ConnectionError,
                        TimeoutError)):
        return True
    return type(exc) is OSError and exc.errno is None  # paramiko's OSError('Socket is closed')


def lost_connection_message(host: str, exc: BaseException) -> str:
    """One line: "the connection to HOST's Docker engine was lost: <first line of the error>" (redacted)."""
    text = str(exc).strip()
    detail = text.splitlines()[0][:DETAIL_CHARS] if text else type(exc).__name__
    return f"the connection to {host}'s Docker engine was lost: {redact_text(detail)}"
