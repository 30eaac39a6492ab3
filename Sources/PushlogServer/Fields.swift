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

    static func queryInt(_ request: Request, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let s = try query(request, name) else { return nil }
        guard let n = Int(s), range.contains(n) else {
            throw APIError.invalid(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }
}
