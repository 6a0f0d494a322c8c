"""The executable reference: a faithful port of the seed's allocator, its geometry, variants and traces."""
