"""The real type of an upload, from its bytes; the bad kinds each refused with a reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from infrastructure.attachments.checks import (
    THUMBNAIL_SIZE,
    check_file,
    make_thumbnail,
    safe_filename,
)
from infrastructure.attachments.models import (
    AttachmentEmpty,
    AttachmentTypeRefused,
    AttachmentUnreadable,
)
from tests.support import files


def _write(tmp_path: Path, data: bytes, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "content_type", "image"),
    [
        (files.png, "image/png", True),
        (files.jpeg, "image/jpeg", True),
        (files.gif, "image/gif", True),
        (files.webp, "image/webp", True),
        (files.pdf, "application/pdf", False),
    ],
)
def test_each_accepted_type_is_known_by_its_bytes(
    tmp_path: Path, make: Callable[[], bytes], content_type: str, image: bool
) -> None:
    checked = check_file(_write(tmp_path, make(), "named-wrongly.txt"))
    assert (checked.content_type, checked.image) == (content_type, image)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (files.png, "PNG"),
        (files.jpeg, "JPEG"),
        (files.gif, "GIF"),
        (files.webp, "WEBP"),
        (files.pdf, "PDF"),
    ],
)
def test_a_file_cut_short_is_refused_as_incomplete(
    tmp_path: Path, make: Callable[[], bytes], kind: str
) -> None:
    with pytest.raises(AttachmentUnreadable, match="incomplete or damaged") as refused:
        check_file(_write(tmp_path, files.cut(make())))
    assert refused.value.kind == kind


def test_a_png_with_a_damaged_chunk_is_refused(tmp_path: Path) -> None:
    data = bytearray(files.png())
    data[60] ^= 0xFF  # inside the image data: its CRC no longer matches
    with pytest.raises(AttachmentUnreadable):
        check_file(_write(tmp_path, bytes(data)))


@pytest.mark.parametrize(
    "data",
    [files.EXE, files.HTML, files.SVG, b"just some text\n", files.image("BMP"), b"\x89PNG"],
    ids=["exe", "html", "svg", "text", "bmp", "png-signature-only"],
)
def test_what_is_not_an_accepted_type_is_refused_whatever_its_name(
    tmp_path: Path, data: bytes
) -> None:
    with pytest.raises(AttachmentTypeRefused, match="PNG, JPEG, GIF, WebP"):
        check_file(_write(tmp_path, data, "holiday.png"))


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AttachmentEmpty, match="empty"):
        check_file(_write(tmp_path, b""))


def test_a_picture_with_too_many_pixels_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    # 10000 x 10000 of one colour: a small PNG, 100 million pixels once decoded.
    path = tmp_path / "bomb.png"
    Image.new("L", (10_000, 10_000)).save(path, format="PNG")
    assert path.stat().st_size < 1_000_000
    with pytest.raises(AttachmentUnreadable, match="pixels"):
        check_file(path)


def test_a_thumbnail_fits_in_its_box_and_keeps_the_shape(tmp_path: Path) -> None:
    source = _write(tmp_path, files.png((1200, 600)), "big.png")
    target = tmp_path / "thumb"
    make_thumbnail(source, target)
    with Image.open(target) as thumb:
        assert thumb.format == "WEBP"
        assert thumb.size == (THUMBNAIL_SIZE[0], THUMBNAIL_SIZE[0] // 2)


@pytest.mark.parametrize(
    ("name", "content_type", "safe"),
    [
        ("photo.PNG", "image/png", "photo.PNG"),
        ("../../etc/passwd", "image/png", "passwd.png"),
        ("C:\\Users\\me\\scan.jpeg", "image/jpeg", "scan.jpeg"),
        ("invoice.png", "application/pdf", "invoice.png.pdf"),
        ('a"b;c\r\nd.pdf', "application/pdf", "a_b;c_d.pdf"),
        ("", "image/gif", "file.gif"),
        (None, "image/webp", "file.webp"),
        ("发票 2026.pdf", "application/pdf", "发票 2026.pdf"),
        ("x" * 300 + ".pdf", "application/pdf", "x" * 116 + ".pdf"),
    ],
)
def test_the_file_name_is_made_safe_and_says_what_the_bytes_are(
    name: str | None, content_type: str, safe: str
) -> None:
    assert safe_filename(name, content_type) == safe
