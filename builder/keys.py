"""The Ed25519 key pair that signs bundles; devices trust its public half (`edgectl keys export`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleet import paths
from runtimes.signing import key_id

from .errors import KeyError_

PRIVATE, PUBLIC = "signing.key", "signing.pub"


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_pem: bytes
    key_id: str
    path: Path


def init(directory: Path | None = None, force: bool = False) -> SigningKey:
    directory = directory or paths.keys_dir()
    if (directory / PRIVATE).exists() and not force:
        raise KeyError_(f"{directory / PRIVATE}: a signing key exists already (use --force to replace it)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(directory / PRIVATE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (directory / PUBLIC).write_bytes(public)
    return SigningKey(key, public, key_id(public), directory / PRIVATE)


def load(directory: Path | None = None) -> SigningKey:
    directory = directory or paths.keys_dir()
    path = directory / PRIVATE
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyError_(f"{path}: no signing key; create one with `edgectl keys init`") from exc
    except ValueError as exc:
        raise KeyError_(f"{path}: not a PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{path}: not an Ed25519 key")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(key, public, key_id(public), path)


def load_or_init(directory: Path | None = None) -> SigningKey:
    directory = directory or paths.keys_dir()
    return load(directory) if (directory / PRIVATE).exists() else init(directory)
