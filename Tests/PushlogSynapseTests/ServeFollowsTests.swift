import Foundation
import PushlogCore
@testable import PushlogSynapse
import Testing
import TestSupport

@Suite("serve follows Synapse (source.synapse.database)", .serialized)
struct ServeFollowsTests {
    @Test("serve follows a SQLite Synapse; kill -9 mid-follow and a restart: every notification once, metrics live")
    func killAndRestart() async throws {
        let db = try await SQLiteTestDatabase.make()
        let w = try await db.writer()
        let dataDir = tempDir("serve") + "/data"
        let env = ["PUSHLOG_SOURCE_SYNAPSE_DATABASE": "sqlite://\(db.path)", "PUSHLOG_SOURCE_SYNAPSE_POLL_INTERVAL": "20ms"]
        try await w.pusher(id: 1, user: "@alice:example.org", url: "http://127.0.0.1:\(closedPort())/_matrix/push/v1/notify")
        var serve = try ServeProcess(dataDir: dataDir, environment: env)
        // The first start imports what is already there as history, then alice's pusher at the
        // head: the messages must come after it (written before, they would be history, not
        // pending), so wait for the pusher's import before writing them.
        let firstPort = serve.port
        #expect(try await eventuallyAsync(timeout: 30) {
            try rawHTTP(port: firstPort, method: "GET", target: "/metrics").body.contains(#"pushlog_source_position{stream="pushers"} 1"#)
        })
        for so in Int64(1)...25 { try await w.message(so, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"]) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(serve.stop(SIGKILL) == .signalled(SIGKILL))
        for so in Int64(26)...50 { try await w.message(so, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"]) }
        serve = try ServeProcess(dataDir: dataDir, environment: env)
        let port = serve.port
        #expect(try await eventuallyAsync(timeout: 30) {
            try rawHTTP(port: port, method: "GET", target: "/metrics").body.contains(#"pushlog_source_position{stream="push_actions"} 50"#)
        })
        let metrics = try rawHTTP(port: port, method: "GET", target: "/metrics").body
        #expect(metrics.contains("pushlog_source_lag_seconds") && metrics.contains("pushlog_source_errors_total"))
        #expect(metrics.contains(#"name="synapse_follower""#))
        #expect(serve.stop(SIGTERM) == .exited(0))
        let store = try Store(dataDir: dataDir)
        #expect(try notifications(store).map(\.streamOrdering) == Array(1...50))
        let alice = PusherID(userID: "@alice:example.org", appID: "com.example.app", pushkey: "key")
        #expect(try #require(try store.read { view in try view.pusherState(alice) }).pending == 50)
        store.close()
    }

    @Test("pushlog follow synapse --once catches up and exits; a bad URL is exit 64")
    func followOnce() async throws {
        let db = try await SQLiteTestDatabase.make()
        let w = try await db.writer()
        try await w.pusher(id: 1, user: "@alice:example.org")
        for so in Int64(1)...3 { try await w.message(so, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"]) }
        let dataDir = tempDir("once") + "/data"
        let out = try run(try pushlogBinary(), ["follow", "synapse", "--database", "sqlite://\(db.path)", "--once", "--data-dir", dataDir])
        #expect(out.contains("caught up"))
        let store = try Store(dataDir: dataDir, options: StoreOptions(createIfMissing: false))
        #expect(try notifications(store).count == 3)
        store.close()
        #expect(throws: (any Error).self) {
            try run(try pushlogBinary(), ["follow", "synapse", "--database", "mysql://x", "--once", "--data-dir", dataDir])
        }
    }
}
