"""ivr: a phone-number authentication gateway (着信認証) behind Asterisk."""

from importlib import metadata

try:
    # The version lives in one place, pyproject.toml; an installed package knows it.
    __version__ = metadata.version("ivr-phone-auth")
except metadata.PackageNotFoundError:  # pragma: no cover (a checkout never installed)
    __version__ = "0+unknown"
