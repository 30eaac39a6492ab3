@testable import PushlogSynapse
import Testing

@Suite("Synapse follower: shards")
struct ShardTests {
    @Test("the shard hash is Python's int.from_bytes(sha256(user_id), 'little') % N", arguments: [
        // Computed with CPython: hashlib.sha256(u.encode("utf8")).digest(), then % 2, 3, 7, 1000003.
        ("@alice:example.org", [0, 0, 3, 661_774]),
        ("@bob:example.org", [1, 2, 0, 266_730]),
        ("@user0:localhost", [1, 0, 2, 618_463]),
        ("@élève:example.org", [1, 0, 1, 85_148]),
    ])
    func pythonHash(user: String, expected: [Int]) {
        #expect([2, 3, 7, 1_000_003].map { Shard.instance(of: user, count: $0) } == expected)
    }

    @Test("k/N is parsed, and 0/1 owns everyone")
    func parse() {
        #expect(Shard(parsing: "2/3") == Shard(index: 2, count: 3))
        #expect(Shard(parsing: "3/3") == nil && Shard(parsing: "1") == nil && Shard(parsing: "0/0") == nil)
        #expect(Shard.all.owns("@anyone:example.org"))
        #expect(Shard(index: 2, count: 3).owns("@bob:example.org") && !Shard(index: 0, count: 3).owns("@bob:example.org"))
    }

    @Test("database URLs: PostgreSQL with user, port and socket directory; SQLite with an absolute path")
    func urls() throws {
        #expect(try SynapseDatabaseURL(parsing: "sqlite:///var/lib/synapse/homeserver.db") == .sqlite(path: "/var/lib/synapse/homeserver.db"))
        guard case .postgres(let p) = try SynapseDatabaseURL(parsing: "postgresql://ro:pw@db:5433/synapse") else {
            Issue.record("not postgres")
            return
        }
        #expect(p.user == "ro" && p.password == "pw" && p.host == "db" && p.port == 5433 && p.database == "synapse")
        #expect("\(SynapseDatabaseURL.postgres(p))" == "postgresql://ro@db:5433/synapse")
        guard case .postgres(let s) = try SynapseDatabaseURL(parsing: "postgres://ro@/synapse?host=/run/postgresql") else {
            Issue.record("not postgres")
            return
        }
        #expect(s.socketDirectory == "/run/postgresql" && s.port == 5432)
        #expect(throws: SynapseDatabaseURL.Invalid.self) { try SynapseDatabaseURL(parsing: "sqlite://relative.db") }
        #expect(throws: SynapseDatabaseURL.Invalid.self) { try SynapseDatabaseURL(parsing: "postgresql://db/synapse") }
    }
}
