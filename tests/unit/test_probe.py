import subprocess

from provision.commands.probes import probe_script
from provision.facts.script import split_sections


def test_sections_keep_text_and_exit_status_even_without_final_newline(tmp_path):
    (tmp_path / "f.json").write_text('{"a": 1}')  # no final newline
    script = probe_script([("file", f"cat {tmp_path}/f.json"), ("fails", "echo oops >&2; exit 3"), ("empty", "true")])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
    sections = split_sections(out)
    assert (sections["file"].text, sections["file"].rc) == ('{"a": 1}', 0)
    assert (sections["fails"].text, sections["fails"].rc) == ("oops", 3)
    assert (sections["empty"].text, sections["empty"].rc) == ("", 0)
