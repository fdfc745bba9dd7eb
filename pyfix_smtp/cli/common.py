"""What every subcommand shares: exit statuses, configuration, resolver, planning.

Heavy layers (dnspython, ssl, the delivery core) are imported inside the
functions that need them, so ``pyfix-smtp --help`` starts fast.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError, PyfixError

if TYPE_CHECKING:
    import ssl

    from pyfix_smtp.destination import Destination
    from pyfix_smtp.dns.records import Answer, Query
    from pyfix_smtp.dns.resolve import DnsResolver
    from pyfix_smtp.dns.results import Plan
    from pyfix_smtp.tls.mtasts import FetchResult, StsFetch, StsOutcome

__all__ = [
    "EX_CONFIG",
    "EX_NOINPUT",
    "EX_OK",
    "EX_TEMPFAIL",
    "EX_UNAVAILABLE",
    "EX_USAGE",
    "Environment",
    "UsageError",
    "destinations",
    "discover_sts",
    "load_config",
    "make_plan",
    "parse_override",
    "parse_resolver",
    "setup_logging",
    "status_for_failure",
    "teardown_logging",
]

# Exit statuses (sysexits.h, as sendmail-compatible programs use them).
EX_OK = 0
EX_USAGE = 2  # argparse's own status for a bad command line
EX_UNAVAILABLE = 69  # some recipient bounced / the destination fails for good
EX_NOINPUT = 66  # the message file cannot be read
EX_TEMPFAIL = 75  # some recipient was deferred / a temporary failure
EX_CONFIG = 78  # the configuration (main.cf, -o) is unusable


class UsageError(PyfixError):
    """The command line is unusable (exit status 2)."""


def parse_override(text: str) -> tuple[str, str]:
    """``-o name=value`` -> (name, value), as Postfix's ``-o`` takes it.

    Raises:
        UsageError: no ``=``, or an empty name.
    """
    name, eq, value = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise UsageError(f"-o {text!r}: expected name=value")
    return name, value.strip()


def parse_resolver(text: str, option: str = "--resolver") -> tuple[str, int | None]:
    """``HOST[:PORT]`` -> (host, port); IPv6 as ``[::1]:5353`` or a bare ``::1``.

    Raises:
        UsageError: an empty host or a port that is not 1-65535.
    """
    host, port_text = text.strip(), ""
    if host.startswith("["):
        inner, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"{option} {text!r}: expected [ADDRESS]:PORT")
        host, port_text = inner, rest[1:]
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
    if not host:
        raise UsageError(f"{option} {text!r}: empty host")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"{option} {text!r}: bad port {port_text!r}")
    return host, int(port_text)


def _read_main_cf(path: Path) -> str:
    # Postfix's -c names a directory; accept that as well as the file itself.
    target = path / "main.cf" if path.is_dir() else path
    try:
        return target.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError("main.cf", str(target), f"cannot read: {reason}") from None


def load_config(args: argparse.Namespace) -> Config:
    """The Config from ``-c`` (main.cf) and ``--lmtp``, then each ``-o`` in order.

    Raises:
        ConfigError: an unreadable main.cf or a bad parameter value (exit 78).
        UsageError: a malformed ``-o`` (exit 2).
    """
    text = _read_main_cf(args.config) if args.config is not None else ""
    cfg = Config.from_postconf(text, protocol="lmtp" if args.lmtp else "smtp")
    items = [*args.overrides, *getattr(args, "sub_overrides", ())]
    overrides = dict(parse_override(item) for item in items)
    if overrides:
        cfg = cfg.replace(**overrides)
    return cfg


def setup_logging(verbose: bool) -> logging.Handler | None:
    """``-v``: the library's log lines at INFO to stderr; returns the handler to remove."""
    if not verbose:
        return None
    logger = logging.getLogger("pyfix_smtp")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def teardown_logging(handler: logging.Handler | None) -> None:
    """Undo :func:`setup_logging` (``main()`` may run more than once in a process)."""
    if handler is None:
        return
    logger = logging.getLogger("pyfix_smtp")
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


@dataclass
class Environment:
    """What a subcommand works with: the parsed arguments, config, resolver, output."""

    args: argparse.Namespace
    config: Config
    out: TextIO
    _resolver: DnsResolver | None = None

    @property
    def resolver(self) -> DnsResolver:
        """The DNS resolver: ``--resolver`` or the system's (dnspython imported here)."""
        if self._resolver is None:
            from pyfix_smtp.dns.resolve import DnsResolver

            if self.args.resolver is not None:
                host, port = parse_resolver(self.args.resolver)
                self._resolver = DnsResolver(nameservers=[host], port=port)
            else:
                self._resolver = DnsResolver()
        return self._resolver

    def lookup(self, query: Query) -> Answer:
        """Answer one DNS query (logged with ``-v``)."""
        answer = self.resolver.lookup(query)
        logging.getLogger("pyfix_smtp.cli").info(
            "%s %s -> %s%s",
            query.name,
            query.rdtype,
            answer.rcode.name,
            " (authentic)" if answer.authentic else "",
        )
        return answer

    def print(self, text: str = "") -> None:
        """Write one line of output."""
        self.out.write(text + "\n")

    def sts_context(self) -> ssl.SSLContext | None:
        """The SSL context for MTA-STS policy fetches (``--sts-cafile``), or None (system CAs)."""
        if self.args.sts_cafile is None:
            return None
        import ssl

        try:
            return ssl.create_default_context(cafile=str(self.args.sts_cafile))
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError("--sts-cafile", str(self.args.sts_cafile), reason) from None

    def sts_connect(self) -> tuple[str, int] | None:
        """``--sts-connect HOST:PORT``: where policy fetches really go, or None (port 443)."""
        if self.args.sts_connect is None:
            return None
        host, port = parse_resolver(self.args.sts_connect, "--sts-connect")
        return host, port if port is not None else 443

    def fetch_sts(self, request: StsFetch) -> FetchResult:
        """Fetch an MTA-STS policy file (honouring ``--sts-cafile``/``--sts-connect``)."""
        from pyfix_smtp.tls.fetch import fetch_policy

        connect = self.sts_connect()
        host, port = connect if connect is not None else (None, 443)
        return fetch_policy(
            request, context=self.sts_context(), connect_host=host, connect_port=port
        )


def destinations(cfg: Config, nexthop: str) -> tuple[Destination, ...]:
    """The nexthop's destinations, then the fallback relays (Postfix smtp_connect()).

    Raises:
        DestinationError: the nexthop or a fallback relay does not parse.
    """
    from pyfix_smtp.destination import sites

    text = nexthop
    if cfg.protocol == "lmtp" and text.startswith("inet:"):
        text = text[5:]  # smtp_connect.c smtp_connect(): "inet:" applies to the whole list
    return sites(
        text,
        cfg.smtp_fallback_relay,
        protocol=cfg.protocol,
        use_srv_lookup=cfg.use_srv_lookup,
        disable_dns_lookups=cfg.disable_dns_lookups
        or cfg.smtp_dns_support_level.lower() == "disabled",
        known_tcp_ports=dict(cfg.known_tcp_ports),
        smtp_tcp_port=cfg.smtp_tcp_port,
    )


def make_plan(env: Environment, dests: tuple[Destination, ...], seed: int | None = None) -> Plan:
    """Plan *dests* as smtp(8) would, with the environment's resolver."""
    from pyfix_smtp.dns.plan import plan
    from pyfix_smtp.dns.resolve import plan_options
    from pyfix_smtp.dns.runner import run_sync

    options = plan_options(env.config)
    steps = plan(dests, options, random.Random(seed))
    return run_sync(steps, env.lookup)


def discover_sts(env: Environment, destination: Destination) -> StsOutcome | None:
    """Native MTA-STS discovery for an MX-looked-up SMTP destination, when enabled.

    As the delivery core: only with ``smtp_mta_sts_enable = yes``, for SMTP,
    and only for destinations whose MX records are looked up.
    """
    cfg = env.config
    if not cfg.smtp_mta_sts_enable or cfg.protocol != "smtp" or not destination.mx_lookup:
        return None
    import time

    from pyfix_smtp.tls.mtasts import discover_sync
    from pyfix_smtp.tls.stscache import MemoryStsCache

    return discover_sync(
        destination.host,
        resolve=env.lookup,
        fetch=env.fetch_sts,
        cache=MemoryStsCache(),
        now=time.time(),
    )


def status_for_failure(soft: bool) -> int:
    """The exit status for a failure: 75 when soft (4.x.x), 69 when hard (5.x.x)."""
    return EX_TEMPFAIL if soft else EX_UNAVAILABLE
