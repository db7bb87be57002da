"""Meta dispatcher: delivers conversions to the Conversions API (ledger, retries, DLQ)."""
