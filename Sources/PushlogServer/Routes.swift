import Curl
import Hummingbird
import PushlogCore
import PushlogRuntime

/// The API's endpoints, in one place. Each handler lives in its own file, with its request and
/// response shapes.
struct PushlogAPI: Sendable {
    let store: Store
    let pool: PusherPool?
    let maxBodySize: Int
    /// Renders `/metrics`; nil: not served.
    let metricsText: (@Sendable () -> [UInt8])?
    let metricsToken: BearerToken?
    /// Verifies `/v1/unsubscribe` links; nil: every link is refused.
    let unsubscribeSigner: UnsubscribeSigner?
    /// Judges a literal address in a new pusher's `data.url` (`push.ip_range_*`).
    var gatewayAddressPolicy: AddressPolicy = .default

    /// Every path served, so that a known path with the wrong method gets 405, not 404.
    static let paths: Set<String> = ["/health", "/metrics", "/v1/notifications", "/v1/receipts", "/v1/pushers", "/v1/pushers/rewind", "/v1/unsubscribe"]
    /// The paths whose routes need the API token (when one is set).
    static let guardedPaths = paths.filter { $0.hasPrefix("/v1/") && $0 != "/v1/unsubscribe" }

    /// `token`, when set, guards every `/v1` route but the unsubscribe link, whose signature is
    /// its own authority (it arrives from a mail client). The guard is a middleware of the `/v1`
    /// group, so it belongs to the routes themselves and no spelling of a path can get round it.
    func addRoutes(to router: Router<BasicRequestContext>, token: String?) {
        router.get("/health") { _, _ in try health() }
        router.get("/metrics") { request, _ in try metrics(request) }
        router.get("/v1/unsubscribe") { request, _ in try await unsubscribePage(request) }
        router.post("/v1/unsubscribe") { request, _ in try await unsubscribe(request) }
        let v1 = router.group("/v1")
        if let token { v1.add(middleware: BearerTokenMiddleware(token: token)) }
        v1.post("notifications") { request, _ in try await postNotifications(request) }
        v1.post("receipts") { request, _ in try await postReceipts(request) }
        v1.put("pushers") { request, _ in try await putPusher(request) }
        v1.get("pushers") { request, _ in try listPushers(request) }
        v1.delete("pushers") { request, _ in try await deletePusher(request) }
        v1.post("pushers/rewind") { request, _ in try await rewindPushers(request) }
    }
}
