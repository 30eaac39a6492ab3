#ifndef PUSHLOG_CLMDB_SHIM_H
#define PUSHLOG_CLMDB_SHIM_H
#include <lmdb.h>

/* mdb_open / mdb_close are function-like macros and are not imported into Swift. */
static inline int clmdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi) {
    return mdb_dbi_open(txn, name, flags, dbi);
}
#endif
