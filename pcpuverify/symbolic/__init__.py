"""The symbolic layer: bit-vector helpers, the symbolic chunk and the Z3 encoding of the allocator's transitions.

It sits between ``model`` (which it mirrors) and ``invariants`` (whose Z3
predicates are written over its ``SymChunk``); it runs no solver.
"""
