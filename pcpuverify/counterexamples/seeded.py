"""Hypothesis runs that depend only on their seed and budget, not on which of this project's modules are loaded.

Hypothesis (6.1xx) mixes into the values it draws the number and string
literals of every "local" module loaded at the time -- for an editable
install, every module of pcpuverify.  So the stateful machines found other
violations after any commit that added a literal anywhere, and other ones in
a `check` worker that had loaded more modules than a test had: a gate whose
verdict depended on its cache state.  During a run this pins the local
constants to none; Hypothesis's own global constants (edge values such as 0
and powers of two) stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from hypothesis.internal.conjecture import providers


@contextmanager
def without_local_constants() -> Iterator[None]:
    """Hypothesis draws no literal from the loaded project modules while inside."""
    # a private hook of Hypothesis: if it moves, this patch fails loudly (mock raises AttributeError)
    with mock.patch.object(providers, "_get_local_constants", return_value=providers.Constants()):
        providers.CONSTANTS_CACHE.cache.clear()  # values chosen with the constants seen so far
        yield
        providers.CONSTANTS_CACHE.cache.clear()
