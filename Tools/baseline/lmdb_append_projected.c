/*
 * lmdb_append_projected DIR N USERS ROOMS VALUE_SIZE BATCH {sync|nometasync}
 *
 * Raw-C equivalent of what Pushlog's store writes for each appended
 * notification (Store.append + Projector.applyNotification + flush), so the
 * cost of the projections can be told apart from Swift's own overhead.
 *
 * Fresh env in DIR (data.mdb/lock.mdb deleted first; 16 GiB map, 32 dbs,
 * MDB_NOTLS|MDB_NORDAHEAD, plus MDB_NOMETASYNC if asked), named dbs "log",
 * "notifs", "heads", "receipts", "unread", "meta".
 *
 * Notification i (0-based, pos = i+1) belongs to user u = i % USERS,
 * "@u%07d:example.org", in room "!room%d:example.org" with i % ROOMS, thread
 * "main", stream ordering pos. Per notification, inside the batch's write txn:
 *   1. log:      pos (u64 BE) -> VALUE_SIZE random bytes, MDB_APPEND through
 *                a cursor opened once per txn;
 *   2. receipts: two mdb_get that miss: user 0 room 0 0 (unthreaded) and
 *                user 0 room 0 1 "main" (thread "main");
 *   3. notifs:   user 0 pos(u64 BE) -> flags(1) so(u64 BE) varint(len) room
 *                varint(4) "main";
 *   4. unread:   user 0 room -> [count u64 BE][oldest pos u64 BE], read,
 *                count+1, oldest=min(oldest,pos), put.
 * At the end of each batch: heads (user -> the user's last pos in the batch,
 * once per distinct user), then meta "head" -> last pos and "last_ts" -> 8
 * bytes; then commit. One commit every BATCH notifications.
 *
 * User and room strings and the log values are made before the timer starts
 * (values are distinct per notification up to a 1 GiB pool, then reused);
 * keys are assembled in the loop with memcpy, as Pushlog assembles them.
 * Only the write loop, commits included, is timed (CLOCK_MONOTONIC).
 *
 * Prints exactly one line: records=N seconds=S rate=R (notifications/s).
 */
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

#define STR_STRIDE 48          /* room for "@u%07d:example.org" / "!room%d:example.org" */
#define THREAD "main"
#define THREAD_LEN 4
#define POOL_LIMIT ((size_t)1 << 30)

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

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v & 0x7F) | 0x80;
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 8 || (strcmp(argv[7], "sync") && strcmp(argv[7], "nometasync"))) {
        fprintf(stderr, "usage: %s DIR N USERS ROOMS VALUE_SIZE BATCH {sync|nometasync}\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    uint64_t n = parse_u64(argv[2], "N");
    uint64_t users = parse_u64(argv[3], "USERS");
    uint64_t rooms = parse_u64(argv[4], "ROOMS");
    size_t vsize = parse_u64(argv[5], "VALUE_SIZE");
    uint64_t batch = parse_u64(argv[6], "BATCH");
    if (n == 0 || users == 0 || rooms == 0 || batch == 0) {
        fprintf(stderr, "N, USERS, ROOMS and BATCH must be > 0\n");
        return 2;
    }
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (!strcmp(argv[7], "nometasync"))
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

    /* ---- everything generated before timing ---- */
    char *ustr = xmalloc(users * STR_STRIDE);
    unsigned char *ulen = xmalloc(users);
    for (uint64_t u = 0; u < users; u++) {
        int len = snprintf(ustr + u * STR_STRIDE, STR_STRIDE, "@u%07llu:example.org",
                           (unsigned long long)u);
        if (len <= 0 || len >= STR_STRIDE) return 2;
        ulen[u] = (unsigned char)len;
    }
    char *rstr = xmalloc(rooms * STR_STRIDE);
    unsigned char *rlen = xmalloc(rooms);
    for (uint64_t r = 0; r < rooms; r++) {
        int len = snprintf(rstr + r * STR_STRIDE, STR_STRIDE, "!room%llu:example.org",
                           (unsigned long long)r);
        if (len <= 0 || len >= STR_STRIDE) return 2;
        rlen[r] = (unsigned char)len;
    }

    /* Random log values, distinct per notification up to POOL_LIMIT bytes. */
    uint64_t pool_count = n;
    if (vsize && pool_count > POOL_LIMIT / vsize)
        pool_count = POOL_LIMIT / vsize ? POOL_LIMIT / vsize : 1;
    unsigned char *pool = xmalloc(pool_count * vsize);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < pool_count * vsize; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        pool[i] = (unsigned char)x;
    }

    /* Heads: last pos per user in the current batch, a stamp saying whether
     * the user was touched in this batch, and the touched users in order. */
    uint64_t *head_pos = xmalloc(users * sizeof *head_pos);
    uint64_t *stamp = xmalloc(users * sizeof *stamp);
    uint64_t *touched = xmalloc((batch < users ? batch : users) * sizeof *touched);
    memset(stamp, 0, users * sizeof *stamp);

    unsigned char last_ts[8];
    {
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        put_be64(last_ts, (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000);
    }

    /* ---- env ---- */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi db_log, db_notifs, db_heads, db_receipts, db_unread, db_meta;
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_mapsize(env, (size_t)16 << 30));
    CHECK(mdb_env_set_maxdbs(env, 32));
    CHECK(mdb_env_open(env, dir, flags, 0644));
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK(mdb_dbi_open(txn, "log", MDB_CREATE, &db_log));
    CHECK(mdb_dbi_open(txn, "notifs", MDB_CREATE, &db_notifs));
    CHECK(mdb_dbi_open(txn, "heads", MDB_CREATE, &db_heads));
    CHECK(mdb_dbi_open(txn, "receipts", MDB_CREATE, &db_receipts));
    CHECK(mdb_dbi_open(txn, "unread", MDB_CREATE, &db_unread));
    CHECK(mdb_dbi_open(txn, "meta", MDB_CREATE, &db_meta));
    CHECK(mdb_txn_commit(txn));

    unsigned char poskey[8], headval[8], unreadval[16], notifval[64];
    unsigned char notifkey[STR_STRIDE + 1 + 8];
    unsigned char roomkey[2 * STR_STRIDE + 1];                 /* unread */
    unsigned char rcptkey[2 * STR_STRIDE + 3 + THREAD_LEN];    /* receipts */
    MDB_val k, v;
    uint64_t batch_no = 0;

    double t0 = now();
    for (uint64_t i = 0; i < n; ) {
        batch_no++;
        size_t ntouched = 0;
        uint64_t pos = 0;
        MDB_cursor *cur;
        CHECK(mdb_txn_begin(env, NULL, 0, &txn));
        CHECK(mdb_cursor_open(txn, db_log, &cur));
        for (uint64_t j = 0; j < batch && i < n; j++, i++) {
            pos = i + 1;
            uint64_t u = i % users, r = i % rooms;
            const char *us = ustr + u * STR_STRIDE, *rs = rstr + r * STR_STRIDE;
            size_t ul = ulen[u], rl = rlen[r];

            /* 1. log */
            put_be64(poskey, pos);
            k.mv_size = 8; k.mv_data = poskey;
            v.mv_size = vsize; v.mv_data = pool + (i % pool_count) * vsize;
            CHECK(mdb_cursor_put(cur, &k, &v, MDB_APPEND));

            /* 2. receipts: unthreaded, then thread "main"; both miss */
            memcpy(rcptkey, us, ul);
            rcptkey[ul] = 0;
            memcpy(rcptkey + ul + 1, rs, rl);
            rcptkey[ul + 1 + rl] = 0;
            rcptkey[ul + 2 + rl] = 0;
            k.mv_size = ul + rl + 3; k.mv_data = rcptkey;
            int rc = mdb_get(txn, db_receipts, &k, &v);
            if (rc != MDB_NOTFOUND) {
                fprintf(stderr, "receipts get: %s\n", rc ? mdb_strerror(rc) : "unexpected hit");
                return 1;
            }
            rcptkey[ul + 2 + rl] = 1;
            memcpy(rcptkey + ul + rl + 3, THREAD, THREAD_LEN);
            k.mv_size = ul + rl + 3 + THREAD_LEN; k.mv_data = rcptkey;
            rc = mdb_get(txn, db_receipts, &k, &v);
            if (rc != MDB_NOTFOUND) {
                fprintf(stderr, "receipts get: %s\n", rc ? mdb_strerror(rc) : "unexpected hit");
                return 1;
            }

            /* 3. notifs */
            memcpy(notifkey, us, ul);
            notifkey[ul] = 0;
            put_be64(notifkey + ul + 1, pos);
            size_t nv = 0;
            notifval[nv++] = 0;                       /* flags: no highlight */
            put_be64(notifval + nv, pos);             /* stream ordering */
            nv += 8;
            nv += put_varint(notifval + nv, rl);
            memcpy(notifval + nv, rs, rl);
            nv += rl;
            nv += put_varint(notifval + nv, THREAD_LEN);
            memcpy(notifval + nv, THREAD, THREAD_LEN);
            nv += THREAD_LEN;
            k.mv_size = ul + 9; k.mv_data = notifkey;
            v.mv_size = nv; v.mv_data = notifval;
            CHECK(mdb_put(txn, db_notifs, &k, &v, 0));

            /* heads, written at the end of the batch */
            if (stamp[u] != batch_no) {
                stamp[u] = batch_no;
                touched[ntouched++] = u;
            }
            head_pos[u] = pos;

            /* 4. unread */
            memcpy(roomkey, us, ul);
            roomkey[ul] = 0;
            memcpy(roomkey + ul + 1, rs, rl);
            k.mv_size = ul + 1 + rl; k.mv_data = roomkey;
            uint64_t count = 0, oldest = pos;
            rc = mdb_get(txn, db_unread, &k, &v);
            if (rc == 0) {
                if (v.mv_size != 16) {
                    fprintf(stderr, "unread value of %zu bytes\n", v.mv_size);
                    return 1;
                }
                count = get_be64(v.mv_data);
                uint64_t held = get_be64((unsigned char *)v.mv_data + 8);
                if (held < oldest) oldest = held;
            } else if (rc != MDB_NOTFOUND) {
                fprintf(stderr, "unread get: %s\n", mdb_strerror(rc));
                return 1;
            }
            put_be64(unreadval, count + 1);
            put_be64(unreadval + 8, oldest);
            v.mv_size = 16; v.mv_data = unreadval;
            CHECK(mdb_put(txn, db_unread, &k, &v, 0));
        }
        mdb_cursor_close(cur);

        for (size_t t = 0; t < ntouched; t++) {
            uint64_t u = touched[t];
            put_be64(headval, head_pos[u]);
            k.mv_size = ulen[u]; k.mv_data = ustr + u * STR_STRIDE;
            v.mv_size = 8; v.mv_data = headval;
            CHECK(mdb_put(txn, db_heads, &k, &v, 0));
        }
        put_be64(headval, pos);
        k.mv_size = 4; k.mv_data = "head";
        v.mv_size = 8; v.mv_data = headval;
        CHECK(mdb_put(txn, db_meta, &k, &v, 0));
        k.mv_size = 7; k.mv_data = "last_ts";
        v.mv_size = 8; v.mv_data = last_ts;
        CHECK(mdb_put(txn, db_meta, &k, &v, 0));
        CHECK(mdb_txn_commit(txn));
    }
    double secs = now() - t0;

    printf("records=%llu seconds=%.6f rate=%.0f\n",
           (unsigned long long)n, secs, n / secs);
    mdb_env_close(env);
    free(pool); free(ustr); free(ulen); free(rstr); free(rlen);
    free(head_pos); free(stamp); free(touched);
    return 0;
}
