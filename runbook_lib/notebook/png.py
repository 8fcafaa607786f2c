"""Charts as PNG files, encoded here: each row stored as its difference from the row above
(PNG's filter "Up"), then zlib. Pillow, behind `savefig`, tries all five filters on every
row and keeps the best: a record's 5 charts took it 39-59 ms at zlib level 3 (two runs),
22 ms here (numpy does the filter), the files 4% larger. The pixels are the same.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
UP = 2  # the filter: each byte minus the byte above it
LEVEL = 3  # zlib's: level 6 took twice the CPU for files ~20% smaller


def encode(rgba: np.ndarray, level: int = LEVEL) -> bytes:
    """`rgba` (rows x columns x 4 bytes, as Agg draws) as a PNG file."""
    height, width, depth = rgba.shape
    if depth != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"encode takes 8-bit RGBA pixels, not {rgba.dtype} x {depth}")
    rows = rgba.reshape(height, width * 4)
    filtered = np.empty((height, width * 4 + 1), np.uint8)
    filtered[:, 0] = UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"".join((SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(filtered.data, level)), _chunk(b"IEND", b"")))  # fmt: skip


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
