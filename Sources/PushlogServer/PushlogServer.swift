import Curl
import Hummingbird
import Logging
import PushlogCore
import PushlogRuntime

/// What the HTTP API needs from the configuration (`api.*`, `metrics.token`).
public struct APIConfig: Sendable {
    /// When set, every `/v1` request needs `Authorization: Bearer <token>`.
    public var token: String?
    /// Guards `/metrics`.
    public var metricsToken: String?
    /// Renders the metrics in Prometheus text format; nil: `/metrics` is not served.
    public var metricsText: (@Sendable () -> [UInt8])?
    /// Bodies larger than this get 413 `M_TOO_LARGE`.
    public var maxBodySize: Int
    /// Verifies the signed `/v1/unsubscribe` links of emails; nil: they are all refused.
    public var unsubscribeSigner: UnsubscribeSigner?
    /// `push.ip_range_blacklist` and `push.ip_range_whitelist`: a pusher whose `data.url` names
    /// a blocked address literally gets 400 (a host name is checked when pushes connect).
    public var gatewayAddressPolicy: AddressPolicy

    public init(token: String? = nil, metricsToken: String? = nil, maxBodySize: Int = 16 << 20,
                metricsText: (@Sendable () -> [UInt8])? = nil, unsubscribeSigner: UnsubscribeSigner? = nil,
                gatewayAddressPolicy: AddressPolicy = .default) {
        self.gatewayAddressPolicy = gatewayAddressPolicy
        self.token = token
        self.unsubscribeSigner = unsubscribeSigner
        self.metricsToken = metricsToken
        self.metricsText = metricsText
        self.maxBodySize = maxBodySize
    }
}

/// The router of the HTTP API: errors as `{"errcode", "error"}`, the bearer token on `/v1`, and
/// the routes of `Routes.swift`. `pool` is told about each successful append; nil in tests.
public func buildRouter(store: Store, pool: PusherPool?, config: APIConfig) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    let api = PushlogAPI(store: store, pool: pool, maxBodySize: config.maxBodySize,
                         metricsText: config.metricsText, metricsToken: config.metricsToken.map(BearerToken.init),
                         unsubscribeSigner: config.unsubscribeSigner, gatewayAddressPolicy: config.gatewayAddressPolicy)
    router.add(middleware: APIErrorMiddleware(knownPaths: PushlogAPI.paths, token: config.token.map(BearerToken.init),
                                              guardedPaths: PushlogAPI.guardedPaths))
    api.addRoutes(to: router, token: config.token)
    return router
}

/// The HTTP server as a swift-service-lifecycle `Service`, to run in the daemon's `ServiceGroup`.
/// `onRunning` is called once the server listens, with the port it is bound to (port 0 in the
/// configuration picks a free one).
public func makeApplication(
    store: Store, pool: PusherPool?, config: APIConfig, host: String, port: Int, logger: Logger,
    onRunning: @escaping @Sendable (Int?) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(store: store, pool: pool, config: config),
        server: .http1(configuration: .init(additionalChannelHandlers: [ExpectContinueHandler()])),
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "pushlog"),
        onServerRunning: { channel in await onRunning(channel.localAddress?.port) },
        logger: logger
    )
}
