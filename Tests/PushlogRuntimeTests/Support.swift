import Curl
import Foundation
import Logging
import PushlogCore
import TestSupport
@testable import PushlogRuntime

/// Runs `body` with a fresh ``Harness`` and closes it afterwards, also when `body` throws.
func withHarness<T>(config: PushConfig = Harness.fastConfig, storeOptions: StoreOptions = StoreOptions(),
                    _ body: (Harness) async throws -> T) async throws -> T {
    let h = try Harness(config: config, storeOptions: storeOptions)
    do {
        let result = try await body(h)
        await h.close()
        return result
    } catch {
        await h.close()
        throw error
    }
}

/// A store in a temp dir, a real gateway, a pool wired to both; use it through ``withHarness``,
/// which closes it.
final class Harness: @unchecked Sendable {
    let dir: String
    var store: Store
    let gateway: TestGateway
    let http: CurlClient
    let logs = LogCapture()
    var processes: BackgroundProcesses
    var pool: PusherPool
    var config: PushConfig

    init(config: PushConfig = Harness.fastConfig, storeOptions: StoreOptions = StoreOptions()) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-rt-\(UUID().uuidString)").path
        store = try Store(dataDir: dir, options: storeOptions)
        // As serve does: as many connections to a host as may be in flight to it.
        http = try CurlClient(maxConnectionsPerHost: config.maxInFlightPerHost, connectionCacheSize: config.maxInFlightPerHost)
        gateway = try TestGateway()
        self.config = config
        processes = BackgroundProcesses(logger: logs.logger)
        pool = PusherPool(store: store, http: http, processes: processes, config: config, logger: logs.logger)
    }

    static var fastConfig: PushConfig {
        var c = PushConfig()
        c.backoffInitialMS = 200
        c.backoffMaxMS = 2_000
        c.requestTimeoutMS = 2_000
        // The test gateway runs on 127.0.0.1, which the default blocklist blocks.
        c.addressPolicy.allowed = [IPRange("127.0.0.0/8")!]
        return c
    }

    /// A new pool (and process registry) on the same store, as after a restart.
    func restartPool() async {
        await pool.shutdown()
        processes = BackgroundProcesses(logger: logs.logger)
        pool = PusherPool(store: store, http: http, processes: processes, config: config, logger: logs.logger)
    }

    func close() async {
        await pool.shutdown()
        http.shutdown()
        store.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    @discardableResult
    func addPusher(user: String = "@alice:example.org", pushkey: String = "pk1", data: [String: JSON] = [:]) throws -> PusherID {
        let id = PusherID(userID: user, appID: "org.example.app", pushkey: pushkey)
        var d = data
        d["url"] = .string(gateway.url)
        try store.append([.pusherSet(PusherConfig(id: id, kind: .http, appDisplayName: "App", deviceDisplayName: "Phone",
                                                  data: d, append: true, createdTS: 1_732_899_000_000))])
        return id
    }

    /// Appends notifications and pokes the pool, as the API will.
    @discardableResult
    func notify(_ notes: [PushNotification]) throws -> AppendResult {
        let r = try store.append(notes.map(LogEntry.notification))
        pool.onNewNotifications(users: r.notifiedUsers)
        return r
    }

    @discardableResult
    func receipt(_ r: Receipt) throws -> AppendResult {
        let result = try store.append([.receipt(r)])
        pool.onNewReceipts(users: result.receiptUsers)
        return result
    }

    func state(_ id: PusherID) throws -> ConsumerState? { try store.read { view in try view.pusherState(id) }?.state }
}

func note(_ i: Int, user: String = "@alice:example.org", room: String = "!r:example.org", so: Int64? = nil,
          actions: [JSON] = [.string("notify")], type: String = "m.room.message", receivedTS: Int64 = SystemClock.nowMS(),
          context: [String: JSON]? = nil, stateKey: String? = nil, content: [String: JSON]? = nil) -> PushNotification {
    var event: [String: JSON] = ["type": .string(type), "sender": .string("@bob:example.org"),
                                 "content": .object(content ?? ["msgtype": .string("m.text"), "body": .string("message \(i)")])]
    if let stateKey { event["state_key"] = .string(stateKey) }
    return PushNotification(userID: user, roomID: room, eventID: "$e\(i)", streamOrdering: so ?? Int64(1000 + i),
                                    actions: actions, receivedTS: receivedTS, event: event, context: context)
}
