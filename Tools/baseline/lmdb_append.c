/* lmdb_append DIR N VALUE_SIZE BATCH {sync|nometasync}
 * Raw LMDB append throughput: N records, 8-byte big-endian keys 1..N,
 * MDB_APPEND, one commit every BATCH records. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CHECK(call) do { int rc_ = (call); if (rc_) { \
    fprintf(stderr, "%s: %s\n", #call, mdb_strerror(rc_)); exit(1); } } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[5], "sync") && strcmp(argv[5], "nometasync"))) {
        fprintf(stderr, "usage: %s DIR N VALUE_SIZE BATCH {sync|nometasync}\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    uint64_t n = strtoull(argv[2], NULL, 10);
    size_t vsize = strtoull(argv[3], NULL, 10);
    uint64_t batch = strtoull(argv[4], NULL, 10);
    if (n == 0 || batch == 0) {
        fprintf(stderr, "N and BATCH must be > 0\n");
        return 2;
    }
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (!strcmp(argv[5], "nometasync"))
        flags |= MDB_NOMETASYNC;

    if (mkdir(dir, 0755) && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    /* "Fresh env": drop files left by a previous run. */
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    remove(path);

    /* Random bytes so values are not trivially compressible; made before timing. */
    unsigned char *val = malloc(vsize ? vsize : 1);
    if (!val) return 1;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < vsize; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        val[i] = (unsigned char)x;
    }

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_mapsize(env, (size_t)8 << 30));
    CHECK(mdb_env_set_maxdbs(env, 32));
    CHECK(mdb_env_open(env, dir, flags, 0644));
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK(mdb_dbi_open(txn, "log", MDB_CREATE, &dbi));
    CHECK(mdb_txn_commit(txn));

    unsigned char kbuf[8];
    MDB_val k = { sizeof kbuf, kbuf }, v = { vsize, val };
    double t0 = now();
    for (uint64_t i = 1; i <= n; ) {
        CHECK(mdb_txn_begin(env, NULL, 0, &txn));
        for (uint64_t j = 0; j < batch && i <= n; j++, i++) {
            put_be64(kbuf, i);
            CHECK(mdb_put(txn, dbi, &k, &v, MDB_APPEND));
        }
        CHECK(mdb_txn_commit(txn));
    }
    double secs = now() - t0;

    printf("records=%llu seconds=%.6f rate=%.0f\n",
           (unsigned long long)n, secs, n / secs);
    mdb_env_close(env);
    free(val);
    return 0;
}
