"""What an uploaded file really is, read from its bytes, and whether it is whole.

The name and the upload's ``Content-Type`` are never trusted. Images are judged by Pillow
(opened only with the plugins of the accepted formats, verified, then decoded whole, so
a cut-short file fails); PDFs by their header and the ``%%EOF`` marker near their end
(what readers look for first). Blocking: call from a worker thread.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from .models import AttachmentEmpty, AttachmentTypeRefused, AttachmentUnreadable

#: Pillow format name -> content type (the only plugins a file is opened with).
_IMAGE_FORMATS: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
_EXTENSIONS: Final = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
}
#: Larger images are refused before they are decoded (a small file can hold a huge
#: picture: a "decompression bomb").
MAX_IMAGE_PIXELS: Final = 50_000_000
THUMBNAIL_SIZE: Final = (320, 320)
THUMBNAIL_CONTENT_TYPE: Final = "image/webp"
#: Where a PDF's last ``%%EOF`` must be: within this many bytes of its end (writers
#: may add line ends or a little padding after it).
_PDF_TAIL: Final = 1024
_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
_UNSAFE_NAME_CHARS: Final = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|]+')
_MAX_NAME_CHARS: Final = 120


@dataclass(frozen=True, slots=True)
class Checked:
    content_type: str
    #: Whether it is an image (it gets a thumbnail).
    image: bool


def check_file(path: Path) -> Checked:
    """The real type of the file at ``path``; raises ``AttachmentEmpty``,
    ``AttachmentTypeRefused`` or ``AttachmentUnreadable``."""
    size = path.stat().st_size
    if size == 0:
        raise AttachmentEmpty()
    with path.open("rb") as file:
        head = file.read(16)
        if head.startswith(b"%PDF-"):
            file.seek(max(0, size - _PDF_TAIL))
            if b"%%EOF" not in file.read():
                raise AttachmentUnreadable("PDF", "no %%EOF marker at its end: cut short?")
            return Checked("application/pdf", image=False)
    content_type = _check_image(path, head, size)
    return Checked(content_type, image=True)


def _check_image(path: Path, head: bytes, size: int) -> str:
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than fails) below twice its own pixel limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=list(_IMAGE_FORMATS)) as probe:
                kind = probe.format or ""
                pixels = probe.width * probe.height
    except UnidentifiedImageError:
        raise AttachmentTypeRefused() from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise AttachmentUnreadable("image", "too many pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow knew the format from its signature and failed reading on (a WebP is
        # decoded as it is opened): say which, for the message.
        raise AttachmentUnreadable(_named(head), str(exc) or type(exc).__name__) from None
    if kind not in _IMAGE_FORMATS:
        raise AttachmentTypeRefused()
    if pixels > MAX_IMAGE_PIXELS:
        raise AttachmentUnreadable(kind, f"{pixels} pixels, more than {MAX_IMAGE_PIXELS}")
    if kind == "GIF" and not _gif_ends_whole(path, size):
        raise AttachmentUnreadable(kind, "no trailer at its end: cut short?")
    if kind == "WEBP" and not _webp_size_matches(head, size):
        raise AttachmentUnreadable(kind, "shorter than its RIFF header says: cut short?")
    try:
        # verify() reads the file's structure (PNG: every chunk's CRC, up to IEND); it
        # leaves the image unusable, so the decode that follows opens it again.
        with Image.open(path, formats=[kind]) as image:
            image.verify()
        with Image.open(path, formats=[kind]) as image:
            image.load()  # a JPEG or GIF cut short fails here ("image file is truncated")
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise AttachmentUnreadable(kind, str(exc) or type(exc).__name__) from None
    return _IMAGE_FORMATS[kind]


def _named(head: bytes) -> str:
    """The format a file's first bytes claim (only to word a refusal)."""
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return "WEBP" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else "image"


def _gif_ends_whole(path: Path, size: int) -> bool:
    with path.open("rb") as file:
        file.seek(size - 1)
        return file.read(1) == b";"  # the GIF trailer, 0x3B


def _webp_size_matches(head: bytes, size: int) -> bool:
    declared = int.from_bytes(head[4:8], "little") + 8
    return size >= declared


def make_thumbnail(source: Path, target: Path) -> None:
    """A small WebP of a checked image (its first frame; turned as its EXIF says)."""
    with Image.open(source, formats=list(_IMAGE_FORMATS)) as image:
        image.seek(0)
        turned = ImageOps.exif_transpose(image)
        mode = "RGBA" if "A" in turned.getbands() or "transparency" in turned.info else "RGB"
        small = turned.convert(mode)
        small.thumbnail(THUMBNAIL_SIZE)
        small.save(target, format="WEBP", quality=80)


def safe_filename(name: str | None, content_type: str) -> str:
    """The sender's file name made harmless to show and to offer on download: its last
    path part, no control or path characters, at most 120 characters, and an extension
    that says what the bytes are (``evil.png`` that is a PDF becomes ``evil.pdf``)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE_NAME_CHARS.sub("_", base).strip(" .") or "file"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    extensions = _EXTENSIONS[content_type]
    if f".{ext.lower()}" not in extensions:
        stem = base
        ext = extensions[0][1:]
    stem = stem[: _MAX_NAME_CHARS - len(ext) - 1]
    return f"{stem}.{ext}"
