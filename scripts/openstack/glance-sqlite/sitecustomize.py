"""Loaded by the Glance processes up.sh starts (on their PYTHONPATH): SQLite transactions
that take the write lock when they begin.

oslo.db opens SQLite transactions with a plain (deferred) BEGIN. When a request and an
import task of Glance read and then write at the same time, SQLite fails one of them at
once with "database is locked" (HTTP 500): a busy timeout does not help a reader that must
become a writer. BEGIN IMMEDIATE takes the write lock up front and waits for it (pysqlite's
5 s timeout), so Glance's transactions queue instead. The test databases are small and
quiet; production clouds use MySQL or PostgreSQL.
"""

try:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
except ImportError:  # not Glance's interpreter
    pass
else:

    @event.listens_for(Engine, "begin")
    def _begin_immediate(conn):
        # Registered on the class, so it runs before oslo.db's own listener, which then
        # sees the transaction open and emits no BEGIN of its own.
        if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True
