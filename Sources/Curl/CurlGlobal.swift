import CCurl

/// The result of the process's one `curl_global_init`.
///
/// `curl_global_init` must run once per process before any other libcurl call, and libcurl
/// older than 7.84 does not make it thread-safe. A Swift global's initialiser runs exactly once,
/// under `swift_once`, which gives both guarantees however many clients start concurrently.
/// `curl_global_cleanup` is deliberately never called: clients may live until exit, and calling
/// it while any handle exists is undefined.
private let globalInitCode: UInt32 = curl_global_init(ccurl_global_all).rawValue

enum CurlGlobal {
    /// Runs `curl_global_init` on first use; throws if it failed (then or on the first call).
    static func initialise() throws(HTTPError) {
        guard globalInitCode == CURLE_OK.rawValue else {
            throw HTTPError(code: CURLcode(rawValue: globalInitCode), detail: "curl_global_init failed")
        }
    }
}
