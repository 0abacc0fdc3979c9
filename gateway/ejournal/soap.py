"""The E-Journal service's SOAP and plain XML bindings (WSDL: schemas/ejournal/ejournal.wsdl)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from gateway import ns
from gateway.ejournal.service import EJournalService
from gateway.soap.security import Credentials
from gateway.soap.service import Call, Operation, SoapService, response_element
from gateway.tenancy.model import Caller
from gateway.xmlsafe import Limits


def ejournal_soap_service(
    service: EJournalService,
    authenticate: Callable[[Credentials], Awaitable[Caller]],
    *,
    schemas_dir: Path,
    limits: Limits,
    trusted_proxies: Sequence[str],
    observe: Callable[[str, str, str, float], None] | None = None,
) -> SoapService[Caller]:
    async def get_banks(call: Call[Caller]) -> bytes:
        document, success = await service.get_banks(
            call.caller, (call.text("systemIdentifier") or "").strip()
        )
        return response_element(
            ns.EJOURNAL, "GetBanks", [("GetBanksResult", document), ("isSuccess", success)]
        )

    async def post_journals(call: Call[Caller]) -> bytes:
        document, source = call.sourced_document("xmlData")
        result = await service.post_journals(call.caller, document, source)
        return response_element(ns.EJOURNAL, "PostJournals", [("PostJournalsResult", result)])

    async def post_audit_message(call: Call[Caller]) -> bytes:
        result = await service.post_audit_message(call.caller, call.text("message"))
        return response_element(
            ns.EJOURNAL, "PostAuditMessage", [("PostAuditMessageResult", result)]
        )

    return SoapService(
        name="ejournal",
        namespace=ns.EJOURNAL,
        wsdl_template=schemas_dir / "ejournal" / "ejournal.wsdl",
        operations=[
            Operation("GetBanks", get_banks),
            Operation("PostJournals", post_journals, document_parameter="xmlData"),
            Operation("PostAuditMessage", post_audit_message),
        ],
        authenticate=authenticate,
        limits=limits,
        trusted_proxies=trusted_proxies,
        observe=observe,
    )
