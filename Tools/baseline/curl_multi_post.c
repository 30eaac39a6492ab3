/*
 * curl_multi_post URL N CONCURRENCY BODYFILE
 *
 * Raw libcurl-multi client baseline: the ceiling for a push-delivery loop.
 * Reads one JSON body from BODYFILE and POSTs it N times to URL from a single
 * thread with one multi handle, keeping CONCURRENCY transfers in flight.
 * Easy handles are reused: when a transfer completes, the handle is removed,
 * its URL and POST fields are set again and it is re-added, so connections
 * (HTTP/1.1 keep-alive, one per in-flight handle) are reused from the
 * multi handle's connection cache.
 *
 * Every answer must be HTTP 200 with no transport error; anything else counts
 * as a failure (the first few are described on stderr).
 *
 * Timed: from just before the first curl_multi_perform to the last completion
 * (CLOCK_MONOTONIC), so connection set-up is included. CPU time is
 * getrusage(RUSAGE_SELF) user+sys over the same span.
 *
 * Prints exactly one line on stdout:
 *   posts=N seconds=S rate=R cpu_seconds=C cpu_us_per_post=X failures=F
 * Exit status 0 if there were no failures, 1 otherwise, 2 on usage/setup errors.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct slot {
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static char *read_file(const char *path, long *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    *len_out = (long)len;
    return buf;
}

static long parse_positive(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0) {
        fprintf(stderr, "bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

/* Sets the per-transfer options; called before every (re-)add. */
static void prepare(CURL *e, const char *url, const char *body, long body_len)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body); /* not copied: body outlives all transfers */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, body_len);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s URL N CONCURRENCY BODYFILE\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    long n = parse_positive(argv[2], "N");
    long conc = parse_positive(argv[3], "CONCURRENCY");
    if (conc > n)
        conc = n;

    long body_len = 0;
    char *body = read_file(argv[4], &body_len);
    if (!body)
        return 2;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "curl_global_init failed\n");
        return 2;
    }
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conc);

    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:"); /* never wait for 100-continue */

    struct slot *slots = calloc((size_t)conc, sizeof *slots);
    if (!multi || !headers || !slots) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    for (long i = 0; i < conc; i++) {
        CURL *e = curl_easy_init();
        if (!e) {
            fprintf(stderr, "curl_easy_init failed\n");
            return 2;
        }
        slots[i].easy = e;
        curl_easy_setopt(e, CURLOPT_PRIVATE, &slots[i]);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, slots[i].errbuf);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
        prepare(e, url, body, body_len);
    }

    long started = 0, completed = 0, failures = 0;
    for (long i = 0; i < conc; i++) {
        slots[i].errbuf[0] = '\0';
        curl_multi_add_handle(multi, slots[i].easy);
        started++;
    }

    double cpu0 = cpu_seconds();
    double t0 = now_seconds();

    while (completed < n) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc != CURLM_OK) {
            fprintf(stderr, "curl_multi_perform: %s\n", curl_multi_strerror(mc));
            return 2;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            CURLcode rc = msg->data.result;
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            completed++;
            if (rc != CURLE_OK || status != 200) {
                if (failures < 5) {
                    struct slot *s = NULL;
                    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
                    if (rc != CURLE_OK)
                        fprintf(stderr, "post failed: curl error %d (%s)\n", (int)rc,
                                (s && s->errbuf[0]) ? s->errbuf : curl_easy_strerror(rc));
                    else
                        fprintf(stderr, "post failed: HTTP %ld\n", status);
                }
                failures++;
            }
            curl_multi_remove_handle(multi, e);
            if (started < n) {
                struct slot *s = NULL;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
                if (s)
                    s->errbuf[0] = '\0';
                prepare(e, url, body, body_len);
                curl_multi_add_handle(multi, e);
                started++;
            }
        }
        if (completed >= n)
            break;
        mc = curl_multi_poll(multi, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) {
            fprintf(stderr, "curl_multi_poll: %s\n", curl_multi_strerror(mc));
            return 2;
        }
    }

    double secs = now_seconds() - t0;
    double cpu = cpu_seconds() - cpu0;

    printf("posts=%ld seconds=%.3f rate=%.0f cpu_seconds=%.3f cpu_us_per_post=%.2f failures=%ld\n",
           completed, secs, (double)completed / secs, cpu, cpu * 1e6 / (double)completed, failures);
    fflush(stdout);

    for (long i = 0; i < conc; i++)
        curl_easy_cleanup(slots[i].easy); /* already removed from the multi handle */
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    free(slots);
    free(body);
    return failures ? 1 : 0;
}
