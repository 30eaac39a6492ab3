import Hummingbird
import PushlogCore

/// `{"<key>": [item, …]}` decoded item by item; the first bad item fails the whole batch, its
/// error naming the index (`notifications[3].stream_ordering: must not be negative`).
enum Batch {
    static func decode<T>(_ body: JSON, key: String, _ decodeItem: (JSON) throws -> T) throws -> [T] {
        guard case .object(let o) = body else {
            throw APIError.badRequest(.badJSON, "body: must be a JSON object, not \(body.typeName)")
        }
        guard let value = o[key] else { throw APIError.missing(key) }
        guard case .array(let items) = value else {
            throw APIError.badRequest(.badJSON, "\(key): must be an array, not \(value.typeName)")
        }
        guard !items.isEmpty else { throw APIError.invalid(key, "must not be empty") }
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            do { out.append(try decodeItem(item)) } catch let e as InputError { throw APIError(e, under: "\(key)[\(i)]") }
        }
        return out
    }
}

/// The answer to an append: the positions the batch was given.
struct AppendResponse {
    var firstPos: UInt64
    var lastPos: UInt64

    var json: JSON { .object(["first_pos": .int(Int64(firstPos)), "last_pos": .int(Int64(lastPos))]) }
}
