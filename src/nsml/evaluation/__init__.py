"""Scoring of predictions against hidden labels (server side only)."""
