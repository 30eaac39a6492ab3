import Curl
import Foundation
import Testing

@Suite(.timeLimit(.minutes(1)))
struct ConnectionReuseTests {
    private struct Stats: Decodable {
        var connections: Int
        var requests: Int
    }

    /// Two bursts of 50 concurrent posts: all complete, each with its own answer, over at most
    /// `maxConnectionsPerHost` connections in total, so the second burst reused the first's.
    @Test func concurrentPostsAllCompleteOverFewConnections() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxConnectionsPerHost: 16)
        defer { client.shutdown() }
        let url = server.url("/echo")

        for burst in 0..<2 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let body = Array(#"{"burst":\#(burst),"index":\#(index)}"#.utf8)
                        let response = try await client.post(url, body: body, headers: ["Content-Type": "application/json"],
                                                             timeout: .seconds(30))
                        #expect(response.status == 200)
                        #expect(response.body == body)
                    }
                }
                try await group.waitForAll()
            }
        }

        let answer = try await client.send(method: "GET", url: server.url("/stats"), timeout: .seconds(10))
        let stats = try JSONDecoder().decode(Stats.self, from: Data(answer.body))
        #expect(stats.requests == 101)
        #expect(stats.connections >= 1)
        #expect(stats.connections <= 16, "distinct client ports seen by the server: \(stats.connections)")
    }
}
