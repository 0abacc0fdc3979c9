"""Schools in bulk, from a CSV file: ``fng-gateway schools import`` and the admin API.

The file is UTF-8 (a byte-order mark is allowed), comma-separated, with a header row naming
these ten columns, in any order::

    name,la_number,establishment_number,duns,language,currency,database,vendor,fng_key,partner_key

One row per school database: a school with two FNG databases has two rows with the same LA
and establishment numbers and different ``database`` names. ``duns``, ``language`` (default
``en``), ``currency`` (default ``GBP``) and ``partner_key`` (default: a generated one) may
be empty; ``vendor`` is the name of a registered vendor; ``fng_key`` and ``partner_key``
are GUIDs.

A school (LA number + establishment number) is created, or updated (name, DUNS, language,
currency). A database (school + name) is created with its FNG key and an active partner
key, or updated (FNG key, vendor). A partner key given for an existing database must be its
active key: rotating keys is ``fng-gateway keys rotate``, not an import.

Every row is checked, against the file and against the registry, before anything is
written; any problem refuses the whole file with every problem and its line (the header is
line 1). Then everything is written in one transaction, with one audit entry per school and
database created or updated and one for the import (never a secret).
"""

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import IntegrityError

from gateway.errors import RegistryError
from gateway.store import Store
from gateway.tenancy.bulk.plan import Progress, plan_import
from gateway.tenancy.bulk.read import (
    COLUMNS,
    KEYLESS,
    OPTIONAL,
    BulkImportError,
    SchoolRow,
    parse_school_rows,
    read_rows,
)
from gateway.tenancy.bulk.write import GeneratedKey, ImportReport, write_import
from gateway.tenancy.secrets import SecretBox

__all__ = [
    "COLUMNS",
    "KEYLESS",
    "OPTIONAL",
    "BulkImportError",
    "GeneratedKey",
    "ImportReport",
    "Progress",
    "SchoolRow",
    "import_schools",
    "parse_school_rows",
]


async def import_schools(
    store: Store,
    box: SecretBox,
    actor: str,
    text: str,
    *,
    progress: Progress | None = None,
    generate_keys: bool = True,
    save_keys: Callable[[Sequence[GeneratedKey]], Awaitable[None]] | None = None,
) -> ImportReport:
    """Create or update every school and database the file names, or nothing.

    ``generate_keys=False`` refuses rows that would need a generated partner key.
    ``save_keys`` is given the generated keys inside the transaction, before it commits: if
    it raises, nothing is imported (so no key is stored that nobody was shown).
    """
    rows, problems = read_rows(text)
    try:
        async with store.write() as conn:
            plan = await plan_import(conn, box, rows, problems, generate_keys, progress)
            report = await write_import(conn, box, actor, plan, text, progress)
            if save_keys is not None and report.generated_keys:
                try:
                    await save_keys(report.generated_keys)
                except OSError as exc:
                    raise RegistryError(
                        f"the generated keys could not be saved ({exc.strerror or exc}); "
                        "nothing was imported"
                    ) from None
    except IntegrityError:
        # Someone else changed the registry between the checks and the writes.
        raise RegistryError(
            "the registry changed while the file was imported; nothing was imported: try again"
        ) from None
    return report
