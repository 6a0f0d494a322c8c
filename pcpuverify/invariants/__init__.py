"""Invariants: each defined once, with the seed sentence it encodes, a concrete predicate and a Z3 predicate."""
