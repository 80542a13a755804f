"""Metric curves: TensorBoard event files and matplotlib figures.

Used by the server (every report also lands in a per-session event file) and by the
CLI (``nsml plot``); both only need the metric points, never the store.
"""
