"""One exception hierarchy for the whole gateway.

Every error a caller can see is a :class:`GatewayError`. Each carries the legacy
``ExceptionType`` name (faults read ``[ExceptionType]:[Message]``), a machine-readable
``code`` for the fault detail, and whether the caller (``Sender``) or the gateway and
its upstreams (``Receiver``) are at fault. One outer middleware turns them into SOAP
faults in the caller's SOAP version or into HTTP problems.

    GatewayError
    ├── CallerError                      the request is at fault (SOAP Client / Sender)
    │   ├── MalformedRequest             not a usable SOAP or XML request
    │   │   ├── XmlRejected              not well-formed, hostile, or over a limit
    │   │   │   └── PayloadTooLarge      body over the byte limit
    │   │   ├── UnknownOperation
    │   │   ├── VersionMismatch          an envelope of neither SOAP 1.1 nor 1.2
    │   │   ├── MustUnderstand           a mustUnderstand header the gateway does not know
    │   │   ├── BodyTimeout              the body did not arrive in time
    │   │   ├── InvalidInput *           an admin API parameter or field breaks its schema
    │   │   ├── BodyTooLarge *           an admin API body over its limit
    │   │   └── UnsupportedMediaType *   an admin API body of a type it does not take
    │   ├── AuthenticationFailed         bad credentials, unknown key, or a key not granted
    │   │   └── Unauthenticated *        no operator's bearer token, or not a live one
    │   ├── NotPermitted                 authenticated, but not for this interface or system
    │   ├── NotFound                     what was asked for does not exist (a financial year)
    │   ├── TooManyAttempts              brute-force protection
    │   ├── SubmissionInProgress         a concurrent duplicate that did not finish in time
    │   ├── SubmissionConflict †         a submission id taken by different content
    │   ├── RegistryError                an operator's change the registry cannot carry out
    │   │   └── BulkImportError ‡        a CSV import refused, with every problem by line
    │   ├── Conflict *                   a RegistryError, as the admin API answers it (409)
    │   ├── UsageRefused §               a command line the CLI refuses past argparse (exit 2)
    │   └── HttpError *                  an admin API route or method that does not exist
    ├── InternalError †                  an unexpected exception, as the outer middleware
    │                                    reports it (logged with its traceback there)
    └── ServiceError                     the gateway or FNG is at fault (SOAP Server / Receiver)
        ├── UpstreamError                FNG answered with an error or could not be reached
        │   ├── UpstreamTimeout
        │   ├── UpstreamRefused          FNG refused the database keys or the token
        │   ├── FngDeclined †            FNG answered a 4xx: it did not do it
        │   ├── FngAnswerUnusable †      FNG's answer is not its document
        │   ├── OutcomeUnknown           a write whose result never came back
        │   └── _NotSent †               no connection was made, so FNG cannot have the call
        ├── PortalError                  a supplier portal failed, refused, or answered nonsense
        │   ├── PortalUnreachable        no connection: nothing reached the portal
        │   ├── PortalTimeout            no answer in time (the call may have reached it)
        │   │   └── PollTimeout          a whole poll of the portal took too long
        │   ├── PortalConnectionLost     the connection failed once the call was under way
        │   ├── PortalGarbage            an answer that is not what the standard describes
        │   ├── PortalInsecure           a plain http address the portal is not allowed
        │   └── PortalFault              a SOAP fault: the portal answered, and refused the call
        │       ├── PortalAuthenticationFailed   AuthenticationException
        │       ├── PortalDocumentMissing        DocumentNotExistException
        │       └── PortalRejectedXml            InvalidXmlException
        ├── PollFailed                   a portal's poll failed in a way nobody foresaw (a bug)
        ├── TokenUnavailable             SIMS ID gave no token
        ├── ReconciliationFailed         an unknown outcome could not be settled safely
        ├── StoreUnavailable             the registry and ledger database cannot be reached
        └── ConfigurationError
            └── NoActiveKey              a school database with no key to call FNG with

Every class is defined here but the marked ones, which live at the one edge that raises
and answers them and are in the tree by inheritance:

* ``gateway.admin.problems``: the admin API's own refusals, which carry what only an HTTP
  problem says (the failing fields, a bearer challenge, an ``Allow`` header) and are raised
  and answered inside the admin sub-application.
† where they are raised: ``SubmissionConflict`` in ``gateway.store.ledger`` (it carries
  whether the other content was posted), ``InternalError`` in ``gateway.soap.middleware``
  (made only by the catch-all there), ``FngDeclined`` and ``FngAnswerUnusable`` in
  ``gateway.fng.documents`` (made from FNG's answer, beside the schemas it is read by),
  ``_NotSent`` in ``gateway.fng.client`` (private: the client retries on it, or raises it
  on as the ``UpstreamError`` it is).
‡ ``gateway.tenancy.bulk``: its message is made from the import's own rules (lines told
  as ranges, rows without a key told once).
§ ``gateway.cli.common``: raised by the commands alone, and answered by their exit code.

The sandbox's errors (``gateway.sandbox.errors``) stand apart: the sandbox is a witness of
FNG, SIMS ID and the portals, not a part of the gateway, and writes its own faults. Result
records that a legacy document carries (``ResultProblem`` and its kinds) are not exceptions.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway reports to a caller."""

    exception_type: ClassVar[str] = "GatewayException"
    code: ClassVar[str] = "GATEWAY_ERROR"
    http_status: ClassVar[int] = 500
    caller_fault: ClassVar[bool] = False
    #: Seconds after which the caller may try again (HTTP ``Retry-After``), where known.
    retry_after: int | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]

    @property
    def fault_string(self) -> str:
        """The ``[ExceptionType]:[Message]`` form FMS integrations expect."""
        return f"{self.exception_type}:{self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class CallerError(GatewayError):
    exception_type = "InvalidRequestException"
    code = "INVALID_REQUEST"
    http_status = 400
    caller_fault = True


class MalformedRequest(CallerError):
    code = "MALFORMED_REQUEST"


class XmlRejected(MalformedRequest):
    exception_type = "InvalidXmlException"
    code = "XML_REJECTED"


class PayloadTooLarge(XmlRejected):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class UnknownOperation(MalformedRequest):
    code = "UNKNOWN_OPERATION"


class VersionMismatch(MalformedRequest):
    code = "VERSION_MISMATCH"


class MustUnderstand(MalformedRequest):
    code = "MUST_UNDERSTAND"


class BodyTimeout(MalformedRequest):
    code = "BODY_TIMEOUT"
    http_status = 408


class AuthenticationFailed(CallerError):
    exception_type = "AuthenticationException"
    code = "AUTHENTICATION_FAILED"
    http_status = 401


class NotPermitted(CallerError):
    exception_type = "AuthorizationException"
    code = "NOT_PERMITTED"
    http_status = 403


class NotFound(CallerError):
    exception_type = "NotFoundException"
    code = "NOT_FOUND"
    http_status = 404


class TooManyAttempts(CallerError):
    exception_type = "AuthenticationException"
    code = "TOO_MANY_ATTEMPTS"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SubmissionInProgress(CallerError):
    exception_type = "SubmissionInProgressException"
    code = "SUBMISSION_IN_PROGRESS"
    http_status = 409


class RegistryError(CallerError):
    """An operator's request that the registry cannot carry out (a name taken, a key
    already pending, none to promote)."""

    exception_type = "RegistryException"
    code = "REGISTRY_ERROR"


class ServiceError(GatewayError):
    exception_type = "GatewayException"
    code = "GATEWAY_ERROR"
    http_status = 500


class UpstreamError(ServiceError):
    exception_type = "UpstreamException"
    code = "UPSTREAM_ERROR"
    http_status = 502

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.status = status


class UpstreamTimeout(UpstreamError):
    code = "UPSTREAM_TIMEOUT"
    http_status = 504


class UpstreamRefused(UpstreamError):
    code = "UPSTREAM_REFUSED"


class OutcomeUnknown(UpstreamError):
    exception_type = "OutcomeUnknownException"
    code = "OUTCOME_UNKNOWN"
    http_status = 504


class PortalError(ServiceError):
    """A supplier portal (the gateway is its SOAP client) failed or could not be reached."""

    exception_type = "PortalException"
    code = "PORTAL_ERROR"
    http_status = 502


class PortalUnreachable(PortalError):
    """No connection could be made: nothing reached the portal, so a call may be made again."""

    code = "PORTAL_UNREACHABLE"


class PortalTimeout(PortalError):
    code = "PORTAL_TIMEOUT"


class PollTimeout(PortalTimeout):
    code = "POLL_TIMEOUT"


class PortalConnectionLost(PortalError):
    code = "PORTAL_CONNECTION_LOST"


class PortalGarbage(PortalError):
    code = "PORTAL_GARBAGE"


class PortalInsecure(PortalError):
    """The standard asks for SSL: a plain http address is used only where a portal allows it."""

    code = "PORTAL_INSECURE"


class PortalFault(PortalError):
    """The portal answered with a SOAP fault: the call reached it and was not carried out
    ("If the call was not successful then a soap exception should be thrown")."""

    code = "PORTAL_FAULT"


class PortalAuthenticationFailed(PortalFault):
    code = "PORTAL_AUTHENTICATION_FAILED"


class PortalDocumentMissing(PortalFault):
    code = "PORTAL_DOCUMENT_MISSING"


class PortalRejectedXml(PortalFault):
    code = "PORTAL_REJECTED_XML"


class PollFailed(ServiceError):
    """A poll of a portal failed unexpectedly (a bug, logged with its traceback)."""

    code = "POLL_FAILED"


class TokenUnavailable(ServiceError):
    exception_type = "TokenException"
    code = "TOKEN_UNAVAILABLE"
    http_status = 503


class ReconciliationFailed(ServiceError):
    exception_type = "ReconciliationException"
    code = "RECONCILIATION_FAILED"
    http_status = 409


class StoreUnavailable(ServiceError):
    code = "STORE_UNAVAILABLE"
    http_status = 503


class ConfigurationError(ServiceError):
    code = "CONFIGURATION_ERROR"


class NoActiveKey(ConfigurationError):
    code = "NO_TARGET"
