"""Reading an import's file: its rows, each checked on its own and against the others.

Nothing here reads the registry (that is :mod:`gateway.tenancy.bulk.plan`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.errors import RegistryError
from gateway.tenancy.identifiers import (
    CONTROL_CHARACTER,
    CURRENCY,
    DATABASE_NAME,
    DUNS,
    ESTABLISHMENT_NUMBER,
    LA_NUMBER,
    LANGUAGE,
    SCHOOL_NAME,
)
from gateway.tenancy.keys import normalise_key

#: The file's columns, as its header names them.
COLUMNS: Final = (
    "name",
    "la_number",
    "establishment_number",
    "duns",
    "language",
    "currency",
    "database",
    "vendor",
    "fng_key",
    "partner_key",
)
#: The columns that may be empty.
OPTIONAL: Final = frozenset({"duns", "language", "currency", "partner_key"})
#: What an import may change in a school that exists.
SCHOOL_COLUMNS: Final = ("name", "duns", "language", "currency")


class BulkImportError(RegistryError):
    """A file refused as a whole: nothing was written. ``problems`` holds every
    ``(line, message)``, in line order; ``keyless`` the lines that would need a generated
    partner key when generating keys was not allowed."""

    code = "BULK_IMPORT_REFUSED"

    def __init__(self, problems: Iterable[tuple[int, str]], keyless: Iterable[int] = ()) -> None:
        self.problems = sorted(problems, key=lambda problem: problem[0])
        self.keyless = tuple(keyless)
        lines = len({line for line, _ in self.problems})
        # Rows without a key are told once, together, not once a row.
        listed = [
            f"  line {line}: {message}" for line, message in self.problems if message != KEYLESS
        ]
        if self.keyless:
            listed.append(f"  {_line_ranges(self.keyless)}: {KEYLESS}")
        super().__init__(
            f"{len(self.problems)} problem(s) on {lines} line(s); nothing was imported:\n"
            + "\n".join(listed)
        )


#: The problem of a new database's row without a partner key, when keys are not generated.
KEYLESS: Final = "partner_key is empty, and generated keys were not asked for"


def _line_ranges(lines: Iterable[int]) -> str:
    """``line 4``, ``lines 2, 4`` or ``lines 2-40, 45``."""
    ordered = sorted(set(lines))
    spans: list[list[int]] = []
    for line in ordered:
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"line {text}" if len(ordered) == 1 else f"lines {text}"


@dataclass(frozen=True, slots=True)
class SchoolRow:
    """One valid row of the file, keys normalised."""

    line: int
    name: str
    la_number: str
    establishment_number: str
    duns: str | None
    language: str
    currency: str
    database: str
    vendor: str
    fng_key: str = field(repr=False)
    partner_key: str | None = field(repr=False)

    @property
    def school(self) -> tuple[str, str]:
        return self.la_number, self.establishment_number

    @property
    def school_values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "duns": self.duns,
            "language": self.language,
            "currency": self.currency,
        }


def parse_school_rows(text: str) -> list[SchoolRow]:
    """The file's rows, checked on their own and against each other (not the registry).

    Raises :class:`BulkImportError` with every problem found. Blank lines are skipped.
    """
    rows, problems = read_rows(text)
    if problems:
        raise BulkImportError(problems)
    return rows


def read_rows(text: str) -> tuple[list[SchoolRow], list[tuple[int, str]]]:
    """The rows that are right on their own, and every problem; a wrong header raises."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise BulkImportError([(1, "the file is empty: it needs a header row")]) from None
    except csv.Error as exc:
        raise BulkImportError([(1, f"the header is not readable as CSV: {exc}")]) from None
    names = [name.strip().lower() for name in header]
    _check_header(names)

    problems: list[tuple[int, str]] = []
    rows: list[SchoolRow] = []
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((line, f"not readable as CSV: {exc}"))
            continue
        if not any(value.strip() for value in record):
            continue
        if len(record) != len(names):
            problems.append(
                (line, f"{len(record)} values where the header has {len(names)} columns")
            )
            continue
        row, found = _row(line, {k: v.strip() for k, v in zip(names, record, strict=True)})
        problems.extend((line, message) for message in found)
        if row is not None:
            rows.append(row)
    if not rows and not problems:
        problems.append((1, "the file has a header but no rows"))
    problems.extend(_across_rows(rows))
    return rows, problems


def _check_header(names: list[str]) -> None:
    problems: list[str] = []
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        problems.append(f"the header lacks {', '.join(missing)}")
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        problems.append(f"the header has unknown columns: {', '.join(map(repr, unknown))}")
    twice = sorted({name for name in names if names.count(name) > 1 and name in COLUMNS})
    if twice:
        problems.append(f"the header names {', '.join(twice)} more than once")
    if problems:
        expected = ",".join(COLUMNS)
        raise BulkImportError([(1, f"{problem} (expected {expected})") for problem in problems])


def _row(line: int, values: dict[str, str]) -> tuple[SchoolRow | None, list[str]]:
    problems = [
        f"{column} is empty" for column in COLUMNS if column not in OPTIONAL and not values[column]
    ]
    name, database, vendor = values["name"], values["database"], values["vendor"]
    if len(name) > SCHOOL_NAME.max_length:
        problems.append(f"the name is longer than {SCHOOL_NAME.max_length} characters")
    if len(database) > DATABASE_NAME.max_length:
        problems.append(f"the database name is longer than {DATABASE_NAME.max_length} characters")
    for label, value in (("the name", name), ("the database name", database)):
        if CONTROL_CHARACTER.search(value) or (value and not value.strip()):
            problems.append(f"{label} is blank or holds a control character: give one line")
    la, establishment = values["la_number"], values["establishment_number"]
    if la and not LA_NUMBER.fullmatch(la):
        problems.append(f"the LA number {la!r} is not 3 digits")
    if establishment and not ESTABLISHMENT_NUMBER.fullmatch(establishment):
        problems.append(f"the establishment number {establishment!r} is not 4 digits")
    duns = values["duns"] or None
    if duns is not None and not DUNS.fullmatch(duns):
        problems.append(f"the DUNS number {duns!r} is not 9 digits (or a 13-digit GLN)")
    language = values["language"] or "en"
    if not LANGUAGE.fullmatch(language):
        problems.append(f"the language {language!r} is not a code such as en or en-GB")
    currency = values["currency"] or "GBP"
    if not CURRENCY.fullmatch(currency):
        problems.append(f"the currency {currency!r} is not a three-letter code such as GBP")
    fng_key = normalise_key(values["fng_key"]) if values["fng_key"] else None
    if values["fng_key"] and fng_key is None:
        problems.append("fng_key is not a GUID")
    partner_key = normalise_key(values["partner_key"]) if values["partner_key"] else None
    if values["partner_key"] and partner_key is None:
        problems.append("partner_key is not a GUID")
    if problems or fng_key is None:
        return None, problems
    return SchoolRow(
        line=line,
        name=name,
        la_number=la,
        establishment_number=establishment,
        duns=duns,
        language=language,
        currency=currency,
        database=database,
        vendor=vendor,
        fng_key=fng_key,
        partner_key=partner_key,
    ), []


def _across_rows(rows: Sequence[SchoolRow]) -> Iterator[tuple[int, str]]:
    """Rows that contradict or repeat an earlier row."""
    first_school: dict[tuple[str, str], SchoolRow] = {}
    first_database: dict[tuple[str, str, str], int] = {}
    first_partner: dict[str, int] = {}
    first_fng: dict[str, int] = {}
    for row in rows:
        school = first_school.setdefault(row.school, row)
        differing = [
            column
            for column, value in row.school_values.items()
            if school.school_values[column] != value
        ]
        if differing:
            yield (
                row.line,
                f"school {_school(row)} has a different {', '.join(differing)} on line "
                f"{school.line}",
            )
        database = first_database.setdefault((*row.school, row.database), row.line)
        if database != row.line:
            yield (
                row.line,
                f"school {_school(row)}'s database {row.database!r} is also on line {database}",
            )
        if row.partner_key is not None:
            partner = first_partner.setdefault(row.partner_key, row.line)
            if partner != row.line:
                yield row.line, f"the partner key is also on line {partner}"
        fng = first_fng.setdefault(row.fng_key, row.line)
        if fng != row.line:
            yield row.line, f"the FNG key is also on line {fng}"


def _school(row: SchoolRow) -> str:
    return f"{row.la_number}/{row.establishment_number}"
