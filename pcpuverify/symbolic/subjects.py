"""The registry of subjects: one record per thing pcpu-verify checks, registered once.

A subject is a model variant (``model``, a ``PcpuAllocator`` subclass), the
Z3 encoding of its transitions (``encoding``, a ``SymPercpu`` subclass, or
None while it has none), the symbolic form of its first-chunk setup code
(``layout``, a ``PostedSetup`` subclass, or None), and the subject it is a
patch on (``parent``).  Every layer above looks a subject up here and asks
it for what it needs; nothing tests a variant by its name.

The model layer keeps its own column of this table, ``model.variants.VARIANTS``
(name -> model class), because traces and ``Reference`` resolve names there
without the symbolic layer; ``register`` writes both, and the built-in
subjects below are checked to agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.linux_4_14 import Linux414
from pcpuverify.model.linux_5_4 import Linux54
from pcpuverify.model.mainline import Mainline
from pcpuverify.model.mainline_fixed import MainlineFixed
from pcpuverify.model.variants import V1, VARIANTS, Fixed, UnknownVariant
from pcpuverify.symbolic.encode import SymFixed, SymPercpu, SymV1
from pcpuverify.symbolic.encode_linux_4_14 import SymLinux414
from pcpuverify.symbolic.encode_linux_5_4 import SymLinux54, SymMainline
from pcpuverify.symbolic.encode_mainline_fixed import SymMainlineFixed
from pcpuverify.symbolic.setup import PostedSetup, RoundUpSetup


class SubjectError(ValueError):
    """A subject that cannot be registered: wrong types, a name taken by another, an unknown parent."""


@dataclass(frozen=True)
class Subject:
    name: str
    model: type[PcpuAllocator]
    encoding: type[SymPercpu] | None
    layout: type[PostedSetup] | None
    parent: str | None = None

    @property
    def proves_layout(self) -> bool:
        """Whether the first-chunk layout rows run: a release variant's ``pcpu_setup_first_chunk`` has no
        symbolic form, so ``prove`` and ``check`` skip its layout rows."""
        return self.layout is not None

    @property
    def block_contracts(self) -> str | None:
        """Which block metadata the compositional rows state (``SymPercpu.block_contracts``): "2017" (the
        posting's ``pcpu_bitmap_md``), "5.2" (the scan_hint ``pcpu_block_md``), or None (no such rows)."""
        return self.encoding.block_contracts if self.encoding is not None else None

    @property
    def proves_labels(self) -> bool:
        """Whether ``prove`` and ``check`` run the compositional labels for this subject: ``blockB`` (the block
        contracts) and ``NxblockB`` (chunk obligations over the blocks' metadata) for both kinds of block; 4.14's
        blocks have neither."""
        return self.block_contracts in ("2017", "5.2")

    def require_encoding(self) -> type[SymPercpu]:
        """The encoding, or one line saying this subject has none (its model runs, its proofs cannot)."""
        if self.encoding is None:
            raise SubjectError(f"variant {self.name!r} has no Z3 encoding yet: replay, minimize and explore run"
                               " on its model, prove and check's suites cannot")
        return self.encoding


SUBJECTS: dict[str, Subject] = {}


def nearest_registered_ancestor(model: type[PcpuAllocator]) -> Subject | None:
    """The registered subject whose model ``model`` derives from most closely (its parent by default)."""
    for cls in model.__mro__[1:]:
        for s in SUBJECTS.values():
            if s.model is cls:
                return s
    return None


def register(
    name: str,
    model: type[PcpuAllocator],
    encoding: type[SymPercpu] | None,
    layout: type[PostedSetup] | None = None,
    parent: str | None = None,
) -> Subject:
    """Add a subject for this process.  ``parent`` defaults to the nearest registered ancestor of ``model``;
    ``layout`` is what it is given (None: no first-chunk setup code to prove; ``inherited_layout`` finds the
    parent's for a plug-in)."""
    if not (isinstance(model, type) and issubclass(model, PcpuAllocator)):
        raise SubjectError(f"variant {name!r}: the model must be a subclass of PcpuAllocator (got {model!r})")
    if encoding is not None and not (isinstance(encoding, type) and issubclass(encoding, SymPercpu)):
        raise SubjectError(f"variant {name!r}: the encoding must be a subclass of SymPercpu (got {encoding!r})")
    if layout is not None and not (isinstance(layout, type) and issubclass(layout, PostedSetup)):
        raise SubjectError(f"variant {name!r}: the layout must be a subclass of PostedSetup (got {layout!r})")
    known = SUBJECTS.get(name)
    if known is not None and (known.model, known.encoding) != (model, encoding):
        raise SubjectError(f"variant {name!r} is already defined; give the new variant another name")
    ancestor = nearest_registered_ancestor(model)
    if parent is None and ancestor is not None:
        parent = ancestor.name
    if parent is not None and parent not in SUBJECTS:
        raise SubjectError(f"variant {name!r}: unknown parent {parent!r}")
    subject = Subject(name, model, encoding, layout, parent)
    SUBJECTS[name] = subject
    VARIANTS[name] = model
    return subject


def inherited_layout(model: type[PcpuAllocator]) -> type[PostedSetup] | None:
    """The setup code of the nearest registered ancestor: a patch on ``fixed`` keeps ``fixed``'s unless it says."""
    ancestor = nearest_registered_ancestor(model)
    return None if ancestor is None else ancestor.layout


def subject(name: str) -> Subject:
    try:
        return SUBJECTS[name]
    except KeyError:
        raise UnknownVariant(
            f"unknown variant {name!r}; choose one of: {', '.join(sorted(SUBJECTS))}"
        ) from None


register("v1-patch09", PcpuAllocator, SymPercpu, PostedSetup)
register("v1", V1, SymV1, PostedSetup, parent="v1-patch09")
register("fixed", Fixed, SymFixed, RoundUpSetup, parent="v1")
# the released allocators: no first-chunk setup ported (``FirstChunkInit`` is refused), so no layout
register("linux-4.14", Linux414, SymLinux414)
register("linux-5.4", Linux54, SymLinux54)
register("mainline", Mainline, SymMainline)
# mainline plus the smallest fix of each finding (docs/patches/mainline-fixed.patch)
register("mainline-fixed", MainlineFixed, SymMainlineFixed)
assert {n: s.model for n, s in SUBJECTS.items()} == VARIANTS, "model.variants.VARIANTS lists another variant"
