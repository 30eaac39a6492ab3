import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A Matrix push gateway for tests and benchmarks: it answers
/// `POST /_matrix/push/v1/notify` after a configurable delay, as Sygnal does after its round
/// trip to APNs or FCM, and counts what it receives.
///
/// HTTP/1.1 with keep-alive, on SwiftNIO, so it holds 10,000 and more open requests at once
/// (raise the descriptor limit first: ``start(host:port:delay:keepBodies:)`` does).
///
/// Wait for what the gateway has seen with ``waitUntil(timeout:_:)``, never with a sleep. Any
/// other path, or another method, is answered 404 at once and not counted.
///
/// Trap: call ``stop()`` when done; its event-loop threads live until then.
public final class DelayGateway: Sendable {
    /// The notify URL to give a pusher, `http://host:port/_matrix/push/v1/notify`.
    public let url: String
    /// The port it listens on (the one chosen when started with port 0).
    public let port: Int

    let recorder: Recorder
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel

    private init(url: String, port: Int, recorder: Recorder, group: MultiThreadedEventLoopGroup, serverChannel: any Channel) {
        self.url = url
        self.port = port
        self.recorder = recorder
        self.group = group
        self.serverChannel = serverChannel
    }

    /// Starts listening on `host:port` (port 0: a free one) and returns once it accepts connections.
    ///
    /// - Parameters:
    ///   - delay: the latency of every answer until ``setMode(_:)`` changes it.
    ///   - keepBodies: keep every body for ``bodies()`` (pushkeys are always kept); turn it off
    ///     for runs of hundreds of thousands of pushes.
    /// - Throws: if the address cannot be bound.
    public static func start(host: String = "127.0.0.1", port: Int = 0, delay: Latency = .fixed(ms: 100),
                             keepBodies: Bool = true) async throws -> DelayGateway {
        raiseOpenFileLimit()
        let recorder = Recorder(mode: Mode(latency: delay), keepBodies: keepBodies)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: min(2, System.coreCount))
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(NotifyHandler(recorder: recorder))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        let bound = channel.localAddress?.port ?? port
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return DelayGateway(url: "http://\(hostPart):\(bound)\(NotifyHandler.notifyPath)", port: bound,
                            recorder: recorder, group: group, serverChannel: channel)
    }

    /// Closes the listener and every connection (requests still waiting get no answer) and
    /// stops the event-loop threads. Waiters still waiting time out as usual.
    public func stop() async {
        try? await serverChannel.close()
        try? await group.shutdownGracefully()
    }

    // MARK: mode

    /// The current mode (a ``Mode/failure`` whose count is used up shows as nil).
    public var mode: Mode { recorder.mode }

    /// Replaces the mode for requests that arrive from now on; a failure's count starts again.
    /// Requests held by ``Latency/hold`` are released with the new latency (if it is not
    /// `hold` too); requests already scheduled keep the delay they were given.
    public func setMode(_ mode: Mode) {
        recorder.setMode(mode)
    }

    /// Shorthand for ``setMode(_:)`` with only the latency changed.
    public func setLatency(_ latency: Latency) {
        var m = mode
        m.latency = latency
        setMode(m)
    }

    // MARK: what arrived

    public func stats() -> Stats { recorder.stats }

    /// The notify bodies received, decoded, in arrival order (empty unless `keepBodies`).
    public func bodies() -> [[String: Any]] {
        recorder.bodies.compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }

    /// The notify bodies received, as sent, in arrival order (empty unless `keepBodies`).
    public func rawBodies() -> [Data] { recorder.bodies }

    /// `notification.devices[0].pushkey` of each notify request, in arrival order.
    public func pushkeys() -> [String] { recorder.pushkeys }

    /// How many notify requests arrived for `pushkey` (as `devices[0]`).
    public func count(for pushkey: String) -> Int { recorder.countsByPushkey[pushkey] ?? 0 }

    /// Notify requests for `pushkey` (as `devices[0]`) in flight now.
    public func inFlight(for pushkey: String) -> Int { recorder.inFlight(for: pushkey) }

    /// The most notify requests for `pushkey` (as `devices[0]`) in flight at once since the
    /// start or the last ``reset()``.
    public func peakInFlight(for pushkey: String) -> Int { recorder.peakInFlight(for: pushkey) }

    /// Notify requests per pushkey (as `devices[0]`).
    public func counts() -> [String: Int] { recorder.countsByPushkey }

    /// Zeroes the counters and forgets bodies and pushkeys. Requests in flight stay counted in
    /// `inFlight` (and start the new `peakInFlight`); the mode is unchanged.
    public func reset() { recorder.reset() }

    // MARK: waiting

    /// Returns as soon as `condition` holds for the counters (checked now and on every change).
    ///
    /// Trap: `condition` runs under the gateway's lock; it must not call the gateway.
    ///
    /// - Throws: ``TimedOut`` with the last counters if it does not hold within `timeout`;
    ///   `CancellationError` if the calling task is cancelled.
    public func waitUntil(timeout: Duration = .seconds(30), _ condition: @escaping @Sendable (Stats) -> Bool) async throws {
        let id = recorder.makeWaiterID()
        let recorder = self.recorder
        let timer = Task {
            try await Task.sleep(for: timeout)
            recorder.failWaiter(id) { TimedOut(timeout: timeout, stats: $0) }
        }
        defer { timer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                recorder.addWaiter(id, condition, continuation)
                if Task.isCancelled { recorder.failWaiter(id) { _ in CancellationError() } }
            }
        } onCancel: {
            recorder.failWaiter(id) { _ in CancellationError() }
        }
    }

    /// Waits until at least `count` notify requests have arrived.
    public func waitUntil(received count: Int, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil(timeout: timeout) { $0.received >= count }
    }

    /// Waits until at least `count` notify requests are in flight at once.
    public func waitUntil(inFlight count: Int, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil(timeout: timeout) { $0.inFlight >= count }
    }

    /// Waits until at least `count` notify requests have been answered.
    public func waitUntil(answered count: Int, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil(timeout: timeout) { $0.answered >= count }
    }
}
