"""FMS 6's budget planning interfaces: chart of accounts, financial years, budget import."""
