import Foundation

/// One value of a row read from Synapse's database, whatever the engine.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)

    public var int: Int64? {
        switch self {
        case .int(let v): v
        case .double(let d): Int64(d)
        case .text(let s): Int64(s)
        case .null: nil
        }
    }

    public var text: String? {
        switch self {
        case .text(let s): s
        case .int(let v): String(v)
        case .double(let d): String(d)
        case .null: nil
        }
    }

    /// SQLite stores booleans as 0/1, PostgreSQL as `boolean` (read as 0/1 too).
    public var bool: Bool? { int.map { $0 != 0 } }
}

public typealias SQLRow = [SQLValue]

/// Which SQL a source speaks, where the two engines differ.
public enum SQLDialect: Sendable {
    case postgres, sqlite
}

/// Read access to a Synapse database. The follower asks only for rows, by SQL written for both
/// engines: parameters are `$1`, `$2`, … in order of first use.
///
/// Every call sees what was committed when it started (a fresh read transaction); an
/// implementation reconnects after a lost connection on the next call, and never waits longer
/// than its timeout.
public protocol SynapseSource: Sendable {
    var dialect: SQLDialect { get }
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    /// Closes the connection; the source must not be used after.
    func close() async
    /// What to call it in log lines and errors (the URL without a password).
    var description: String { get }
}

public struct SynapseSourceError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Runs `body`, failing with `SynapseSourceError` after `seconds`: a database that stops
/// answering must not hang the follower (postgres-nio's connect and queries have no deadline
/// of their own).
func withTimeout<T: Sendable>(_ seconds: Double, _ what: String,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            throw SynapseSourceError("\(what): no answer within \(seconds) s")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Opens the source a `source.synapse.database` URL names.
public enum SynapseSources {
    public static func open(_ url: SynapseDatabaseURL, password: String? = nil,
                            timeout: Double = 10) async throws -> any SynapseSource {
        switch url {
        case .sqlite(let path):
            return try await SQLiteSynapseSource.open(path: path, timeout: timeout)
        case .postgres(let pg):
            var pg = pg
            if let password { pg.password = password }
            return PostgresSynapseSource(url: pg, timeout: timeout)
        }
    }
}
