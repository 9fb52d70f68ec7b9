"""Files for the attachment tests, made here (nothing downloaded): whole ones of each
accepted type, and the bad kinds an upload must refuse."""

from __future__ import annotations

import io
from typing import Final

from PIL import Image


def image(fmt: str, size: tuple[int, int] = (640, 480), mode: str = "RGB") -> bytes:
    """A picture with some detail (so that a cut loses image data, not padding)."""
    picture = Image.new(mode, size)
    width, height = size
    if mode == "L":
        gray: list[float] = [(x ^ y) % 256 for y in range(height) for x in range(width)]
        picture.putdata(gray)
    else:
        pixels: list[tuple[int, ...]] = [
            ((x * 255) // width, (y * 255) // height, ((x ^ y) * 7) % 256)[: len(mode)]
            for y in range(height)
            for x in range(width)
        ]
        picture.putdata(pixels)
    out = io.BytesIO()
    picture.save(out, format=fmt)
    return out.getvalue()


def png(size: tuple[int, int] = (640, 480)) -> bytes:
    return image("PNG", size)


def jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    return image("JPEG", size)


def gif(size: tuple[int, int] = (200, 100)) -> bytes:
    return image("GIF", size)


def webp(size: tuple[int, int] = (200, 100)) -> bytes:
    return image("WEBP", size)


def pdf(text: str = "Invoice 42") -> bytes:
    """A small, valid one-page PDF (offsets computed, as readers check the xref)."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def cut(data: bytes, keep: float = 0.6) -> bytes:
    """The first part of a file: an upload cut short."""
    return data[: int(len(data) * keep)]


#: A Windows executable's first bytes ("MZ", the DOS stub), named .png by the test.
EXE: Final = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 240
HTML: Final = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG: Final = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)
