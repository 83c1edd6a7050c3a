"""Ed25519 signatures over manifest bytes. The manifest's sha256 list covers every other file."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import BundleError


def load_public_key(pem: bytes, where: str = "public key") -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise BundleError(f"{where}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{where}: not an Ed25519 public key")
    return key


def key_id(pem: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex digits of the sha256 of its raw bytes."""
    raw = load_public_key(pem).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(data: bytes, private_key: Ed25519PrivateKey, public_pem: bytes) -> bytes:
    """The signature file: key id on the first line, base64 signature on the second."""
    sig = base64.b64encode(private_key.sign(data)).decode()
    return f"{key_id(public_pem)}\n{sig}\n".encode()


def signed_by_one_of(signature_file: bytes, trusted: list[bytes]) -> bool:
    try:
        kid = signature_file.decode().split()[0]
    except (UnicodeDecodeError, IndexError):
        return False
    return kid in {key_id(pem) for pem in trusted}


def verify(data: bytes, signature_file: bytes, trusted: list[bytes]) -> str:
    """Return the id of the trusted key that signed `data`; raise BundleError otherwise."""
    try:
        kid, sig_b64 = signature_file.decode().split()
        sig = base64.b64decode(sig_b64, validate=True)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError("manifest.sig: malformed signature file") from exc
    keys = {key_id(pem): pem for pem in trusted}
    if kid not in keys:
        raise BundleError(f"manifest.sig: signed by unknown key {kid}")
    try:
        load_public_key(keys[kid]).verify(sig, data)
    except InvalidSignature as exc:
        raise BundleError(f"manifest.sig: signature by key {kid} does not match manifest.json") from exc
    return kid
