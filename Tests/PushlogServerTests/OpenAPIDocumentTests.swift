import Curl
import Foundation
import Hummingbird
import PushlogCore
import Testing
import TestSupport
@testable import PushlogServer

/// docs/openapi.yaml against the server: the routes it documents are the routes the router
/// serves, and each operation's documented example, sent to the real `pushlog serve`, is
/// accepted with an answer of the documented shape.
@Suite("the OpenAPI document", .serialized)
struct OpenAPIDocumentTests {
    static func tempDir() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-openapi-\(UUID().uuidString)").path
    }

    @Test("documents exactly the routes the router serves")
    func routesMatch() throws {
        let doc = try OpenAPIDocument.load()
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync, mapSize: 16 << 20))
        defer { store.close() }
        let router = buildRouter(store: store, pool: nil, config: APIConfig(token: "t", metricsText: { [] }))
        let served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
        let documented = Set(doc.operations.map { "\($0.method) \($0.path)" })
        #expect(served.subtracting(documented).isEmpty, "served but not documented")
        #expect(documented.subtracting(served).isEmpty, "documented but not served")
        #expect(Set(doc.operations.map(\.path)) == PushlogAPI.paths)
        // Every documented error answer is the Matrix error shape.
        for op in doc.operations {
            for (status, response) in op.spec["responses"] as? [String: Any] ?? [:] where !status.hasPrefix("2") {
                let media = (try doc.resolve(response)["content"] as? [String: Any])?["application/json"] as? [String: Any]
                let required = try media?["schema"].flatMap { try doc.resolve($0)["required"] as? [String] }
                #expect(required == ["errcode", "error"], "\(op.id) \(status)")
            }
        }
    }

    /// The order the examples are sent in: a pusher before what needs one, its removal last.
    static let order = ["setPusher", "appendNotifications", "appendReceipts", "listPushers", "rewindPushers",
                        "showUnsubscribe", "unsubscribe", "health", "metrics", "deletePusher"]

    @Test("each operation's example is accepted by pushlog serve with an answer of the documented shape")
    func examplesAccepted() async throws {
        let doc = try OpenAPIDocument.load()
        let operations = doc.operations
        #expect(Set(operations.map(\.id)) == Set(Self.order), "an operation without a place in the order")
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let token = "openapi-\(UUID().uuidString)"
        let serve = try ServeProcess(dataDir: dir, environment: ["PUSHLOG_API_TOKEN": token, "PUSHLOG_STORE_DURABILITY": "nometasync"])
        defer { serve.stop(SIGTERM) }
        // serve made the unsubscribe key at start: sign the example's link with it as a mail would.
        let signer = try UnsubscribeSigner.load(dataDir: dir)
        let client = try CurlClient()
        defer { client.shutdown() }

        for id in Self.order {
            let op = try #require(operations.first { $0.id == id })
            var query: [String] = []
            for parameter in op.parameters {
                guard let name = parameter["name"] as? String, let example = parameter["example"] else {
                    #expect(parameter["required"] as? Bool != true, "\(id): required parameter without an example")
                    continue
                }
                query.append("\(name)=\(UnsubscribeSigner.percentEncoded("\(example)"))")
            }
            if op.path == "/v1/unsubscribe" {
                let pusher = PusherID(userID: "@alice:example.org", appID: "org.example.app", pushkey: "key1")
                query = query.filter { !$0.hasPrefix("sig=") } + ["sig=\(signer.signature(pusher))"]
            }
            let url = "http://127.0.0.1:\(serve.port)\(op.path)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
            var body: [UInt8] = []
            if let requestBody = op.spec["requestBody"] as? [String: Any] {
                let media = try #require((requestBody["content"] as? [String: Any])?["application/json"] as? [String: Any], "\(id)")
                let example = try OpenAPIDocument.json(try #require(media["example"], "\(id): request body without an example"))
                #expect(try doc.problems(example, try #require(media["schema"])).isEmpty, "\(id): the example breaks its own schema")
                body = example.serialized()
            }
            let headers = ["Content-Type": "application/json", "Authorization": "Bearer \(token)"]
            let answer = try await client.send(method: op.method, url: url, body: body, headers: headers, timeout: .seconds(30))
            let text = String(decoding: answer.body, as: UTF8.self)
            try #require(answer.status == 200, "\(id): \(answer.status) \(text)")

            // The answer is one the document describes, in the documented media type.
            let responses = try #require(op.spec["responses"] as? [String: Any])
            let ok = try doc.resolve(try #require(responses["200"], "\(id): no 200 documented"))
            let content = try #require(ok["content"] as? [String: Any], "\(id)")
            let contentType = answer.header("Content-Type") ?? ""
            let media = try #require(content.keys.first { contentType.hasPrefix($0) }, "\(id): \(contentType) is not documented")
            if media == "application/json" {
                let schema = try #require((content[media] as? [String: Any])?["schema"])
                let problems = try doc.problems(try JSON.parse(answer.body), schema)
                #expect(problems.isEmpty, "\(id): \(problems) in \(text)")
            }

            // Without the token: 401 exactly where the document asks for one.
            let bare = try await client.send(method: op.method, url: url, body: body, headers: ["Content-Type": "application/json"],
                                             timeout: .seconds(30))
            if doc.needsToken(op) {
                #expect(bare.status == 401, "\(id) without a token")
                #expect(responses["401"] != nil, "\(id): 401 not documented")
            } else {
                #expect(bare.status != 401, "\(id) without a token")
            }
        }
    }
}
