#!/usr/bin/env python3
"""Creates Synapse's database schema (the installed matrix-synapse's own, deltas included) in an
empty database, without starting a homeserver. For the Synapse follower's tests.

    synapse-schema.py sqlite /path/homeserver.db
    synapse-schema.py postgres "host=/tmp/dir port=5432 user=postgres dbname=synapse"
"""
import sys

from synapse.storage.database import LoggingDatabaseConnection
from synapse.storage.engines import create_engine
from synapse.storage.prepare_database import prepare_database


def main() -> None:
    kind, target = sys.argv[1], sys.argv[2]
    if kind == "sqlite":
        engine = create_engine({"name": "sqlite3", "args": {"database": target}})
        conn = engine.module.connect(target)
    elif kind == "postgres":
        engine = create_engine({"name": "psycopg2", "args": {"dsn": target}})
        conn = engine.module.connect(target)
    else:
        sys.exit(f"unknown database kind {kind!r}: sqlite or postgres")
    db_conn = LoggingDatabaseConnection(conn=conn, engine=engine, default_txn_name="schema", server_name="localhost")
    engine.on_new_connection(db_conn)
    prepare_database(db_conn, engine, config=None)
    conn.commit()
    if kind == "sqlite":
        # Synapse runs SQLite in WAL mode; the follower must read such a database.
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


if __name__ == "__main__":
    main()
