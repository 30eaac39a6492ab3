import Foundation
import PushlogCore
@testable import PushlogSynapse
import Testing

@Suite("Synapse follower on PostgreSQL", .serialized)
struct PostgresFollowerTests {
    @Test("pushers, push actions with their context, and receipts are followed (as the read-only role)")
    func followed() async throws { try await FollowerScenarios.followed(try await PostgresTestDatabase.make()) }

    @Test("a lower stream ordering committed after a higher one was read is appended and delivered")
    func lateCommit() async throws { try await FollowerScenarios.lateCommit(try await PostgresTestDatabase.make()) }

    @Test("a push action whose event is gone is passed over, and the event after it arrives")
    func eventGone() async throws { try await FollowerScenarios.eventGone(try await PostgresTestDatabase.make()) }

    @Test("catching up, a late row is appended once and the window closes behind the rows read once lateness has passed")
    func lateCommitWhileCatchingUp() async throws { try await FollowerScenarios.lateCommitWhileCatchingUp(try await PostgresTestDatabase.make()) }

    @Test("following live with the whole-window count spaced out, a late row is appended once it leaves the window")
    func lateCommitBetweenWindowChecks() async throws { try await FollowerScenarios.lateCommitBetweenWindowChecks(try await PostgresTestDatabase.make()) }

    @Test("a batch read ahead is taken only from the positions it was read for")
    func readAhead() async throws { try await FollowerScenarios.readAhead(try await PostgresTestDatabase.make()) }

    @Test("a restart resumes without a gap and without appending twice")
    func restart() async throws { try await FollowerScenarios.restart(try await PostgresTestDatabase.make()) }

    @Test("2 and 3 shards: every push lands in exactly one instance", arguments: [2, 3])
    func shards(count: Int) async throws { try await FollowerScenarios.shards(try await PostgresTestDatabase.make(), count: count) }

    @Test("a deleted pusher is removed; a rejected one stays removed until Synapse gives it a new id")
    func deleted() async throws { try await FollowerScenarios.deletedAndRejected(try await PostgresTestDatabase.make()) }

    @Test("the first start imports 7 days of push actions and the receipts, then the pushers at the head")
    func firstStart() async throws { try await FollowerScenarios.firstStart(try await PostgresTestDatabase.make()) }

    @Test("a first start read in batches smaller than one event's users lands every notification once, as one batch would")
    func firstStartInBatches() async throws { try await FollowerScenarios.firstStartInBatches(try await PostgresTestDatabase.make()) }

    @Test("the read-only role cannot write")
    func readOnly() async throws {
        let db = try await PostgresTestDatabase.make()
        let source = try await db.source()
        await #expect(throws: (any Error).self) { _ = try await source.query("DELETE FROM pushers", []) }
        await source.close()
    }

    @Test("PostgreSQL stopped for 10 s: the follower retries, and nothing is lost")
    func outage() async throws {
        let db = try await PostgresTestDatabase.make()
        let w = try await db.writer()
        let store = try FollowerScenarios.store("outage")
        try await w.pusher(id: 1, user: "@alice:example.org")
        let follower = SynapseFollower(store: store, source: try await db.source(), options: testOptions())
        let running = Task { await follower.run() }
        #expect(try await eventuallyAsync { try store.sourcePositions()["synapse.pushers"] != nil })
        for so in Int64(1)...5 { try await w.message(so, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"]) }
        await w.db.close()
        try await PostgresCluster.shared.stop()
        let t0 = Date()
        try await Task.sleep(for: .seconds(10))
        try await PostgresCluster.shared.restart()
        let w2 = try await db.writer()
        for so in Int64(6)...10 { try await w2.message(so, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"]) }
        #expect(try await eventuallyAsync(timeout: 60) { try notifications(store).count == 10 })
        #expect(try notifications(store).map(\.streamOrdering) == Array(1...10))
        #expect(Date().timeIntervalSince(t0) >= 10)
        running.cancel()
        await running.value
        await w2.db.close()
        store.close()
    }
}

func eventuallyAsync(timeout: Double = 10, _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}
