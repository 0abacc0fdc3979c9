"""SOAP 1.1 and 1.2 envelopes, faults, WSDL serving and dispatch; a plain XML binding."""
