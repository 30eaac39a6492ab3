import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Synapse on PostgreSQL (how it runs in production), through postgres-nio. One connection,
/// opened on first use and again after it is lost; connect and every query have a deadline.
/// Each query runs in its own transaction (autocommit), so every poll sees the latest commits.
public final class PostgresSynapseSource: SynapseSource, @unchecked Sendable {
    let url: SynapseDatabaseURL.Postgres
    let timeout: Double
    let logger = Logger(label: "pushlog.synapse.postgres")
    private let lock = NSLock()
    private var connection: PostgresConnection?
    private var nextID = 0
    public let description: String
    public var dialect: SQLDialect { .postgres }

    init(url: SynapseDatabaseURL.Postgres, timeout: Double) {
        self.url = url
        self.timeout = timeout
        description = SynapseDatabaseURL.postgres(url).description
    }

    func connected() async throws -> PostgresConnection {
        if let c = locked({ connection }), !c.isClosed { return c }
        var config: PostgresConnection.Configuration
        if let dir = url.socketDirectory {
            config = .init(unixSocketPath: "\(dir)/.s.PGSQL.\(url.port)", username: url.user, password: url.password,
                           database: url.database)
        } else {
            config = .init(host: url.host, port: url.port, username: url.user, password: url.password,
                           database: url.database, tls: .disable)
        }
        config.options.connectTimeout = .milliseconds(Int64(timeout * 1000))
        // No JIT compilation for this session. Catching up, the push-action query is planned
        // for the whole range up to the head before its LIMIT, and its per-event subqueries are
        // costed for every row, so its estimate passes the default `jit_above_cost` many times
        // over: with JIT on (PostgreSQL's default), a batch of 20,000 rows spent 0.7 s compiling
        // and took 0.83 s, against 0.1 s without. (Following live, near the head, the estimate
        // is small and JIT would not run.)
        config.options.additionalStartupParameters = [("jit", "off")]
        let id = locked { nextID += 1; return nextID }
        let logger = self.logger
        let c = try await withTimeout(timeout, "\(description): connect") { [config] in
            try await PostgresConnection.connect(configuration: config, id: id, logger: logger)
        }
        locked { connection = c }
        return c
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let c = try await connected()
        var bindings = PostgresBindings()
        for b in binds {
            switch b {
            case .null: bindings.append(Optional<String>.none)
            case .int(let v): bindings.append(v)
            case .double(let d): bindings.append(d)
            case .text(let s): bindings.append(s)
            }
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let logger = self.logger
        do {
            return try await withTimeout(timeout, "\(description): query") {
                var out: [SQLRow] = []
                for try await row in try await c.query(query, logger: logger) {
                    var values: SQLRow = []
                    values.reserveCapacity(row.count)  // grown one by one, a row was copied four times
                    for cell in row { values.append(try Self.value(cell)) }
                    out.append(values)
                }
                return out
            }
        } catch {
            // The next call starts from a new connection.
            locked { connection = nil }
            try? await c.close()
            throw error
        }
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2: return .int(Int64(try cell.decode(Int16.self)))
        case .int4: return .int(Int64(try cell.decode(Int32.self)))
        case .int8: return .int(try cell.decode(Int64.self))
        case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
        case .float4, .float8: return .double(try cell.decode(Double.self))
        default: return .text(try cell.decode(String.self))
        }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// A source dropped without ``close()`` still closes its connection (postgres-nio asserts
    /// otherwise); the connection is kept until its channel has closed.
    deinit {
        if let c = connection, !c.isClosed { c.close().whenComplete { _ in withExtendedLifetime(c) {} } }
    }

    public func close() async {
        let c = locked { () -> PostgresConnection? in
            defer { connection = nil }
            return connection
        }
        try? await c?.close()
    }
}
