"""Secrets at rest: MultiFernet under master keys from the environment or a mounted file.

The first key encrypts; every key decrypts, so a new master key is put first, secrets are
re-encrypted, and then the old key is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from gateway.errors import ConfigurationError


def parse_master_keys(text: str) -> list[bytes]:
    """Keys separated by commas, spaces or newlines; ``#`` starts a comment line."""
    keys: list[bytes] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        keys.extend(part.encode() for part in line.replace(",", " ").split())
    return keys


class SecretBox:
    """Encrypts and decrypts the gateway's stored secrets."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigurationError(
                "no master key is configured: set FNG_GATEWAY_MASTER_KEYS or "
                "FNG_GATEWAY_MASTER_KEYS_FILE (generate one with `fng-gateway secrets new-key`)"
            )
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError:
            raise ConfigurationError("a master key is not a valid Fernet key") from None

    @classmethod
    def from_sources(cls, keys: SecretStr | None, keys_file: Path | None) -> SecretBox:
        text = ""
        if keys is not None:
            text = keys.get_secret_value()
        elif keys_file is not None:
            try:
                text = keys_file.read_text()
            except OSError as exc:
                raise ConfigurationError(f"the master keys file cannot be read: {exc}") from None
        return cls(parse_master_keys(text))

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> SecretStr:
        try:
            return SecretStr(self._fernet.decrypt(token.encode()).decode())
        except InvalidToken:
            raise ConfigurationError(
                "a stored secret cannot be decrypted with the configured master keys"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a stored secret under the newest master key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "a stored secret cannot be decrypted with the configured master keys"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"
