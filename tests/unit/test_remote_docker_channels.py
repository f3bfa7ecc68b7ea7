"""The docker client's pooled `docker system dial-stdio` channels (deploy/remote_docker.py) when the host closes
one. A Docker 20.10 engine closes an API connection after 5 idle minutes (a host waiting for a relay seed, or
receiving an image with `ssh seed | docker load`, makes no API call for that long): its dial-stdio exits and
sshd closes the channel. The SDK's pool handed that channel out again and the next call failed with
ConnectionError('Connection aborted.', OSError('Socket is closed')) (bench/shipping.py, 10 hosts: 7 failed).
The fakes below behave as paramiko does: sending on a closed channel raises exactly that OSError."""

from __future__ import annotations

import io

import pytest

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"


class Channel:
    """A paramiko Channel as the pool uses it; the engine's answer to every request is `OK`."""

    def __init__(self) -> None:
        self.closed, self.eof_received, self.exit_status = False, False, -1
        self.commands: list[str] = []
        self.requests = 0

    def settimeout(self, timeout) -> None:
        pass

    def exec_command(self, command: str) -> None:
        self.commands.append(command)

    def sendall(self, data: bytes) -> None:
        if self.closed:
            raise OSError("Socket is closed")  # paramiko.Channel._send
        self.requests += data.count(b"HTTP/1.1\r\n")

    def makefile(self, mode="rb", bufsize=-1):
        return io.BytesIO(RESPONSE)

    def exit_status_ready(self) -> bool:
        return self.exit_status != -1

    def close(self) -> None:
        self.closed = True

    def host_ended(self) -> None:
        """dial-stdio exited on the host (the engine closed the connection): EOF, exit status, close."""
        self.eof_received, self.exit_status, self.closed = True, 0, True


class Transport:
    def __init__(self) -> None:
        self.channels: list[Channel] = []

    def is_active(self) -> bool:
        return True

    def open_session(self, timeout=None) -> Channel:
        self.channels.append(Channel())
        return self.channels[-1]


@pytest.fixture
def clock(monkeypatch):
    from provision.deploy import remote_docker

    now = [1000.0]
    monkeypatch.setattr(remote_docker, "_now", lambda: now[0], raising=False)
    return now


def test_calls_reuse_one_channel():
    from provision.deploy.remote_docker import docker_client

    transport = Transport()
    client = docker_client(lambda: transport)
    assert client.ping() and client.ping() and client.ping()
    assert len(transport.channels) == 1 and transport.channels[0].requests == 3
    assert transport.channels[0].commands == ["docker system dial-stdio"]


def test_a_channel_the_host_closed_is_replaced_not_reused(clock):
    from provision.deploy.remote_docker import docker_client

    transport = Transport()
    client = docker_client(lambda: transport)
    assert client.ping()
    transport.channels[0].host_ended()  # the engine closed the idle connection while the host waited
    assert client.ping()  # was: ConnectionError('Connection aborted.', OSError('Socket is closed'))
    assert len(transport.channels) == 2 and transport.channels[1].requests == 1
    assert client.ping() and len(transport.channels) == 2


def test_a_channel_with_eof_only_is_replaced(clock):
    from provision.deploy.remote_docker import docker_client

    transport = Transport()
    client = docker_client(lambda: transport)
    assert client.ping()
    transport.channels[0].eof_received = True  # dial-stdio's output ended; the close is still on its way
    assert client.ping()
    assert len(transport.channels) == 2 and transport.channels[0].closed


def test_a_channel_idle_for_long_is_closed_and_replaced_before_the_engine_closes_it(clock):
    from provision.deploy import remote_docker

    transport = Transport()
    client = remote_docker.docker_client(lambda: transport)
    assert client.ping()
    clock[0] += remote_docker.MAX_IDLE_S - 1
    assert client.ping() and len(transport.channels) == 1  # not idle for long: reused
    clock[0] += remote_docker.MAX_IDLE_S + 1
    assert client.ping()
    assert len(transport.channels) == 2 and transport.channels[0].closed  # closed here, not left to the host
    assert remote_docker.MAX_IDLE_S < 300  # well under the engine's 5 idle minutes
