import Hummingbird
import PushlogCore

extension PushlogAPI {
    static let defaultPageSize = 100
    static let maxPageSize = 1000

    /// `GET /v1/pushers?user_id=U` → `{"pushers": [PusherState…]}`: every pusher of U. Without
    /// `user_id`, every pusher, a page at a time: `limit` (default 100, at most 1000) from `from`,
    /// and `next_from` to pass as `from` for the next page (null on the last page). `from` and
    /// `limit` are checked even beside `user_id`, which ignores them: a malformed one is a 400.
    func listPushers(_ request: Request) throws -> JSONResponse {
        let from = try Fields.queryInt(request, "from", in: 0...Int.max) ?? 0
        let limit = try Fields.queryInt(request, "limit", in: 1...Int.max).map { min($0, Self.maxPageSize) } ?? Self.defaultPageSize
        if let user = try Fields.query(request, "user_id", .userID) {
            var pushers: [JSON] = []
            try store.read { view in try view.forEachPusherState(user: user) { pushers.append($0.json); return true } }
            return JSONResponse(.object(["pushers": .array(pushers)]))
        }
        // `from` is an index into the pushers in key order: a page may shift when pushers are
        // added or removed between calls, as with any offset paging.
        var pushers: [JSON] = []
        var index = 0
        var more = false
        try store.read { view in try view.forEachPusherState { state in
            defer { index += 1 }
            if index < from { return true }
            if pushers.count == limit { more = true; return false }
            pushers.append(state.json)
            return true
        } }
        let next: JSON = more ? .string(String(from + limit)) : .null
        return JSONResponse(.object(["pushers": .array(pushers), "next_from": next]))
    }
}
