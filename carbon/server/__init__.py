"""The team server: agents post their runs to it, people and dashboards read them back.

A FastAPI application under ``/api/v1`` on the same store and query layer as the local
command line (:mod:`carbon.store`). It keeps teams' data apart (every key belongs to one
team, every query is filtered by it), holds no state of its own beyond caches, so several
replicas can serve one PostgreSQL database behind a load balancer, and takes bursts from
many agents: ingest runs in the thread pool, keys and run facts are cached, samples go to
PostgreSQL with ``COPY``.

:func:`carbon.server.app.create_app` builds the application; ``carbon serve`` runs it.
"""
