"""What every settings section shares: the error that names a key, and the port check."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def check_port(key: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(key, f"must be a port number between 1 and 65535, got {value}")
