import Foundation
@testable import PushlogSynapse

/// A PostgreSQL cluster of Debian's packages, in a temp directory, started once for the test
/// run (as the `postgres` user when the tests run as root) and stopped when the process exits.
/// Synapse's schema is made once, by Synapse's code, in a template database; each test gets a
/// copy. A read-only role `pushlog_ro` gets the grants docs/synapse.md gives.
actor PostgresCluster {
    static let shared = PostgresCluster()
    private(set) var port = 0
    private var dir = ""
    private var ready = false
    private var databases = 0

    static func bin(_ name: String) -> String {
        for version in ["17", "16", "15", "14", "13"] {
            let p = "/usr/lib/postgresql/\(version)/bin/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return name
    }

    static var asRoot: Bool { getuid() == 0 }

    /// Runs a PostgreSQL tool as the cluster's owner.
    @discardableResult
    static func pg(_ tool: String, _ args: [String], detached: Bool = false) throws -> String {
        if asRoot { return try run("/usr/sbin/runuser", ["-u", "postgres", "--", bin(tool)] + args, detached: detached) }
        return try run(bin(tool), args, detached: detached)
    }

    /// The read-only role's grants, as docs/synapse.md gives them.
    static let readOnlyGrants = """
        GRANT USAGE ON SCHEMA public TO pushlog_ro;
        GRANT SELECT ON pushers, deleted_pushers, event_push_actions, events, event_json, room_stats_state,
          room_stats_current, current_state_events, room_memberships, receipts_linearized TO pushlog_ro;
        """

    func start() throws {
        if ready { return }
        dir = tempDir("pg")
        if Self.asRoot {
            try run("/bin/chown", ["-R", "postgres:postgres", dir])
            try run("/bin/chmod", ["755", NSTemporaryDirectory()])
        }
        try Self.pg("initdb", ["-D", "\(dir)/data", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        port = closedPortNumber()
        try Self.pg("pg_ctl", ["-D", "\(dir)/data", "-l", "\(dir)/log", "-w", "-t", "60", "start",
                               "-o", "-k \(dir) -p \(port) -c listen_addresses=127.0.0.1 -c fsync=off"], detached: true)
        PostgresCluster.registerStop(dataDir: "\(dir)/data")
        try psql("postgres", "CREATE DATABASE synapse_template ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0;")
        try run(try synapsePython(), ["\(repoRoot)/Tools/synapse-schema.py", "postgres",
                                      "host=127.0.0.1 port=\(port) user=postgres dbname=synapse_template"])
        try psql("postgres", "CREATE ROLE pushlog_ro LOGIN PASSWORD 'ro-secret'; ALTER ROLE pushlog_ro SET default_transaction_read_only = on;")
        try psql("synapse_template", Self.readOnlyGrants)
        ready = true
    }

    func psql(_ db: String, _ sql: String) throws {
        try Self.pg("psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
    }

    /// A new database with Synapse's schema.
    func database() throws -> String {
        try start()
        databases += 1
        let name = "synapse_\(databases)"
        try psql("postgres", "CREATE DATABASE \(name) TEMPLATE synapse_template;")
        return name
    }

    func stop() throws { try Self.pg("pg_ctl", ["-D", "\(dir)/data", "-m", "fast", "-w", "stop"]) }
    func restart() throws {
        try Self.pg("pg_ctl", ["-D", "\(dir)/data", "-l", "\(dir)/log", "-w", "-t", "60", "start",
                               "-o", "-k \(dir) -p \(port) -c listen_addresses=127.0.0.1 -c fsync=off"], detached: true)
    }

    nonisolated(unsafe) static var stopAtExit = ""
    static func registerStop(dataDir: String) {
        stopAtExit = dataDir
        atexit {
            _ = try? PostgresCluster.pg("pg_ctl", ["-D", PostgresCluster.stopAtExit, "-m", "immediate", "stop"])
        }
    }
}

/// A free TCP port number on 127.0.0.1.
func closedPortNumber() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

struct PostgresTestDatabase: SynapseTestDatabase {
    let name: String
    let port: Int

    static func make() async throws -> PostgresTestDatabase {
        let name = try await PostgresCluster.shared.database()
        return PostgresTestDatabase(name: name, port: await PostgresCluster.shared.port)
    }

    func url(user: String = "postgres", password: String? = nil) -> SynapseDatabaseURL.Postgres {
        SynapseDatabaseURL.Postgres(user: user, password: password, host: "127.0.0.1", port: port, database: name, socketDirectory: nil)
    }

    func writer() async throws -> SynapseWriter { SynapseWriter(db: PostgresSynapseSource(url: url(), timeout: 10)) }
    /// The follower reads as the read-only role of docs/synapse.md.
    func source() async throws -> any SynapseSource {
        PostgresSynapseSource(url: url(user: "pushlog_ro", password: "ro-secret"), timeout: 5)
    }
}
