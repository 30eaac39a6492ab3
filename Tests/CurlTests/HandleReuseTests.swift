import Curl
import Foundation
import Testing

/// The client recycles its easy handles (`curl_easy_reset` between requests): these check that
/// nothing of one request leaks into the next, and that connections are still reused.
@Suite(.timeLimit(.minutes(1)))
struct HandleReuseTests {
    private struct Stats: Decodable {
        var connections: Int
        var requests: Int
    }

    @Test func thousandSequentialPostsSucceedOverReusedConnections() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxConnectionsPerHost: 16)
        defer { client.shutdown() }
        let url = server.url("/echo")

        for index in 0..<1000 {
            let body = Array(#"{"index":\#(index)}"#.utf8)
            let response = try await client.post(url, body: body, headers: ["Content-Type": "application/json"],
                                                 timeout: .seconds(30))
            #expect(response.status == 200)
            #expect(response.body == body)
            #expect(response.header("X-Echo-Content-Type") == "application/json")
        }

        let answer = try await client.send(method: "GET", url: server.url("/stats"), timeout: .seconds(10))
        let stats = try JSONDecoder().decode(Stats.self, from: Data(answer.body))
        #expect(stats.requests == 1001)
        #expect(stats.connections >= 1)
        #expect(stats.connections <= 16, "distinct client ports seen by the server: \(stats.connections)")
    }

    @Test func aReusedHandleForgetsThePreviousRequest() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxResponseSize: 1000)
        defer { client.shutdown() }
        let url = server.url("/echo")

        let put = try await client.send(method: "PUT", url: url, body: [1, 2, 3], headers: ["X-A": "1"], timeout: .seconds(10))
        #expect(put.header("X-Echo-Method") == "PUT")
        #expect(put.header("X-Echo-X-A") == "1")
        #expect(put.body == [1, 2, 3])

        // No custom method, body or header carried over.
        let get = try await client.send(method: "GET", url: url, timeout: .seconds(10))
        #expect(get.header("X-Echo-Method") == "GET")
        #expect(get.header("X-Echo-X-A") == nil)
        #expect(get.body.isEmpty)

        let head = try await client.send(method: "HEAD", url: url, timeout: .seconds(10))
        #expect(head.status == 200)
        #expect(head.body.isEmpty)

        // Not a HEAD any more; a longer body than before; other headers than before.
        let body = Array(repeating: UInt8(ascii: "x"), count: 700)
        let post = try await client.post(url, body: body, headers: ["X-B": "2"], timeout: .seconds(10))
        #expect(post.header("X-Echo-Method") == "POST")
        #expect(post.header("X-Echo-X-B") == "2")
        #expect(post.header("X-Echo-X-A") == nil)
        #expect(post.body == body)

        // A shorter body, and the earlier headers again.
        let short = try await client.post(url, body: [9], headers: ["X-A": "1"], timeout: .seconds(10))
        #expect(short.body == [9])
        #expect(short.header("X-Echo-X-A") == "1")
        #expect(short.header("X-Echo-X-B") == nil)

        // A body larger than the handle's buffer, then a small one again.
        let large = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        let bigClient = try CurlClient(maxResponseSize: 1 << 20)
        defer { bigClient.shutdown() }
        #expect(try await bigClient.post(url, body: [1], timeout: .seconds(10)).body == [1])
        #expect(try await bigClient.post(url, body: large, timeout: .seconds(10)).body == large)
        #expect(try await bigClient.post(url, body: [2, 3], timeout: .seconds(10)).body == [2, 3])

        // A failure (over the size cap) leaves nothing behind for the next request.
        let tooLarge = await #expect(throws: HTTPError.self) {
            try await client.send(method: "GET", url: server.url("/big-chunked?bytes=5000"), timeout: .seconds(10))
        }
        #expect(tooLarge?.kind == .responseTooLarge)
        let after = try await client.post(url, body: [4, 5], timeout: .seconds(10))
        #expect(after.status == 200)
        #expect(after.body == [4, 5])

        // So does a timeout.
        let timedOut = await #expect(throws: HTTPError.self) {
            try await client.post(server.url("/delay?ms=2000&tag=reuse"), body: [], timeout: .milliseconds(200))
        }
        #expect(timedOut?.kind == .timeout)
        let last = try await client.send(method: "GET", url: server.url("/status/404"), timeout: .seconds(10))
        #expect(last.status == 404)
    }
}
