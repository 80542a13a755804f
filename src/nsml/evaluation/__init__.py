"""Evaluation of submitted checkpoints: the conversation with the participant's ``infer``
(``driver``), scoring against the hidden labels (``scoring``, ``metrics``, ``split``) and
the two logs an evaluation keeps (``log``). It runs in the server but does not depend on
it: what it needs (time-outs, reply-size limits, paths, the running process) it is given."""
