import Foundation
import Testing
import TestSupport

/// A Synapse on PostgreSQL that does not push, a `pushlog serve` following it, and a room where
/// alice writes to bob, whose pushers are `pushkeys` (all on the test gateway).
final class FollowedRoom {
    let synapse: SynapseServer
    let instance: SynapseServer.Instance
    let dataDir: String
    var serve: ServeProcess
    var room = ""

    init(pushkeys: [String]) async throws {
        synapse = try sharedSynapse.get()
        try synapse.gatewayMode()
        instance = try synapse.startSynapse(.postgresql, pushers: false)
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-synapse-\(UUID().uuidString)").path
        serve = try followingServe(instance, dataDir: dataDir)
        try synapse.register("alice", displayName: "Alice")
        try synapse.register("bob", displayName: "Bob")
        for key in pushkeys { try synapse.setPusher("bob", appID: "org.example", pushkey: key) }
        try await waitForPushers(Set(pushkeys))
        let since = try gatewayCount()
        room = try synapse.createRoom(by: "alice", name: "Faults", invite: ["@bob:localhost"])
        try synapse.join("bob", room)
        _ = try synapse.bodies(count: pushkeys.count, since: since, timeout: 30)   // the invite
    }

    deinit {
        serve.stop(SIGTERM)
        try? synapse.stopSynapse()
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    func gatewayCount() throws -> Int { try synapse.bodies(count: 0, timeout: 0).count }

    /// Waits until Pushlog's pushers are exactly `wanted` (a deletion or a rejection shows there).
    func waitForPushers(_ wanted: Set<String>, timeout: Double = 30) async throws {
        let port = serve.port
        let reached = try await eventually(timeout: timeout) { pushkeys(port: port) == wanted }
        #expect(reached, "Pushlog has pushers \(pushkeys(port: port).sorted()), not \(wanted.sorted())")
    }

    /// How often each "pushkey event_id" arrived among the bodies after `since`, waiting until
    /// every one of `expected` has (or `timeout`).
    func deliveries(since: Int, covering expected: Set<String>, timeout: Double = 60) throws -> [String: Int] {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [String: Int] = [:]
        repeat {
            let total = seen.values.reduce(0, +)
            let bodies = try synapse.bodies(count: total + 1, since: since, timeout: max(0.1, deadline.timeIntervalSinceNow))
            seen = [:]
            for body in bodies { if let id = body.eventID { seen["\(body.pushkey) \(id)", default: 0] += 1 } }
            if expected.isSubset(of: seen.keys) { break }
        } while Date() < deadline
        return seen
    }
}

extension RealSynapse {
    @Suite("real Synapse 1.163 followed by Pushlog: faults", .serialized)
    struct SynapseFaultTests {
        @Test("kill -9 of Pushlog mid-follow: every push arrives after the restart")
        func killNine() async throws {
            let f = try await FollowedRoom(pushkeys: ["pk-kill"])
            let since = try f.gatewayCount()
            var expected: Set<String> = []
            for i in 0..<30 {
                if i == 10 { f.serve.stop(SIGKILL) }           // messages 10…29 are written while it is down
                expected.insert("pk-kill " + (try f.synapse.send("alice", f.room, .plain("message \(i)"))))
            }
            f.serve = try followingServe(f.instance, dataDir: f.dataDir)
            let seen = try f.deliveries(since: since, covering: expected)
            #expect(expected.isSubset(of: seen.keys), "missing: \(expected.subtracting(seen.keys).sorted().prefix(5))")
        }

        @Test("PostgreSQL stopped for 10 s: nothing is lost once it is back, and serve keeps running")
        func postgresAway() async throws {
            let f = try await FollowedRoom(pushkeys: ["pk-pg"])
            let since = try f.gatewayCount()
            var expected: Set<String> = []
            for i in 0..<5 { expected.insert("pk-pg " + (try f.synapse.send("alice", f.room, .plain("before \(i)")))) }
            try f.synapse.stopPostgres()
            try await Task.sleep(for: .seconds(10))
            try f.synapse.startPostgres()
            #expect(f.serve.process.isRunning, "serve exited while PostgreSQL was away")
            // Synapse's own pool reconnects on its first failed query: retry the first send.
            var sent = false
            for _ in 0..<20 where !sent {
                if let id = try? f.synapse.send("alice", f.room, .plain("after 0")) { expected.insert("pk-pg " + id); sent = true } else { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(sent, "Synapse did not come back after PostgreSQL did")
            for i in 1..<5 { expected.insert("pk-pg " + (try f.synapse.send("alice", f.room, .plain("after \(i)")))) }
            let seen = try f.deliveries(since: since, covering: expected)
            #expect(expected.isSubset(of: seen.keys), "missing: \(expected.subtracting(seen.keys).sorted().prefix(5))")
        }

        @Test("a pusher deleted in Synapse gets no more pushes; the user's other pusher still does")
        func deletedPusher() async throws {
            let f = try await FollowedRoom(pushkeys: ["pk-keep", "pk-gone"])
            try f.synapse.deletePusher("bob", appID: "org.example", pushkey: "pk-gone")
            try await f.waitForPushers(["pk-keep"])
            let since = try f.gatewayCount()
            let id = try f.synapse.send("alice", f.room, .plain("after the deletion"))
            _ = try f.deliveries(since: since, covering: ["pk-keep \(id)"])
            try await Task.sleep(for: .seconds(2))   // what would have gone to pk-gone has had its time
            let keys = try f.synapse.bodies(count: 0, since: since, timeout: 0).map(\.pushkey)
            #expect(keys == ["pk-keep"], "pushed to \(keys)")
        }

        @Test("a pushkey the gateway rejects is removed, and stays removed until Synapse changes that pusher")
        func rejectedPushkey() async throws {
            let f = try await FollowedRoom(pushkeys: ["pk-ok", "pk-rejected"])
            try f.synapse.gatewayMode(reject: ["pk-rejected"])
            var since = try f.gatewayCount()
            let first = try f.synapse.send("alice", f.room, .plain("rejected once"))
            _ = try f.deliveries(since: since, covering: ["pk-ok \(first)", "pk-rejected \(first)"])
            try await f.waitForPushers(["pk-ok"])
            try f.synapse.gatewayMode()

            // Synapse's row is still there (Pushlog never writes to Synapse), and not pushed to.
            since = try f.gatewayCount()
            let second = try f.synapse.send("alice", f.room, .plain("after the rejection"))
            _ = try f.deliveries(since: since, covering: ["pk-ok \(second)"])
            try await Task.sleep(for: .seconds(2))
            #expect(try f.synapse.bodies(count: 0, since: since, timeout: 0).map(\.pushkey) == ["pk-ok"])
            let rows = try f.synapse.sql("SELECT count(*) FROM pushers WHERE pushkey = ?", ["pk-rejected"])
            #expect((rows.first?.first as? NSNumber)?.intValue == 1, "Synapse's row: \(rows)")

            // The client sets the pusher again: a new id in Synapse, so Pushlog takes it back.
            try f.synapse.setPusher("bob", appID: "org.example", pushkey: "pk-rejected")
            try await f.waitForPushers(["pk-ok", "pk-rejected"])
            since = try f.gatewayCount()
            let third = try f.synapse.send("alice", f.room, .plain("set again"))
            let seen = try f.deliveries(since: since, covering: ["pk-ok \(third)", "pk-rejected \(third)"])
            #expect(seen["pk-rejected \(third)"] != nil, "the pusher set again got nothing")
        }
    }
}
