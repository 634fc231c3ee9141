"""HMAC signatures under a cluster secret: sealed files on the artifact store and request ids
the model server issued. Pure: no Ray, no I/O.

The secret lives in the registry's database (see ``Registry.signing_key``), not on the artifact
store, so write access to the bucket alone can neither forge a sealed file nor a request id.
Nothing sealed is ever opened before its signature matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from raymlops.errors import ArtifactIntegrityError

#: The first line of a sealed file: its format, then the signature's hex digest on the second line.
SEAL_MAGIC = b"raymlops-sealed-v1\n"
_DIGEST_HEX = 64
#: Hex characters of a request id's random part and of its signature.
ID_TOKEN_HEX, ID_SIGNATURE_HEX = 24, 16


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def seal(data: bytes, key: bytes) -> bytes:
    """``data`` with its HMAC-SHA256 under ``key`` in front (see :func:`unseal`)."""
    return SEAL_MAGIC + _mac(key, data).encode() + b"\n" + data


def unseal(blob: bytes, key: bytes, uri: str) -> bytes:
    """The data of a sealed file, once its signature matched.

    Raises:
        ArtifactIntegrityError: not a sealed file, or its signature does not match (tampered with,
            or sealed under another cluster's secret) — naming ``uri``.
    """
    head = len(SEAL_MAGIC)
    if not blob.startswith(SEAL_MAGIC) or blob[head + _DIGEST_HEX:head + _DIGEST_HEX + 1] != b"\n":
        raise ArtifactIntegrityError(uri=uri, file="", problem="not a sealed raymlops file (refused unread)")
    signature, data = blob[head:head + _DIGEST_HEX].decode("ascii", "replace"), blob[head + _DIGEST_HEX + 1:]
    if not hmac.compare_digest(signature, _mac(key, data)):
        raise ArtifactIntegrityError(uri=uri, file="", problem="its signature does not match this cluster's "
                                     "secret: changed after it was written (refused unread)")
    return data


def issue_request_id(key: bytes) -> str:
    """A fresh request id the server can later recognise as its own: random part + its signature."""
    token = secrets.token_hex(ID_TOKEN_HEX // 2)
    return token + _mac(key, token.encode())[:ID_SIGNATURE_HEX]


def is_issued(request_id: str, key: bytes) -> bool:
    """Whether ``request_id`` was made by :func:`issue_request_id` under ``key``."""
    if not isinstance(request_id, str) or len(request_id) != ID_TOKEN_HEX + ID_SIGNATURE_HEX:
        return False
    token, signature = request_id[:ID_TOKEN_HEX], request_id[ID_TOKEN_HEX:]
    return hmac.compare_digest(signature, _mac(key, token.encode())[:ID_SIGNATURE_HEX])
