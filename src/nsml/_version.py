"""The platform's version, in a module of its own so that the server, the CLI and the
packaging read it without importing the SDK (``nsml/__init__.py`` loads that lazily)."""

__version__ = "0.1.0"
