"""The image step shared by `provision deploy` and `provision deploy --swarm` (workflows.deploy_images),
with a fake engine: what each source does, the failures it turns into failed steps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import docker.errors
import pytest

from provision.config.connection import connection_settings
from provision.deploy.images import BUILD_REMOTE, PULL, SHIP, ImageSource
from provision.deploy.playbook import load_playbook
from provision.executor.fake import RecordingExecutor
from provision.workflows import swarm_deploy
from provision.workflows.deploy_images import ImageJob, fetch_image, same_engine
from provision.workflows.targets import Target


class Images:
    def __init__(self, have: dict[str, str], build_error: Exception | None = None,
                 pull_error: Exception | None = None) -> None:
        self.have, self.build_error, self.pull_error = have, build_error, pull_error
        self.built: list[dict] = []

    def get(self, name):
        if name not in self.have:
            raise docker.errors.ImageNotFound(name)
        return type("Image", (), {"id": self.have[name]})()

    def build(self, **kwargs):
        self.built.append(kwargs)
        if self.build_error:
            raise self.build_error
        return type("Image", (), {"id": "sha256:new", "short_id": "new"})(), []



PULL_EVENTS = [  # as the engine streams them (decoded): two layers, one already on the host
    {"status": "Pulling from demo/app", "id": "1"},
    {"status": "Already exists", "progressDetail": {}, "id": "aaa"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"},
    {"status": "Downloading", "progressDetail": {"current": 1000, "total": 4000}, "id": "bbb"},
    {"status": "Downloading", "progressDetail": {"current": 3000, "total": 4000}, "id": "bbb"},
    {"status": "Download complete", "progressDetail": {}, "id": "bbb"},
    {"status": "Extracting", "progressDetail": {"current": 9000, "total": 9000}, "id": "bbb"},
    {"status": "Pull complete", "progressDetail": {}, "id": "bbb"},
    {"status": "Digest: sha256:0123"},
    {"status": "Status: Downloaded newer image for demo/app:1"},
]


class API:
    """The low-level pull the workflow streams: events, then the image is in `have` (as the SDK's
    images.pull: an error before the stream raises, the image is then looked up by reference)."""

    def __init__(self, images: Images) -> None:
        self.images = images
        self.pulls: list[tuple] = []

    def pull(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        self.pulls.append((repository, tag, stream, decode, auth_config))
        if self.images.pull_error:
            raise self.images.pull_error
        self.images.have[f"{repository}:{tag}"] = "sha256:pulled"
        return iter(PULL_EVENTS)


class Client:
    def __init__(self, images: Images) -> None:
        self.images = images
        self.api = API(images)


def target(name: str = "h1", connection: str = "ssh") -> Target:
    hostvars = {"ansible_user": "root", "ansible_connection": connection}
    return Target(name, connection_settings(name, hostvars), hostvars)


@pytest.fixture
def playbook(tmp_path: Path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "stack.yml").write_text(textwrap.dedent("""
        stack: demo
        services:
          app: {image: demo/app:1, build: ./app, build_on: remote}
        """))
    return load_playbook(tmp_path / "stack.yml", environ={})


def job(playbook, source: ImageSource, check: bool = False) -> ImageJob:
    return ImageJob(playbook, {"app": source}, {}, check)


def test_a_failed_build_on_the_host_is_a_failed_step(playbook):
    source = ImageSource("demo/app:1", BUILD_REMOTE)
    client = Client(Images({}, build_error=docker.errors.BuildError("COPY failed: no such file", [])))
    outcome = fetch_image(job(playbook, source), "app", source, target(), RecordingExecutor("h1"), client)
    assert (outcome.status, outcome.image_id) == ("failed", None)
    assert outcome.message == "build on the host failed: COPY failed: no such file"
    assert client.images.built and client.images.built[0]["tag"] == "demo/app:1"


def test_build_and_pull_say_unchanged_when_the_id_is_the_same(playbook):
    source = ImageSource("demo/app:1", BUILD_REMOTE)
    outcome = fetch_image(job(playbook, source), "app", source, target(), RecordingExecutor("h1"),
                          Client(Images({"demo/app:1": "sha256:new"})))
    assert (outcome.status, outcome.message, outcome.image_id) == ("ok", "built on the host (unchanged)", "sha256:new")
    pulled = ImageSource("redis:7", PULL, note="from Docker Hub")
    outcome = fetch_image(job(playbook, pulled), "app", pulled, target(), RecordingExecutor("h1"), Client(Images({})))
    assert (outcome.status, outcome.message, outcome.action) == ("changed", "pulled: 3.9 KiB downloaded", "pull")


def test_a_failed_pull_falls_back_to_the_image_on_the_host(playbook):
    pulled = ImageSource("redis:7", PULL)
    error = docker.errors.APIError("pull access denied")
    outcome = fetch_image(job(playbook, pulled), "app", pulled, target(), RecordingExecutor("h1"),
                          Client(Images({"redis:7": "sha256:old"}, pull_error=error)))
    assert (outcome.status, outcome.image_id) == ("ok", "sha256:old")
    assert outcome.message.startswith("pull failed (pull access denied")
    outcome = fetch_image(job(playbook, pulled), "app", pulled, target(), RecordingExecutor("h1"),
                          Client(Images({}, pull_error=error)))
    assert (outcome.status, outcome.message) == ("failed", "pull failed: pull access denied")


def test_check_says_what_would_happen_and_moves_nothing(playbook):
    shipped = ImageSource("demo/app:1", SHIP, local_id="sha256:here", note="built here")
    images = Images({})
    outcome = fetch_image(job(playbook, shipped, check=True), "app", shipped, target(), RecordingExecutor("h1"),
                          Client(images))
    assert (outcome.status, outcome.action, outcome.message) == (
        "changed", "ship", "ship from this machine (built here; only missing layers)")
    outcome = fetch_image(job(playbook, shipped, check=True), "app", shipped, target(), RecordingExecutor("h1"),
                          Client(Images({"demo/app:1": "sha256:here"})))
    assert (outcome.status, outcome.message) == ("ok", "present on the host")
    built = ImageSource("demo/app:1", BUILD_REMOTE)
    outcome = fetch_image(job(playbook, built, check=True), "app", built, target(), RecordingExecutor("h1"),
                          Client(images))
    assert (outcome.status, outcome.action, outcome.message) == ("changed", "build", "build on the host")
    assert not images.built


def test_the_local_engine_has_every_shipped_image_already(playbook):
    assert same_engine(target(connection="local")) and not same_engine(target())
    shipped = ImageSource("demo/app:1", SHIP, local_id="sha256:here")
    outcome = fetch_image(job(playbook, shipped), "app", shipped, target(connection="local"),
                          RecordingExecutor("h1"), Client(Images({})))
    assert (outcome.status, outcome.image_id) == ("ok", "sha256:here")


def test_swarm_image_step_reports_a_failed_build_instead_of_raising(playbook, monkeypatch):
    """The Swarm deploy uses the same image step: a build error is the host's failed step."""
    source = ImageSource("demo/app:1", BUILD_REMOTE)
    client = Client(Images({}, build_error=docker.errors.BuildError("RUN exited 1", [])))
    monkeypatch.setattr(swarm_deploy, "engine", lambda target, executor: client)
    loaded = swarm_deploy.Loaded(playbook, [target()], target(), {}, {})
    run = swarm_deploy.SwarmRun(loaded, ImageJob(playbook, {"app": source}, {}, False))
    result = swarm_deploy.image_work(run)(target(), RecordingExecutor("h1"))
    [step] = result.steps
    assert (step.name, step.status, step.message) == ("image demo/app:1", "failed",
                                                      "build on the host failed: RUN exited 1")


def test_a_pull_is_streamed_and_reports_the_layers_bytes(playbook):
    from provision import progress

    class Recorder:
        def __init__(self):
            self.updates = []

        def step(self, host, name):
            pass

        def update(self, host, update):
            self.updates.append((update.done, update.total, update.unit, update.detail))

    pulled = ImageSource("registry.example.com:5000/team/app:1", PULL)
    client, recorder = Client(Images({})), Recorder()
    with progress.reporting(recorder, "h1"):
        outcome = fetch_image(job(playbook, pulled), "app", pulled, target(), RecordingExecutor("h1"), client)
    assert (outcome.status, outcome.image_id) == ("changed", "sha256:pulled")
    assert outcome.message == "pulled: 3.9 KiB downloaded"
    assert client.api.pulls == [("registry.example.com:5000/team/app", "1", True, True, None)]
    assert recorder.updates == [(1000, 4000, "B", "pulling"), (3000, 4000, "B", "pulling"),
                                (4000, 4000, "B", "pulling")]


def test_pull_progress_sums_the_layers_being_downloaded():
    from provision.deploy.pull_progress import PullProgress

    counted = PullProgress()
    assert (counted.done, counted.total) == (0, None)
    for event in [{"status": "Downloading", "progressDetail": {"current": 10, "total": 100}, "id": "a"},
                  {"status": "Downloading", "progressDetail": {"current": 5, "total": 50}, "id": "b"},
                  {"status": "Extracting", "progressDetail": {"current": 300, "total": 300}, "id": "a"},
                  {"status": "Download complete", "progressDetail": {}, "id": "b"},
                  {"status": "Pull complete", "id": "zzz"}, {"error": "x"}, {"status": 3, "id": "a"}]:
        counted.feed(event)
    assert (counted.done, counted.total) == (60, 150)


def test_a_lost_docker_api_connection_is_a_failed_image_step_not_a_bare_error(playbook):
    """requests' ConnectionError (the host's dial-stdio channel gone mid-step) used to escape the host's work,
    which fan_out turned into a lone `error` step (the steps before it lost)."""
    import requests.exceptions

    pulled = ImageSource("redis:7", PULL)
    error = requests.exceptions.ConnectionError("('Connection aborted.', OSError('Socket is closed'))")
    outcome = fetch_image(job(playbook, pulled), "app", pulled, target(), RecordingExecutor("h1"),
                          Client(Images({}, pull_error=error)))
    assert outcome.status == "failed"
    assert outcome.message == ("the connection to h1's Docker engine was lost: "
                               "('Connection aborted.', OSError('Socket is closed'))")
