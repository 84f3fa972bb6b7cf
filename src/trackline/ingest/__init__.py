"""Ingestion: wire formats -> canonical events -> validation -> one committed transaction."""
