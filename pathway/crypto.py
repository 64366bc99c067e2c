"""Application-level encryption of a person's fields, and a keyed blind index for exact-name lookup.

A database dump must reveal no person, so personal fields are stored only as AES-256-GCM blobs and
names are searchable only through an HMAC ("blind index") whose key lives outside the database.

Blob layout (self-describing, so old rows stay readable after a key rotation)::

    b"v1:" + key_id + b":" + nonce (12 bytes) + ciphertext + GCM tag (16 bytes)

Key ids match ``[A-Za-z0-9_-]{1,32}`` and so never contain ``:``, which makes the header unambiguous.
The header is authenticated together with the caller's ``aad`` (the row the value belongs to, such as
the case id), so a blob copied to another row, or relabelled with another key id, fails to decrypt.

Pure module: stdlib and ``cryptography`` only. Error messages never carry plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from pathway.errors import CryptoError

__all__ = ["CaseKey", "KeyRing", "blind_index", "generate_key", "normalise_name"]

_VERSION = b"v1"
_KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # the GCM standard nonce; random nonces are safe far beyond our volume per key
_TAG_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def generate_key() -> str:
    """A new random 256-bit key as urlsafe base64 text (fit for an environment variable)."""
    return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode("ascii")


def _decode_key(text: str, *, what: str) -> bytes:
    # ``what`` names the key (by id or position) so that the message never echoes key material.
    if not isinstance(text, str):
        raise CryptoError(f"{what}: key must be base64 text")
    stripped = text.strip()
    # Accept both the urlsafe and the standard alphabet, and missing padding: keys are pasted by hand.
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"{what}: key is not valid base64") from None
    if len(raw) != _KEY_BYTES:
        raise CryptoError(f"{what}: key must decode to {_KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _check_key_id(key_id: object, *, what: str) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        # The bad id is not echoed: a misplaced key pasted into the id slot must not reach the logs.
        raise CryptoError(f"{what}: key id must match [A-Za-z0-9_-]{{1,32}}")
    return key_id


def _require_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise CryptoError(f"{name} must be bytes, not {type(value).__name__}")
    return bytes(value)


class KeyRing:
    """The encryption keys by id: one active key encrypts, every key in the ring can decrypt."""

    __slots__ = ("_active", "_aead")

    def __init__(self, keys: Mapping[str, str] | Sequence[tuple[str, str]], active: str | None = None) -> None:
        items = list(keys.items()) if isinstance(keys, Mapping) else list(keys)
        if not items:
            raise CryptoError("key ring is empty")
        self._aead: dict[str, AESGCM] = {}
        for position, item in enumerate(items, start=1):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise CryptoError(f"key {position}: expected a (key id, key) pair")
            key_id = _check_key_id(item[0], what=f"key {position}")
            if key_id in self._aead:
                raise CryptoError(f"key id '{key_id}' appears more than once")
            self._aead[key_id] = AESGCM(_decode_key(item[1], what=f"key '{key_id}'"))
        chosen = items[0][0] if active is None else active
        if chosen not in self._aead:
            raise CryptoError(f"active key id '{chosen}' is not in the key ring")
        self._active: str = chosen

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Read ``"kid1:BASE64,kid2:BASE64"`` (as from an environment variable); the first key is active."""
        if not isinstance(spec, str) or not spec.strip():
            raise CryptoError("key spec is empty")
        pairs: list[tuple[str, str]] = []
        for position, entry in enumerate(spec.split(","), start=1):
            key_id, sep, key = entry.partition(":")
            if not sep:
                raise CryptoError(f"key spec entry {position}: expected 'key_id:base64_key'")
            pairs.append((key_id.strip(), key.strip()))
        return cls(pairs)

    @property
    def active_id(self) -> str:
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._aead)

    def __repr__(self) -> str:
        # Ids only: a ring must be safe to log.
        return f"KeyRing(ids={list(self._aead)!r}, active={self._active!r})"

    # -- blobs -------------------------------------------------------------------------------------

    @staticmethod
    def _split(blob: object) -> tuple[str, bytes, bytes]:
        data = _require_bytes(blob, "blob")
        parts = data.split(b":", 2)  # nonce and ciphertext may contain b":", the header cannot
        if len(parts) != 3 or parts[0] != _VERSION:
            raise CryptoError("blob is not a v1 encrypted value")
        try:
            key_id = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise CryptoError("blob has a malformed key id") from None
        if not _KEY_ID.fullmatch(key_id):
            raise CryptoError("blob has a malformed key id")
        body = parts[2]
        if len(body) < _NONCE_BYTES + _TAG_BYTES:
            raise CryptoError(f"blob under key '{key_id}' is truncated")
        return key_id, body[:_NONCE_BYTES], body[_NONCE_BYTES:]

    @staticmethod
    def _header(key_id: str) -> bytes:
        return _VERSION + b":" + key_id.encode("ascii") + b":"

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt under the active key with a fresh nonce; ``aad`` binds the blob to its row."""
        data = _require_bytes(plaintext, "plaintext")
        header = self._header(self._active)
        nonce = os.urandom(_NONCE_BYTES)
        # Authenticating the header too means relabelling a blob with another key id is detected.
        sealed = self._aead[self._active].encrypt(nonce, data, header + _require_bytes(aad, "aad"))
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        key_id, nonce, sealed = self._split(blob)
        aead = self._aead.get(key_id)
        if aead is None:
            raise CryptoError(f"blob is encrypted under key id '{key_id}', which is not in the key ring")
        try:
            return aead.decrypt(nonce, sealed, self._header(key_id) + _require_bytes(aad, "aad"))
        except InvalidTag:
            raise CryptoError(
                f"blob under key '{key_id}' failed authentication: tampered, or aad does not match its row"
            ) from None

    def key_id_of(self, blob: bytes) -> str:
        return self._split(blob)[0]

    def needs_rotation(self, blob: bytes) -> bool:
        """True if the blob is encrypted under a key other than the active one."""
        return self.key_id_of(blob) != self._active

    def rotate(self, blob: bytes, *, aad: bytes) -> bytes:
        """Re-encrypt under the active key. A blob already under it is authenticated and returned as is,
        so a rotation job can run repeatedly without rewriting rows it has done."""
        plaintext = self.decrypt(blob, aad=aad)
        if not self.needs_rotation(blob):
            return bytes(blob)
        return self.encrypt(plaintext, aad=aad)

    # -- case keys (envelope encryption) ---------------------------------------------------------------

    def wrap(self, case_key: CaseKey, *, case_id: bytes) -> bytes:
        """The case key encrypted under the active master key, bound to its case (stored beside the case)."""
        return self.encrypt(case_key.raw, aad=_WRAP + case_id)

    def unwrap(self, wrapped: bytes, *, case_id: bytes) -> CaseKey:
        return CaseKey(self.decrypt(wrapped, aad=_WRAP + case_id))

    def rewrap(self, wrapped: bytes, *, case_id: bytes) -> bytes:
        """The wrapped case key under the active master key (the data it protects is not touched)."""
        return self.rotate(wrapped, aad=_WRAP + case_id)

    # -- JSON values -------------------------------------------------------------------------------

    def encrypt_json(self, value: object, *, aad: bytes) -> bytes:
        try:
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            # json's messages name the type or the float, never the surrounding document.
            raise CryptoError(f"value cannot be encoded as JSON: {exc}") from None
        return self.encrypt(text.encode("utf-8"), aad=aad)

    def decrypt_json(self, blob: bytes, *, aad: bytes) -> object:
        data = self.decrypt(blob, aad=aad)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            # No detail: the decoder's message could quote a slice of the plaintext.
            raise CryptoError("decrypted value is not valid UTF-8 JSON") from None


_WRAP = b"case-key:"  # a wrapped case key's AAD prefix: no other blob bound to the same case id can pass for one
_SEALED = "\u00a7c1:"  # "§c1:" + urlsafe base64 of AES-SIV output: a free text sealed under its case's key
_CASE_KEY_BYTES = 64  # AES-SIV with AES-256: two 256-bit keys


class CaseKey:
    """One case's own data key (envelope encryption): every personal field and free text of the case is sealed
    under it, and destroying it (retention) makes all of them unreadable at once, in every copy of the database.

    AES-SIV (RFC 5297) is deterministic: the same text sealed twice under one key gives the same token. That is what
    lets an event's hash cover the sealed text (so the audit chain verifies without the key, also after erasure) while
    replaying the case, which seals its texts again, reproduces each hash. Within one case it reveals only that two
    texts are equal; across cases nothing, as every case has its own key."""

    __slots__ = ("_siv", "raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != _CASE_KEY_BYTES:
            raise CryptoError(f"a case key must be {_CASE_KEY_BYTES} bytes, got {len(raw)}")
        self.raw = bytes(raw)
        self._siv = AESSIV(self.raw)

    @classmethod
    def generate(cls) -> CaseKey:
        return cls(os.urandom(_CASE_KEY_BYTES))

    def __repr__(self) -> str:
        return "CaseKey(...)"  # never the key

    def __copy__(self) -> CaseKey:
        return self  # immutable: a copied case (the pages try an operation on one) shares its key

    def __deepcopy__(self, memo: dict[int, object]) -> CaseKey:
        return self

    def seal_bytes(self, plaintext: bytes, *, aad: bytes = b"") -> bytes:
        return self._siv.encrypt(_require_bytes(plaintext, "plaintext"), [aad])

    def open_bytes(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        try:
            return self._siv.decrypt(_require_bytes(blob, "blob"), [aad])
        except InvalidTag:
            raise CryptoError("sealed value failed authentication: tampered, or not of this case") from None

    def seal(self, text: str) -> str:
        """A free text as a sealed token (text, so it fits a JSON payload and a text column)."""
        token = base64.urlsafe_b64encode(self.seal_bytes(text.encode("utf-8"))).decode("ascii")
        return _SEALED + token

    def open(self, token: str) -> str:
        """The text of a token ``seal`` made; a text that is not a token (written before case keys) as it is."""
        if not is_sealed(token):
            return token
        try:
            blob = base64.urlsafe_b64decode(token[len(_SEALED):].encode("ascii"))
        except (binascii.Error, ValueError):
            raise CryptoError("sealed value is not valid base64") from None
        return self.open_bytes(blob).decode("utf-8")

    def seal_json(self, value: object, *, aad: bytes) -> bytes:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        return self.seal_bytes(text.encode("utf-8"), aad=aad)

    def open_json(self, blob: bytes, *, aad: bytes) -> object:
        try:
            return json.loads(self.open_bytes(blob, aad=aad).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CryptoError("decrypted value is not valid UTF-8 JSON") from None


def is_sealed(value: object) -> bool:
    """Whether ``value`` is a free text sealed under a case key (see ``CaseKey.seal``)."""
    return isinstance(value, str) and value.startswith(_SEALED)


# -- blind index -----------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """The form a name is indexed in: one spelling for names written differently in case, spacing,
    or Unicode composition (a precomposed "å" and "a" + combining ring are the same name)."""
    if not isinstance(name, str):
        raise CryptoError(f"name must be str, not {type(name).__name__}")
    # NFKC again after casefold: casefolding can yield text that is no longer NFKC-normalised.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def blind_index(key: str, value: str) -> str:
    """HMAC-SHA256 of the normalised name, as hex. Keyed, so that a dump cannot be searched by
    hashing a list of likely names; use a key separate from the encryption keys."""
    raw_key = _decode_key(key, what="blind index")
    return hmac.new(raw_key, normalise_name(value).encode("utf-8"), hashlib.sha256).hexdigest()
