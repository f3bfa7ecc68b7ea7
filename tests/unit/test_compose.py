"""provision.compose without the oracle: refusals with FILE:LINE, interpolation, .env files,
YAML scalars as Compose reads them, units, merge rules and the project name."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.compose import ComposeError, load, normalize_project_name, to_compose_json
from provision.compose.dotenv import parse_env_text
from provision.compose.interpolation import InterpolationError, interpolate_text
from provision.compose.units import format_duration, parse_bytes, parse_duration
from provision.errors import EXIT_BAD_INPUT, InputError


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None, **kwargs):
    path = write(tmp_path / "proj", "compose.yaml", text)
    return load([path], environ=env or {}, **kwargs)


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None, **kwargs) -> ComposeError:
    with pytest.raises(ComposeError) as caught:
        load_text(tmp_path, text, env, **kwargs)
    return caught.value


# -- refusals --------------------------------------------------------------------------------


def test_an_unsupported_service_key_is_refused_with_file_line_and_path(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: nginx\n    mem_limit: 1g\n")
    assert isinstance(error, InputError) and error.exit_code == EXIT_BAD_INPUT
    assert str(error) == (f"{tmp_path}/proj/compose.yaml:4: services.web.mem_limit: not supported by provision "
                          "(use deploy.resources.limits.memory; see docs/compose.md for what provision supports)")


def test_an_unsupported_nested_key_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    build:\n      context: .\n      ssh: [default]\n")
    assert str(error) == (f"{tmp_path}/proj/compose.yaml:5: services.web.build.ssh: not supported by provision "
                          "(see docs/compose.md for what provision supports)")


def test_an_unsupported_long_syntax_field_in_a_list_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    deploy:\n      placement:\n"
                               "        constraints: [node.role==manager]\n")
    assert error.line == 5 and error.message.startswith("services.web.deploy.placement: not supported by provision")


def test_an_unsupported_top_level_section_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web: {image: x}\nconfigs:\n  c: {file: ./c.conf}\n")
    assert error.line == 3
    assert error.message.startswith("configs: not supported by provision (mount the file with a bind volume")


def test_a_misspelt_key_is_named_as_not_compose(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    imag: nginx\n")
    assert str(error) == (f"{tmp_path}/proj/compose.yaml:3: services.web.imag: not a Compose key (the Compose "
                          "Specification has no 'imag' here; see docs/compose.md for what provision supports)")


def test_extension_fields_are_allowed_anywhere_and_kept_in_the_model(tmp_path: Path) -> None:
    project = load_text(tmp_path, "x-provision: {hosts: gpu}\nservices:\n  web:\n    image: x\n"
                                  "    x-provision: {hosts: web, build_on: builder}\n"
                                  "    deploy: {x-note: 1}\n")
    assert project.extensions == {"x-provision": {"hosts": "gpu"}}
    assert project.services["web"]["x-provision"] == {"hosts": "web", "build_on": "builder"}
    rendered = to_compose_json(project)
    assert rendered["x-provision"] == {"hosts": "gpu"}
    assert "x-provision" not in rendered["services"]["web"]  # as Compose's JSON prints it


def test_an_unsupported_key_in_an_unused_profile_is_still_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web: {image: x}\n  dbg:\n    image: x\n    profiles: [debug]\n"
                               "    tty: true\n")
    assert error.line == 6 and error.message.startswith("services.dbg.tty: not supported by provision")


def test_a_bad_port_names_its_item(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    ports:\n      - '80:80'\n      - 'abc'\n")
    assert error.line == 6
    assert error.message.startswith("services.web.ports[1]: invalid port 'abc' (")


def test_a_duration_must_be_a_string_as_in_compose_schema(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    healthcheck:\n      interval: 10\n")
    assert error.line == 5 and error.message.startswith("services.web.healthcheck.interval: must be a string")


def test_undefined_references_are_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    depends_on: [db]\n")
    assert error.line == 2 and "depends on undefined service 'db'" in error.message
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    volumes: [data:/data]\n")
    assert "refers to undefined volume 'data'" in error.message
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    secrets: [token]\n")
    assert "refers to undefined secret 'token'" in error.message


def test_a_dependency_in_a_disabled_profile_is_refused(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: x\n    depends_on: [db]\n  db:\n    image: x\n    profiles: [db]\n"
    error = error_of(tmp_path, text)
    assert "(it is in a profile that is not enabled)" in error.message
    assert set(load_text(tmp_path, text, profiles=["db"]).services) == {"web", "db"}


def test_an_invalid_explicit_project_name_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services: {web: {image: x}}\n", project_name="My.App")
    assert error.message.startswith("invalid project name 'My.App'")


# -- YAML ------------------------------------------------------------------------------------


def test_bad_yaml_is_a_syntax_error_with_its_line(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n   bad: [\n")
    assert error.file == f"{tmp_path}/proj/compose.yaml" and error.line == 4
    assert error.message.startswith("YAML syntax error: ")


def test_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    image: y\n")
    assert error.line == 4 and error.message.startswith("duplicate key 'image'")


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert error_of(tmp_path, "- a\n- b\n").message == "top-level object must be a mapping"
    assert error_of(tmp_path, "").message == "empty compose file"


def test_scalars_resolve_as_go_yaml_v3_reads_them(tmp_path: Path) -> None:
    project = load_text(tmp_path, "services:\n  web:\n    image: x\n    environment:\n      A: yes\n      B: on\n"
                                  "      C: 0x1F\n      D: 2001-01-01\n      E: 1e3\n      F: True\n"
                                  "    ports:\n      - 80:80\n")
    env = project.services["web"]["environment"]
    assert env == {"A": "yes", "B": "on", "C": "31", "D": "2001-01-01", "E": "1000", "F": "true"}
    assert project.services["web"]["ports"] == [{"mode": "ingress", "target": 80, "published": "80",
                                                 "protocol": "tcp"}]


# -- interpolation ---------------------------------------------------------------------------


def test_a_required_variable_without_value_names_file_line_and_key(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  web:\n    image: x\n    environment:\n"
                               "      TOKEN: ${TOKEN:?set TOKEN in .env}\n")
    assert str(error) == (f"{tmp_path}/proj/compose.yaml:5: services.web.environment.TOKEN: required variable "
                          "TOKEN is missing a value: set TOKEN in .env")


def test_interpolation_forms() -> None:
    env = {"SET": "v", "EMPTY": ""}
    look = env.get
    assert interpolate_text("${SET} $SET ${UNSET} $$ $${SET}", look) == "v v  $ ${SET}"
    assert interpolate_text("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", look) == "d d  d"
    assert interpolate_text("${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}", look) == "alt  alt "
    assert interpolate_text("${UNSET:-${ALSO:-in-${SET}}}", look) == "in-v"
    assert interpolate_text("${EMPTY?fine}", look) == ""
    with pytest.raises(InterpolationError, match="required variable EMPTY is missing a value: no$"):
        interpolate_text("${EMPTY:?no}", look)
    with pytest.raises(InterpolationError, match="required variable UNSET is missing a value$"):
        interpolate_text("${UNSET?}", look)
    with pytest.raises(InterpolationError, match="missing '}'"):
        interpolate_text("${UNSET:-x", look)
    with pytest.raises(InterpolationError, match=r"write '\$\$'"):
        interpolate_text("cost $5", look)


def test_the_operator_environment_wins_over_dot_env(tmp_path: Path) -> None:
    write(tmp_path / "proj", ".env", "TAG=from-dotenv\nOTHER=dotenv\n")
    project = load_text(tmp_path, "services:\n  web:\n    image: app:${TAG}-${OTHER}\n", env={"TAG": "op"})
    assert project.services["web"]["image"] == "app:op-dotenv"
    assert project.environment["TAG"] == "op"


def test_dotenv_rules() -> None:
    text = ("# comment\n\nA=plain value # comment\nexport B='single ${A} $$'\nC=\"double\\nline ${A}\"\n"
            "D=\"multi\nline\"\nE=${UNSET:-dflt}\nF\nG=a#b\n")
    assert parse_env_text(text, "x.env", {"F": "from-op"}.get) == {
        "A": "plain value", "B": "single ${A} $$", "C": "double\nline plain value", "D": "multi\nline",
        "E": "dflt", "F": "from-op", "G": "a#b"}


def test_a_bad_dotenv_line_is_refused_with_its_line(tmp_path: Path) -> None:
    write(tmp_path / "proj", ".env", "A=1\n=oops\n")
    error = error_of(tmp_path, "services: {web: {image: x}}\n")
    assert error.file == f"{tmp_path}/proj/.env" and error.line == 2


# -- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, printed", [("30s", "30s"), ("1m30s", "1m30s"), ("90s", "1m30s"), ("1h", "1h0m0s"),
                                           ("500ms", "500ms"), ("1.5s", "1.5s"), ("2m", "2m0s"), ("0", "0s"),
                                           ("1h2m3.5s", "1h2m3.5s"), ("250us", "250µs")])
def test_durations_print_as_go_does(text: str, printed: str) -> None:
    assert format_duration(parse_duration(text)) == printed


def test_byte_sizes() -> None:
    assert parse_bytes("1gb") == 1024**3 and parse_bytes("512M") == 512 * 1024**2 and parse_bytes(1024) == 1024
    assert parse_bytes("64k") == 65536 and parse_bytes("2b") == 2
    with pytest.raises(ValueError):
        parse_bytes("lots")


# -- merging, profiles, names ----------------------------------------------------------------


def test_override_files_follow_compose_rules(tmp_path: Path) -> None:
    base = write(tmp_path / "p", "compose.yaml", "services:\n  web:\n    image: a\n    command: [x, y]\n"
                 "    ports: ['80:80', '81:81']\n    environment: {A: '1', B: '2'}\n    cap_add: [NET_ADMIN]\n"
                 "    volumes: ['./a:/data']\n    restart: always\n")
    over = write(tmp_path / "p", "override.yaml", "services:\n  web:\n    command: z\n    ports: ['80:80', '82:82']\n"
                 "    environment: [B=3]\n    cap_add: !reset []\n    volumes: ['./b:/data']\n"
                 "    restart: !reset null\n")
    web = load([base, over], environ={}).services["web"]
    assert web["command"] == ["z"]
    assert [p["published"] for p in web["ports"]] == ["80", "81", "82"]
    assert web["environment"] == {"A": "1", "B": "3"}
    assert "cap_add" not in web and "restart" not in web
    assert web["volumes"] == [{"type": "bind", "source": f"{tmp_path}/p/b", "target": "/data",
                               "bind": {"create_host_path": True}}]


def test_profiles_select_services(tmp_path: Path) -> None:
    text = "services:\n  a: {image: x}\n  b: {image: x, profiles: [one]}\n  c: {image: x, profiles: [two]}\n"
    assert set(load_text(tmp_path, text).services) == {"a"}
    assert set(load_text(tmp_path, text, profiles=["one"]).services) == {"a", "b"}
    assert set(load_text(tmp_path, text, env={"COMPOSE_PROFILES": "two"}).services) == {"a", "c"}
    assert set(load_text(tmp_path, text, profiles=["*"]).services) == {"a", "b", "c"}


def test_project_name_precedence(tmp_path: Path) -> None:
    text = "name: From_File\nservices: {web: {image: x}}\n"
    assert load_text(tmp_path, text).name == "from_file"
    assert load_text(tmp_path, text, env={"COMPOSE_PROJECT_NAME": "env-name"}).name == "env-name"
    assert load_text(tmp_path, text, project_name="cli", env={"COMPOSE_PROJECT_NAME": "env"}).name == "cli"
    assert load_text(tmp_path, "services: {web: {image: x}}\n").name == "proj"
    assert normalize_project_name("_My.Project Dir") == "myprojectdir"


def test_relative_paths_resolve_against_the_file_folder(tmp_path: Path) -> None:
    project = load_text(tmp_path, "services:\n  web:\n    build: ./app\n    volumes: ['../shared:/s', '~/c:/c']\n",
                        env={"HOME": "/home/op"})
    web = project.services["web"]
    assert web["build"] == {"context": f"{tmp_path}/proj/app", "dockerfile": "Dockerfile"}
    assert [v["source"] for v in web["volumes"]] == [f"{tmp_path}/shared", "/home/op/c"]


def test_compose_json_escapes_dollars_like_compose(tmp_path: Path) -> None:
    project = load_text(tmp_path, "services:\n  web:\n    image: x\n    command: echo $$HOME\n")
    assert project.services["web"]["command"] == ["echo", "$HOME"]
    assert to_compose_json(project)["services"]["web"]["command"] == ["echo", "$$HOME"]


def test_an_extends_cycle_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n")
    assert error.message.endswith("circular extends")


def test_unset_variables_and_version_are_warned_about(tmp_path: Path) -> None:
    project = load_text(tmp_path, "version: '3'\nservices:\n  web:\n    image: app:${TAG}\n"
                                  "    environment: {A: '${NOPE:-fine}', B: $$LITERAL}\n")
    path = f"{tmp_path}/proj/compose.yaml"
    assert project.warnings == [f"{path}: the 'TAG' variable is not set, defaulting to a blank string",
                                f"{path}: the attribute `version` is obsolete, it will be ignored"]
