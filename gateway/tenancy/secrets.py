"""Secrets at rest: MultiFernet under master keys from the environment or a mounted file.

The first key encrypts; every key decrypts, so a new master key is put first, secrets are
re-encrypted (``fng-gateway secrets reencrypt``), and then the old key is removed. A keys
file is re-read when it changes, as Kubernetes changes a mounted secret: by swapping the
symlink the file's path goes through.
"""

from __future__ import annotations

import base64
import binascii
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


def _is_fernet_key(key: bytes) -> bool:
    """Exactly a Fernet key, as ``Fernet.generate_key`` writes one: 32 bytes in URL-safe
    base64. Decoding alone (what Fernet does) drops what follows the 44th character, or
    characters outside the alphabet, and would take a mistyped key in silence; a key that
    encodes back to itself is the key written."""
    try:
        raw = base64.urlsafe_b64decode(key)
    except binascii.Error:
        return False
    return len(raw) == 32 and base64.urlsafe_b64encode(raw) == key


def _fernet(keys: Sequence[bytes], source: str | None = None) -> MultiFernet:
    """``source``: where the keys were read from, when they were read from somewhere."""
    if not keys:
        if source is not None:
            raise ConfigurationError(
                f"{source} holds no master key, only separators, blank lines or comments: "
                "put the keys in it (generate one with `fng-gateway secrets new-key`)"
            )
        raise ConfigurationError(
            "no master key is configured: set FNG_GATEWAY_MASTER_KEYS or "
            "FNG_GATEWAY_MASTER_KEYS_FILE (generate one with `fng-gateway secrets new-key`)"
        )
    fernets = []
    for number, key in enumerate(keys, 1):
        if not _is_fernet_key(key):
            hint = (
                " (separate keys with commas, spaces or newlines; ';' is no separator)"
                if b";" in key
                else ""
            )
            raise ConfigurationError(
                f"master key {number} of {len(keys)} is not a Fernet key (exactly 44 characters "
                f"of URL-safe base64, ending in '='){hint}: generate one with "
                "`fng-gateway secrets new-key`"
            )
        fernets.append(Fernet(key))
    return MultiFernet(fernets)


#: A stored secret none of the master keys opens, and what to do.
UNDECRYPTABLE = (
    "a stored secret cannot be decrypted with the configured master keys: add the master key "
    "it was stored under to them (after the newest)"
)


def _file_source(path: Path) -> str:
    return f"the master keys file {path}"


def _signature(path: Path) -> tuple[int, int, int]:
    status = path.stat()  # through symlinks: a swapped link changes what this sees
    return status.st_ino, status.st_mtime_ns, status.st_size


def _unreadable(path: Path, exc: OSError) -> ConfigurationError:
    reason = exc.strerror or type(exc).__name__
    return ConfigurationError(
        f"the master keys file cannot be read ({reason}): {path}; give "
        "FNG_GATEWAY_MASTER_KEYS_FILE the path of a readable file of keys, one a line"
    )


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"the master keys file {path} is not UTF-8 text (keys are base64, one a line): "
            "give FNG_GATEWAY_MASTER_KEYS_FILE the path of the file of keys"
        ) from None


class SecretBox:
    """Encrypts and decrypts the gateway's stored secrets."""

    def __init__(
        self, keys: Sequence[bytes], keys_file: Path | None = None, source: str | None = None
    ) -> None:
        """``source``: where ``keys`` were read from (the file's, when ``keys_file``)."""
        if keys_file is not None:
            source = _file_source(keys_file)
        self._fernet = _fernet(keys, source)
        self._file = keys_file
        self._seen = _signature(keys_file) if keys_file is not None else None

    @classmethod
    def from_sources(cls, keys: SecretStr | None, keys_file: Path | None) -> SecretBox:
        """The keys of the variable or of the file: an empty variable counts as unset, and
        both at once are refused (the settings refuse them first)."""
        if keys is not None and not keys.get_secret_value().strip():
            keys = None
        if keys is not None and keys_file is not None:
            raise ConfigurationError(
                "FNG_GATEWAY_MASTER_KEYS and FNG_GATEWAY_MASTER_KEYS_FILE are both set, and "
                "the master keys are read from one place only: unset one of them"
            )
        if keys is not None:
            return cls(parse_master_keys(keys.get_secret_value()), source="FNG_GATEWAY_MASTER_KEYS")
        if keys_file is not None:
            return cls(parse_master_keys(_read(keys_file)), keys_file)
        return cls([])

    def reload_if_changed(self) -> bool:
        """Re-read the keys file if it changed; True when new keys are in use. A file that
        is missing or holds no valid key leaves the current keys in use (and raises)."""
        if self._file is None:
            return False
        try:
            seen = _signature(self._file)
        except OSError as exc:
            raise _unreadable(self._file, exc) from None
        if seen == self._seen:
            return False
        self._fernet = _fernet(parse_master_keys(_read(self._file)), _file_source(self._file))
        self._seen = seen
        return True

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> SecretStr:
        try:
            return SecretStr(self._fernet.decrypt(token.encode()).decode())
        except InvalidToken:
            raise ConfigurationError(UNDECRYPTABLE) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a stored secret under the newest master key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(UNDECRYPTABLE) from None

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"
