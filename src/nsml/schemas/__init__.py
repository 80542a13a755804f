"""Pydantic models of the HTTP API (version 1), spoken by both sides: the server validates
requests and shapes responses with them, the client parses responses into them.

Field names are the wire contract. This package sits below both the server and the
client, so it imports neither (nor the store's database layer, nor the runners).
"""
