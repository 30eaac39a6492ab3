import Hummingbird
import PushlogCore

/// Reading optional fields of a JSON body or query string, the error naming the field.
enum Fields {
    static func nonNegativeInt(_ o: [String: JSON], _ field: String) throws -> Int64? {
        guard let v = o[field], !v.isNull else { return nil }
        guard case .int(let i) = v else {
            throw APIError.badRequest(.badJSON, "\(field): must be an integer, not \(v.typeName)")
        }
        guard i >= 0 else { throw APIError.invalid(field, "must not be negative") }
        return i
    }

    static func string(_ o: [String: JSON], _ field: String) throws -> String? {
        guard let v = o[field], !v.isNull else { return nil }
        guard case .string(let s) = v else {
            throw APIError.badRequest(.badJSON, "\(field): must be a string, not \(v.typeName)")
        }
        return s
    }

    /// A query parameter that, when given, must not be empty.
    static func query(_ request: Request, _ name: String) throws -> String? {
        guard let v = request.uri.queryParameters[name[...]] else { return nil }
        guard !v.isEmpty else { throw APIError.invalid(name, "must not be empty") }
        return String(v)
    }

    /// The kinds of id a query or filter names, checked with a body's bounds: each becomes (part
    /// of) a store key, which must not outgrow LMDB's limit.
    enum IDKind {
        case userID, appID, pushkey

        func check(_ s: String, field: String) throws {
            do {
                switch self {
                case .userID: try EntryDecoder.checkID(s, field: field)
                case .appID: try EntryDecoder.checkAppID(s, field: field)
                case .pushkey: try EntryDecoder.checkPushkey(s, field: field)
                }
            } catch let e as InputError {
                throw APIError(e)
            }
        }
    }

    /// A query parameter holding an id: absent, or within that id's bounds.
    static func query(_ request: Request, _ name: String, _ kind: IDKind) throws -> String? {
        guard let v = try query(request, name) else { return nil }
        try kind.check(v, field: name)
        return v
    }

    /// A body field holding an id: absent, or a string within that id's bounds.
    static func string(_ o: [String: JSON], _ field: String, _ kind: IDKind) throws -> String? {
        guard let v = try string(o, field) else { return nil }
        try kind.check(v, field: field)
        return v
    }

    static func queryInt(_ request: Request, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let s = try query(request, name) else { return nil }
        guard let n = Int(s), range.contains(n) else {
            throw APIError.invalid(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }
}
