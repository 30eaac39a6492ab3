import Foundation

/// `source.synapse.database`: `postgresql://user[:password]@host[:port]/database` (also
/// `postgres://`; `?host=/socket/dir` for a Unix socket) or `sqlite:///path/homeserver.db`.
public enum SynapseDatabaseURL: Sendable, Equatable, CustomStringConvertible {
    case postgres(Postgres)
    case sqlite(path: String)

    public struct Postgres: Sendable, Equatable {
        public var user: String
        public var password: String?
        public var host: String
        public var port: Int
        public var database: String
        /// A directory holding the server's Unix socket, instead of TCP to `host`.
        public var socketDirectory: String?
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    public init(parsing text: String) throws {
        if text.hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard path.hasPrefix("/"), path.count > 1 else {
                throw Invalid(message: "a SQLite URL needs an absolute path: sqlite:///path/homeserver.db")
            }
            self = .sqlite(path: path.removingPercentEncoding ?? path)
            return
        }
        guard let c = URLComponents(string: text), let scheme = c.scheme, ["postgresql", "postgres"].contains(scheme) else {
            throw Invalid(message: "must start with postgresql:// or sqlite:///")
        }
        let database = String(c.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw Invalid(message: "names no database: postgresql://user@host:port/database") }
        guard let user = c.user, !user.isEmpty else { throw Invalid(message: "names no user: postgresql://user@host:port/database") }
        let socket = c.queryItems?.first(where: { $0.name == "host" })?.value
        let host = c.host ?? ""
        guard !host.isEmpty || socket != nil else { throw Invalid(message: "names no host") }
        if let port = c.port, !(1...65535).contains(port) { throw Invalid(message: "has a port out of range") }
        self = .postgres(Postgres(user: user, password: c.password, host: host.isEmpty ? "localhost" : host,
                                  port: c.port ?? 5432, database: database, socketDirectory: socket))
    }

    /// The URL without its password, for log lines.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite://\(path)"
        case .postgres(let p): "postgresql://\(p.user)@\(p.socketDirectory ?? p.host):\(p.port)/\(p.database)"
        }
    }
}
