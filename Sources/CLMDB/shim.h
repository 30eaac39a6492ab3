#ifndef PUSHLOG_CLMDB_SHIM_H
#define PUSHLOG_CLMDB_SHIM_H
#include <lmdb.h>

/* mdb_open / mdb_close are function-like macros and are not imported into Swift. */
static inline int clmdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi) {
    return mdb_dbi_open(txn, name, flags, dbi);
}

/* A GNU extension that Swift's Glibc module does not declare: names the calling thread as
 * `top -H`, perf and debuggers show it (15 bytes at most). */
#include <pthread.h>
int pthread_setname_np(pthread_t thread, const char *name);
static inline void clmdb_name_thread(const char *name) {
    pthread_setname_np(pthread_self(), name);
}
#endif
