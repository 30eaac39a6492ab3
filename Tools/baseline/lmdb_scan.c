/* lmdb_scan DIR DBNAME
 * Raw LMDB full-scan rate: MDB_NEXT over every record of one named db. */
#define _POSIX_C_SOURCE 200809L
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call) do { int rc_ = (call); if (rc_) { \
    fprintf(stderr, "%s: %s\n", #call, mdb_strerror(rc_)); exit(1); } } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR DBNAME\n", argv[0]);
        return 2;
    }
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_maxdbs(env, 32));
    CHECK(mdb_env_set_mapsize(env, 0)); /* adopt the size recorded in the file */
    CHECK(mdb_env_open(env, argv[1], MDB_RDONLY | MDB_NOTLS, 0644));

    /* Open the handle in its own txn so the timed txn is the scan only. */
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK(mdb_dbi_open(txn, argv[2], 0, &dbi));
    CHECK(mdb_txn_commit(txn));

    uint64_t n = 0, bytes = 0;
    double t0 = now();
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK(mdb_cursor_open(txn, dbi, &cur));
    int rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        n++;
        bytes += v.mv_size; /* consume the result so the loop is not elided */
    }
    if (rc != MDB_NOTFOUND) {
        fprintf(stderr, "mdb_cursor_get: %s\n", mdb_strerror(rc));
        return 1;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    double secs = now() - t0;

    printf("records=%llu seconds=%.6f rate=%.0f bytes=%llu\n",
           (unsigned long long)n, secs, secs > 0 ? n / secs : 0.0,
           (unsigned long long)bytes);
    mdb_env_close(env);
    return 0;
}
