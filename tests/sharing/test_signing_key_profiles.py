"""The feed-signing key file under the crypto profiles (#18): it names its profile and algorithm, a key of
the other profile is refused at load with the reason, and a profile change keeps the old public key."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from fanchaoxin.core import crypto
from fanchaoxin.sharing import keys
from fanchaoxin.sharing import protocol as P

GM, INTL = crypto.profile("gm"), crypto.profile("international")


def test_the_key_file_names_its_profile_and_the_platforms_is_the_default(tmp_path: Path) -> None:
    k, created = keys.init(tmp_path)
    active = crypto.active()
    doc = json.loads((tmp_path / keys.SIGNING_FILE).read_text())
    assert created and doc["format"] == keys.SIGNING_FORMAT
    assert doc["crypto_profile"] == active.name and doc["algorithm"] == active.signature_algorithm
    assert k.signing.profile is active and len(k.signing.public) == active.public_key_size
    assert isinstance(k.signing.key, crypto.SigningKey)  # the handle audit checkpoints are signed with
    public = k.public()["signing"]
    assert public["crypto_profile"] == active.name and public["algorithm"] == active.signature_algorithm
    assert public["fingerprint"] == active.hexdigest(k.signing.public)[:32]
    assert k.verification_keys() == {k.signing.key_id: k.signing.public}


@pytest.mark.parametrize("name", ["gm", "international"])
def test_a_key_of_the_wrong_algorithm_for_the_profile_is_refused_at_load(tmp_path: Path, name: str) -> None:
    prof = crypto.profile(name)
    other = GM if prof is INTL else INTL
    keys.init(tmp_path, profile=name)
    assert keys.load(tmp_path, create=False, profile=name).signing.profile is prof
    with pytest.raises(keys.KeyFileError) as exc:
        keys.load(tmp_path, create=False, profile=other.name)
    message = str(exc.value)
    assert "signing.json" in message and "a key of the wrong algorithm for the profile" in message
    assert f"{prof.signature_algorithm} key of the {name} crypto profile" in message
    assert f"fcx crypto migrate --to {other.name}" in message
    # a file whose algorithm contradicts its profile, or whose key is the other profile's size
    path = tmp_path / keys.SIGNING_FILE
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "algorithm": other.signature_algorithm}))
    with pytest.raises(keys.KeyFileError, match=f"signs with {prof.signature_algorithm}"):
        keys.load(tmp_path, create=False, profile=name)
    foreign = P.SigningKey.generate("s1", other)
    path.write_text(json.dumps({**doc, "public": base64.b64encode(foreign.public).decode()}))
    time.sleep(0.01)
    with pytest.raises(keys.KeyFileError, match="feed-signing key s1"):
        keys.load(tmp_path, create=False, profile=name)


def test_a_key_file_of_before_the_profiles_is_an_international_key(tmp_path: Path) -> None:
    keys.init(tmp_path, profile="international")
    path = tmp_path / keys.SIGNING_FILE
    seed = bytes(range(32))
    path.write_text(
        json.dumps(
            {"format": keys.SIGNING_FORMAT_V1, "key_id": "s1", "seed": base64.b64encode(seed).decode()}
        )
    )
    loaded = keys.load(tmp_path, create=False, profile="international").signing
    assert loaded.public == P.SigningKey.from_seed("s1", seed).public
    with pytest.raises(keys.KeyFileError, match="ed25519 key of the international crypto profile"):
        keys.load(tmp_path, create=False, profile="gm")


@pytest.mark.parametrize(("start", "to"), [("international", "gm"), ("gm", "international")])
def test_rotate_for_profile_keeps_the_old_public_key_retired(tmp_path: Path, start: str, to: str) -> None:
    old = keys.init(tmp_path, profile=start)[0].signing
    signed = old.sign(b"an audit checkpoint")
    rotation = keys.rotate_for_profile(to, tmp_path)
    assert rotation.changed and (rotation.old_key_id, rotation.new_key_id) == ("s1", "s2")
    assert (rotation.old_profile, rotation.new_profile) == (start, to)
    with pytest.raises(keys.KeyFileError, match="wrong algorithm"):
        keys.load(tmp_path, create=False, profile=start)
    k = keys.load(tmp_path, create=False, profile=to)
    assert k.signing.key_id == "s2" and k.signing.profile.name == to
    assert rotation.fingerprint == P.fingerprint(k.signing.public)
    assert [r.key_id for r in k.retired] == ["s1"] and k.retired[0].crypto_profile == start
    assert k.verification_keys() == {"s1": old.public, "s2": k.signing.public}
    # what the old key signed stays checkable with its retired public key (its own profile)
    P.verify_signature(k.verification_keys()["s1"], b"an audit checkpoint", signed, "checkpoint")
    assert [r["key_id"] for r in k.public()["retired_signing"]] == ["s1"]
    doc = json.loads((tmp_path / keys.SIGNING_FILE).read_text())
    # the retired key's secret is gone from the file (its public half only is kept)
    assert base64.b64encode(old.private_bytes()).decode() not in json.dumps(doc) and set(doc["retired"][0]) == {
        "key_id", "public_key", "crypto_profile", "retired_at"
    }  # fmt: skip
    # run again: nothing to do
    again = keys.rotate_for_profile(to, tmp_path)
    assert not again.changed and again.new_key_id == "s2"
    with pytest.raises(crypto.UnknownProfile):
        keys.rotate_for_profile("sm9", tmp_path)
