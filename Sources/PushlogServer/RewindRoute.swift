import Hummingbird
import PushlogCore

/// The body of `POST /v1/pushers/rewind`: where to rewind to (exactly one of `to_pos` and
/// `since_ts`), and which pushers (all when no filter is given).
struct RewindRequest {
    enum Target: Equatable {
        case pos(UInt64)
        case sinceTS(Int64)
    }

    var target: Target
    var filter: Store.RewindFilter

    init(_ o: [String: JSON]) throws {
        let toPos = try Fields.nonNegativeInt(o, "to_pos")
        let since = try Fields.nonNegativeInt(o, "since_ts")
        switch (toPos, since) {
        case (nil, nil): throw APIError.missing("to_pos or since_ts")
        case (.some, .some): throw APIError.invalid("to_pos", "give either to_pos or since_ts, not both")
        case (let pos?, nil): target = .pos(UInt64(pos))
        case (nil, let ts?): target = .sinceTS(ts)
        }
        filter = Store.RewindFilter(userID: try Fields.string(o, "user_id", .userID), appID: try Fields.string(o, "app_id", .appID),
                                    pushkey: try Fields.string(o, "pushkey", .pushkey))
    }
}

extension PushlogAPI {
    /// `POST /v1/pushers/rewind` → `{"rewound": n}`: moves matching cursors back so that those
    /// notifications are delivered again; a cursor is never moved forward.
    func rewindPushers(_ request: Request) async throws -> JSONResponse {
        let rewind = try RewindRequest(try await JSONBody.readObject(request, limit: maxBodySize))
        let toPos = switch rewind.target {
        case .pos(let pos): pos
        case .sinceTS(let ts): try store.read { view in try view.position(atOrAfter: ts) }
        }
        // `rewind` waits for its group commit on this thread: a short, rare admin write.
        let rewound = try store.rewind(toPos: toPos, filter: rewind.filter)
        pool?.onPushersChanged(rewound)
        return JSONResponse(.object(["rewound": .int(Int64(rewound.count))]))
    }
}
