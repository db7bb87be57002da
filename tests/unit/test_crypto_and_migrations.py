import pytest

from grim.crypto import SecretBox, SecretDecryptionError
from grim.migrate import MigrationError, discover


def test_secret_round_trip_and_wrong_key() -> None:
    box = SecretBox("a-long-enough-secret-key")
    stored = box.encrypt("123456:ABC-token")
    assert b"ABC-token" not in stored
    assert box.decrypt(stored) == "123456:ABC-token"
    with pytest.raises(SecretDecryptionError, match="GRIM_SECRET_KEY"):
        SecretBox("another-secret-key-value").decrypt(stored)


def test_short_secret_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        SecretBox("short")


def test_discover_finds_the_config_migrations() -> None:
    found = discover({"config": "grim.config"})
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].owner == "config" and found[0].version == 1


def test_badly_named_migration_is_an_error(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pkg = tmp_path / "fake_owner_pkg"
    (pkg / "migrations").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "migrations" / "1_oops.sql").write_text("SELECT 1;")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MigrationError, match="0001_description.sql"):
        discover({"fake": "fake_owner_pkg"})
