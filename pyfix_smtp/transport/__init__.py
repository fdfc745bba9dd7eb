"""The only code that touches the network: drivers for the sans-IO delivery core.

* :mod:`pyfix_smtp.transport.sync` - blocking sockets and ssl
* :mod:`pyfix_smtp.transport.aio` - asyncio streams
* :mod:`pyfix_smtp.transport.cache` - live connections kept for reuse

Importing this package imports neither; each module is loaded on first use.
"""
