import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PushlogCore
import Testing
@testable import PushlogServer

@Suite("the server over a real socket")
struct LiveServerTests {
    @Test("makeApplication serves the API on a port: health, an append, a body over the limit")
    func live() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-server-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync, mapSize: 16 << 20))
        defer { store.close() }
        let app = makeApplication(store: store, pool: nil, config: APIConfig(token: "t", maxBodySize: 2048),
                                  host: "127.0.0.1", port: 0, logger: Logger(label: "pushlog-server-test"))
        try await app.test(.live) { client in
            let health = try await client.send(.get, "/health")
            #expect(health.json == .object(["status": .string("ok"), "head": .int(0)]))
            let ok = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification()]), token: "t")
            #expect(ok.json == .object(["first_pos": .int(1), "last_pos": .int(1)]))
            let big = Body.notifications((1...20).map { Body.notification(so: $0) })
            let tooLarge = try await client.send(.post, "/v1/notifications", big, token: "t")
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.errcode == "M_TOO_LARGE")
            #expect(try store.read { view in try view.head() } == 1)
        }
    }
}
