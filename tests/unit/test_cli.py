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


EXAMPLE = Path(__file__).resolve().parents[2] / "sip_config" / "example.toml"


@pytest.mark.parametrize(
    "argv",
    [
        ["--inventory", str(EXAMPLE), "trunks", "check"],
        ["trunks", "--inventory", str(EXAMPLE), "check"],
        ["trunks", "check", "--inventory", str(EXAMPLE)],
    ],
)
def test_inventory_option_wherever_it_is_put(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDER_REG_PASSWORD", "secret")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{EXAMPLE}: OK:")


def _documented_commands() -> list[str]:
    """Every ``ivr ...`` command in the README and the docs: in code blocks and in
    inline code, with ``a|b`` alternatives and ``[...]`` options expanded."""
    import re

    root = Path(__file__).resolve().parents[2]
    texts = [root / "README.md", root / "sip_config" / "README.md", *(root / "docs").glob("*.md")]
    found: list[str] = []
    for path in texts:
        text = path.read_text(encoding="utf-8")
        spans = re.findall(r"`((?:\.venv/bin/)?ivr [^`]+)`", text)
        spans += re.findall(r"^(?:\.venv/bin/)?(ivr [^#\n]+)", text, re.MULTILINE)
        for span in spans:
            command = span.removeprefix(".venv/bin/").strip()
            if "..." in command or command.startswith("ivr serve"):
                continue
            found.append(command)
    return sorted(set(found))


def _expand(command: str) -> list[list[str]]:
    import itertools
    import re
    import shlex

    forms = [command]
    if "[" in command:  # with and without each optional part
        forms = [re.sub(r"\[([^\]]*)\]", r"\1", command), re.sub(r"\s*\[[^\]]*\]", "", command)]
    placeholders = {
        "FILE": str(EXAMPLE),
        "DIR": "/tmp/x",
        "PATH": "/x",
        "<id>": "msg_x",
        "N": "5",
        "O": "verified",
        "T": "carrier",
        "<did>": "0355550101",
    }
    out = []
    for form in forms:
        words = [placeholders.get(w, w) for w in shlex.split(form)]
        choices = [w.split("|") if "|" in w and not w.startswith("<") else [w] for w in words]
        out.extend(list(c) for c in itertools.product(*choices))
    return out


def test_every_documented_command_parses(capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.cli import build_parser

    commands = _documented_commands()
    assert any("trunks" in c for c in commands) and any("numbers" in c for c in commands)
    for command in commands:
        for argv in _expand(command):
            try:
                build_parser().parse_args(argv[1:])
            except SystemExit as exc:
                if exc.code != 0:  # --help exits 0
                    raise AssertionError(f"documented command does not parse: {command!r}") from exc


@pytest.mark.parametrize(
    "argv",
    [["--config", "x.toml", "serve"], ["serve", "--config", "x.toml"], ["serve", "-c", "x.toml"]],
)
def test_config_option_before_or_after_the_command(argv: list[str]) -> None:
    from ivr.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.config == "x.toml" and args.command == "serve"


def test_the_dialplan_offers_each_call_to_every_gateway_app(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[asterisk]\napp = "gw-b"\napps = ["gw-a", "gw-b"]\n')
    assert main(["--config", str(cfg), "trunks", "render", "--out", str(tmp_path / "o")]) == 0
    text = (tmp_path / "o" / "extensions.conf").read_text()
    assert "Goto(ivr-order${RAND(1,2)}-local-carrier,${EXTEN},1)" in text
    first, second = text.split("[ivr-order1-local-carrier]")[1].split("[ivr-order2-local-carrier]")
    assert first.index("Stasis(gw-a,") < first.index("Stasis(gw-b,")
    assert second.index("Stasis(gw-b,") < second.index("Stasis(gw-a,")
    # two apps in two orders, for each of the two trunks
    assert text.count('GotoIf($["${STASISSTATUS}" != "FAILED"]?ivr-done,s,1)') == 8
    cfg.write_text('[asterisk]\napp = "gw-b"\napps = ["gw-a", "gw-b"]\nspread_calls = false\n')
    assert main(["--config", str(cfg), "trunks", "render", "--out", str(tmp_path / "p")]) == 0
    text = (tmp_path / "p" / "extensions.conf").read_text()
    assert "RAND" not in text and text.index("Stasis(gw-a,") < text.index("Stasis(gw-b,")
    cfg.write_text('[asterisk]\napp = "gw-c"\napps = ["gw-a", "gw-b"]\n')
    assert main(["--config", str(cfg), "trunks", "check"]) == 2  # its own app is missing


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ivr {metadata.version('ivr-phone-auth')}"


def test_sd_notify_sends_one_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from ivr.sdnotify import notify

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False  # not under systemd: nothing to do
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1\nSTATUS=serving") is True
        assert server.recv(100) == b"READY=1\nSTATUS=serving"


def test_serve_runs_on_asyncio_unless_told_uvloop() -> None:
    import uvloop

    from ivr.cli import event_loop_factory
    from ivr.config import ConfigError, load_settings

    assert load_settings(None, environ={}).api.event_loop == "asyncio"
    assert event_loop_factory("uvloop") is uvloop.new_event_loop
    assert event_loop_factory("asyncio") is None
    with pytest.raises(ConfigError, match=r"api\.event_loop"):
        load_settings(None, environ={"IVR_API_EVENT_LOOP": "trio"})
