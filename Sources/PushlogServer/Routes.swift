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
    let metricsToken: String?
    /// Verifies `/v1/unsubscribe` links; nil: every link is refused.
    let unsubscribeSigner: UnsubscribeSigner?
    /// Judges a literal address in a new pusher's `data.url` (`push.ip_range_*`).
    var gatewayAddressPolicy: AddressPolicy = .default

    /// Every path served, so that a known path with the wrong method gets 405, not 404.
    static let paths: Set<String> = ["/health", "/metrics", "/v1/notifications", "/v1/receipts", "/v1/pushers", "/v1/pushers/rewind", "/v1/unsubscribe"]

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in try health() }
        router.get("/metrics") { request, _ in try metrics(request) }
        router.post("/v1/notifications") { request, _ in try await postNotifications(request) }
        router.post("/v1/receipts") { request, _ in try await postReceipts(request) }
        router.put("/v1/pushers") { request, _ in try await putPusher(request) }
        router.get("/v1/pushers") { request, _ in try listPushers(request) }
        router.delete("/v1/pushers") { request, _ in try await deletePusher(request) }
        router.post("/v1/pushers/rewind") { request, _ in try await rewindPushers(request) }
        router.get("/v1/unsubscribe") { request, _ in try await unsubscribe(request) }
        router.post("/v1/unsubscribe") { request, _ in try await unsubscribe(request) }
    }
}
