import CLMDB

/// The one error the LMDB layer throws: what LMDB said (`code`, its message) and what we were
/// doing when it said it (`operation`, and the database when there is one).
public struct LMDBError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32
    public let operation: String
    public let database: String?

    public init(code: Int32, operation: String, database: String? = nil) {
        self.code = code
        self.operation = operation
        self.database = database
    }

    public var message: String { String(cString: mdb_strerror(code)) }

    public var description: String {
        var s = "LMDB \(operation)"
        if let database { s += " on '\(database)'" }
        return s + ": \(message) (\(code))"
    }

    public static let notFound = MDB_NOTFOUND
    public static let mapFull = MDB_MAP_FULL
    public static let mapResized = MDB_MAP_RESIZED
    public static let keyExists = MDB_KEYEXIST

    public var isMapFull: Bool { code == MDB_MAP_FULL }
}

@inline(__always)
func check(_ rc: Int32, _ operation: @autoclosure () -> String, _ database: @autoclosure () -> String? = nil) throws {
    if rc != 0 { throw LMDBError(code: rc, operation: operation(), database: database()) }
}
