import Foundation
import Hummingbird
import HummingbirdTesting
import PushlogCore
@testable import PushlogServer

/// A store in a fresh temp directory and the API's router over it, driven without sockets.
func withAPI<T: Sendable>(
    _ config: APIConfig = APIConfig(), _ body: @Sendable (any TestClientProtocol, Store) async throws -> T
) async throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-server-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync, mapSize: 16 << 20))
    defer { store.close() }
    let app = Application(router: buildRouter(store: store, pool: nil, config: config))
    return try await app.test(.router) { client in try await body(client, store) }
}

/// An answer: its status and its body parsed as JSON.
struct Reply {
    var status: HTTPResponse.Status
    var json: JSON
    var errcode: String? { json["errcode"]?.stringValue }
    var error: String { json["error"]?.stringValue ?? "" }
}

extension TestClientProtocol {
    func send(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, token: String? = nil) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        let response = try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let json = response.body.readableBytes == 0 ? JSON.null : try JSON.parse(response.body.readableBytesView)
        return Reply(status: response.status, json: json)
    }
}

/// Request bodies with sensible defaults, as JSON text.
enum Body {
    static func notification(_ user: String = "@alice:example.org", so: Int64 = 1, actions: String = #"["notify"]"#) -> String {
        """
        {"user_id": "\(user)", "room_id": "!r:example.org", "event_id": "$e\(so)", "stream_ordering": \(so),
         "actions": \(actions),
         "event": {"type": "m.room.message", "sender": "@bob:example.org", "content": {"msgtype": "m.text", "body": "Hi!"}}}
        """
    }

    static func notifications(_ items: [String]) -> String { #"{"notifications": ["# + items.joined(separator: ",") + "]}" }

    static func receipt(_ user: String = "@alice:example.org", so: Int64 = 1, type: String = "m.read") -> String {
        #"{"user_id": "\#(user)", "room_id": "!r:example.org", "event_id": "$e\#(so)", "stream_ordering": \#(so), "receipt_type": "\#(type)"}"#
    }

    static func receipts(_ items: [String]) -> String { #"{"receipts": ["# + items.joined(separator: ",") + "]}" }

    static func pusher(_ user: String = "@alice:example.org", app: String = "org.example.app", key: String = "key1",
                       kind: String = #""http""#) -> String {
        """
        {"user_id": "\(user)", "kind": \(kind), "app_id": "\(app)", "pushkey": "\(key)",
         "app_display_name": "App", "device_display_name": "Phone", "lang": "en",
         "data": {"url": "https://push.example.org/_matrix/push/v1/notify"}}
        """
    }
}

extension Store {
    func allEntries() throws -> [LoggedEntry] {
        var out: [LoggedEntry] = []
        try read { view in try view.forEachEntry { out.append($0); return true } }
        return out
    }

    func setCursor(_ id: PusherID, _ cursor: UInt64) throws {
        try write { ctx in
            guard var s = try ctx.consumerState(id) else { return }
            s.cursor = cursor
            try ctx.setConsumerState(id, s)
        }
    }
}

let alicePhone = PusherID(userID: "@alice:example.org", appID: "org.example.app", pushkey: "key1")
