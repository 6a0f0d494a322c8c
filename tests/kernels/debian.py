"""Put the mm/percpu.c and mm/percpu-internal.h of Debian's kernel source packages under tests/kernels/.

The kernel files this project checks cannot be committed: the mirrors named
in ``*/SOURCE`` came in through a tool whose terms keep fetched code out of
commits.  Debian's ``linux-source-6.1`` and ``linux-source-6.12`` packages are
a package registry's copy of two post-5.2 releases, which CI and a newcomer
can install.  This script downloads them with ``apt-get download``, takes the
two files out of the source tarball and writes

    tests/kernels/debian-6.1/mm/{percpu.c,percpu-internal.h}
    tests/kernels/debian-6.12/mm/{percpu.c,percpu-internal.h}

and a ``SOURCE`` file in each folder: the package, its version, the sha256
of the .deb, the release its Makefile states, and the git blob id of each
file.  Debian applies patches of its own to the kernel; the package does not
ship them, so the SOURCE says that was not checked.

    python tests/kernels/debian.py [PACKAGE ...]

A folder whose SOURCE already names the package's candidate version is left
alone.  Exit codes: 0 done; 2 one line on stderr when apt cannot give the
package or the package does not hold the files.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
FILES = ("mm/percpu.c", "mm/percpu-internal.h")
PACKAGES = ("linux-source-6.1", "linux-source-6.12")


class Unavailable(Exception):
    """apt could not give the package, or the package is not what this script expects."""


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def candidate_version(package: str) -> str:
    for attempt in range(2):
        out = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, check=False).stdout
        found = re.search(r"Candidate: (\S+)", out)
        if found is not None and found.group(1) != "(none)":
            return found.group(1)
        if attempt == 0:  # a machine whose package lists were never fetched (a new container): fetch once
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
    raise Unavailable(f"{package}: apt knows no candidate version, even after apt-get update")


def download(package: str, version: str, into: Path) -> Path:
    for attempt in range(2):
        done = subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=into,
                              capture_output=True, text=True, check=False)
        debs = sorted(into.glob(f"{package}_*.deb"))
        if done.returncode == 0 and debs:
            return debs[0]
        if attempt == 0:  # stale package lists: refresh once
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise Unavailable(f"{package}={version}: apt-get download failed: {last}")


def source_tarball(deb: Path, into: Path) -> Path:
    """The ``usr/src/linux-source-X.tar.xz`` inside the .deb (dpkg-deb does the unpacking)."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True, capture_output=True)
    tarballs = sorted((into / "usr" / "src").glob("linux-source-*.tar.xz"))
    if not tarballs:
        raise Unavailable(f"{deb.name}: no usr/src/linux-source-*.tar.xz inside")
    return tarballs[0]


def members(tarball: Path) -> dict[str, bytes]:
    """The two files, the top-level Makefile, and the list of Debian patches that touch the two files."""
    wanted = {*FILES, "Makefile"}
    found: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:xz") as tar:
        for member in tar:
            rel = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if rel in wanted and member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                found[rel] = data.read()
    missing = sorted(wanted - set(found))
    if missing:
        raise Unavailable(f"{tarball.name}: no {missing[0]} inside")
    return found


def release(makefile: bytes) -> str:
    fields = dict(re.findall(rb"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION) = ?(\S*)", makefile, re.M))
    version = b".".join(fields[k] for k in (b"VERSION", b"PATCHLEVEL", b"SUBLEVEL"))
    return (version + fields.get(b"EXTRAVERSION", b"")).decode()


def write_folder(package: str, version: str, deb: Path, files: dict[str, bytes]) -> Path:
    short = package.removeprefix("linux-source-")
    folder = HERE / f"debian-{short}"
    lines = [
        f"folder: tests/kernels/debian-{short}",
        f"package: Debian {package} {version} (deb.debian.org, bookworm / bookworm-security)",
        f"  .deb sha256 {hashlib.sha256(deb.read_bytes()).hexdigest()}",
        f"release (top-level Makefile): {release(files['Makefile'])}",
        "files (path in the source tarball = path in this folder):",
    ]
    for path in FILES:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(files[path])
        lines += [f"  {path}", f"    git blob {git_blob_id(files[path])}, {len(files[path])} bytes"]
    lines.append("not checked: whether a Debian patch touches these files (the package does not ship"
                 " debian/patches); compare the blob ids with an upstream copy of the same release")
    lines.append("written by tests/kernels/debian.py; not committed (.gitignore)")
    (folder / "SOURCE").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def fetch(package: str) -> Path:
    version = candidate_version(package)
    short = package.removeprefix("linux-source-")
    source = HERE / f"debian-{short}" / "SOURCE"
    if source.is_file() and f" {version} " in source.read_text(encoding="utf-8") and all(
        (source.parent / f).is_file() for f in FILES
    ):
        return source.parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        deb = download(package, version, work)
        tarball = source_tarball(deb, work / "root")
        return write_folder(package, version, deb, members(tarball))


def main(argv: list[str]) -> int:
    try:
        for package in argv or PACKAGES:
            print(fetch(package).relative_to(HERE.parent.parent))
    except (Unavailable, OSError, subprocess.CalledProcessError, tarfile.TarError) as e:
        print(f"debian.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
