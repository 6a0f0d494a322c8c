"""Compositional proofs up to the kernel's block (issue 12, part 4).

``state``: one block's bits and metadata as Z3 terms, and the same block made
concrete on the model; ``roles``: what each block-level function does to one
block, in Z3 and on the model; ``contracts``: the pre- and postconditions;
``prove``: one contract to a verdict; ``abstraction`` and ``compose``: the
chunk-level obligations over blocks seen only through their metadata;
``labels``: the geometry labels (``block1024``, ``4xblock1024``) of those rows.
"""
