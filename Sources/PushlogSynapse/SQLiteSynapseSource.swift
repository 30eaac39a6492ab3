#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SQLiteNIO

/// Synapse on SQLite (its default). Opened read-only but not `immutable`: Synapse keeps the
/// database in WAL mode, and only a connection that reads the WAL sees its latest commits. Each
/// query runs in its own (autocommit) read transaction, so every poll sees what was committed
/// before it; a busy timeout rides over Synapse's checkpoints.
public final class SQLiteSynapseSource: SynapseSource {
    let connection: SQLiteConnection
    let timeout: Double
    public let description: String
    public var dialect: SQLDialect { .sqlite }

    init(connection: SQLiteConnection, path: String, timeout: Double) {
        self.connection = connection
        self.timeout = timeout
        description = "sqlite://\(path)"
    }

    public static func open(path: String, timeout: Double = 10) async throws -> SQLiteSynapseSource {
        guard FileManagerLite.exists(path) else { throw SynapseSourceError("sqlite://\(path): no such file") }
        let uri = "file:\(percentEncodedPath(path))?mode=ro"
        let connection = try await withTimeout(timeout, "sqlite://\(path): open") {
            try await SQLiteConnection.open(storage: .file(path: uri))
        }
        _ = try await connection.query("PRAGMA busy_timeout = \(Int(timeout * 1000))")
        return SQLiteSynapseSource(connection: connection, path: path, timeout: timeout)
    }

    static func percentEncodedPath(_ path: String) -> String {
        var out = ""
        for ch in path.unicodeScalars {
            switch ch {
            case "?", "#", "%": out += "%" + String(ch.value, radix: 16, uppercase: true)
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let data: [SQLiteData] = binds.map {
            switch $0 {
            case .null: .null
            case .int(let v): .integer(Int(v))
            case .double(let d): .float(d)
            case .text(let s): .text(s)
            }
        }
        let connection = self.connection
        let rows = try await withTimeout(timeout, "\(description): query") {
            try await connection.query(sql, data)
        }
        return rows.map { row in
            row.columns.map { column in
                switch column.data {
                case .integer(let v): .int(Int64(v))
                case .float(let d): .double(d)
                case .text(let s): .text(s)
                case .blob(let b): .text(String(buffer: b))
                case .null: .null
                }
            }
        }
    }

    public func close() async { try? await connection.close() }

    /// A source dropped without ``close()`` still closes its connection (sqlite-nio asserts
    /// otherwise); the close runs on the connection's thread pool, which holds it until then.
    deinit { _ = connection.close() }
}

enum FileManagerLite {
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }
}
