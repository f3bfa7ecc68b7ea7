"""The settings' fast path (no pydantic) takes a value only when the model would return it unchanged: compared
with the pydantic model on many values, good and bad, per field (issue 12)."""

from pathlib import Path

import pytest

from provision.config import host_settings as hs
from provision.config.positioned_yaml import load_yaml
from provision.errors import ProvisionError

VALUES = [None, True, False, 0, 1, 9, 10, 600, -1, 1.5, 27, "", "x", "600", "true", "yes", "12h", "1d", "90s", " 30m",
          "bad age", "20.10.24", "5:27.3.1-1~debian.12~bookworm", "27.3.1;rm", "580", "55", "manager", "worker",
          "hello-world", "Bad/Image", "registry:5000/app:1", "http://proxy:3128", [], ["alice"], ["alice", 3],
          ("alice",), {}, {"mtu": 1450}, {1: "x"}, {"registry-mirrors": ["http://m:5000"]}]


def through_model(cls, values):
    try:
        model = getattr(hs._models(), cls.MODEL).model_validate(values)
    except Exception as exc:
        return type(exc).__name__
    return {name: getattr(model, name) for name in cls.FIELDS}


@pytest.mark.parametrize("cls", [hs.DockerSettings, hs.NvidiaSettings, hs.SwarmSettings])
def test_the_fast_path_agrees_with_the_model_on_every_value_of_every_field(cls):
    for name in cls.FIELDS:
        for value in VALUES:
            try:
                fast = hs._fast(cls, {name: value})
            except hs._Slow:
                continue  # the model decides
            assert fast == through_model(cls, {name: value}), (name, value)
            assert [type(v) for v in fast.values()] == [type(v) for v in through_model(cls, {name: value}).values()]
    assert hs._fast(cls, {}) == through_model(cls, {})  # the defaults


def test_values_the_fast_path_leaves_to_the_model_still_convert_or_fail_as_before():
    assert hs.DockerSettings(apt_timeout="600").apt_timeout == 600
    assert hs.DockerSettings(docker_hold="yes").docker_hold is True
    with pytest.raises(ProvisionError, match=r"apt_timeout: Input should be greater than or equal to 10 \(got 5\)"):
        hs.docker_settings("h1", {"apt_timeout": 5})
    with pytest.raises(ProvisionError, match="invalid docker_version"):
        hs.docker_settings("h1", {"docker_version": "27;rm"})


def test_a_yaml_inventorys_values_take_the_fast_path():
    """Mappings and sequences from the YAML loader (dict/list subclasses) come out as plain dict/list, as from
    the model."""
    data = load_yaml("docker_daemon:\n  registry-mirrors: [http://m:5000]\ndocker_users: [alice]\n"
                     "docker_repo_key_max_age: 12h\ndocker_version: 27.3.1\n", Path("inv.yml"))
    fast = hs._fast(hs.DockerSettings, dict(data))
    assert fast == through_model(hs.DockerSettings, dict(data))
    assert type(fast["docker_daemon"]) is dict and type(fast["docker_users"]) is list
    assert hs.DockerSettings(**data).docker_repo_key_max_age == 43200
