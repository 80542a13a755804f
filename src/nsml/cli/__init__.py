"""The ``nsml`` command-line client. It talks to the server over HTTP only."""
