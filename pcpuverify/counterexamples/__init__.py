"""Concrete counterexamples, with no solver: exhaustive exploration, minimisation, regression tests, witnesses."""
