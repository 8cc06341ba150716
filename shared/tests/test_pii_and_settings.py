"""Personal data protection, keys and settings."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError

from gonghui_shared import keys
from gonghui_shared.ids import new_id
from gonghui_shared.keys import DevKeyInProduction
from gonghui_shared.pii import PREFIX, PiiCipher, mask_id_number, mask_phone
from gonghui_shared.runtime import load_verifier
from gonghui_shared.settings import ServiceSettings


def test_encryption_round_trip_and_key_rotation() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    before = PiiCipher([old], b"h")
    token = before.encrypt("530921199001011234")
    assert "530921" not in token
    after = PiiCipher([new, old], b"h")  # newest first; old rows still readable
    assert after.decrypt(token) == "530921199001011234"
    rotated = after.rotate(token)
    assert PiiCipher([new], b"h").decrypt(rotated) == "530921199001011234"
    with pytest.raises(InvalidToken):
        PiiCipher([new], b"h").decrypt(token)


def test_values_are_aes_gcm_sealed_under_the_newest_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    cipher = PiiCipher([new, old], b"h")
    first, second = cipher.encrypt("530921199001011234"), cipher.encrypt("530921199001011234")
    assert first.startswith(PREFIX) and first != second  # a fresh nonce each time
    assert len(first) < 80 and "530921" not in first
    assert cipher.decrypt(first) == cipher.decrypt(second) == "530921199001011234"
    assert cipher.is_current(first)
    # The key is named in the value: one configured with the new key alone opens it.
    assert PiiCipher([new], b"h").decrypt(first) == "530921199001011234"
    assert not PiiCipher([old, new], b"h").is_current(first)
    with pytest.raises(InvalidToken):
        PiiCipher([old], b"h").decrypt(first)


def test_values_written_as_fernet_tokens_are_read_and_rotated_to_aes_gcm() -> None:
    key = Fernet.generate_key()
    legacy = Fernet(key).encrypt(b"+8613800138000").decode()  # as stored before AES-GCM
    cipher = PiiCipher([key], b"h")
    assert cipher.decrypt(legacy) == "+8613800138000"
    assert not cipher.is_current(legacy)  # the same key, the old form: rotation rewrites it
    rotated = cipher.rotate(legacy)
    assert rotated.startswith(PREFIX) and cipher.is_current(rotated)
    assert cipher.decrypt(rotated) == "+8613800138000"


@pytest.mark.parametrize("damage", ["flip", "unknown key", "not base64", "too short", "empty"])
def test_a_damaged_or_foreign_value_is_an_invalid_token(damage: str) -> None:
    key = Fernet.generate_key()
    cipher = PiiCipher([key], b"h")
    token = cipher.encrypt("530921199001011234")
    damaged = {
        "flip": token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:],
        "unknown key": PiiCipher([Fernet.generate_key()], b"h").encrypt("530921199001011234"),
        "not base64": PREFIX + "!!!!",
        "too short": PREFIX + "AAAA",
        "empty": "",
    }[damage]
    with pytest.raises(InvalidToken):
        cipher.decrypt(damaged)
    assert not cipher.is_current(damaged)


def test_lookup_hash_is_keyed_and_stable() -> None:
    a, b = PiiCipher([Fernet.generate_key()], b"k1"), PiiCipher([Fernet.generate_key()], b"k2")
    assert a.lookup_hash("x") == a.lookup_hash("x") != b.lookup_hash("x")


def test_masks() -> None:
    assert mask_id_number("530921199001011234") == "530921********1234"
    assert mask_phone("+8613800138000") == "138****8000"


def test_settings_read_platform_and_service_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class DemoSettings(ServiceSettings):
        model_config = {**ServiceSettings.model_config, "env_prefix": "DEMO_"}
        service_name = "demo"
        default_port = 8009

    monkeypatch.setenv("GONGHUI_NATS_URL", "nats://10.0.0.1:4222")
    monkeypatch.setenv("GONGHUI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_PORT", "9001")
    settings = DemoSettings()
    assert settings.nats_url == "nats://10.0.0.1:4222"
    assert settings.port == 9001
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/demo.db"


def test_dev_keys_are_generated_once_and_never_in_production(tmp_path: Path) -> None:
    dev = ServiceSettings(data_dir=tmp_path, environment="development")
    first, second = load_verifier(dev), load_verifier(dev)
    assert first.public_keys[0].public_bytes_raw() == second.public_keys[0].public_bytes_raw()
    assert (tmp_path / "dev-keys" / "jwt_ed25519.pem").exists()
    with pytest.raises(DevKeyInProduction):
        keys.dev_key(tmp_path, "pii.key", keys.new_fernet_key, production=True)
    assert not (tmp_path / "dev-keys" / "pii.key").exists()


class DemoSettings(ServiceSettings):
    model_config = {**ServiceSettings.model_config, "env_prefix": "DEMO_"}
    service_name = "demo"
    demo_signing_key: str | None = None

    @classmethod
    def production_keys(cls) -> tuple[keys.ProductionKey, ...]:
        return (
            *super().production_keys(),
            keys.ProductionKey({"demo_signing_key": "secret"}, "demo.key"),
        )


def fresh_keys() -> dict[str, str]:
    """Keys of its own for every key DemoSettings needs in production."""
    return {
        "jwt_public_key": keys.public_pem(keys.load_private_key(keys.new_ed25519_pem())),
        "pii_keys": f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
        "pii_hash_key": keys.new_secret().decode(),
        "demo_signing_key": keys.new_secret().decode(),
    }


def test_production_settings_refuse_missing_keys_naming_their_variables(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        DemoSettings(data_dir=tmp_path, environment="production", pii_hash_key="x" * 40)
    message = str(refused.value)
    assert "demo cannot run in production mode" in message
    assert (
        "GONGHUI_JWKS_URL or GONGHUI_JWT_PUBLIC_KEY or GONGHUI_JWT_PRIVATE_KEY is not set"
        in message
    )
    assert (
        "GONGHUI_PII_KEYS is not set" in message and "DEMO_DEMO_SIGNING_KEY is not set" in message
    )
    assert "GONGHUI_PII_HASH_KEY" not in message and "x" * 40 not in message  # input not echoed
    # Set, and no dev key anywhere: production starts; so does development without any.
    assert DemoSettings(data_dir=tmp_path, environment="production", **fresh_keys()).production
    assert DemoSettings(data_dir=tmp_path, environment="development").demo_signing_key is None
    with_url = fresh_keys() | {
        "jwt_public_key": None,
        "jwks_url": "https://gw/.well-known/jwks.json",
    }
    assert DemoSettings(data_dir=tmp_path, environment="production", **with_url).production


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("jwt_public_key", "GONGHUI_JWT_PUBLIC_KEY"),
        ("jwt_private_key", "GONGHUI_JWT_PRIVATE_KEY"),
        ("pii_keys", "GONGHUI_PII_KEYS"),
        ("pii_hash_key", "GONGHUI_PII_HASH_KEY"),
        ("demo_signing_key", "DEMO_DEMO_SIGNING_KEY"),
    ],
)
def test_production_settings_refuse_a_copy_of_a_generated_dev_key(
    tmp_path: Path, field: str, variable: str
) -> None:
    dev = {
        "jwt": keys.dev_key(tmp_path, "jwt_ed25519.pem", keys.new_ed25519_pem, production=False),
        "pii": keys.dev_key(tmp_path, "pii.key", keys.new_fernet_key, production=False),
        "hash": keys.dev_key(tmp_path, "pii-hash.key", keys.new_secret, production=False),
        "demo": keys.dev_key(tmp_path, "demo.key", keys.new_secret, production=False),
    }
    copies = {
        # The public half of the dev key, the dev key re-encoded: the key, not the text, counts.
        "jwt_public_key": keys.public_pem(keys.load_private_key(dev["jwt"])),
        "jwt_private_key": "\n" + dev["jwt"].decode().strip() + "\n\n",
        "pii_keys": f"{Fernet.generate_key().decode()}, {dev['pii'].decode()}",  # an older key
        "pii_hash_key": dev["hash"].decode() + "\n",
        "demo_signing_key": dev["demo"].decode(),
    }
    configured = fresh_keys() | {field: copies[field]}
    assert DemoSettings(data_dir=tmp_path, environment="development", **configured)
    with pytest.raises(ValidationError) as refused:
        DemoSettings(data_dir=tmp_path, environment="production", **configured)
    message = str(refused.value)
    assert f"{variable} is the generated dev key {tmp_path / 'dev-keys'}/" in message
    assert message.count("is the generated dev key") == 1 and "is not set" not in message


class IssuerSettings(ServiceSettings):
    service_name = "issuer"
    issues_tokens: ClassVar[bool] = True


def test_keys_accepted_beside_the_signing_key_are_optional_but_never_a_dev_key(
    tmp_path: Path,
) -> None:
    dev = keys.dev_key(tmp_path, "jwt_ed25519.pem", keys.new_ed25519_pem, production=False)
    dev_public = keys.public_pem(keys.load_private_key(dev))
    fresh = fresh_keys()
    own = {
        "jwt_private_key": keys.new_ed25519_pem().decode(),
        "pii_keys": fresh["pii_keys"],
        "pii_hash_key": fresh["pii_hash_key"],
    }
    assert IssuerSettings(data_dir=tmp_path, environment="production", **own).production
    accepted = own | {"jwt_accepted_public_keys": fresh["jwt_public_key"]}
    assert IssuerSettings(data_dir=tmp_path, environment="production", **accepted).production
    # The dev key's public half among several: found, and refused.
    with_dev = own | {"jwt_accepted_public_keys": fresh["jwt_public_key"] + dev_public}
    with pytest.raises(ValidationError) as refused:
        IssuerSettings(data_dir=tmp_path, environment="production", **with_dev)
    message = str(refused.value)
    assert "GONGHUI_JWT_ACCEPTED_PUBLIC_KEYS is the generated dev key" in message
    assert "is not set" not in message
    # A verifying service's several public keys are read the same way.
    with pytest.raises(ValidationError, match="GONGHUI_JWT_PUBLIC_KEY is the generated dev key"):
        DemoSettings(
            data_dir=tmp_path,
            environment="production",
            **fresh | {"jwt_public_key": fresh["jwt_public_key"] + dev_public},
        )


def test_ids_sort_by_creation_time() -> None:
    import time

    first = new_id()
    time.sleep(0.002)
    assert new_id() > first


def test_ids_are_canonical_uuid7_and_distinct() -> None:
    import uuid

    ids = [new_id() for _ in range(2_000)]  # several pages of the randomness pool
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower case, hyphens where uuid puts them
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_ids_made_in_threads_at_once_are_distinct() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [new_id() for _ in range(5_000)], range(8)))
    ids = [i for batch in batches for i in batch]
    assert len(set(ids)) == len(ids) == 40_000
