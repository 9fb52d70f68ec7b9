"""What ``REDIS_URL`` names: one server, a Sentinel-managed primary, or a Redis Cluster.

One variable says where Redis is and how it is deployed:

* ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) and
  ``unix://[[user]:password@]/path[?db=n]``: one server (redis-py's URL forms);
* ``redis+sentinel://[[user]:password@]host:port[,host:port...]/<master-name>[/<db>]``:
  the primary the sentinels at those addresses name ``<master-name>``; the password
  is the Redis servers' (``?sentinel_password=`` for sentinels that want one of
  their own);
* ``redis+cluster://[[user]:password@]host:port[,host:port...]``: the seed nodes of a
  Redis Cluster (the bus: :mod:`infrastructure.bus.redis.cluster`).

:func:`parse_redis_url` checks the whole URL and raises :class:`RedisUrlError` (a
``ValueError``, so that ``Settings`` reports it as a bad ``REDIS_URL``) naming what is
wrong. Pure parsing: nothing here connects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

SINGLE_SCHEMES: Final = ("redis", "rediss", "unix")
SENTINEL_SCHEME: Final = "redis+sentinel"
CLUSTER_SCHEME: Final = "redis+cluster"
DEFAULT_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379


class RedisUrlError(ValueError):
    """``REDIS_URL`` cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class RedisTopology:
    """``REDIS_URL``, parsed."""

    kind: Literal["single", "sentinel", "cluster"]
    #: The URL as given (the one-server forms are used as they are).
    url: str
    #: The sentinels' (sentinel) or the seed nodes' (cluster) addresses.
    hosts: tuple[tuple[str, int], ...] = ()
    #: The name the sentinels know the primary by.
    master: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    #: The sentinels' own password (``?sentinel_password=``), if they have one.
    sentinel_password: str | None = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """The URL without its password (for logs and ``/readyz``)."""
        if self.kind == "single":
            parts = urlsplit(self.url)
            if parts.password is None:
                return self.url
            host = parts.netloc.rpartition("@")[2]
            user = parts.username or ""
            return parts._replace(netloc=f"{user}:***@{host}").geturl()
        hosts = ",".join(f"{h}:{p}" for h, p in self.hosts)
        scheme = SENTINEL_SCHEME if self.kind == "sentinel" else CLUSTER_SCHEME
        tail = f"/{self.master}/{self.db}" if self.kind == "sentinel" else ""
        return f"{scheme}://{hosts}{tail}"


def parse_redis_url(url: str) -> RedisTopology:
    """``url`` checked and parsed (see the module); :class:`RedisUrlError` says what is
    wrong."""
    if "://" not in url:
        raise RedisUrlError(
            f"REDIS_URL {url!r} has no scheme: it starts with redis://, "
            "rediss://, unix://, redis+sentinel:// or redis+cluster://"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme in SINGLE_SCHEMES:
        return _single(url, scheme)
    if scheme in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        return _multi(url, scheme)
    raise RedisUrlError(
        f"REDIS_URL has an unknown scheme {scheme + '://'!r}: use redis://, rediss://, "
        "unix://, redis+sentinel:// or redis+cluster://"
    )


def _single(url: str, scheme: str) -> RedisTopology:
    parts = urlsplit(url)
    query = _query(parts.query)
    if scheme == "unix":
        if not parts.path:
            raise RedisUrlError("REDIS_URL unix:// names no socket path (unix:///path/to/sock)")
        return RedisTopology("single", url, db=_db(query.get("db", "0")), query=query)
    try:
        port = parts.port
    except ValueError:
        raise RedisUrlError(f"REDIS_URL has a bad port in {parts.netloc!r}") from None
    host = parts.hostname
    if not host:
        raise RedisUrlError(f"REDIS_URL {scheme}:// names no host ({scheme}://host:port/db)")
    db = _db(query.get("db") or parts.path.strip("/") or "0")
    return RedisTopology(
        "single",
        url,
        hosts=((host, port or DEFAULT_PORT),),
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        query=query,
    )


def _multi(url: str, scheme: str) -> RedisTopology:
    sentinel = scheme == SENTINEL_SCHEME
    rest = url.split("://", 1)[1]
    rest, _, raw_query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    credentials, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) if user else None
        password = unquote(secret) if colon else None
    default_port = DEFAULT_SENTINEL_PORT if sentinel else DEFAULT_PORT
    hosts = tuple(_host(item, default_port, scheme) for item in hostlist.split(",") if item)
    what = "sentinels" if sentinel else "seed nodes"
    if not hosts:
        raise RedisUrlError(
            f"REDIS_URL {scheme}:// names no hosts: list the {what} as host:port,..."
        )
    query = _query(raw_query)
    segments = [unquote(s) for s in path.split("/") if s]
    if not sentinel:
        if segments:
            raise RedisUrlError(
                "REDIS_URL redis+cluster:// takes no path: a cluster has one database (0)"
            )
        return RedisTopology(
            "cluster", url, hosts=hosts, username=username, password=password, query=query
        )
    if not segments:
        raise RedisUrlError(
            "REDIS_URL redis+sentinel:// names no master: "
            "redis+sentinel://host:port[,host:port...]/<master-name>[/<db>]"
        )
    if len(segments) > 2:
        raise RedisUrlError(f"REDIS_URL redis+sentinel:// has a path too long: /{path}")
    return RedisTopology(
        "sentinel",
        url,
        hosts=hosts,
        master=segments[0],
        db=_db(segments[1]) if len(segments) == 2 else 0,
        username=username,
        password=password,
        sentinel_password=query.get("sentinel_password"),
        query=query,
    )


def _host(item: str, default_port: int, scheme: str) -> tuple[str, int]:
    if item.startswith("["):  # [::1]:26379
        host, _, port_text = item[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
    if not host:
        raise RedisUrlError(f"REDIS_URL {scheme}:// has an address with no host: {item!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError(f"REDIS_URL {scheme}:// has a bad port in {item!r}")
    return host, int(port_text)


def _db(text: str) -> int:
    if not text.isdigit():
        raise RedisUrlError(f"REDIS_URL names a bad database {text!r}: a number, 0 or more")
    return int(text)


def _query(raw: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(raw).items()}
