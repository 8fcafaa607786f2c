"""Container images built locally, because no image registry is reachable here.

`busybox_image` turns the host's static busybox (Debian's `busybox-static`) into a tiny image
with `docker import`, so tests and the GGEN MCP service container need no `docker pull`.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

from docker.errors import DockerException, ImageNotFound

from runbook_lib.evidence.containers import client

DEFAULT_TAG = "runbook-busybox:latest"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")

# Used when `busybox --list` cannot be asked; enough for the runbook's shell snippets.
FALLBACK_APPLETS = (
    "sh cat cp date dd echo env false grep head kill ls mkdir mv ps rm seq sleep "
    "tail tee touch true wc yes"
).split()


INSTALL_HINT = "install Debian's busybox-static (apt-get install -y busybox-static)"


class ImageBuildError(RuntimeError):
    """The image could not be built; the message says what to install or fix."""


def is_static(path: Path) -> bool:
    """True for a 64-bit ELF without a PT_INTERP header, i.e. needing no loader or libs."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            order = "<" if head[5] == 1 else ">"
            (phoff,) = struct.unpack_from(order + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
        types = [struct.unpack_from(order + "I", table, i * phentsize)[0] for i in range(phnum)]
    except (OSError, struct.error, IndexError):
        return False
    return 3 not in types  # PT_INTERP


def find_busybox() -> Path:
    """The host's busybox; it must be static to run alone in an empty rootfs."""
    found = [Path(c) for c in (shutil.which("busybox"), *BUSYBOX_PATHS) if c and Path(c).is_file()]
    for path in found:
        if is_static(path):
            return path
    if found:
        raise ImageBuildError(f"{found[0]} is dynamically linked: {INSTALL_HINT}")
    raise ImageBuildError(f"busybox not found: {INSTALL_HINT}")


def applets(busybox: Path) -> list[str]:
    """The applet names this busybox provides, each becoming a /bin symlink."""
    try:
        out = subprocess.run(
            [str(busybox), "--list"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return list(FALLBACK_APPLETS)
    names = sorted({n.strip() for n in out.split() if n.strip() and "/" not in n})
    return [n for n in names if n != "busybox"] or list(FALLBACK_APPLETS)


def rootfs_tar(busybox: Path) -> bytes:
    """An uncompressed rootfs tar: bin/busybox, applet symlinks, and the usual empty dirs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777)):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for name in applets(busybox):
            link = tarfile.TarInfo(f"bin/{name}")
            link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size, info.mode = len(passwd), 0o644
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def busybox_image(tag: str = DEFAULT_TAG, *, base_url: str | None = None) -> str:
    """Return `tag`, importing a busybox image under it first unless it already exists.

    Raises ImageBuildError (busybox missing, engine unreachable, import failed): unlike the
    read-only checks in `containers`, callers cannot go on without the image.
    """
    dc, err = client(base_url, timeout=60)
    if dc is None:
        raise ImageBuildError(err)
    try:
        try:
            dc.images.get(tag)
            return tag
        except ImageNotFound:
            pass
        repository, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "")
        data = rootfs_tar(find_busybox())
        dc.api.import_image_from_data(
            data,
            repository=repository,
            tag=version or "latest",
            changes=['CMD ["sh"]', "ENV PATH=/bin"],
        )
        dc.images.get(tag)  # import reports errors in its stream; confirm it really exists
        return tag
    except ImageNotFound as exc:
        raise ImageBuildError(f"docker import did not create {tag}: {exc}") from exc
    except DockerException as exc:
        raise ImageBuildError(f"building {tag} failed: {exc}") from exc
    finally:
        dc.close()
