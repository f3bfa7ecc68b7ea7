"""The GPU checks before a deploy (issue 14), without a host: the probe (exact string), its parser on the
documented nvidia-smi outputs of tests/fixtures/facts/, the requests-vs-facts planner as a table, the image
config read from a registry on responses captured from the sandbox registry
(tests/unit/fixtures/registry/sandbox_registry.json: provenance inside), and the precheck workflow on a
recording executor (a refusal stops every host before any change)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from provision.commands import probes
from provision.deploy import image_cuda
from provision.deploy.image_cuda import Endpoint, RegistryError, RegistryReader
from provision.facts import gpu_deploy
from provision.facts.gpu_deploy import Gpu, GpuFacts
from provision.operations import cuda_compat
from provision.operations.gpu_requests import check_request

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "tests" / "fixtures" / "facts"
CAPTURED = json.loads((ROOT / "tests" / "unit" / "fixtures" / "registry" / "sandbox_registry.json").read_text())

UUIDS = ("GPU-2f8b1c4e-7a3d-4b6e-9c1f-3e5a7b9d0c12", "GPU-4d0e3a6c-9b5f-4d8a-8e3b-5a7c9d1f2e34")


# ---------------------------------------------------------------------------------------- the probe
def test_probe_exactly():
    assert probes.gpu_deploy() == (
        'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n\n'
        "echo '@@provision-facts-begin 1'\n"
        "echo '@@provision-fact nvidia_smi_query'\n"
        "_out=$( ( command -v nvidia-smi >/dev/null || exit 127; timeout -k 5 20 nvidia-smi "
        "--query-gpu=index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version "
        "--format=csv,noheader,nounits\n) </dev/null 2>&1 ); _rc=$?\n"
        "[ -n \"$_out\" ] && printf '%s\\n' \"$_out\"\n"
        "echo \"@@provision-rc nvidia_smi_query $_rc\"\n"
        "echo '@@provision-fact nvidia_smi'\n"
        "_out=$( ( command -v nvidia-smi >/dev/null || exit 127; timeout -k 5 20 nvidia-smi\n) </dev/null 2>&1 ); "
        "_rc=$?\n"
        "[ -n \"$_out\" ] && printf '%s\\n' \"$_out\"\n"
        "echo \"@@provision-rc nvidia_smi $_rc\"\n"
        "echo '@@provision-fact nvidia_smi_xml'\n"
        "_out=$( ( command -v nvidia-smi >/dev/null || exit 127; timeout -k 5 20 nvidia-smi -q -x\n) </dev/null 2>&1 ); "
        "_rc=$?\n"
        "[ -n \"$_out\" ] && printf '%s\\n' \"$_out\"\n"
        "echo \"@@provision-rc nvidia_smi_xml $_rc\"\n"
        "echo '@@provision-fact uname_m'\n"
        "_out=$( ( uname -m\n) </dev/null 2>&1 ); _rc=$?\n"
        "[ -n \"$_out\" ] && printf '%s\\n' \"$_out\"\n"
        "echo \"@@provision-rc uname_m $_rc\"\n"
        "echo '@@provision-facts-end'\n")


# ---------------------------------------------------------------------------------------- the parser
def test_parser_on_the_documented_8_gpu_host():
    # the facts script's sections of the same names (the probe runs the same commands)
    facts = gpu_deploy.parse((FACTS / "gpu-hgx8-documented.txt").read_text())
    assert (facts.driver, facts.cuda, facts.arch, len(facts.gpus)) == ("550.54.15", "12.4", "amd64", 8)
    assert facts.gpus[:2] == (Gpu(0, UUIDS[0], "NVIDIA H100 80GB HBM3"), Gpu(1, UUIDS[1], "NVIDIA H100 80GB HBM3"))
    assert facts.describe().startswith(f"8 GPUs: 0 ({UUIDS[0]}), 1 ({UUIDS[1]}), 2 (")


def _with_xml(text: str, xml: str, rc: int = 0) -> str:
    """A probe output with an `nvidia-smi -q -x` section added (the section the facts script does not run)."""
    return text.replace("@@provision-facts-end", f"@@provision-fact nvidia_smi_xml\n{xml}\n"
                                                 f"@@provision-rc nvidia_smi_xml {rc}\n@@provision-facts-end")


def test_parser_reads_each_gpus_product_brand_from_the_xml_report():
    # nvidia-smi -q -x in NVIDIA's element names (the same layout as tests/fixtures/gpu/, shortened)
    gpus = "".join(f'<gpu id="0000000{i}:18:00.0"><product_brand>{brand}</product_brand><uuid>{uuid}</uuid></gpu>'
                   for i, (uuid, brand) in enumerate(zip(UUIDS, ("NVIDIA", "GeForce RTX"))))
    xml = f'<?xml version="1.0" ?><nvidia_smi_log><driver_version>550.54.15</driver_version>{gpus}</nvidia_smi_log>'
    facts = gpu_deploy.parse(_with_xml((FACTS / "gpu-hgx8-documented.txt").read_text(), xml))
    assert [g.brand for g in facts.gpus[:3]] == ["NVIDIA", "GeForce RTX", None]  # GPU 2: not in the report
    assert facts.brands == ("NVIDIA", "GeForce RTX", None)
    # an unreadable or failed report: the brand is not known (brand= alternatives are then assumed met, said)
    for broken, rc in (("Failed to initialize NVML: Unknown Error", 255), ("<nvidia_smi_log><gpu", 0)):
        facts = gpu_deploy.parse(_with_xml((FACTS / "gpu-hgx8-documented.txt").read_text(), broken, rc))
        assert facts.brands == (None,) and len(facts.gpus) == 8


@pytest.mark.parametrize("fixture, error", [
    ("gpu-no-driver-documented.txt", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"),
    ("gpu-driver-mismatch-documented.txt", "Failed to initialize NVML: Driver/library version mismatch"),
])
def test_parser_on_a_broken_driver(fixture, error):
    facts = gpu_deploy.parse((FACTS / fixture).read_text())
    assert facts.gpus == () and facts.nvidia_smi and facts.error.startswith(error)
    assert facts.describe().startswith("no usable GPU (nvidia-smi: ")


def test_parser_without_nvidia_smi():
    out = ("@@provision-facts-begin 1\n@@provision-fact nvidia_smi_query\n@@provision-rc nvidia_smi_query 127\n"
           "@@provision-fact nvidia_smi\n@@provision-rc nvidia_smi 127\n@@provision-fact uname_m\naarch64\n"
           "@@provision-rc uname_m 0\n@@provision-facts-end\n")
    facts = gpu_deploy.parse(out)
    assert facts == GpuFacts(arch="arm64") and facts.describe() == "no GPU (nvidia-smi is not installed)"


# ---------------------------------------------------------------------------- requests vs facts (table)
TWO = GpuFacts(gpus=(Gpu(0, UUIDS[0], "H100"), Gpu(1, UUIDS[1], "H100")), driver="550.54.15", cuda="12.4",
               nvidia_smi=True)
NONE = GpuFacts()
BROKEN = GpuFacts(error="Failed to initialize NVML: Driver/library version mismatch", nvidia_smi=True)

REQUESTS = [
    # (id, count, device_ids, facts, ok, words)
    ("all-on-two", -1, [], TWO, True, ["all GPUs of h1's 2"]),
    ("two-on-two", 2, [], TWO, True, []),
    ("one-on-two", 1, [], TWO, True, []),
    ("four-on-two", 4, [], TWO, False, ["service svc asks for 4 GPUs, but host h1 has 2 GPUs: 0 (GPU-2f8b", "1 (GPU-4d0e",
                                        "lower the count"]),
    ("index-present", 0, ["1"], TWO, True, []),
    ("uuid-present-any-case", 0, [UUIDS[1].upper()], TWO, True, []),
    ("index-absent", 0, ["0", "3"], TWO, False, ["asks for GPUs 0, 3, but host h1 has no GPU 3; it has 2 GPUs"]),
    ("uuid-absent", 0, ["GPU-00000000-0000-0000-0000-000000000000"], TWO, False,
     ["has no GPU GPU-00000000-0000-0000-0000-000000000000"]),
    ("mig-not-checked", 0, ["MIG-1b2c3d4e-0000-0000-0000-000000000000"], TWO, True, ["MIG device ids are not checked"]),
    ("all-on-no-gpu", -1, [], NONE, False, ["asks for all GPUs, but host h1 has no GPU (nvidia-smi is not installed)",
                                            "provision nvidia"]),
    ("one-on-broken-driver", 1, [], BROKEN, False, ["no usable GPU (nvidia-smi: Failed to initialize NVML"]),
]


@pytest.mark.parametrize("count, device_ids, facts, ok, words", [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS])
def test_requests_vs_facts(count, device_ids, facts, ok, words):
    decision = check_request("h1", "svc", count, device_ids, facts)
    assert decision.ok == ok, decision
    text = " ".join([decision.message, *decision.warnings])
    for word in words:
        assert word in text, (word, text)


# ------------------------------------------------------------------------------ registry: pure parts
@pytest.mark.parametrize("name, parts", [
    ("nvidia/cuda:12.4.1-base-ubuntu22.04", ("docker.io", "nvidia/cuda", "12.4.1-base-ubuntu22.04")),
    ("ubuntu", ("docker.io", "library/ubuntu", "latest")),
    ("sandbox-registry:5000/nvidia/cuda:13.0.0-base-ubuntu24.04",
     ("sandbox-registry:5000", "nvidia/cuda", "13.0.0-base-ubuntu24.04")),
    ("nvcr.io/nvidia/pytorch@sha256:" + "a" * 64, ("nvcr.io", "nvidia/pytorch", "sha256:" + "a" * 64)),
    ("localhost/app", ("localhost", "app", "latest")),
])
def test_split_name(name, parts):
    assert image_cuda.split_name(name) == parts


def test_endpoints_follow_the_engines_registry_config():
    info = {"Mirrors": ["http://sandbox-registry:5000/"], "InsecureRegistryCIDRs": ["127.0.0.0/8", "10.0.0.0/8"],
            "IndexConfigs": {"docker.io": {"Secure": True}, "sandbox-registry:5000": {"Secure": False}}}
    assert image_cuda.endpoints("docker.io", info) == [Endpoint("http", "sandbox-registry", 5000),
                                                      Endpoint("https", "registry-1.docker.io", 443)]
    assert image_cuda.endpoints("sandbox-registry:5000", info) == [Endpoint("https", "sandbox-registry", 5000),
                                                                  Endpoint("http", "sandbox-registry", 5000)]
    assert image_cuda.endpoints("nvcr.io", info) == [Endpoint("https", "nvcr.io", 443)]  # secure: https only
    assert image_cuda.endpoints("10.1.2.3:5000", info)[-1] == Endpoint("http", "10.1.2.3", 5000)  # by CIDR
    assert Endpoint("https", "nvcr.io", 443).base == "https://nvcr.io"


def test_bearer_challenge():
    # the form of the distribution spec's token authentication (docs.docker.com/registry/spec/auth/token/)
    assert image_cuda.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:nvidia/cuda:pull"'
    ) == ("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                     "scope": "repository:nvidia/cuda:pull"})


# ------------------------------------------------------------------- registry: on captured responses
class Captured:
    """A fetch that answers from the capture (http://sandbox-registry:5000 stands for the captured one)."""

    def __init__(self, extra: dict | None = None):
        self.requests: list[tuple[str, dict]] = []
        self.extra = extra or {}

    def __call__(self, url: str, headers: dict):
        self.requests.append((url, headers))
        if url in self.extra:
            return self.extra[url](headers)
        path = url.split("://", 1)[1].split("/", 1)[1]
        answer = CAPTURED["responses"].get("/" + path)
        if answer is None:
            return 404, {"content-type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        return answer["status"], answer["headers"], answer["body"].encode()


SANDBOX = Endpoint("http", "sandbox-registry", 5000)


def test_config_of_a_tag_without_any_layer():
    fetch = Captured()
    config = RegistryReader(SANDBOX, fetch).image_config("nvidia/cuda", "13.0.0-base-ubuntu24.04")
    assert "NVIDIA_REQUIRE_CUDA=cuda>=13.0" in config["config"]["Env"]
    paths = [url.split("5000", 1)[1] for url, _ in fetch.requests]
    assert paths[0] == "/v2/nvidia/cuda/manifests/13.0.0-base-ubuntu24.04" and paths[1].startswith("/v2/nvidia/cuda/blobs/")
    assert len(paths) == 2  # the manifest and the config: no layer
    assert fetch.requests[0][1]["Accept"] == image_cuda.ACCEPT
    decision = cuda_compat.check(cuda_compat.requirement_from_config(config),
                                 cuda_compat.host_cuda("550.54.15", "12.4"), "nvidia/cuda:13.0.0-base-ubuntu24.04")
    assert not decision.ok and "needs CUDA 13.0" in decision.message and ">= 580.65.06" in decision.message


@pytest.mark.parametrize("arch, env", [("amd64", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"),
                                       ("arm64", "CUDA_VERSION=12.8.0")])
def test_manifest_list_picks_the_hosts_platform(arch, env):
    fetch = Captured()
    config = RegistryReader(SANDBOX, fetch).image_config("nvidia/cuda", "13.0.0-multi", arch)
    assert env in config["config"]["Env"]
    assert len(fetch.requests) == 3  # index, the platform's manifest, the config


def test_manifest_list_without_the_hosts_platform():
    with pytest.raises(RegistryError, match="has no linux/s390x image"):
        RegistryReader(SANDBOX, Captured()).image_config("nvidia/cuda", "13.0.0-multi", "s390x")


def test_unknown_tag_is_a_clear_error():
    with pytest.raises(RegistryError, match=r"http://sandbox-registry:5000 has no nvidia/cuda no-such-tag \(404\)"):
        RegistryReader(SANDBOX, Captured()).image_config("nvidia/cuda", "no-such-tag")


def test_bearer_token_flow_and_blob_redirect_without_credentials():
    """A Hub-like registry: 401 with a Bearer challenge, the token service with the playbook's login, the
    config blob redirected to storage, where no Authorization header goes."""
    hub = Endpoint("https", "registry.example", 443)
    manifest = CAPTURED["responses"]["/v2/nvidia/cuda/manifests/13.0.0-base-ubuntu24.04"]
    digest = json.loads(manifest["body"])["config"]["digest"]
    blob = CAPTURED["responses"][f"/v2/nvidia/cuda/blobs/{digest}"]

    def manifests(headers):
        if headers.get("Authorization") != "Bearer tok-123":
            return 401, {"www-authenticate": 'Bearer realm="https://auth.example/token",service="registry.example",'
                                             'scope="repository:nvidia/cuda:pull"'}, b""
        return 200, manifest["headers"], manifest["body"].encode()

    def token(headers):
        assert headers["Authorization"] == "Basic Ym90OnMzY3JldA=="  # bot:s3cret
        return 200, {"content-type": "application/json"}, b'{"token": "tok-123"}'

    fetch = Captured({
        "https://registry.example/v2/nvidia/cuda/manifests/13.0.0-base-ubuntu24.04": manifests,
        "https://auth.example/token?service=registry.example&scope=repository%3Anvidia%2Fcuda%3Apull": token,
        f"https://registry.example/v2/nvidia/cuda/blobs/{digest}":
            lambda h: (307, {"location": "https://storage.example/blob?sig=x"}, b""),
        "https://storage.example/blob?sig=x": lambda h: (200, blob["headers"], blob["body"].encode()),
    })
    config = RegistryReader(hub, fetch, {"username": "bot", "password": "s3cret"}).image_config(
        "nvidia/cuda", "13.0.0-base-ubuntu24.04")
    assert "CUDA_VERSION=13.0.0" in config["config"]["Env"]
    storage = [h for url, h in fetch.requests if url.startswith("https://storage.example")]
    assert storage == [{}]  # no credentials to the storage host


def test_remote_config_falls_back_from_https_to_http_for_an_insecure_registry():
    calls = []

    def fetch(url, headers):
        calls.append(url)
        if url.startswith("https://"):
            raise OSError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
        return Captured()(url, headers)

    config = image_cuda.remote_config("sandbox-registry:5000/nvidia/cuda:13.0.0-base-ubuntu24.04", fetch=fetch,
                                      registry_config={"IndexConfigs": {"sandbox-registry:5000": {"Secure": False}}},
                                      auth=None)
    assert config["config"]["Env"] and calls[0].startswith("https://") and calls[1].startswith("http://")


def test_remote_config_names_every_endpoint_that_failed():
    def fetch(url, headers):
        raise OSError("the host cannot connect")

    with pytest.raises(RegistryError, match=r"https://nvcr.io: the host cannot connect"):
        image_cuda.remote_config("nvcr.io/nvidia/cuda:13.0.0", fetch=fetch, registry_config={}, auth=None)


# ------------------------------------------------------------------- the workflow, on a fake executor
def _service(image, gpus, environment=None):
    return SimpleNamespace(image=image, environment=environment or {},
                           gpu_request=lambda: None if gpus is None else SimpleNamespace(
                               count=gpus[0], device_ids=gpus[1]))


def _context(services: dict, by_host: dict, local: dict):
    from provision.deploy import images as image_sources

    sources = {name: image_sources.ImageSource(s.image, image_sources.SHIP, f"sha256:{name}")
               for name, s in services.items()}
    return SimpleNamespace(playbook=SimpleNamespace(services=services, registry=None), services_by_host=by_host,
                           sources=sources, environ={}), local


def test_precheck_refuses_every_host_before_any_change(monkeypatch):
    from provision.executor.fake import RecordingExecutor
    from provision.workflows import gpu_precheck
    from provision.workflows.fanout import RunOptions

    hgx = (FACTS / "gpu-hgx8-documented.txt").read_text()
    services = {"train": _service("app/train:13", (4, [])), "web": _service("app/web:1", None),
                "infer": _service("app/infer:12", (0, ["7"]))}
    context, local = _context(services, {"gpu1": ["web", "train"], "cpu1": ["web", "infer"], "gpu2": ["infer"]},
                              {"app/train:13": {"Config": {"Env": ["CUDA_VERSION=13.0.0", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"]}},
                               "app/infer:12": {"Config": {"Env": ["CUDA_VERSION=12.2.0"]}}})
    monkeypatch.setattr(gpu_precheck, "_local_configs", lambda ctx, names: local)
    outputs = {"gpu1": hgx, "gpu2": hgx, "cpu1": (FACTS / "gpu-no-driver-documented.txt").read_text()}
    executors = {}

    def factory(target, options):
        executor = RecordingExecutor(target.name)
        executor.respond("nvidia-smi", stdout=outputs[target.name])
        executors[target.name] = executor
        return executor

    monkeypatch.setattr(gpu_precheck, "fan_out", _fan_out_with(factory))
    targets = [SimpleNamespace(name=n) for n in ("gpu1", "cpu1", "gpu2", "idle")]
    context.services_by_host["idle"] = ["web"]
    report, steps = gpu_precheck.precheck(context, targets, RunOptions())
    assert report is not None and report.exit_code() == 2
    gpu1 = {s.name: s for s in report.hosts["gpu1"].steps}
    assert gpu1["gpu check train"].status == "failed"
    assert "image app/train:13 (service train) needs CUDA 13.0" in gpu1["gpu check train"].message
    assert "550.54.15 supports CUDA 12.4" in gpu1["gpu check train"].message
    assert "Remedy: install a driver >= 580.65.06" in gpu1["gpu check train"].message
    cpu1 = report.hosts["cpu1"]
    assert cpu1.status == "failed" and "host cpu1 has no usable GPU" in cpu1.message
    gpu2 = report.hosts["gpu2"]  # 8 GPUs, GPU 7 present, CUDA 12.2 image on a 12.4 driver: fine, but not deployed
    assert gpu2.status == "skipped" and "not deployed: the GPU checks refused hosts gpu1, cpu1" in gpu2.message
    assert [s.status for s in gpu2.steps] == ["ok"]
    assert report.hosts["idle"].status == "skipped"
    assert "idle" not in executors  # a host without a GPU service is not contacted
    for executor in executors.values():  # one read-only probe each, nothing else
        assert executor.shells == [probes.gpu_deploy()] and executor.timeouts == [gpu_precheck.PROBE_TIMEOUT_S]


def _fan_out_with(factory):
    from provision.report import Report
    from provision.workflows.fanout import run_on_host

    def fan_out(command, targets, work, options, *, executors=None):
        assert executors is None  # precheck() called without the deploy's shared executors
        report = Report(command)
        for target in targets:
            report.add(run_on_host(target, work, options, factory))
        return report

    return fan_out


def test_precheck_without_the_drivers_cuda_version_skips_the_image_check(monkeypatch):
    from provision.executor.fake import RecordingExecutor
    from provision.workflows import gpu_precheck
    from provision.workflows.fanout import RunOptions

    query = (FACTS / "gpu-hgx8-documented.txt").read_text().split("@@provision-fact nvidia_smi\n")[0]
    out = query + "@@provision-fact nvidia_smi\n@@provision-rc nvidia_smi 124\n@@provision-facts-end\n"
    context, local = _context({"train": _service("app/train:13", (1, []))}, {"gpu1": ["train"]},
                              {"app/train:13": {"Config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=13.0"]}}})
    monkeypatch.setattr(gpu_precheck, "_local_configs", lambda ctx, names: local)

    def factory(target, options):
        executor = RecordingExecutor(target.name)
        executor.respond("nvidia-smi", stdout=out)
        return executor

    monkeypatch.setattr(gpu_precheck, "fan_out", _fan_out_with(factory))
    report, steps = gpu_precheck.precheck(context, [SimpleNamespace(name="gpu1")], RunOptions())
    assert report is None  # not a refusal: the deploy goes on, the step says what was not checked
    [step] = steps["gpu1"]
    assert step.status == "skipped" and "did not report a readable driver and CUDA version" in step.message
