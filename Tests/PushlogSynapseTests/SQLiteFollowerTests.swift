import Foundation
import PushlogCore
@testable import PushlogSynapse
import Testing

/// Synapse on SQLite: its own schema (made by Synapse's code), in WAL mode, written by a
/// read-write connection while the follower reads through its read-only one.
struct SQLiteTestDatabase: SynapseTestDatabase {
    let path: String

    static func make() async throws -> SQLiteTestDatabase {
        let path = tempDir("sqlite") + "/homeserver.db"
        try await SQLiteTemplate.shared.copy(to: path)
        return SQLiteTestDatabase(path: path)
    }

    func writer() async throws -> SynapseWriter { SynapseWriter(db: try await SQLiteSynapseSource.openWritable(path: path)) }
    func source() async throws -> any SynapseSource { try await SQLiteSynapseSource.open(path: path) }
}

@Suite("Synapse follower on SQLite", .serialized)
struct SQLiteFollowerTests {
    @Test("pushers, push actions with their context, and receipts are followed")
    func followed() async throws { try await FollowerScenarios.followed(try await SQLiteTestDatabase.make()) }

    @Test("a lower stream ordering committed after a higher one was read is appended and delivered")
    func lateCommit() async throws { try await FollowerScenarios.lateCommit(try await SQLiteTestDatabase.make()) }

    @Test("a push action whose event is gone is passed over, and the event after it arrives")
    func eventGone() async throws { try await FollowerScenarios.eventGone(try await SQLiteTestDatabase.make()) }

    @Test("catching up, a late row is appended once and the window closes behind the rows read once lateness has passed")
    func lateCommitWhileCatchingUp() async throws { try await FollowerScenarios.lateCommitWhileCatchingUp(try await SQLiteTestDatabase.make()) }

    @Test("following live with the whole-window count spaced out, a late row is appended once it leaves the window")
    func lateCommitBetweenWindowChecks() async throws { try await FollowerScenarios.lateCommitBetweenWindowChecks(try await SQLiteTestDatabase.make()) }

    @Test("a batch read ahead is taken only from the positions it was read for")
    func readAhead() async throws { try await FollowerScenarios.readAhead(try await SQLiteTestDatabase.make()) }

    @Test("a restart resumes without a gap and without appending twice")
    func restart() async throws { try await FollowerScenarios.restart(try await SQLiteTestDatabase.make()) }

    @Test("2 and 3 shards: every push lands in exactly one instance", arguments: [2, 3])
    func shards(count: Int) async throws { try await FollowerScenarios.shards(try await SQLiteTestDatabase.make(), count: count) }

    @Test("a deleted pusher is removed; a rejected one stays removed until Synapse gives it a new id")
    func deleted() async throws { try await FollowerScenarios.deletedAndRejected(try await SQLiteTestDatabase.make()) }

    @Test("the first start imports 7 days of push actions and the receipts, then the pushers at the head")
    func firstStart() async throws { try await FollowerScenarios.firstStart(try await SQLiteTestDatabase.make()) }

    @Test("a first start read in batches smaller than one event's users lands every notification once, as one batch would")
    func firstStartInBatches() async throws { try await FollowerScenarios.firstStartInBatches(try await SQLiteTestDatabase.make()) }

    @Test("a database that is not there is an error naming it, not a hang")
    func missing() async throws {
        await #expect(throws: SynapseSourceError.self) { try await SQLiteSynapseSource.open(path: "/nonexistent/homeserver.db") }
    }
}
