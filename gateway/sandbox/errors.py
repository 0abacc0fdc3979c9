"""The sandbox's own exceptions, one tree under :class:`SandboxError`.

The sandbox is a witness of the gateway, not a part of it: it raises and answers its own
errors, so a change to the gateway's errors or fault format cannot pass unseen on both
sides of a test.

    SandboxError
    ├── TokenError                a token or client assertion that SIMS ID or FNG refuses
    ├── OAuthError                SIMS ID's token endpoint refusing (simsid/endpoints.py)
    ├── DocumentRefused           a document not read: not well-formed, hostile, over a limit
    │   └── DocumentTooLarge      over the byte limit
    └── PortalFault               a supplier portal's SOAP fault, [ExceptionType]:[Message]
        ├── InvalidRequest        InvalidRequestException: not a call the service takes
        │   ├── UnknownOperation  no such operation, or a SOAP action naming another
        │   ├── VersionMismatch   not SOAP 1.1 or 1.2, or not the version declared
        │   └── MustUnderstand    a header marked mustUnderstand that is not processed
        ├── InvalidXml            InvalidXmlException: a document that is not the XML wanted
        ├── AuthenticationFailed  AuthenticationException: a missing or wrong AuthHeader
        └── DocumentNotExist      DocumentNotExistException: no such document for this user
"""

from __future__ import annotations

from typing import ClassVar


class SandboxError(Exception):
    """Base of every error the sandbox raises on purpose."""


class TokenError(SandboxError):
    """A token or assertion that is refused; the message says why, for the caller."""


class DocumentRefused(SandboxError):
    """A document the sandbox will not read; ``code`` names why for a fault's detail."""

    code: ClassVar[str] = "XML_REJECTED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DocumentTooLarge(DocumentRefused):
    code = "PAYLOAD_TOO_LARGE"


class PortalFault(SandboxError):
    """A call a supplier portal refuses, answered with a SOAP fault whose string is
    ``[ExceptionType]:[Message]`` and whose detail carries ``code``. Every one is the
    caller's fault (SOAP ``Client``, or ``Sender`` in SOAP 1.2)."""

    exception_type: ClassVar[str]
    code: str = "PORTAL_FAULT"
    #: The fault code when it is not the caller's usual one (``VersionMismatch``, …).
    soap_code: ClassVar[str | None] = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def fault_string(self) -> str:
        return f"{self.exception_type}:{self.message}"


class InvalidRequest(PortalFault):
    exception_type = "InvalidRequestException"
    code = "MALFORMED_REQUEST"


class UnknownOperation(InvalidRequest):
    code = "UNKNOWN_OPERATION"


class VersionMismatch(InvalidRequest):
    code = "VERSION_MISMATCH"
    soap_code = "VersionMismatch"


class MustUnderstand(InvalidRequest):
    code = "MUST_UNDERSTAND"
    soap_code = "MustUnderstand"


class InvalidXml(PortalFault):
    exception_type = "InvalidXmlException"
    code = "INVALID_XML"


class AuthenticationFailed(PortalFault):
    exception_type = "AuthenticationException"
    code = "AUTHENTICATION_FAILED"


class DocumentNotExist(PortalFault):
    exception_type = "DocumentNotExistException"
    code = "DOCUMENT_NOT_EXIST"
