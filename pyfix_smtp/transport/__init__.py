"""The only code that touches the network: drivers for the sans-IO delivery core.

* :mod:`pyfix_smtp.transport.client` - :func:`deliver`, :func:`deliver_async`,
  :class:`Client`, :class:`AsyncClient` (re-exported by :mod:`pyfix_smtp`)
* :mod:`pyfix_smtp.transport.sync` - blocking sockets and ssl
* :mod:`pyfix_smtp.transport.aio` - asyncio
* :mod:`pyfix_smtp.transport.cache` - live connections kept for reuse
* :mod:`pyfix_smtp.transport.content` - message content made re-readable

Importing this package imports none of them; each is loaded on first use.
"""
