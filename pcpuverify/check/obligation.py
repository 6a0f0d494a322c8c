"""The key of a check row: ``Obligation(subject, setting, invariant, op)``, its setting a typed value.

A row is a proof obligation of a suite (a geometry), a first-chunk layout property (a precondition set at one
page size), the stateful machines' verdict on an invariant, the replay of a regression trace, or the search of
a kernel source's own C at one geometry (its rows in the baseline's ``sources`` section).  The published
reports and ``baseline.json`` name the setting by one string (their "geometry" column: ``2x8``,
``page4096/setup``, ``stateful``, ``first-chunk``) and the op by another (an operation, ``layout``,
``stateful``, ``replay``).  Those strings are made here (``label``, ``op``) and read back here
(``setting_from_label``, ``obligation_of``), nowhere else: the rest of the check asks the setting's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.proofs.blocks.labels import BlockLabel, is_block_label, parse_block_label
from pcpuverify.proofs.layout import PRECONDITION_SETS
from pcpuverify.proofs.results import Result

LAYOUT_PAGE_SIZE = 4096  # the first-chunk layout proofs of the check: kernel constants at one page size
LAYOUT_SETS = tuple(PRECONDITION_SETS)  # "setup", "callers", "arch"
LAYOUT_OP = "layout"  # the op of every layout row (proofs/layout's Result.op; `--op layout` selects them)


@dataclass(frozen=True)
class GeometrySetting:
    """A proof suite on one geometry: its rows are (invariant, operation) obligations.

    Or the compositional rows of a label (``block1024``, ``4xblock1024``: ``proofs/blocks/``), whose
    operations are the block functions.
    """

    geometry: Geometry | BlockLabel
    kind: ClassVar[str] = "proof"
    op: ClassVar[str | None] = None  # every operation of the suite: the obligation names its own

    @property
    def label(self) -> str:
        return self.geometry.name


@dataclass(frozen=True)
class LayoutSetting:
    """The first-chunk layout proofs under one precondition set, at one page size, over 64-bit values."""

    preconditions: str  # a key of PRECONDITION_SETS
    page_size: int = LAYOUT_PAGE_SIZE
    kind: ClassVar[str] = "proof"
    op: ClassVar[str | None] = LAYOUT_OP

    def __post_init__(self) -> None:
        if self.preconditions not in PRECONDITION_SETS:
            raise ValueError(f"unknown precondition set {self.preconditions!r}")

    @property
    def label(self) -> str:
        return f"page{self.page_size}/{self.preconditions}"


@dataclass(frozen=True)
class StatefulRun:
    """The Hypothesis state machines (counterexamples/stateful.py) on every geometry they list."""

    kind: ClassVar[str] = "stateful"
    op: ClassVar[str | None] = "stateful"
    label: ClassVar[str] = "stateful"


@dataclass(frozen=True)
class FirstChunkStart:
    """Traces that start from ``pcpu_setup_first_chunk`` (a ``first_chunk`` init), whatever their geometry."""

    label: ClassVar[str] = "first-chunk"


@dataclass(frozen=True)
class Replay:
    """Replaying a regression trace: ``origin`` is where it was found (a suite, the stateful machines) or begins.

    ``known``: the trace is one of the baseline's known violations, not a file of the regression traces.
    """

    origin: GeometrySetting | StatefulRun | FirstChunkStart
    known: bool = False
    kind: ClassVar[str] = "trace"
    op: ClassVar[str | None] = "replay"

    @property
    def label(self) -> str:
        return self.origin.label


@dataclass(frozen=True)
class SourceSetting:
    """A kernel source's own C, searched at one geometry (check/csubject.py): its ops ``search`` and
    ``init-first-chunk``; its rows live in the baseline's ``sources`` section, under the geometry's name."""

    geometry: Geometry
    kind: ClassVar[str] = "c"
    op: ClassVar[str | None] = None  # the search or the first chunk: the obligation names its own

    @property
    def label(self) -> str:
        return self.geometry.name


Setting = GeometrySetting | LayoutSetting | StatefulRun | Replay | SourceSetting


@dataclass(frozen=True)
class Obligation:
    """One row of the check's matrix.

    ``op`` is the operation of a suite's obligation; every other setting has
    one op of its own (``setting.op``), filled in when none is given.
    """

    subject: str
    setting: Setting
    invariant: str
    op: str = ""

    def __post_init__(self) -> None:
        own = self.setting.op
        if own is None and not self.op:
            raise ValueError(f"an obligation of {self.setting.label} needs its operation")
        if own is not None:
            if self.op not in ("", own):
                raise ValueError(f"the op of a {type(self.setting).__name__} row is {own!r}, not {self.op!r}")
            object.__setattr__(self, "op", own)

    @property
    def kind(self) -> str:
        """The row's kind as the reports publish it: "proof", "trace" or "stateful"."""
        return self.setting.kind


def setting_from_label(label: str) -> GeometrySetting | LayoutSetting | StatefulRun:
    """The setting a baseline key names (``2x8``, ``page4096/setup``, ``stateful``); ValueError otherwise.

    Only a label the setting would write itself is accepted, so that a
    baseline read and written again keeps its keys.
    """
    setting: GeometrySetting | LayoutSetting | StatefulRun
    if label == StatefulRun.label:
        setting = StatefulRun()
    elif label.startswith("page") and "/" in label:
        page, _, preconditions = label.partition("/")
        try:
            setting = LayoutSetting(preconditions, int(page.removeprefix("page")))
        except ValueError:
            raise ValueError(f"{label!r} is not page<PAGE_SIZE>/<{'|'.join(LAYOUT_SETS)}>") from None
    else:
        try:
            setting = GeometrySetting(_geometry(label))
        except GeometryError as e:
            raise ValueError(str(e)) from None
    if setting.label != label:
        raise ValueError(f"{label!r} is not written as the tool writes it ({setting.label!r})")
    return setting


def _geometry(label: str) -> Geometry | BlockLabel:
    return parse_block_label(label) if is_block_label(label) else Geometry.parse(label)


def obligation_of(result: Result, geometry: Geometry | BlockLabel | None = None, page_size: int = LAYOUT_PAGE_SIZE) -> Obligation:
    """The key of a proof ``Result`` (proofs/ speak strings): a layout row's, or a suite row's on ``geometry``.

    A layout result names its precondition set in ``extra`` (a NONCONFORMANT
    one too, whose own geometry names the page size only); a suite result is
    on ``geometry`` (default: the one its name spells, all pages populated).
    """
    if result.op == LAYOUT_OP:
        return Obligation(result.variant, LayoutSetting(str(result.extra.get("preconditions")), page_size),
                          result.invariant)
    return Obligation(result.variant, GeometrySetting(geometry or _geometry(result.geometry)), result.invariant,
                      result.op)
