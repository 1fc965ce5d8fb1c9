"""The remote agent: a run's records go to the team server through an on-disk spool.

A tracked run appends its records (:mod:`carbon.wire`) to a SQLite spool on the training
thread, which is fast and needs no network; one background thread per process sends them to
the server in order and deletes each only once the server acknowledged it. Records of a
process that died are taken over by the next agent on the machine, or by ``carbon sync``.

Modules: ``spool`` (the on-disk queue), ``client`` (HTTP and the meaning of each answer),
``sender`` (the background thread), ``sink`` (``HttpSink``, what a run writes to) and
``sync`` (``carbon sync``). Nothing is imported here, so ``import carbon`` never pulls in
``httpx``.
"""
