"""Z3 encoding of the allocator state and transitions, proof obligations and solver runs."""
