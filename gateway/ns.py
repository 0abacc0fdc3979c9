"""Every XML namespace URI the gateway speaks, defined once."""

from typing import Final

SOAP11_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV: Final = "http://www.w3.org/2003/05/soap-envelope"
WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD: Final = "http://www.w3.org/2001/XMLSchema"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XML: Final = "http://www.w3.org/XML/1998/namespace"

WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE_PASSWORD_TEXT: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordText"
)

PROBLEM: Final = "urn:ietf:rfc:7807"

#: The gateway's own namespaces: its fault details and each legacy service it offers.
FAULT: Final = "urn:fng-gateway:fault"
EJOURNAL: Final = "urn:fng-gateway:ejournal"
BUDGET: Final = "urn:fng-gateway:budget"

#: The eProcurement web service standard's namespace (suppliers' EProcurementService).
OTS: Final = "http://www.dcsf.gov.uk/open/webservices/ots"
