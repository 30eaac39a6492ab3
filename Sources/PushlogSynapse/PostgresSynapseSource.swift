import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Synapse on PostgreSQL (how it runs in production), through postgres-nio. Up to two
/// connections, each opened on first use and again after it is lost; connect and every query
/// have a deadline. Each query runs in its own transaction (autocommit), so every poll sees the
/// latest commits.
///
/// A query goes to an idle connection, the first one first: following live, one query at a
/// time, only the first connection is ever opened. A catch-up reads a batch while PostgreSQL
/// already makes the next one, on the second (a backend runs one query at a time).
public final class PostgresSynapseSource: SynapseSource, @unchecked Sendable {
    let url: SynapseDatabaseURL.Postgres
    let timeout: Double
    let logger = Logger(label: "pushlog.synapse.postgres")
    private let lock = NSLock()
    /// Per connection: the connection (nil until opened, or once lost), its opening under way,
    /// and its queries under way.
    private var lanes: [(connection: PostgresConnection?, connecting: Task<PostgresConnection, Error>?, busy: Int)] =
        [(nil, nil, 0), (nil, nil, 0)]
    private var nextID = 0
    public let description: String
    public var dialect: SQLDialect { .postgres }

    init(url: SynapseDatabaseURL.Postgres, timeout: Double) {
        self.url = url
        self.timeout = timeout
        description = SynapseDatabaseURL.postgres(url).description
    }

    /// Takes the connection for a query: the first idle one, else the least busy.
    private func takeLane() -> Int {
        locked {
            let lane = lanes.indices.first { lanes[$0].busy == 0 } ?? lanes.indices.min { lanes[$0].busy < lanes[$1].busy }!
            lanes[lane].busy += 1
            return lane
        }
    }

    /// The lane's connection; opened (once, however many queries wait for it) when there is none.
    private func connected(_ lane: Int) async throws -> PostgresConnection {
        let task = locked { () -> Task<PostgresConnection, Error>? in
            if let c = lanes[lane].connection, !c.isClosed { return nil }
            if let t = lanes[lane].connecting { return t }
            let t = Task { try await self.connect() }
            lanes[lane].connecting = t
            return t
        }
        guard let task else { return try locked { try lanes[lane].connection.unwrapped() } }
        do {
            let c = try await task.value
            let kept = locked { () -> Bool in
                guard lanes[lane].connecting == task else { return lanes[lane].connection === c }
                lanes[lane].connection = c
                lanes[lane].connecting = nil
                return true
            }
            guard kept else {
                // The source was closed meanwhile.
                c.close().whenComplete { _ in withExtendedLifetime(c) {} }
                throw SynapseSourceError("\(description): closed")
            }
            return c
        } catch {
            locked { if lanes[lane].connecting == task { lanes[lane].connecting = nil } }
            throw error
        }
    }

    private func connect() async throws -> PostgresConnection {
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
        return try await withTimeout(timeout, "\(description): connect") { [config] in
            try await PostgresConnection.connect(configuration: config, id: id, logger: logger)
        }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let lane = takeLane()
        defer { locked { lanes[lane].busy -= 1 } }
        let c = try await connected(lane)
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
            // The next query of this lane starts from a new connection.
            locked { if lanes[lane].connection === c { lanes[lane].connection = nil } }
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

    /// A source dropped without ``close()`` still closes its connections (postgres-nio asserts
    /// otherwise); each connection is kept until its channel has closed.
    deinit {
        for lane in lanes {
            if let c = lane.connection, !c.isClosed { c.close().whenComplete { _ in withExtendedLifetime(c) {} } }
        }
    }

    public func close() async {
        let open = locked { () -> [PostgresConnection] in
            defer { for i in lanes.indices { lanes[i].connection = nil; lanes[i].connecting = nil } }
            return lanes.compactMap(\.connection)
        }
        for c in open { try? await c.close() }
    }
}

private extension Optional {
    func unwrapped() throws -> Wrapped {
        guard let v = self else { throw SynapseSourceError("the connection was closed") }
        return v
    }
}
