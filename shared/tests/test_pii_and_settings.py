"""Personal data protection, keys and settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from gonghui_shared.ids import new_id
from gonghui_shared.keys import DevKeyInProduction
from gonghui_shared.pii import PiiCipher, mask_id_number, mask_phone
from gonghui_shared.runtime import load_pii_cipher, load_verifier
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


def test_dev_keys_are_generated_once_and_refused_in_production(tmp_path: Path) -> None:
    dev = ServiceSettings(data_dir=tmp_path, environment="development")
    first, second = load_verifier(dev), load_verifier(dev)
    assert first.public_keys[0].public_bytes_raw() == second.public_keys[0].public_bytes_raw()
    assert (tmp_path / "dev-keys" / "jwt_ed25519.pem").exists()
    production = ServiceSettings(data_dir=tmp_path, environment="production")
    with pytest.raises(DevKeyInProduction):
        load_verifier(production)
    with pytest.raises(DevKeyInProduction):
        load_pii_cipher(production)


def test_ids_sort_by_creation_time() -> None:
    import time

    first = new_id()
    time.sleep(0.002)
    assert new_id() > first
