"""Field encryption and the blind index: the properties a database dump and a key rotation rely on.

Only synthetic names are used.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pathway.crypto import KeyRing, blind_index, generate_key, normalise_name
from pathway.errors import CryptoError, ForlopError

NAME = "Testperson Én"
PLAINTEXT = NAME.encode("utf-8")
CASE_A = b"case:0001"
CASE_B = b"case:0002"

# Fixed (not generated) so that test ids are the same in every pytest-xdist worker.
OLD_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
NEW_KEY = base64.urlsafe_b64encode(bytes(range(32, 64))).decode()
# Module level rather than a fixture: hypothesis does not reset function-scoped fixtures per example.
RING = KeyRing({"k1": generate_key()})


def short_key(n: int) -> str:
    return base64.urlsafe_b64encode(b"\x01" * n).decode()


# -- keys ------------------------------------------------------------------------------------------


def test_generate_key_is_32_random_bytes_of_urlsafe_base64() -> None:
    a, b = generate_key(), generate_key()
    assert a != b
    assert len(base64.urlsafe_b64decode(a)) == 32
    assert "+" not in a and "/" not in a


def test_crypto_error_is_a_forlop_error() -> None:
    assert issubclass(CryptoError, ForlopError)


def test_active_defaults_to_first_key_and_can_be_chosen() -> None:
    assert KeyRing([("new", NEW_KEY), ("old", OLD_KEY)]).active_id == "new"
    assert KeyRing({"new": NEW_KEY, "old": OLD_KEY}, active="old").active_id == "old"


@pytest.mark.parametrize(
    "keys, active",
    [
        ({}, None),
        ({"k1": OLD_KEY}, "missing"),
        ({"bad id": OLD_KEY}, None),
        ({"x" * 33: OLD_KEY}, None),
        ({"k1": short_key(16)}, None),
        ({"k1": "not base64!!"}, None),
        ([("k1", OLD_KEY), ("k1", NEW_KEY)], None),
    ],
)
def test_key_ring_rejects_invalid_keys(keys: object, active: str | None) -> None:
    with pytest.raises(CryptoError):
        KeyRing(keys, active=active)  # type: ignore[arg-type]


def test_repr_shows_ids_not_keys() -> None:
    text = repr(KeyRing({"k1": OLD_KEY}))
    assert "k1" in text and OLD_KEY not in text


# -- parse -----------------------------------------------------------------------------------------


def test_parse_reads_spec_with_whitespace_and_first_is_active() -> None:
    ring = KeyRing.parse(f"  new : {NEW_KEY} ,\n old:{OLD_KEY}  ")
    assert ring.active_id == "new"
    old_blob = KeyRing({"old": OLD_KEY}).encrypt(PLAINTEXT, aad=CASE_A)
    assert ring.decrypt(old_blob, aad=CASE_A) == PLAINTEXT


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        f"bad id:{OLD_KEY}",
        f"{'x' * 33}:{OLD_KEY}",
        f"k1:{short_key(16)}",
        f"k1:{short_key(31)}",
        f"k1:{short_key(33)}",
        "k1:",
        f":{OLD_KEY}",
        OLD_KEY,  # no id at all
        f"k1:{OLD_KEY},",  # an empty entry
        f"k1:{OLD_KEY},k1:{NEW_KEY}",
    ],
)
def test_parse_rejects_malformed_specs(spec: str) -> None:
    with pytest.raises(CryptoError) as info:
        KeyRing.parse(spec)
    assert OLD_KEY not in str(info.value) and NEW_KEY not in str(info.value)


# -- encryption ------------------------------------------------------------------------------------


def test_round_trip_and_layout() -> None:
    blob = RING.encrypt(PLAINTEXT, aad=CASE_A)
    assert blob.startswith(b"v1:k1:")
    assert PLAINTEXT not in blob
    assert len(blob) == len(b"v1:k1:") + 12 + len(PLAINTEXT) + 16
    assert RING.decrypt(blob, aad=CASE_A) == PLAINTEXT
    assert RING.key_id_of(blob) == "k1"


def test_same_plaintext_encrypts_differently_each_time() -> None:
    a = RING.encrypt(PLAINTEXT, aad=CASE_A)
    b = RING.encrypt(PLAINTEXT, aad=CASE_A)
    assert a != b
    assert a[6:18] != b[6:18]  # the nonces


def test_every_flipped_byte_is_detected() -> None:
    blob = RING.encrypt(PLAINTEXT, aad=CASE_A)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(CryptoError) as info:
            RING.decrypt(bytes(tampered), aad=CASE_A)
        assert NAME not in str(info.value)


def test_blob_copied_to_another_row_fails() -> None:
    blob = RING.encrypt(PLAINTEXT, aad=CASE_A)
    with pytest.raises(CryptoError, match="aad"):
        RING.decrypt(blob, aad=CASE_B)


def test_relabelled_key_id_fails_even_if_that_key_is_in_the_ring() -> None:
    # Same key material under two ids: only the authenticated header tells them apart.
    ring = KeyRing([("a", OLD_KEY), ("b", OLD_KEY)])
    blob = ring.encrypt(PLAINTEXT, aad=CASE_A)
    with pytest.raises(CryptoError):
        ring.decrypt(b"v1:b:" + blob[len(b"v1:a:") :], aad=CASE_A)


@pytest.mark.parametrize("blob", [b"", b"v1", b"v1:k1", b"v2:k1:" + b"\0" * 40, b"v1:k1:" + b"\0" * 27, b"v1:b d:" + b"\0" * 40])
def test_malformed_blobs_raise(blob: bytes) -> None:
    with pytest.raises(CryptoError):
        RING.decrypt(blob, aad=CASE_A)


def test_non_bytes_inputs_raise() -> None:
    with pytest.raises(CryptoError):
        RING.encrypt(NAME, aad=CASE_A)  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        RING.encrypt(PLAINTEXT, aad="case:0001")  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        RING.decrypt(NAME, aad=CASE_A)  # type: ignore[arg-type]


def test_json_round_trip() -> None:
    value = {"navn": NAME, "adresse": "Testveien 1", "barn": [{"navn": "Testbarn Åse"}], "alder": 40}
    blob = RING.encrypt_json(value, aad=CASE_A)
    assert b"Testveien" not in blob
    assert RING.decrypt_json(blob, aad=CASE_A) == value
    with pytest.raises(CryptoError):
        RING.decrypt_json(blob, aad=CASE_B)


def test_json_errors_do_not_leak() -> None:
    with pytest.raises(CryptoError):
        RING.encrypt_json({"navn": NAME, "x": object()}, aad=CASE_A)
    not_json = RING.encrypt(b"{" + PLAINTEXT, aad=CASE_A)
    with pytest.raises(CryptoError) as info:
        RING.decrypt_json(not_json, aad=CASE_A)
    assert NAME not in str(info.value)


@given(plaintext=st.binary(max_size=2048), aad=st.binary(max_size=256), other=st.binary(max_size=256))
def test_round_trip_property(plaintext: bytes, aad: bytes, other: bytes) -> None:
    blob = RING.encrypt(plaintext, aad=aad)
    assert RING.decrypt(blob, aad=aad) == plaintext
    if other != aad:
        with pytest.raises(CryptoError):
            RING.decrypt(blob, aad=other)


# -- rotation --------------------------------------------------------------------------------------


def test_rotation_moves_a_blob_to_the_new_key() -> None:
    old_ring = KeyRing([("old", OLD_KEY)])
    blob = old_ring.encrypt(PLAINTEXT, aad=CASE_A)
    assert not old_ring.needs_rotation(blob)

    ring = KeyRing([("new", NEW_KEY), ("old", OLD_KEY)])
    assert ring.needs_rotation(blob)
    assert ring.decrypt(blob, aad=CASE_A) == PLAINTEXT

    rotated = ring.rotate(blob, aad=CASE_A)
    assert ring.key_id_of(rotated) == "new"
    assert not ring.needs_rotation(rotated)
    assert KeyRing([("new", NEW_KEY)]).decrypt(rotated, aad=CASE_A) == PLAINTEXT
    assert ring.rotate(rotated, aad=CASE_A) == rotated  # idempotent


def test_rotate_refuses_wrong_aad() -> None:
    blob = KeyRing([("old", OLD_KEY)]).encrypt(PLAINTEXT, aad=CASE_A)
    with pytest.raises(CryptoError):
        KeyRing([("new", NEW_KEY), ("old", OLD_KEY)]).rotate(blob, aad=CASE_B)


def test_blob_under_removed_key_names_the_key_not_the_plaintext() -> None:
    blob = KeyRing([("old", OLD_KEY)]).encrypt(PLAINTEXT, aad=CASE_A)
    with pytest.raises(CryptoError) as info:
        KeyRing([("new", NEW_KEY)]).decrypt(blob, aad=CASE_A)
    message = str(info.value)
    assert "'old'" in message
    assert NAME not in message and "Testperson" not in message and OLD_KEY not in message


# -- blind index -----------------------------------------------------------------------------------

INDEX_KEY = generate_key()


def test_normalise_name() -> None:
    assert normalise_name("  Kari \t Nordmann\n") == "kari nordmann"
    assert normalise_name("TESTPERSON ÉN") == normalise_name(NAME) == "testperson én"


def test_blind_index_is_stable_across_spellings() -> None:
    assert blind_index(INDEX_KEY, "Kari  Nordmann") == blind_index(INDEX_KEY, "kari nordmann")
    assert blind_index(INDEX_KEY, " KARI\u00a0Nordmann ") == blind_index(INDEX_KEY, "kari nordmann")

    composed = "Testperson Åse Bjørnstad Én"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed  # the test is only meaningful if the spellings really differ
    expected = blind_index(INDEX_KEY, composed)
    assert blind_index(INDEX_KEY, decomposed) == expected
    assert blind_index(INDEX_KEY, decomposed.upper()) == expected
    # Compatibility forms (here full-width letters) fold too.
    assert blind_index(INDEX_KEY, "Ｔｅｓｔｐｅｒｓｏｎ Én") == blind_index(INDEX_KEY, NAME)


def test_blind_index_distinguishes_names_and_keys() -> None:
    index = blind_index(INDEX_KEY, NAME)
    assert len(index) == 64 and int(index, 16) >= 0
    assert blind_index(INDEX_KEY, "Testperson To") != index
    assert blind_index(generate_key(), NAME) != index


def test_blind_index_is_not_a_plain_hash() -> None:
    index = blind_index(INDEX_KEY, NAME)
    for candidate in (NAME, normalise_name(NAME)):
        assert index != hashlib.sha256(candidate.encode("utf-8")).hexdigest()


def test_blind_index_rejects_bad_key() -> None:
    with pytest.raises(CryptoError):
        blind_index(short_key(16), NAME)
    with pytest.raises(CryptoError):
        blind_index("not base64!!", NAME)
