"""Counterexamples a kernel developer can act on: shortest traces, minimisation, showing them."""
