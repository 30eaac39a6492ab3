#ifndef PUSHLOG_CCURL_SHIM_H
#define PUSHLOG_CCURL_SHIM_H
#include <curl/curl.h>

/*
 * curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are C variadics, which Swift does
 * not import. These typed wrappers are. Each option documents its argument type in
 * curl_easy_setopt(3); passing a value of the wrong width through a variadic is undefined
 * behaviour, so pick the wrapper whose type matches the option's documentation:
 *   long          -> _long        (CURLOPT_NOSIGNAL, CURLOPT_TIMEOUT_MS, ...)
 *   curl_off_t    -> _off_t       (options ending in _LARGE)
 *   char *        -> _string      (curl copies strings, except CURLOPT_POSTFIELDS)
 *   void *        -> _pointer     (CURLOPT_WRITEDATA, CURLOPT_PRIVATE, CURLOPT_ERRORBUFFER, ...)
 *   curl_slist *  -> _slist       (CURLOPT_HTTPHEADER, CURLOPT_MAIL_RCPT; NOT copied: keep the
 *                                  list alive until curl_easy_cleanup)
 *   callbacks     -> _write_callback (WRITEFUNCTION, HEADERFUNCTION)
 *                    _read_callback  (READFUNCTION, for uploads such as SMTP)
 *                    _opensocket_callback (OPENSOCKETFUNCTION, to vet each address connected to)
 */

static inline CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_write_callback(CURL *handle, CURLoption option, curl_write_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode ccurl_easy_setopt_read_callback(CURL *handle, CURLoption option, curl_read_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode ccurl_easy_setopt_opensocket_callback(CURL *handle, CURLoption option, curl_opensocket_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

/* The IP address libcurl is about to connect to, from an OPENSOCKETFUNCTION's argument: its 4
 * (AF_INET) or 16 (AF_INET6) bytes, in network order, copied to `out`. Returns how many, or 0
 * for any other family (or a truncated address). `addr` is declared as a plain sockaddr but
 * libcurl stores the whole address there, `addrlen` bytes of it. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
static inline int ccurl_sockaddr_ip(const struct curl_sockaddr *address, unsigned char out[16]) {
    if (address->family == AF_INET && address->addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&address->addr;
        memcpy(out, &in4->sin_addr, 4);
        return 4;
    }
    if (address->family == AF_INET6 && address->addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&address->addr;
        memcpy(out, &in6->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/* What libcurl does itself when no OPENSOCKETFUNCTION is set. */
static inline curl_socket_t ccurl_open_socket(const struct curl_sockaddr *address) {
    return socket(address->family, address->socktype, address->protocol);
}

static inline CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

/* CURLINFO_PRIVATE is documented as char ** but hands back whatever CURLOPT_PRIVATE stored. */
static inline CURLcode ccurl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, (char **)value);
}

static inline CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLMcode ccurl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

/* A GNU extension that Swift's Glibc module does not declare: names the calling thread as
 * `top -H`, perf and debuggers show it (15 bytes at most). */
#include <pthread.h>
int pthread_setname_np(pthread_t thread, const char *name);
static inline void ccurl_name_thread(const char *name) {
    pthread_setname_np(pthread_self(), name);
}

/* CURL_GLOBAL_ALL is a macro expression; give Swift a typed value. */
static const long ccurl_global_all = CURL_GLOBAL_ALL;

#endif
