"""Result documents: how the legacy services answer a write.

As FMS did, a write that breaks a rule is answered (not faulted) with a document saying
``isSuccess`` and listing every problem as an ``Error``: its ``code`` and message, and the
attributes that locate it. Each interface declares its own error fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from lxml import etree

from gateway.xmlsafe import PARSER_OPTIONS

#: For result documents the gateway wrote itself (and kept in its ledger).
_OWN: Final = etree.XMLParser(**PARSER_OPTIONS)


@dataclass(frozen=True, slots=True)
class ResultProblem:
    code: str
    message: str

    #: The subclass's fields, each with the attribute it is written as, in document order.
    ATTRIBUTES: ClassVar[tuple[tuple[str, str], ...]] = ()

    def element(self) -> etree._Element:
        error = etree.Element("Error", code=self.code)
        for field, attribute in self.ATTRIBUTES:
            value = getattr(self, field)
            if value is not None:
                error.set(attribute, str(value))
        error.text = self.message
        return error


def result_document(
    tag: str, success: bool, errors: Sequence[ResultProblem] = (), **attributes: str | None
) -> bytes:
    """``<{tag} isSuccess="…" …><Errors><Error …/>…</Errors></{tag}>`` in UTF-8."""
    root = etree.Element(tag, isSuccess="true" if success else "false")
    for name, value in attributes.items():
        if value is not None:
            root.set(name, value)
    if errors:
        etree.SubElement(root, "Errors").extend(error.element() for error in errors)
    return etree.tostring(root, encoding="utf-8")


def replayed(result: bytes) -> bytes:
    """A stored result marked ``replayed="true"``: the submission was already in FNG, so
    this request posted nothing (the answer is still the submission's own)."""
    root = etree.fromstring(result, _OWN)
    root.set("replayed", "true")
    return etree.tostring(root, encoding="utf-8")
