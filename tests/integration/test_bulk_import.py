"""Importing schools from a CSV file: every row or none, quickly, each generated key shown once.

The service runs on SQLite and PostgreSQL; the command is the real ``fng-gateway`` in a
subprocess, with its own store and master key.
"""

from __future__ import annotations

import csv
import io
import json
import re
import stat
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.errors import RegistryError
from gateway.store import Store, create_store
from gateway.store.migrate import upgrade
from gateway.store.tables import audit_log, databases, partner_keys, schools
from gateway.tenancy.bulk import COLUMNS, BulkImportError, GeneratedKey, import_schools
from gateway.tenancy.callers import CallerResolver
from gateway.tenancy.keys import key_digest
from gateway.tenancy.model import Interface
from gateway.tenancy.rotation import KeyRotation
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.support import COMMAND, cli_environment

VENDOR = "Payments Ltd"


def school_rows(
    count: int, *, start: int = 0, keyless_every: int = 0, second_every: int = 0
) -> list[dict[str, str]]:
    """``count`` schools, each with its "Public funds" database; every ``second_every``-th
    one a "Private funds" database too; every ``keyless_every``-th row without a partner
    key."""
    rows: list[dict[str, str]] = []
    for n in range(start, start + count):
        names = ["Public funds"] + (
            ["Private funds"] if second_every and n % second_every == 0 else []
        )
        for database in names:
            keyless = keyless_every and len(rows) % keyless_every == 0
            rows.append(
                {
                    "name": f"School {n}",
                    "la_number": f"{100 + n // 1000:03d}",
                    "establishment_number": f"{n % 10000:04d}",
                    "duns": f"{n:09d}" if n % 2 else "",
                    "language": "en-GB" if n % 3 else "",
                    "currency": "",
                    "database": database,
                    "vendor": VENDOR,
                    "fng_key": str(uuid.uuid4()),
                    "partner_key": "" if keyless else str(uuid.uuid4()),
                }
            )
    return rows


def csv_text(rows: Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def snapshot(store: Store) -> dict[str, Any]:
    """Everything an import writes, to compare before and after."""
    async with store.read() as conn:
        return {
            table.name: (await conn.execute(sa.select(table).order_by(table.c.id))).all()
            for table in (schools, databases, partner_keys, audit_log)
        }


async def stored_keys(store: Store, box: SecretBox, la: str, establishment: str) -> list[Any]:
    """A school's databases with their FNG keys and active partner keys, decrypted."""
    async with store.read() as conn:
        found = (
            await conn.execute(
                sa.select(databases.c.name, databases.c.fng_key_enc, partner_keys.c.key_enc)
                .join_from(databases, schools, databases.c.school_id == schools.c.id)
                .join(partner_keys, partner_keys.c.database_id == databases.c.id)
                .where(
                    schools.c.la_number == la,
                    schools.c.establishment_number == establishment,
                    partner_keys.c.state == "active",
                )
                .order_by(databases.c.name)
            )
        ).all()
    return [
        (
            row.name,
            box.decrypt(row.fng_key_enc).get_secret_value(),
            box.decrypt(row.key_enc).get_secret_value(),
        )
        for row in found
    ]


async def stored_key(store: Store, box: SecretBox, row: dict[str, str]) -> tuple[str, str]:
    """The FNG key and active partner key stored for a row's database."""
    found = await stored_keys(store, box, row["la_number"], row["establishment_number"])
    ((fng_key, partner_key),) = [keys for name, *keys in found if name == row["database"]]
    return fng_key, partner_key


async def can_call_with(store: Store, box: SecretBox, partner_key: str) -> tuple[str, str, str]:
    """An account granted the database a partner key names: what the inbound lookup finds."""
    async with store.read() as conn:
        database_id = await conn.scalar(
            sa.select(partner_keys.c.database_id).where(
                partner_keys.c.digest == key_digest(partner_key)
            )
        )
    assert database_id is not None, "no database has that partner key"
    service = TenancyAdmin(store, box, actor="test")
    username = f"caller-{uuid.uuid4().hex[:8]}"
    account = await service.add_account(username)
    await service.grant(account.account_id, database_id, [Interface.EJOURNAL])
    caller = await CallerResolver(store, box, cache_seconds=0).authenticate(
        username, account.password, partner_key.upper(), Interface.EJOURNAL
    )
    target = caller.target
    assert target.partner_key.get_secret_value() == partner_key
    return target.la_number, target.establishment_number, target.database_name


# -- the service, on both backends ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, box: SecretBox
) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bulk.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    await upgrade(url)
    store = create_store(url)
    service = TenancyAdmin(store, box, actor="test")
    for name in (VENDOR, "Other Ltd"):
        await service.add_vendor(
            name, token_url="https://simsid.example/token", client_id=name, credential="secret"
        )
    yield store
    await store.close()


class TestImportService:
    async def test_500_schools_in_a_few_seconds(self, store: Store, box: SecretBox) -> None:
        """500 schools and 600 databases, each with its keys, in one transaction."""
        rows = school_rows(500, second_every=5)
        started = time.perf_counter()
        report = await import_schools(store, box, "test", csv_text(rows))
        elapsed = time.perf_counter() - started
        print(f"\n{store.dialect}: 500 schools, 600 databases imported in {elapsed:.2f} s")
        assert elapsed < 20
        assert report.summary() == {
            "rows": 600,
            "schools": {"created": 500, "updated": 0, "unchanged": 0},
            "databases": {"created": 600, "updated": 0, "unchanged": 0},
            "generated_keys": 0,
        }
        assert await stored_keys(store, box, "100", "0005") == [
            ("Private funds", rows[7]["fng_key"], rows[7]["partner_key"]),
            ("Public funds", rows[6]["fng_key"], rows[6]["partner_key"]),
        ]
        counts = {table: len(found) for table, found in (await snapshot(store)).items()}
        assert counts == {
            "schools": 500,
            "databases": 600,
            "partner_keys": 600,
            "audit_log": 2 + 500 + 600 + 1,  # two vendors, then the import's
        }
        assert await can_call_with(store, box, rows[599]["partner_key"]) == (
            "100",
            "0499",
            "Public funds",
        )

    async def test_a_second_import_updates_and_never_duplicates(
        self, store: Store, box: SecretBox
    ) -> None:
        """The same file again changes nothing; a changed name or FNG key is updated."""
        rows = school_rows(3, second_every=2)
        await import_schools(store, box, "test", csv_text(rows))
        again = await import_schools(store, box, "test", csv_text(rows))
        assert again.summary()["schools"] == {"created": 0, "updated": 0, "unchanged": 3}
        assert again.summary()["databases"] == {"created": 0, "updated": 0, "unchanged": 5}

        new_fng, kept = str(uuid.uuid4()), rows[0]["partner_key"]
        rows[0] = {**rows[0], "fng_key": new_fng, "partner_key": ""}  # the key stays
        rows[1] = {**rows[1], "vendor": "Other Ltd"}
        for n in (3, 4):  # both of school 2's databases
            rows[n] = {**rows[n], "name": "Renamed", "currency": "EUR"}
        rows.append(school_rows(1, start=7)[0])
        report = await import_schools(store, box, "test", csv_text(rows), generate_keys=False)
        assert report.summary()["schools"] == {"created": 1, "updated": 1, "unchanged": 2}
        assert report.summary()["databases"] == {"created": 1, "updated": 2, "unchanged": 3}
        assert await stored_key(store, box, rows[0]) == (new_fng, kept)
        listed = {
            school["establishment_number"]: school
            for school in await TenancyAdmin(store, box).schools()
        }
        assert (listed["0002"]["name"], listed["0002"]["currency"]) == ("Renamed", "EUR")
        assert [database["vendor_id"] for database in await TenancyAdmin(store, box).databases()][
            :2
        ] == [1, 2]

        entries = await TenancyAdmin(store, box).audit_entries(limit=6)
        assert [entry["action"] for entry in entries] == [
            "schools.import",
            "database.update",
            "database.update",
            "database.add",
            "school.update",
            "school.add",
        ]
        assert entries[1]["detail"]["changed"] == ["vendor"]
        assert entries[1]["detail"]["vendor_id"] == [1, 2]
        assert entries[2]["detail"]["changed"] == ["fng_key"]
        assert entries[4]["detail"]["changed"] == {
            "name": ["School 2", "Renamed"],
            "currency": ["GBP", "EUR"],
        }
        assert new_fng not in json.dumps(entries)
        assert len({entry["detail"]["import"] for entry in entries}) == 1

    async def test_every_problem_is_reported_and_nothing_is_written(
        self, store: Store, box: SecretBox
    ) -> None:
        """Problems in the file and conflicts with the registry, each with its line."""
        existing = school_rows(3)
        await import_schools(store, box, "test", csv_text(existing))
        rotation = KeyRotation(store, box, "test")
        next_key = await rotation.rotate_partner_key(2)
        before = await snapshot(store)

        rows = school_rows(8, start=10)
        rows[0]["la_number"] = "12"  # line 2: wrong on its own
        rows[1]["partner_key"] = existing[0]["partner_key"]  # line 3: another database's
        rows[2]["fng_key"] = existing[2]["fng_key"]  # line 4: another database's
        rows[3]["vendor"] = "Nobody Ltd"  # line 5
        rows[4] = {**existing[0], "partner_key": str(uuid.uuid4())}  # line 6: not its key
        rows[5] = {**existing[1], "partner_key": next_key}  # line 7: its next key
        rows[6]["fng_key"] = rows[7]["fng_key"]  # line 9 repeats line 8's
        with pytest.raises(BulkImportError) as refused:
            await import_schools(store, box, "test", csv_text(rows))

        assert refused.value.problems == [
            (2, "the LA number '12' is not 3 digits"),
            (3, "the partner key is already database 'Public funds' of school 100/0000's"),
            (4, "the FNG key is already database 'Public funds' of school 100/0002's"),
            (5, "there is no vendor named 'Nobody Ltd'"),
            (
                6,
                "the partner key is not database 'Public funds' of school 100/0000's active "
                "key: keys are rotated with `fng-gateway keys rotate`, not an import",
            ),
            (
                7,
                "the partner key is database 'Public funds' of school 100/0001's next key, not "
                "its active one: use `fng-gateway keys`, not an import",
            ),
            (9, "the FNG key is also on line 8"),
        ]
        assert await snapshot(store) == before

    async def test_a_failure_while_writing_writes_nothing(
        self, store: Store, box: SecretBox
    ) -> None:
        """Keys that cannot be saved are never stored: the whole import is undone."""
        before = await snapshot(store)

        async def disk_full(keys: Sequence[GeneratedKey]) -> None:
            assert len(keys) == 10
            raise OSError("no space left on device")

        with pytest.raises(RegistryError, match=r"keys could not be saved \(no space left"):
            await import_schools(
                store, box, "test", csv_text(school_rows(20, keyless_every=2)), save_keys=disk_full
            )
        assert await snapshot(store) == before

    async def test_keys_are_generated_only_when_allowed(self, store: Store, box: SecretBox) -> None:
        rows = school_rows(4, keyless_every=2)
        with pytest.raises(BulkImportError) as refused:
            await import_schools(store, box, "test", csv_text(rows), generate_keys=False)
        assert refused.value.keyless == (2, 4)
        saved: list[GeneratedKey] = []

        async def save(keys: Sequence[GeneratedKey]) -> None:
            saved.extend(keys)

        report = await import_schools(store, box, "test", csv_text(rows), save_keys=save)
        assert list(report.generated_keys) == saved
        assert [(key.establishment_number, key.database) for key in saved] == [
            ("0000", "Public funds"),
            ("0002", "Public funds"),
        ]
        assert await stored_keys(store, box, "100", "0002") == [
            ("Public funds", rows[2]["fng_key"], saved[1].partner_key)
        ]
        assert saved[0].partner_key not in repr(report) + repr(saved)
        # Once the databases exist, the same file needs no generated key.
        again = await import_schools(store, box, "test", csv_text(rows), generate_keys=False)
        assert again.generated_keys == ()

    async def test_the_pending_fng_key_in_the_file_is_no_longer_pending(
        self, store: Store, box: SecretBox
    ) -> None:
        rows = school_rows(1)
        await import_schools(store, box, "test", csv_text(rows))
        pending = str(uuid.uuid4())
        await KeyRotation(store, box, "test").set_next_fng_key(1, pending)
        rows[0]["fng_key"] = pending
        report = await import_schools(store, box, "test", csv_text(rows))
        assert report.databases_updated == 1
        assert not (await TenancyAdmin(store, box).databases())[0]["fng_key_pending"]
        assert (await stored_key(store, box, rows[0]))[0] == pending

    async def test_progress_is_reported_for_both_phases(self, store: Store, box: SecretBox) -> None:
        seen: list[tuple[str, int, int]] = []
        await import_schools(
            store,
            box,
            "test",
            csv_text(school_rows(250)),
            progress=lambda phase, done, total: seen.append((phase, done, total)),
        )
        assert [step for step in seen if step[0] == "writing"] == [
            ("writing", 100, 250),
            ("writing", 200, 250),
            ("writing", 250, 250),
        ]
        assert seen[:2] == [("validating", 1, 250), ("validating", 2, 250)]
        assert seen.index(("validating", 250, 250)) == 249


# -- the command ---------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def with_vendor(env: dict[str, str]) -> None:
    """The command's store, migrated, with the vendor the files name."""
    await upgrade(env["FNG_GATEWAY_DATABASE_URL"])
    store, box = opened(env)
    try:
        await TenancyAdmin(store, box, actor="test").add_vendor(
            VENDOR, token_url="https://simsid.example/token", client_id="payments", credential="-"
        )
    finally:
        await store.close()


def write(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    path.write_text(csv_text(rows), encoding="utf-8")
    return path


def opened(env: dict[str, str]) -> tuple[Store, SecretBox]:
    box = SecretBox([env["FNG_GATEWAY_MASTER_KEYS"].encode()])
    return create_store(env["FNG_GATEWAY_DATABASE_URL"]), box


def lines_reported(stderr: str) -> list[int]:
    return [int(number) for number in re.findall(r"^  line (\d+):", stderr, re.MULTILINE)]


class TestImportCommand:
    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    async def test_500_schools_in_under_a_minute(
        self, backend: str, env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        """The whole command, start-up included, with a progress bar and JSON on stdout."""
        if backend == "postgresql":
            env["FNG_GATEWAY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        await with_vendor(env)
        rows = school_rows(500, second_every=5, keyless_every=50)
        keys_out = tmp_path / "keys.csv"
        started = time.perf_counter()
        result = run(
            env,
            "schools",
            "import",
            str(write(tmp_path / "schools.csv", rows)),
            "--progress",
            "--json",
            "--keys-out",
            str(keys_out),
        )
        elapsed = time.perf_counter() - started
        print(f"\n{backend}: `fng-gateway schools import` of 500 schools took {elapsed:.2f} s")
        assert result.returncode == 0, result.stderr
        assert elapsed < 60
        assert "] 600/600 validating" in result.stderr
        assert "[##############################] 600/600 writing" in result.stderr
        assert json.loads(result.stdout) == {
            "rows": 600,
            "schools": {"created": 500, "updated": 0, "unchanged": 0},
            "databases": {"created": 600, "updated": 0, "unchanged": 0},
            "generated_keys": 12,
            "keys_out": str(keys_out),
        }

        store, box = opened(env)
        try:
            counts = {table: len(found) for table, found in (await snapshot(store)).items()}
            assert counts["schools"] == 500 and counts["databases"] == 600
            assert counts["partner_keys"] == 600
            generated = list(csv.DictReader(keys_out.open(encoding="utf-8")))
            keyless = rows[50]
            assert len(generated) == 12
            assert [generated[1][column] for column in COLUMNS[1:3]] == [
                keyless["la_number"],
                keyless["establishment_number"],
            ]
            assert generated[1]["database"] == keyless["database"]
            assert await stored_key(store, box, keyless) == (
                keyless["fng_key"],
                generated[1]["partner_key"],
            )
            assert await stored_key(store, box, rows[599]) == (
                rows[599]["fng_key"],
                rows[599]["partner_key"],
            )
            assert await can_call_with(store, box, rows[123]["partner_key"]) == (
                rows[123]["la_number"],
                rows[123]["establishment_number"],
                rows[123]["database"],
            )
            assert await can_call_with(store, box, generated[5]["partner_key"])
        finally:
            await store.close()

    async def test_problems_under_a_progress_bar_start_lines_of_their_own(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        await with_vendor(env)
        rows = school_rows(3)
        rows[1]["la_number"] = "1O0"
        result = run(env, "schools", "import", str(write(tmp_path / "a.csv", rows)), "--progress")
        assert result.returncode == 1
        assert re.search(r"\d+/\d+ validating *\nfng-gateway: ", result.stderr), result.stderr

    async def test_three_bad_rows_change_nothing(self, env: dict[str, str], tmp_path: Path) -> None:
        """A bad LA number (line 4), a repeated partner key (line 7), an unknown vendor
        (line 12): exactly those lines, exit code 1, and the store as it was."""
        await with_vendor(env)
        assert (
            run(env, "schools", "import", str(write(tmp_path / "a.csv", school_rows(5)))).returncode
            == 0
        )
        store, _ = opened(env)
        try:
            before = await snapshot(store)
            rows = school_rows(15, start=100)
            rows[2]["la_number"] = "1O0"
            rows[5]["partner_key"] = rows[1]["partner_key"]
            rows[10]["vendor"] = "Payments Limited"
            result = run(env, "schools", "import", str(write(tmp_path / "b.csv", rows)), "--json")
            assert result.returncode == 1
            assert lines_reported(result.stderr) == [4, 7, 12]
            assert "nothing was imported" in result.stderr
            assert [problem["line"] for problem in json.loads(result.stdout)["problems"]] == [
                4,
                7,
                12,
            ]
            assert await snapshot(store) == before
        finally:
            await store.close()

    async def test_a_second_import_updates(self, env: dict[str, str], tmp_path: Path) -> None:
        await with_vendor(env)
        rows = school_rows(10)
        path = write(tmp_path / "schools.csv", rows)
        assert run(env, "schools", "import", str(path)).returncode == 0
        rows[4]["fng_key"] = str(uuid.uuid4())
        again = run(env, "schools", "import", str(write(path, rows)))
        assert again.returncode == 0, again.stderr
        table = again.stdout.splitlines()
        assert table[0].split() == ["created", "updated", "unchanged"]
        assert table[1].split() == ["schools", "0", "0", "10"]
        assert table[2].split() == ["databases", "0", "1", "9"]
        assert table[3] == "generated partner keys: 0"
        assert "validating" not in again.stderr  # no bar without a terminal or --progress
        store, box = opened(env)
        try:
            assert len((await snapshot(store))["databases"]) == 10
            assert (await stored_key(store, box, rows[4]))[0] == rows[4]["fng_key"]
        finally:
            await store.close()

    async def test_generated_keys_are_written_once_to_keys_out(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        await with_vendor(env)
        rows = school_rows(6, keyless_every=3)
        path = write(tmp_path / "schools.csv", rows)
        keys_out = tmp_path / "keys.csv"

        refused = run(env, "schools", "import", str(path))
        assert refused.returncode == 1
        # Told once for every keyless row, not once per row.
        assert "  lines 2, 5: partner_key is empty" in refused.stderr
        assert refused.stderr.count("partner_key is empty") == 1
        assert "--keys-out FILE" in refused.stderr

        done = run(env, "schools", "import", str(path), "--keys-out", str(keys_out))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == f"generated partner keys: 2, in {keys_out}"
        assert stat.S_IMODE(keys_out.stat().st_mode) == 0o600
        generated = list(csv.DictReader(keys_out.open(encoding="utf-8")))
        assert [list(key) for key in generated] == [
            ["la_number", "establishment_number", "database", "partner_key"]
        ] * 2
        assert [key["establishment_number"] for key in generated] == ["0000", "0003"]
        store, box = opened(env)
        try:
            assert (await stored_key(store, box, rows[3]))[1] == generated[1]["partner_key"]
            audit = repr((await snapshot(store))["audit_log"])
        finally:
            await store.close()
        assert "database.add" in audit
        assert generated[0]["partner_key"] not in audit and rows[1]["fng_key"] not in audit

        # A keys file is never overwritten; once the databases exist, none is needed.
        again = run(env, "schools", "import", str(path), "--keys-out", str(keys_out))
        assert again.returncode == 1 and "never overwritten" in again.stderr
        unused = tmp_path / "unused.csv"
        assert run(env, "schools", "import", str(path), "--keys-out", str(unused)).returncode == 0
        assert not unused.exists()  # no key generated, no file

    async def test_a_refused_import_leaves_no_keys_file(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        await with_vendor(env)
        rows = school_rows(3, keyless_every=1)
        rows[2]["vendor"] = "Nobody"
        keys_out = tmp_path / "keys.csv"
        result = run(
            env,
            "schools",
            "import",
            str(write(tmp_path / "s.csv", rows)),
            "--keys-out",
            str(keys_out),
        )
        assert result.returncode == 1 and lines_reported(result.stderr) == [4]
        assert not keys_out.exists()

    def test_a_missing_file_exits_3(self, env: dict[str, str], tmp_path: Path) -> None:
        result = run(env, "schools", "import", str(tmp_path / "nowhere.csv"))
        assert result.returncode == 3 and "there is no file" in result.stderr
