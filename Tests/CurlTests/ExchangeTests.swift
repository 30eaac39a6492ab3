import Curl
import Testing

/// What a request sends and what comes back, against the test server.
@Suite(.timeLimit(.minutes(1)))
struct ExchangeTests {
    @Test func postDeliversBodyAndHeadersAndReturnsTheAnswer() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let body = Array(#"{"notification":{"event_id":"$ev","devices":[{"pushkey":"k"}]}}"#.utf8)

        let response = try await client.post(
            server.url("/echo"),
            body: body,
            headers: ["Content-Type": "application/json", "X-Pushlog-Test": "hello"],
            timeout: .seconds(10)
        )

        #expect(response.status == 200)
        #expect(response.body == body)
        #expect(response.header("content-type") == "application/json")
        #expect(response.header("Content-Length") == String(body.count))
        #expect(response.header("X-Echo-Method") == "POST")
        #expect(response.header("X-Echo-Content-Type") == "application/json")
        #expect(response.header("X-Echo-X-Pushlog-Test") == "hello")
        // Headers keep the server's spelling and order; the status line is not a header.
        #expect(response.headers.contains { $0.0 == "X-Echo-Method" && $0.1 == "POST" })
        #expect(!response.headers.contains { $0.0.hasPrefix("HTTP/") })
    }

    @Test func jsonAnsweredAsHTMLComesBackUntouched() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let response = try await client.post(server.url("/sygnal"), body: Array("{}".utf8),
                                             headers: ["Content-Type": "application/json"], timeout: .seconds(10))

        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "text/html")
        #expect(response.body == Array(#"{"rejected":[]}"#.utf8))
    }

    @Test(arguments: [500, 404])
    func errorStatusIsAResponseNotAnError(status: Int) async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let response = try await client.post(server.url("/status/\(status)"), body: [], timeout: .seconds(10))

        #expect(response.status == status)
        #expect(response.body == Array(#"{"status": \#(status)}"#.utf8))
    }

    @Test func emptyBodyAndOtherMethods() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        // An empty POST must send Content-Length 0, not fall back to reading stdin.
        let emptyPost = try await client.post(server.url("/echo"), body: [], timeout: .seconds(10))
        #expect(emptyPost.status == 200)
        #expect(emptyPost.body.isEmpty)

        let get = try await client.send(method: "GET", url: server.url("/echo"), timeout: .seconds(10))
        #expect(get.header("X-Echo-Method") == "GET")

        let put = try await client.send(method: "PUT", url: server.url("/echo"), body: [1, 2, 3], timeout: .seconds(10))
        #expect(put.header("X-Echo-Method") == "PUT")
        #expect(put.body == [1, 2, 3])

        let head = try await client.send(method: "HEAD", url: server.url("/echo"), timeout: .seconds(10))
        #expect(head.status == 200)
        #expect(head.body.isEmpty)

        let empty = try await client.post(server.url("/echo"), body: [], headers: ["X-Empty": ""], timeout: .seconds(10))
        #expect(empty.header("X-Echo-X-Empty") == "")
    }

    @Test func malformedRequestsAreRefusedBeforeAnyIO() async throws {
        let client = try CurlClient()
        defer { client.shutdown() }

        let injected = await #expect(throws: HTTPError.self) {
            try await client.post("http://127.0.0.1:1/", body: [], headers: ["X-A": "b\r\nX-Injected: 1"], timeout: .seconds(5))
        }
        #expect(injected?.kind == .invalidRequest)

        let badMethod = await #expect(throws: HTTPError.self) {
            try await client.send(method: "GET /x HTTP/1.1\r\n", url: "http://127.0.0.1:1/", timeout: .seconds(5))
        }
        #expect(badMethod?.kind == .invalidRequest)

        let otherScheme = await #expect(throws: HTTPError.self) {
            try await client.send(method: "GET", url: "file:///etc/passwd", timeout: .seconds(5))
        }
        #expect(otherScheme?.kind == .invalidRequest)
    }
}
