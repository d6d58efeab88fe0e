"""The gems-mcp command line: settings problems are one readable line, not a traceback."""

from __future__ import annotations

from gems_mcp.cli import main
from gems_mcp.config import load_settings


def test_log_level_is_read_in_any_case(monkeypatch):
    monkeypatch.setenv("GEMS_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_a_bad_setting_is_named_in_one_line_and_the_command_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("GEMS_LOG_LEVEL", "verbose")
    monkeypatch.setenv("GEMS_MAX_ROUNDS", "0")
    assert main(["skills", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gems-mcp: ") and len(err.strip().splitlines()) == 1
    assert "GEMS_LOG_LEVEL" in err and "GEMS_MAX_ROUNDS" in err


def test_doctor_loads_the_model_and_the_judge_it_names(monkeypatch, capsys, tmp_path):
    from tests.critique.tiny_models import build_tiny_owlv2

    detector = build_tiny_owlv2(tmp_path / "owl")
    monkeypatch.setenv("GEMS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEMS_JUDGE", f"detect:{detector}")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "loaded embedded-shapes:" in out
    assert f"loaded judge detect:{detector}" in out


def test_doctor_says_when_the_judge_cannot_be_loaded(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("GEMS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEMS_JUDGE", f"vlm:{tmp_path / 'no-such-model'}")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "judge failed to load:" in out and "no-such-model" in out
