"""pyfix_smtp benchmarks: pyfix_smtp against smtp-source, smtplib, aiosmtplib and dnspython.

Run ``python -m benchmarks.run`` (or ``make bench``); see ``benchmarks/README.md``.
Every measured run happens in a fresh process (:mod:`benchmarks.worker`) against
a fresh Postfix ``smtp-sink`` (:mod:`benchmarks.sink`) on loopback.
"""
