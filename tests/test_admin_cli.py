"""``carbon admin``: teams and keys made, listed and revoked from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from carbon.store import open_store
from carbon.store.models import ApiKey
from carbon.store.teams import find_key, hash_key


def admin(store_url: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CARBON_")}
    env |= {"CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "carbon", "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_teams_and_keys_from_creation_to_revocation(store_url: str, tmp_path: Path) -> None:
    made = admin(store_url, tmp_path, "create-team", "acme")
    assert made.returncode == 0, made.stderr
    assert "team 'acme' created" in made.stdout
    again = admin(store_url, tmp_path, "create-team", "acme")
    assert again.returncode == 1
    assert "exists already" in again.stderr

    created = admin(
        store_url,
        tmp_path,
        "create-key",
        "--team",
        "acme",
        "--role",
        "ingest",
        "--name",
        "gpu farm",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()  # the key alone on stdout, for scripts
    assert key.startswith("cbn_")
    assert len(key) == 4 + 43
    assert "not stored" in created.stderr
    assert "cannot be shown again" in created.stderr
    assert key not in created.stderr
    with open_store(store_url).session() as session:
        found = find_key(session, key)
        assert found is not None
        assert (found.team.name, found.role, found.name) == ("acme", "ingest", "gpu farm")
        stored = [tuple(row) for row in session.execute(select(ApiKey.key_hash, ApiKey.prefix))]
    assert stored == [(hash_key(key), key[:12])]  # the digest and the prefix, never the key

    listed = admin(store_url, tmp_path, "list-keys", "--team", "acme")
    assert listed.returncode == 0, listed.stderr
    assert key[:12] in listed.stdout
    assert key not in listed.stdout
    assert "active" in listed.stdout
    assert "gpu farm" in listed.stdout

    revoked = admin(store_url, tmp_path, "revoke-key", "--team", "acme", key[:12])
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    with open_store(store_url).session() as session:
        assert find_key(session, key) is None
    assert "revoked" in admin(store_url, tmp_path, "list-keys", "--team", "acme").stdout

    teams = admin(store_url, tmp_path, "list-teams")
    assert teams.returncode == 0
    assert [line.split()[-1] for line in teams.stdout.splitlines()[1:]] == ["acme", "default"]


def test_bad_arguments_are_refused_with_a_message(store_url: str, tmp_path: Path) -> None:
    assert admin(store_url, tmp_path, "create-team", "acme").returncode == 0
    role = admin(store_url, tmp_path, "create-key", "--team", "acme", "--role", "root")
    assert role.returncode == 2
    assert "role must be one of ingest, read, admin" in role.stderr
    team = admin(store_url, tmp_path, "create-key", "--team", "nobody", "--role", "read")
    assert team.returncode == 1
    assert "no team named 'nobody'" in team.stderr
    missing = admin(store_url, tmp_path, "revoke-key", "--team", "acme", "cbn_nothing")
    assert missing.returncode == 1
    assert "has no key" in missing.stderr
    with open_store(store_url).session() as session:
        assert session.scalars(select(ApiKey)).all() == []
