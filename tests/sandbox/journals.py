"""Building ControlAccounts documents for the sandbox's tests."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

FILES = Path(__file__).parent / "files"

#: The sample journal FMS 6's E-Journal documentation gives, byte for byte.
FMS_SAMPLE_JOURNAL = (FILES / "fms_sample_journal.xml").read_bytes()

_DATE = "2015-04-30T13:59:32.8791584+01:00"


def _attributes(values: dict[str, str]) -> str:
    return " ".join(f"{name}={quoteattr(value)}" for name, value in values.items())


def order(
    txn_id: str = "1",
    *,
    product: str = "WATBTL1",
    gross: str = "9.000000",
    vat: str = "1.500000",
    vat_ref: str = "VAT20",
    **extra: str,
) -> str:
    values = {
        "id": txn_id,
        "productReference": product,
        "description": "Description",
        "date": _DATE,
        "grossAmount": gross,
        "vat": vat,
        "vatReference": vat_ref,
        **extra,
    }
    return f"<Txn {_attributes(values)} />"


def settlement(
    txn_id: str = "1",
    *,
    gross: str = "9.000000",
    charges: str = "0.30",
    charges_ref: str = "CHARGE30",
    charges_vat: str = "0.00",
    charges_vat_ref: str = "CHARGEVAT0",
    **extra: str,
) -> str:
    values = {
        "id": txn_id,
        "description": "Description",
        "date": _DATE,
        "grossAmount": gross,
        "grossCharges": charges,
        "chargesReference": charges_ref,
        "chargesVat": charges_vat,
        "chargesVatReference": charges_vat_ref,
        **extra,
    }
    return f"<Txn {_attributes(values)} />"


def bank(reference: str, control_total: str = "0", /, **sections: tuple[str, list[str]]) -> str:
    """A Bank; each keyword is a section name mapped to (lastRowVersion, its Txn elements)."""
    parts = [
        f"<{name} lastRowVersion={quoteattr(version)}>{''.join(txns)}</{name}>"
        for name, (version, txns) in sections.items()
    ]
    return (
        f"<Bank reference={quoteattr(reference)} controlTotal={quoteattr(control_total)}>"
        f"{''.join(parts)}</Bank>"
    )


def control_accounts(
    *banks: str,
    submission_id: str = "0071",
    system: str = "TPPCS",
    line_count: int | None = None,
) -> bytes:
    if line_count is None:
        line_count = sum(b.count("<Txn ") for b in banks)
    header = _attributes(
        {
            "requestedBy": "admin@example.org",
            "responseDateTime": "2015-04-30T13:59:49",
            "systemIdentifier": system,
            "description": "",
            "submissionID": submission_id,
            "source": "Test Harness",
            "sourceVersion": "1.0.0.1",
            "transactionLineCount": str(line_count),
        }
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<ControlAccounts><Header {header} /><Banks>{''.join(banks)}</Banks></ControlAccounts>"
    ).encode()


def sample(**overrides: str) -> bytes:
    """FMS's sample journal rebuilt, with BK1's control total or row versions overridden."""
    return control_accounts(
        bank(
            "BK1",
            overrides.get("control_total", "0"),
            Orders=(overrides.get("orders_version", "1"), [order()]),
            Settlements=(overrides.get("settlements_version", "1"), [settlement()]),
        ),
        bank("BK2"),
        bank("BK3"),
        submission_id=overrides.get("submission_id", "0071"),
    )
