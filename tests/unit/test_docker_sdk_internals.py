"""deploy/remote_docker.py subclasses the docker SDK's SSH transport internals (docker.transport.sshconn) to
carry API calls over the host's own SSH connection. pyproject pins `docker<8`; this test fails loudly, naming
what moved, when an SDK release changes those internals (then remote_docker.py must follow)."""

import inspect


def test_the_sdk_internals_remote_docker_builds_on_are_where_it_expects_them():
    import docker
    import requests.adapters
    from docker import constants
    from docker.transport import sshconn

    assert int(docker.__version__.split(".")[0]) == 7, f"docker {docker.__version__}: re-check remote_docker.py"
    assert isinstance(constants.DEFAULT_NUM_POOLS, int)
    assert issubclass(sshconn.SSHHTTPAdapter, requests.adapters.HTTPAdapter)
    expected = {
        sshconn.SSHConnection.__init__: ["self", "ssh_transport", "timeout", "host"],
        sshconn.SSHConnectionPool.__init__: ["self", "ssh_client", "timeout", "maxsize", "host"],
    }
    for function, params in expected.items():
        assert list(inspect.signature(function).parameters) == params, f"{function.__qualname__} changed"
    assert hasattr(sshconn.SSHConnectionPool, "_new_conn"), "SSHConnectionPool._new_conn is gone"
    assert hasattr(sshconn.SSHHTTPAdapter, "get_connection"), "SSHHTTPAdapter.get_connection is gone"
    assert hasattr(sshconn, "RecentlyUsedContainer"), "sshconn.RecentlyUsedContainer is gone"
    client = docker.DockerClient(base_url="ssh://provision", version="1.41", use_ssh_client=True)
    assert hasattr(client.api, "_custom_adapter"), "APIClient._custom_adapter is gone"
    assert client.api.get_adapter("http+docker://ssh/v1.41/version") is not None


def test_the_adapter_built_on_them_constructs_without_io():
    from provision.deploy.remote_docker import docker_client

    opened = []
    client = docker_client(lambda: opened.append(1))
    adapter = client.api.get_adapter("http+docker://ssh/v1.41/version")
    assert type(adapter).__name__ == "ExecutorSSHAdapter" and opened == []
    pool = adapter.get_connection("http+docker://ssh/v1.41/version")  # opens the transport, not a channel
    assert opened == [1] and type(pool).__name__ == "DialPool"
