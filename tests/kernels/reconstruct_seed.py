"""Rebuild the July 2017 posting's mm/percpu.c and mm/percpu-internal.h from the seed.

The seed is the mail archive of "[PATCH 00/10] percpu: replace percpu area
map allocator with bitmap allocator" (Dennis Zhou, 2017-07-16).  This script
takes the base files (the pre-image blobs named by the first patches'
``index`` lines: mm/percpu.c ``bd4130a``, mm/percpu-internal.h ``cd2442e``,
the Linux 4.13 files), applies the hunks of PATCH 01..10 that touch these two
files, and after every patch compares the git blob id of the result with the
post-image id of that patch's ``index`` line.  Only when every id matches
does it write

    OUT/seed-v1/mm/percpu.c, OUT/seed-v1/mm/percpu-internal.h            (PATCH 01-10)
    OUT/seed-v1-patch09/mm/percpu.c, OUT/seed-v1-patch09/mm/percpu-internal.h  (PATCH 01-09)

No network, standard library only:

    python tests/kernels/reconstruct_seed.py SEED BASE_PERCPU_C BASE_PERCPU_INTERNAL_H [--out DIR]

Exit codes: 0 every blob id matched and the folders are written; 1 a
post-image blob id did not match (nothing written); 2 bad input (one line on
stderr): unreadable file, a patch missing from the seed, a base file that is
not the pre-image, a hunk that does not apply.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

FILES = ("mm/percpu.c", "mm/percpu-internal.h")
SERIES = 10
VARIANTS = {"seed-v1": SERIES, "seed-v1-patch09": 9}

_PATCH_HEAD = re.compile(r"^\* \[PATCH (\d\d)/(\d\d)\] (.*)$")
_MESSAGE_HEAD = re.compile(r"^\* ")
_DIFF = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_INDEX = re.compile(r"^index ([0-9a-f]{7,40})\.\.([0-9a-f]{7,40})(?: \d+)?$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class BadInput(Exception):
    """The seed or a base file is not what the reconstruction needs."""


@dataclass
class Hunk:
    old_start: int
    old_lines: list[str]
    new_lines: list[str]


@dataclass
class FilePatch:
    path: str
    old_blob: str
    new_blob: str
    hunks: list[Hunk] = field(default_factory=list)


@dataclass
class Patch:
    number: int
    subject: str
    files: dict[str, FilePatch]


@dataclass
class Check:
    patch: Patch
    path: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.got.startswith(self.expected)


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _messages(lines: list[str]) -> list[list[str]]:
    """Split the archive into messages at its ``* `` thread-view headers."""
    starts = [i for i, line in enumerate(lines) if _MESSAGE_HEAD.match(line)]
    return [lines[a:b] for a, b in zip(starts, starts[1:] + [len(lines)])]


def _parse_hunks(body: list[str], where: str) -> list[Hunk]:
    """The hunks of one file's diff (``body`` starts after its ``index`` line)."""
    if body[:1] and body[0].startswith("--- "):
        body = body[1:]
    if body[:1] and body[0].startswith("+++ "):
        body = body[1:]
    hunks: list[Hunk] = []
    i = 0
    while i < len(body):
        m = _HUNK.match(body[i])
        if not m:
            raise BadInput(f"{where}: line {body[i]!r} is neither in a hunk nor a hunk header")
        old_count = int(m.group(2)) if m.group(2) is not None else 1
        new_count = int(m.group(4)) if m.group(4) is not None else 1
        hunk = Hunk(int(m.group(1)), [], [])
        i += 1
        while old_count or new_count:
            if i >= len(body):
                raise BadInput(f"{where}: hunk -{m.group(1)} ends early")
            line = body[i]
            tag, text = (line[:1], line[1:]) if line else (" ", "")
            if tag == " ":
                hunk.old_lines.append(text)
                hunk.new_lines.append(text)
                old_count -= 1
                new_count -= 1
            elif tag == "-":
                hunk.old_lines.append(text)
                old_count -= 1
            elif tag == "+":
                hunk.new_lines.append(text)
                new_count -= 1
            else:
                raise BadInput(f"{where}: hunk -{m.group(1)} has a stray line {line!r}")
            if old_count < 0 or new_count < 0:
                raise BadInput(f"{where}: hunk -{m.group(1)} is longer than its header says")
            i += 1
        if i < len(body) and body[i].startswith("\\ No newline"):
            raise BadInput(f"{where}: 'No newline at end of file' is not handled")
        hunks.append(hunk)
    return hunks


def _parse_patch(number: int, subject: str, message: list[str]) -> Patch:
    """The hunks for FILES in one patch message (the diff runs to the ``-- `` signature)."""
    try:
        end = message.index("-- ")
    except ValueError:
        end = len(message)
    body = message[:end]
    heads = [(i, m.group(2)) for i, line in enumerate(body) if (m := _DIFF.match(line))]
    ends = [i for i, _ in heads[1:]] + [len(body)]
    files: dict[str, FilePatch] = {}
    for (a, path), b in zip(heads, ends):
        if path not in FILES:
            continue
        m = _INDEX.match(body[a + 1]) if a + 1 < b else None
        if not m:
            raise BadInput(f"PATCH {number:02d}: {path} has no 'index OLD..NEW' line")
        files[path] = FilePatch(path, m.group(1), m.group(2), _parse_hunks(body[a + 2 : b], f"PATCH {number:02d}: {path}"))
    return Patch(number, subject, files)


def read_series(seed_text: str) -> list[Patch]:
    """PATCH 01..10 as posted, from the archive's top-level (not ``Re:``) messages."""
    found: dict[int, Patch] = {}
    for message in _messages(seed_text.split("\n")):
        m = _PATCH_HEAD.match(message[0])
        if not m or int(m.group(2)) != SERIES:
            continue
        number = int(m.group(1))
        if number == 0:
            continue
        if number in found:
            raise BadInput(f"the seed holds PATCH {number:02d}/{SERIES} twice")
        found[number] = _parse_patch(number, m.group(3), message)
    missing = [n for n in range(1, SERIES + 1) if n not in found]
    if missing:
        raise BadInput(f"the seed lacks PATCH {', '.join(f'{n:02d}' for n in missing)}/{SERIES}")
    return [found[n] for n in range(1, SERIES + 1)]


def apply(text: str, fp: FilePatch, number: int) -> str:
    """Apply ``fp``'s hunks to ``text`` exactly (no fuzz); a shifted hunk is searched for."""
    lines = text.split("\n")
    tail = lines.pop() if lines else ""
    if tail != "":
        raise BadInput(f"PATCH {number:02d}: {fp.path} does not end with a newline")
    out: list[str] = []
    pos = 0  # next line of `lines` not yet copied
    for hunk in fp.hunks:
        want = hunk.old_start - 1 if hunk.old_lines else hunk.old_start
        n = len(hunk.old_lines)
        candidates = sorted(range(pos, len(lines) - n + 1), key=lambda k: abs(k - want))
        at = next((k for k in candidates if lines[k : k + n] == hunk.old_lines), None)
        if at is None:
            raise BadInput(f"PATCH {number:02d}: hunk -{hunk.old_start} of {fp.path} does not apply")
        out += lines[pos:at] + hunk.new_lines
        pos = at + n
    out += lines[pos:]
    return "\n".join(out) + "\n"


def reconstruct(patches: list[Patch], base: dict[str, bytes]) -> tuple[dict[str, dict[str, bytes]], list[Check]]:
    """Apply the series to ``base``: the files after each variant's last patch, and every blob check.

    Stops at the first post-image that does not match (its check is the last one returned).
    """
    current = {path: data.decode("utf-8") for path, data in base.items()}
    checks: list[Check] = []
    variants: dict[str, dict[str, bytes]] = {}
    for patch in patches:
        for path, fp in patch.files.items():
            have = blob_id(current[path].encode("utf-8"))
            if not have.startswith(fp.old_blob):
                before = next((f"after PATCH {c.patch.number:02d}" for c in reversed(checks) if c.path == path), "the base")
                raise BadInput(f"{path} is blob {have[:12]} in {before}, but PATCH {patch.number:02d} applies to {fp.old_blob}")
            current[path] = apply(current[path], fp, patch.number)
            checks.append(Check(patch, path, fp.new_blob, blob_id(current[path].encode("utf-8"))))
            if not checks[-1].ok:
                return {}, checks
        for name, last in VARIANTS.items():
            if patch.number == last:
                variants[name] = {path: text.encode("utf-8") for path, text in current.items()}
    return variants, checks


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit 2, like the rest of the project."""

    def error(self, message: str) -> NoReturn:
        print(f"reconstruct_seed: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seed", type=Path, help="the mail archive (e.g. shared/seeds/000_85577c02b60da03b.txt)")
    parser.add_argument("base_percpu_c", type=Path, help="base mm/percpu.c (blob bd4130a...)")
    parser.add_argument("base_percpu_internal_h", type=Path, help="base mm/percpu-internal.h (blob cd2442e...)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where seed-v1/ and seed-v1-patch09/ go (default: this script's folder)")
    args = parser.parse_args(argv)
    try:
        try:
            seed_text = args.seed.read_bytes().decode("utf-8")
            base = {
                "mm/percpu.c": args.base_percpu_c.read_bytes(),
                "mm/percpu-internal.h": args.base_percpu_internal_h.read_bytes(),
            }
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read {exc.filename if isinstance(exc, OSError) else args.seed}: {exc.strerror if isinstance(exc, OSError) else exc.reason}") from None
        patches = read_series(seed_text)
        for path, data in base.items():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"base {path} is not UTF-8 text") from None
        variants, checks = reconstruct(patches, base)
    except BadInput as exc:
        print(f"reconstruct_seed: {exc}", file=sys.stderr)
        return 2

    for path, data in base.items():
        print(f"base      {path:<22} blob {blob_id(data)}")
    for c in checks:
        print(
            f"PATCH {c.patch.number:02d}  {c.path:<22} expected {c.expected:<7}  got {c.got}  "
            f"{'ok' if c.ok else 'MISMATCH'}  {c.patch.subject}"
        )
    if not all(c.ok for c in checks):
        print("reconstruct_seed: a post-image blob id did not match; nothing written", file=sys.stderr)
        return 1
    for name, files in variants.items():
        for path, data in files.items():
            target = args.out / name / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            print(f"wrote     {target}  {len(data)} bytes  blob {blob_id(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
