/* lmdb_pending_walk DIR
 * lmdb_pending_walk --populate DIR N PCT_PENDING
 *
 * Raw baseline for the boot check: merge-join "consumers" against "heads"
 * with two cursors in one read txn and count enabled pushers whose user's
 * head is past their cursor. --populate builds a synthetic env to walk.
 *
 * consumers: key = user id (UTF-8, no 0x00) + 0x00 + 32-byte hash
 *            value >= 42 bytes: cursor, failing_since, next_attempt,
 *            last_success, last_badge (u64 BE each), enabled u8, kind u8
 * heads:     key = user id, value = u64 BE newest notification position */
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

enum { HASH_LEN = 32, CONSUMER_VAL_LEN = 42, OFF_CURSOR = 0, OFF_ENABLED = 40 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* LMDB's default key order: memcmp over the shorter length, then shorter first. */
static int keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int populate(const char *dir, uint64_t n, unsigned pct)
{
    if (mkdir(dir, 0755) && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    remove(path);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi consumers, heads;
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_mapsize(env, (size_t)8 << 30));
    CHECK(mdb_env_set_maxdbs(env, 32));
    CHECK(mdb_env_open(env, dir, MDB_NOTLS, 0644));
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK(mdb_dbi_open(txn, "consumers", MDB_CREATE, &consumers));
    CHECK(mdb_dbi_open(txn, "heads", MDB_CREATE, &heads));

    char user[64];
    unsigned char ckey[64 + 1 + HASH_LEN], cval[CONSUMER_VAL_LEN], hval[8];
    uint64_t pending = 0;
    memset(cval, 0, sizeof cval);
    put_be64(cval + OFF_CURSOR, 100);
    cval[OFF_ENABLED] = 1; /* kind (offset 41) stays 0 */
    for (uint64_t i = 0; i < n; i++) {
        /* Fixed-width ids so numeric order == key order and MDB_APPEND works. */
        int ulen = snprintf(user, sizeof user, "@u%07llu:example.org", (unsigned long long)i);
        memcpy(ckey, user, ulen);
        ckey[ulen] = 0;
        for (int h = 0; h < HASH_LEN; h += 8)
            put_be64(ckey + ulen + 1 + h, splitmix64(i * 4 + h / 8));
        /* Hash-chosen rather than periodic so the branch predictor can't learn it. */
        int is_pending = splitmix64(i ^ 0x5bd1e995ull) % 100 < pct;
        pending += is_pending;
        put_be64(hval, is_pending ? 101 : 100);

        MDB_val ck = { ulen + 1 + HASH_LEN, ckey }, cv = { sizeof cval, cval };
        MDB_val hk = { (size_t)ulen, user }, hv = { sizeof hval, hval };
        CHECK(mdb_put(txn, consumers, &ck, &cv, MDB_APPEND));
        CHECK(mdb_put(txn, heads, &hk, &hv, MDB_APPEND));
        if ((i + 1) % 100000 == 0) { /* keep each txn's dirty list bounded */
            CHECK(mdb_txn_commit(txn));
            CHECK(mdb_txn_begin(env, NULL, 0, &txn));
        }
    }
    CHECK(mdb_txn_commit(txn));
    mdb_env_close(env);
    printf("populated users=%llu pending=%llu\n",
           (unsigned long long)n, (unsigned long long)pending);
    return 0;
}

static int walk(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi consumers, heads;
    MDB_cursor *cc, *hc;
    MDB_val ck, cv, hk, hv;
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_maxdbs(env, 32));
    CHECK(mdb_env_set_mapsize(env, 0)); /* adopt the size recorded in the file */
    CHECK(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644));
    /* Open the handles in their own txn so the timed txn is the walk only. */
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK(mdb_dbi_open(txn, "consumers", 0, &consumers));
    CHECK(mdb_dbi_open(txn, "heads", 0, &heads));
    CHECK(mdb_txn_commit(txn));

    uint64_t pushers = 0, pending = 0;
    double t0 = now();
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK(mdb_cursor_open(txn, consumers, &cc));
    CHECK(mdb_cursor_open(txn, heads, &hc));
    int hrc = mdb_cursor_get(hc, &hk, &hv, MDB_FIRST);
    int crc;
    while ((crc = mdb_cursor_get(cc, &ck, &cv, MDB_NEXT)) == 0) {
        pushers++;
        const unsigned char *nul = memchr(ck.mv_data, 0, ck.mv_size);
        if (!nul || cv.mv_size < CONSUMER_VAL_LEN) {
            fprintf(stderr, "malformed consumer record #%llu\n", (unsigned long long)pushers);
            return 1;
        }
        size_t ulen = (size_t)(nul - (const unsigned char *)ck.mv_data);
        /* A 0x00 terminator sorts below any id byte, so consumers and heads
         * share one user order and a single forward pass suffices. */
        int c = 1;
        while (hrc == 0 && (c = keycmp(hk.mv_data, hk.mv_size, ck.mv_data, ulen)) < 0)
            hrc = mdb_cursor_get(hc, &hk, &hv, MDB_NEXT);
        if (hrc != 0 && hrc != MDB_NOTFOUND) {
            fprintf(stderr, "heads cursor: %s\n", mdb_strerror(hrc));
            return 1;
        }
        if (hrc == 0 && c == 0 && hv.mv_size >= 8) {
            const unsigned char *val = cv.mv_data;
            if (val[OFF_ENABLED] && get_be64(hv.mv_data) > get_be64(val + OFF_CURSOR))
                pending++;
        }
    }
    if (crc != MDB_NOTFOUND) {
        fprintf(stderr, "consumers cursor: %s\n", mdb_strerror(crc));
        return 1;
    }
    mdb_cursor_close(hc);
    mdb_cursor_close(cc);
    mdb_txn_abort(txn);
    double secs = now() - t0;

    printf("pushers=%llu pending=%llu seconds=%.6f ns_per_pusher=%.1f\n",
           (unsigned long long)pushers, (unsigned long long)pending, secs,
           pushers ? secs * 1e9 / pushers : 0.0);
    mdb_env_close(env);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--populate")) {
        unsigned long long n = strtoull(argv[3], NULL, 10);
        unsigned long pct = strtoul(argv[4], NULL, 10);
        if (n == 0 || n > 9999999 || pct > 100) {
            fprintf(stderr, "N must be 1..9999999 (7-digit ids), PCT 0..100\n");
            return 2;
        }
        return populate(argv[2], n, (unsigned)pct);
    }
    if (argc == 2)
        return walk(argv[1]);
    fprintf(stderr, "usage: %s DIR\n       %s --populate DIR N PCT_PENDING\n", argv[0], argv[0]);
    return 2;
}
