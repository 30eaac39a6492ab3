import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

@Suite("/metrics")
struct MetricsRouteTests {
    @Test("/metrics serves the rendered text, behind metrics.token when one is set")
    func metrics() async throws {
        let text: @Sendable () -> [UInt8] = { Array("pushlog_log_head 7\n".utf8) }
        try await withAPI(APIConfig(token: "api", metricsToken: "m3trics", metricsText: text)) { client, _ in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer api"]) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer m3trics"]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "pushlog_log_head 7\n")
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            }
        }
        try await withAPI(APIConfig(token: "api", metricsText: text)) { client, _ in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)  // no metrics.token: open, even with api.token set
            }
        }
    }
}
