"""Code the test modules share (server harnesses, fixture scripts, expected results).

A package of its own, not ``test_*`` modules, so that no test module imports another (a
test module imported elsewhere runs its tests twice, and its fixtures leak); ``conftest``
re-exports what the tests use.
"""
