from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.cli import main


def test_numbers_check_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["numbers", "check", "090-1234-5678", "050-1234-5678"])
    out = capsys.readouterr().out
    assert code == 1  # not every number is eligible
    lines = out.splitlines()
    assert lines[0].split() == ["input", "eligible", "e164", "type", "reason"]
    assert lines[1].split() == ["090-1234-5678", "yes", "+819012345678", "mobile", "-"]
    assert lines[2].split() == ["050-1234-5678", "no", "+815012345678", "voip", "voip"]
    assert "050から始まるIP電話" in out


def test_numbers_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["numbers", "check", "--json", "０３－１２３４－５６７８"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["eligible"] is True and row["e164"] == "+81312345678"
    assert row["input"] == "０３－１２３４－５６７８"


def test_config_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[numbers]\nallow_06 = true\n")
    assert main(["--config", str(cfg), "numbers", "check", "0312345678"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "ivr: configuration error: numbers.allow_06: unknown setting (did you mean 'allow_060'?)"
    )


def test_trunks_render_is_deterministic(tmp_path: Path) -> None:
    assert main(["trunks", "render", "--out", str(tmp_path / "a")]) == 0
    assert main(["trunks", "render", "--out", str(tmp_path / "b")]) == 0
    a = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    b = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert a == b and "pjsip.conf" in a and "extensions.conf" in a
    assert b"Stasis(phone-auth," in a["extensions.conf"]
    assert b"trust_id_inbound = yes" in a["pjsip.conf"]
