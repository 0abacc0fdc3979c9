"""FMS 6's E-Journal interface: payment systems' bank journals, posted exactly once."""
