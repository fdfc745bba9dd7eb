"""One module per client under test.

Python clients expose ``run(job) -> int`` and/or ``async run_async(job) -> int``
returning how many messages (or, for DNS jobs, domains) were fully accepted;
:mod:`benchmarks.worker` times that call in a fresh process. A client that cannot
run yet raises :class:`benchmarks.workload.Unavailable`. ``smtp_source`` builds
the command line of Postfix's C ``smtp-source`` instead.
"""
