"""The OpenNSML server: HTTP API (FastAPI), services, and the only code that opens the store."""
