from __future__ import annotations

from pathlib import Path

import pytest

import ivr
from ivr.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ivr.toml"
    p.write_text(text)
    return p


def test_defaults_are_valid() -> None:
    s = load_settings(environ={})
    assert s.api.port == 8080 and s.asterisk.app == "phone-auth"
    assert s.verification.default_ttl == 180


def test_file_then_environment(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        '[api]\nport = 9000\n[[portals]]\nname = "p"\ntokens = ["env:PORTAL_TOKEN"]\n',
    )
    s = load_settings(
        p,
        environ={
            "IVR_API_PORT": "9001",
            "IVR_NUMBERS_ALLOW_060": "yes",
            "IVR_NUMBERS_DENY_PREFIXES": "0180, 0990",
            "PORTAL_TOKEN": "token-from-env",
        },
    )
    assert s.api.port == 9001
    assert s.portals[0].tokens == ("token-from-env",)
    assert s.numbers.allow_060 is True
    assert s.numbers.deny_prefixes == ("0180", "0990")


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[api]\nprot = 1\n", {}, "api.prot"),
        ("[apii]\nport = 1\n", {}, "apii"),
        ("[api]\nport = 70000\n", {}, "api.port"),
        ('[api]\nport = "eighty"\n', {}, "api.port"),
        ("", {"IVR_API_PORT": "x"}, "api.port"),
        ("", {"IVR_ASTERISK_SIP_PORT": "0"}, "asterisk.sip_port"),
        ("", {"IVR_BOGUS": "1"}, "IVR_BOGUS"),
        ("[verification]\ndefault_ttl = 5\n", {}, "verification.default_ttl"),
        ('[[portals]]\nname = "p"\ntokens = ["short"]\n', {}, "portals[0].tokens"),
        (
            '[[portals]]\nname = "p"\ncallback_secrets = ["nope"]\n',
            {},
            "portals[0].callback_secrets",
        ),
        (
            '[[portals]]\nname = "p"\ncallback_url = "https://evil.example/x"\n',
            {},
            "portals[0].callback_url",
        ),
        ('[[portals]]\nname = "p"\ntokens = ["env:MISSING_VAR"]\n', {}, "portals.tokens"),
        ('inventory = "missing.toml"\n', {}, "inventory"),
        ('[log]\nlevel = "loud"\n', {}, "log.level"),
        ("not toml ===", {}, "config"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ=env)
    assert info.value.key == key
    assert str(info.value).startswith(key)
    assert "\n" not in str(info.value)


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'port'"):
        load_settings(write(tmp_path, "[api]\nprot = 1\n"), environ={})


def test_relative_paths_in_a_file_resolve_against_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc" / "ivr"
    conf.mkdir(parents=True)
    (conf / "trunks.toml").write_text("")
    (conf / "ivr.toml").write_text(
        'inventory = "trunks.toml"\n[store]\npath = "state/ivr.sqlite3"\n'
        '[calls]\nprompts_dir = "../prompts"\n[pbx]\ncache_dir = "cache"\n'
    )
    monkeypatch.chdir(tmp_path)
    s = load_settings(conf / "ivr.toml", environ={})
    assert s.inventory == str(conf / "trunks.toml")
    assert s.store.path == str(conf / "state" / "ivr.sqlite3")
    assert s.calls.prompts_dir == str(tmp_path / "etc" / "prompts")
    assert s.pbx.cache_path == conf / "cache"
    # The environment is read as given (relative to the working directory).
    env = load_settings(conf / "ivr.toml", environ={"IVR_STORE_PATH": "x.db"})
    assert env.store.path == "x.db"


def test_defaults_need_no_checkout() -> None:
    s = load_settings(None, environ={})
    assert Path(s.inventory).is_file() and Path(s.calls.prompts_dir, "ja", "verified.wav").is_file()
    assert Path(s.inventory).is_relative_to(Path(ivr.__file__).parent)


def test_portals_and_secrets_from_the_environment_and_files(tmp_path: Path) -> None:
    """A container gets every setting from its environment or a mounted file."""
    secret = tmp_path / "whsec"
    secret.write_text("whsec_ZW52LWZpbGUtc2VjcmV0LWtleS0x\n")
    token = tmp_path / "token"
    token.write_text("token-from-a-file\n")
    ari = tmp_path / "ari"
    ari.write_text("ari-secret-from-file\n")
    portals = (
        '[{"name": "acme", "tokens": ["env:ACME_TOKEN", "file:' + str(token) + '"],'
        ' "callback_secrets": ["file:' + str(secret) + '"], "callback_hosts": ["portal.example"]}]'
    )
    s = load_settings(
        environ={
            "IVR_PORTALS": portals,
            "ACME_TOKEN": "token-from-the-env",
            "IVR_ASTERISK_ARI_PASSWORD_FILE": str(ari),
        }
    )
    (acme,) = s.portals
    assert acme.name == "acme"
    assert acme.tokens == ("token-from-the-env", "token-from-a-file")
    assert acme.callback_secrets == ("whsec_ZW52LWZpbGUtc2VjcmV0LWtleS0x",)
    assert s.asterisk.ari_password == "ari-secret-from-file"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"IVR_PORTALS": "{not json"}, "IVR_PORTALS"),
        ({"IVR_PORTALS": '{"name": "x"}'}, "IVR_PORTALS"),
        ({"IVR_PORTALS": '[{"name": "x", "tokenz": []}]'}, "portals[0].tokenz"),
        ({"IVR_API_PORT_FILE": "/nonexistent/port"}, "IVR_API_PORT_FILE"),
        ({"IVR_API_PORT_FILE": "/etc/hostname", "IVR_API_PORT": "1"}, "IVR_API_PORT_FILE"),
    ],
)
def test_bad_environment_names_the_variable(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ=environ)
    assert err.value.key == key
