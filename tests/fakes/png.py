"""Real PNG files for the fake image upstreams (stdlib only): a solid colour picked from the
prompt, so a test can tell which prompt an image answered, and the reading of a PNG's size."""

from __future__ import annotations

import hashlib
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The fakes draw images at 1/SCALE of the size asked (64x64 for 1024x1024): real PNGs that
# keep the tests light.
SCALE = 16


def colour_of(text: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(text.encode()).digest()
    return digest[0], digest[1], digest[2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """An RGB PNG of ``width`` x ``height`` pixels, all ``colour``."""
    row = b"\x00" + bytes(colour) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * height))
            + _chunk(b"IEND", b""))


def scaled_png(width: int, height: int, text: str) -> bytes:
    """The fakes' answer for an image of ``width`` x ``height`` about ``text``."""
    return png(max(1, width // SCALE), max(1, height // SCALE), colour_of(text))


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG; None when ``data`` is not one."""
    if not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_colour(data: bytes) -> tuple[int, int, int]:
    """The first pixel of an RGB PNG made by ``png`` (one IDAT chunk)."""
    length = struct.unpack(">I", data[33:37])[0]
    pixels = zlib.decompress(data[41:41 + length])
    return pixels[1], pixels[2], pixels[3]
