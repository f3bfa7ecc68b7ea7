"""deploy.lost_connection: which exceptions mean the host's Docker engine connection is gone (a deploy step
then fails with the one-line message), and which do not (a refusal, a bug, an interrupt, a local file)."""

from __future__ import annotations

import docker.errors
import paramiko
import pytest
import requests.exceptions
import urllib3.exceptions

from provision.deploy.lost_connection import is_lost_connection, lost_connection_message
from provision.errors import HostUnreachable
from provision.interrupts import Interrupted


def _wrapped() -> Exception:
    try:
        try:
            raise OSError("Socket is closed")
        except OSError as inner:
            raise docker.errors.DockerException("Error while fetching server API version") from inner
    except docker.errors.DockerException as exc:
        return exc


@pytest.mark.parametrize("exc", [
    requests.exceptions.ConnectionError("('Connection aborted.', OSError('Socket is closed'))"),
    requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(0 bytes read)"),
    requests.exceptions.ReadTimeout("Read timed out. (read timeout=300)"),
    urllib3.exceptions.ProtocolError("Connection broken"),
    paramiko.SSHException("SSH session not active"),
    paramiko.ChannelException(2, "Connect failed"),
    OSError("Socket is closed"),  # paramiko.Channel._send
    EOFError(),
    BrokenPipeError(32, "Broken pipe"),
    ConnectionResetError(104, "Connection reset by peer"),
    _wrapped(),
], ids=lambda e: type(e).__name__)
def test_a_broken_transport_is_a_lost_connection(exc):
    assert is_lost_connection(exc)


def _raised_while_handling(error: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception:
            raise error  # noqa: B904 (its __context__ is the socket error, as in executor.ssh)
    except Exception as exc:
        return exc


@pytest.mark.parametrize("exc", [
    docker.errors.APIError("500", explanation="driver failed programming external connectivity"),
    _raised_while_handling(HostUnreachable("sbx1:22 stopped answering (connection closed)"),
                           OSError("Socket is closed")),  # the executor's verdict: the host is unreachable
    _raised_while_handling(Interrupted("stopped"), ConnectionResetError(104, "Connection reset by peer")),
    docker.errors.NotFound("no such container"),
    KeyError("oops"),
    FileNotFoundError(2, "No such file or directory", "/stack/web"),  # a local file: not the connection
    PermissionError(13, "Permission denied"),
    Interrupted("stopped"),
    KeyboardInterrupt(),
], ids=lambda e: type(e).__name__)
def test_a_refusal_a_bug_or_an_interrupt_is_not(exc):
    assert not is_lost_connection(exc)


def test_the_message_is_one_line_cut_and_holds_no_credential():
    exc = requests.exceptions.ConnectionError("HTTPConnectionPool(host='x', url=http://ana:hunter2@reg/v2/)\n"
                                              "second line " + "y" * 500)
    message = lost_connection_message("h1", exc)
    assert message.startswith("the connection to h1's Docker engine was lost: HTTPConnectionPool(")
    assert "\n" not in message and "hunter2" not in message and "second line" not in message
    assert lost_connection_message("h1", EOFError()) == "the connection to h1's Docker engine was lost: EOFError"
