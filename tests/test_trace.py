"""model/trace.py: the ``pcpu-verify-trace/1`` format -- round trip, every bad input, atomic save.

A bad trace must give a ``TraceError`` whose message is one line, names the
field at fault, and (from ``load_trace``) starts with the file's path --
never another exception and never a traceback (DESIGN.md, "Pre-merge check").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcpuverify.model import trace as trace_module
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, FirstChunkInit, Free, Populate
from pcpuverify.model.trace import FORMAT, MAX_ALLOC_BITS, Trace, TraceError, load_trace, save_trace, trace_from_json

TRACES = Path(__file__).parent / "traces"


def good() -> dict[str, Any]:
    """A valid trace as JSON data, fresh each time so tests can break one field."""
    return {
        "format": "pcpu-verify-trace/1",
        "variant": "v1",
        "geometry": {"block_bits": 8, "nr_pages": 2, "populated": [0, 1]},
        "init": {"kind": "chunk"},
        "ops": [
            {"op": "alloc", "bits": 3, "align": 1, "pop_only": False},
            {"op": "free", "bit_off": 6},
            {"op": "populate", "page_start": 0, "page_end": 1},
        ],
        "violates": "chunk-contig-hint-not-above-free-run",
    }


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------------------
# round trip
# ---------------------------------------------------------------------------


def test_the_design_example_loads_to_the_documented_values(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "t.json", good()))
    assert trace == Trace(
        variant="v1",
        geometry=Geometry(block_bits=8, nr_pages=2, populated=(0, 1)),
        init=ChunkInit(),
        ops=(Alloc(3, 1, False), Free(6), Populate(0, 1)),
        violates="chunk-contig-hint-not-above-free-run",
    )


def test_defaults_for_omitted_fields() -> None:
    # init -> a chunk; ops -> none; populated -> every page; align -> 1; pop_only,
    # reserved -> false; violates -> None.
    data = {"format": FORMAT, "variant": "v1-patch09", "geometry": {"block_bits": 16, "nr_pages": 3}}
    trace = trace_from_json(data)
    assert trace == Trace("v1-patch09", Geometry(16, 3, (0, 1, 2)), ChunkInit(), (), None)
    data["ops"] = [{"op": "alloc", "bits": 2}]
    assert trace_from_json(data).ops == (Alloc(bits=2, align=1, pop_only=False, reserved=False),)


def test_checked_in_counterexample_loads() -> None:
    trace = load_trace(TRACES / "v1_hint_overlap.json")
    assert trace.variant == "v1" and trace.violates == "chunk-contig-hint-not-above-free-run"
    assert trace.geometry == Geometry(8, 2, (0, 1))
    assert trace.ops == (Alloc(1, 4), Alloc(5, 1, pop_only=True), Free(1), Alloc(10, 1))


def test_save_writes_the_format_tag_first_and_loads_back(tmp_path: Path) -> None:
    trace = trace_from_json(good())
    path = tmp_path / "t.json"
    save_trace(trace, path)
    text = path.read_text()
    assert text.endswith("\n")
    assert next(iter(json.loads(text))) == "format"
    assert json.loads(text)["format"] == "pcpu-verify-trace/1"
    assert load_trace(path) == trace


def test_first_chunk_trace_round_trip(tmp_path: Path) -> None:
    # A first-chunk trace stores only block_bits: the layout decides the pages.
    data = good()
    data["init"] = {"kind": "first_chunk", "static_size": 20, "reserved_size": 12, "dyn_size": 32}
    data["geometry"] = {"block_bits": 8}
    data["ops"] = [{"op": "alloc", "bits": 3, "reserved": True}, {"op": "free", "bit_off": 5, "reserved": True}]
    trace = trace_from_json(data)
    assert trace.init == FirstChunkInit(20, 12, 32)
    assert trace.geometry == Geometry(8, 1, (0,))
    assert trace.ops == (Alloc(3, reserved=True), Free(5, reserved=True))
    assert trace.to_json()["geometry"] == {"block_bits": 8}
    save_trace(trace, tmp_path / "f.json")
    assert load_trace(tmp_path / "f.json") == trace


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    block_bits = draw(st.sampled_from((4, 8, 16, 1024)))
    if draw(st.booleans()):
        init: ChunkInit | FirstChunkInit = ChunkInit()
        nr_pages = draw(st.integers(1, 64))
        populated = tuple(sorted(draw(st.sets(st.integers(0, nr_pages - 1)))))
        geometry = Geometry(block_bits, nr_pages, populated)
    else:
        init = FirstChunkInit(*draw(st.tuples(*[st.integers(0, 1 << 20)] * 3)))
        geometry = Geometry(block_bits, 1, (0,))
    reserved = st.booleans()
    alloc = st.builds(
        Alloc,
        st.integers(1, MAX_ALLOC_BITS),
        st.sampled_from([a for a in (1, 2, 4, 8, 16, 512, 1024) if a <= block_bits]),
        st.booleans(),
        reserved,
    )
    pages = st.integers(-3, 70)
    op = st.one_of(
        alloc,
        st.builds(Free, st.integers(0, 1 << 16), reserved),
        st.builds(Populate, pages, pages, reserved),
        st.builds(Depopulate, pages, pages, reserved),
    )
    ops = tuple(draw(st.lists(op, max_size=8)))
    violates = draw(st.none() | st.text(max_size=30))
    return Trace(draw(st.sampled_from(("v1", "v1-patch09"))), geometry, init, ops, violates)


@settings(max_examples=60, deadline=None)
@given(trace=traces())
def test_round_trip_through_json_and_a_file(tmp_path_factory: pytest.TempPathFactory, trace: Trace) -> None:
    assert trace_from_json(json.loads(json.dumps(trace.to_json()))) == trace
    path = tmp_path_factory.mktemp("rt") / "trace.json"
    save_trace(trace, path)
    assert load_trace(path) == trace


# ---------------------------------------------------------------------------
# bad input: one TraceError, one line, naming the field
# ---------------------------------------------------------------------------


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """good() with the field at ``path`` set to ``value`` (deleted when value is ...)."""
    data = good()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


BAD_FIELDS = [
    # (field path, bad value, text the message must contain)
    (("format",), ..., "'format'"),
    (("format",), "pcpu-verify-trace/2", "'format'"),
    (("format",), 1, "'format'"),
    (("variant",), "v2", "variant"),
    (("variant",), None, "variant"),
    (("variant",), ["v1"], "variant"),
    (("init",), {"kind": "area-map"}, "init"),
    (("init",), "chunk", "init"),
    (("init",), {"kind": ["chunk"]}, "init"),
    (("init",), {"kind": "first_chunk", "static_size": "20", "reserved_size": 0, "dyn_size": 32}, "static_size"),
    (("init",), {"kind": "first_chunk", "static_size": 20, "dyn_size": 32}, "reserved_size"),
    (("geometry",), [8, 2], "geometry"),
    (("geometry", "block_bits"), 12, "block_bits"),
    (("geometry", "block_bits"), ..., "block_bits"),
    (("geometry", "block_bits"), 2048, "block_bits"),
    (("geometry", "nr_pages"), 0, "nr_pages"),
    (("geometry", "nr_pages"), "2", "nr_pages"),
    (("geometry", "nr_pages"), True, "nr_pages"),
    (("geometry", "populated"), "0,1", "populated"),
    (("geometry", "populated"), [0, 2], "populated"),
    (("geometry", "populated"), [0, 0], "populated"),
    (("geometry", "populated"), [-1], "populated"),
    (("ops",), {"op": "alloc"}, "'ops'"),
    (("ops", 0), "alloc 3", "ops[0]"),
    (("ops", 0, "op"), "malloc", "ops[0]: 'op'"),
    (("ops", 0, "op"), ..., "ops[0]: 'op'"),
    (("ops", 0, "op"), ["alloc"], "ops[0]: 'op'"),
    (("ops", 0, "size"), 3, "ops[0]: unknown key 'size'"),
    (("ops", 0, "bits"), ..., "ops[0]: 'bits'"),
    (("ops", 0, "bits"), 0, "ops[0]: 'bits'"),
    (("ops", 0, "bits"), MAX_ALLOC_BITS + 1, "ops[0]: 'bits'"),
    (("ops", 0, "bits"), 2.5, "ops[0]: 'bits'"),
    (("ops", 0, "bits"), True, "ops[0]: 'bits'"),
    (("ops", 0, "align"), 3, "ops[0]: 'align'"),
    (("ops", 0, "align"), 0, "ops[0]: 'align'"),
    (("ops", 0, "align"), 16, "ops[0]: 'align'"),  # > PAGE_SIZE in bits (block_bits 8)
    (("ops", 0, "pop_only"), 1, "ops[0]: 'pop_only'"),
    (("ops", 0, "reserved"), "yes", "ops[0]: 'reserved'"),
    (("ops", 1, "bit_off"), -4, "ops[1]: 'bit_off'"),
    (("ops", 1, "bit_off"), "6", "ops[1]: 'bit_off'"),
    (("ops", 2, "page_end"), ..., "ops[2]: 'page_end'"),
    (("ops", 2, "page_start"), None, "ops[2]: 'page_start'"),
    (("violates",), 3, "'violates'"),
]


@pytest.mark.parametrize(("path", "value", "names"), BAD_FIELDS, ids=lambda x: repr(x)[:40])
def test_bad_field_is_one_trace_error_line_naming_it(tmp_path: Path, path: tuple[Any, ...], value: Any, names: str) -> None:
    file = write(tmp_path / "bad.json", _with(path, value))
    with pytest.raises(TraceError) as info:
        load_trace(file)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{file}: ")
    assert names in message


@pytest.mark.parametrize("top", [[], "trace", 3, None])
def test_a_trace_that_is_not_an_object(tmp_path: Path, top: Any) -> None:
    file = write(tmp_path / "bad.json", top)
    with pytest.raises(TraceError, match=r"must be a JSON object$"):
        load_trace(file)


def test_not_json_names_the_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text('{"format": "pcpu-verify-trace/1",\n  "variant": v1}\n')
    with pytest.raises(TraceError) as info:
        load_trace(file)
    assert str(info.value) == f"{file}: not JSON: Expecting value at line 2 column 14"


def test_a_missing_file(tmp_path: Path) -> None:
    file = tmp_path / "nope.json"
    with pytest.raises(TraceError) as info:
        load_trace(file)
    assert str(info.value) == f"{file}: cannot read: No such file or directory"


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_bytes(b'{"format": "\xff\xfe"}')
    with pytest.raises(TraceError) as info:
        load_trace(file)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{file}: ")


# ---------------------------------------------------------------------------
# save_trace is atomic
# ---------------------------------------------------------------------------

OLD = '{"old": "trace"}\n'


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "t.json")


def test_save_replaces_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(OLD)
    trace = trace_from_json(good())
    save_trace(trace, path)
    assert load_trace(path) == trace
    assert _leftovers(tmp_path) == []


def test_a_failing_write_leaves_the_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.json"
    path.write_text(OLD)
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fd: int, mode: str) -> None:
            self.f = real_fdopen(fd, mode)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, text: str) -> int:
            self.f.write(text[: len(text) // 2])  # half of it reaches the temporary file
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(trace_module.os, "fdopen", FullDisk)
    with pytest.raises(OSError, match="No space left"):
        save_trace(trace_from_json(good()), path)
    assert path.read_text() == OLD
    assert _leftovers(tmp_path) == []  # the temporary file is removed


def test_a_failing_rename_leaves_the_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.json"
    path.write_text(OLD)

    def no_replace(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trace_module.os, "replace", no_replace)
    with pytest.raises(PermissionError):
        save_trace(trace_from_json(good()), path)
    assert path.read_text() == OLD
    assert _leftovers(tmp_path) == []


def test_an_interrupted_write_leaves_the_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C is a BaseException, not an Exception: the cleanup must still run.
    path = tmp_path / "t.json"
    path.write_text(OLD)

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trace_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_trace(trace_from_json(good()), path)
    assert path.read_text() == OLD
    assert _leftovers(tmp_path) == []


def test_a_trace_that_cannot_be_serialised_touches_nothing(tmp_path: Path) -> None:
    # json.dumps runs before any file is created.
    path = tmp_path / "t.json"
    path.write_text(OLD)
    trace = Trace("v1", Geometry(8, 2, (0, 1)), ChunkInit(), (Free(cast(int, object())),))
    with pytest.raises(TypeError):
        save_trace(trace, path)
    assert path.read_text() == OLD
    assert _leftovers(tmp_path) == []
