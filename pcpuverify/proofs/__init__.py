"""Proof obligations and solver runs: initiation, consecution (Houdini), bounded checking, shortest traces."""
