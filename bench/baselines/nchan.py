"""The C peer: nginx + nchan (https://nchan.io), with Redis or in memory.

nchan is what a team would deploy instead of writing a bus: an nginx module that holds the
subscribers and fans out in C. It runs here with the product's URLs (the load generator
drives it unchanged) and ``worker_processes`` equal to ``--workers`` (1 by default, like
the product's one uvicorn worker).

Where it comes from: Debian's ``nginx`` and ``libnginx-mod-nchan`` packages. When they are
not installed, ``apt-get download`` fetches the two ``.deb`` files (no root needed) and
they are unpacked into ``.bench-peers/`` (git-ignored); no package is installed and no
nginx service is started. Elsewhere the peer is reported as skipped, with what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import ServiceProcess, free_port

REPO = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO / ".bench-peers"
PACKAGES = ("nginx", "libnginx-mod-nchan")
_NGINX = Path("usr/sbin/nginx")
_MODULE = Path("usr/lib/nginx/modules/ngx_nchan_module.so")
#: nginx's compiled-in client body directory: nchan's module creates its message temp path
#: there at startup and its ``nchan_message_temp_path`` cannot override that default.
_BODY_TEMP = Path("/var/lib/nginx/body")


class PeerUnavailable(RuntimeError):
    """The peer cannot run on this machine; the message says what to install."""


def _pair(root: Path) -> tuple[Path, Path] | None:
    nginx, module = root / _NGINX, root / _MODULE
    return (nginx, module) if nginx.exists() and module.exists() else None


def _fetch() -> tuple[Path, Path]:
    """The two Debian packages, unpacked (not installed) into ``.bench-peers/``."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise PeerUnavailable(
            "nchan needs nginx with its nchan module: on Debian/Ubuntu "
            "`apt-get install nginx libnginx-mod-nchan`, elsewhere see https://nchan.io"
        )
    root = PEERS_DIR / "nchan"
    PEERS_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PEERS_DIR) as tmp:
        fetched = subprocess.run(
            ["apt-get", "download", *PACKAGES],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
        )
        debs = sorted(Path(tmp).glob("*.deb"))
        if fetched.returncode != 0 or len(debs) != len(PACKAGES):
            raise PeerUnavailable(
                f"`apt-get download {' '.join(PACKAGES)}` failed: {fetched.stderr.strip()[-300:]}"
            )
        # Unpacked beside, then renamed: an interrupted unpack never passes for a whole one.
        unpacked = Path(tmp) / "root"
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
        unpacked.rename(root)
    pair = _pair(root)
    if pair is None:
        raise PeerUnavailable(f"the unpacked packages in {root} hold no {_NGINX} and {_MODULE}")
    return pair


def binaries() -> tuple[Path, Path]:
    """nginx and the nchan module built for it: the system's, else unpacked ones."""
    pair = _pair(Path("/")) or _pair(PEERS_DIR / "nchan") or _fetch()
    if not _BODY_TEMP.is_dir():
        try:
            _BODY_TEMP.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PeerUnavailable(
                f"nchan creates {_BODY_TEMP} at startup and cannot be pointed elsewhere: "
                f"`sudo mkdir -p {_BODY_TEMP}` ({exc})"
            ) from exc
    return pair


def config(directory: Path, module: Path, port: int, redis_url: str | None, workers: int) -> str:
    """nginx.conf for one nchan server: the product's two bus URLs, nothing else."""
    storage = ""
    upstream = ""
    if redis_url is not None:
        upstream = f"upstream bus {{ nchan_redis_server {redis_url}; }}"
        storage = "nchan_redis_pass bus;"
    temp = "\n".join(
        f"  {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
load_module {module};
{"user root;" if os.geteuid() == 0 else ""}
worker_processes {workers};
error_log {directory / "error.log"} warn;
pid {directory / "nginx.pid"};
events {{ worker_connections 19000; }}
http {{
  access_log off;
{temp}
  keepalive_timeout 600;
  keepalive_requests 100000000;
  {upstream}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /healthz {{ return 200 '{{"status":"ok"}}'; }}
    location ~ ^/api/sessions/([^/]+)/events$ {{
      nchan_subscriber eventsource;
      nchan_channel_id session-$1;
      {storage}
    }}
    location ~ ^/api/events/([^/]+)/([^/]+)$ {{
      nchan_publisher;
      nchan_channel_id $1-$2;
      {storage}
    }}
  }}
}}
"""


def server(redis_url: str | None, workers: int = 1) -> ServiceProcess:
    """An nginx + nchan server on a free loopback port (not started)."""
    nginx, module = binaries()
    directory = Path(tempfile.mkdtemp(prefix="nchan-"))
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(config(directory, module, port, redis_url, workers))
    return ServiceProcess(
        "nginx+nchan" + ("" if redis_url else " (memory)"),
        port=port,
        command=[
            str(nginx),
            "-p",
            str(directory),
            "-c",
            str(conf),
            "-e",
            str(directory / "error.log"),
            "-g",
            "daemon off;",
        ],
    )
