import Curl
import Testing
import TestSupport

/// Requests that get no usable answer, and the error kinds that say why.
@Suite(.timeLimit(.minutes(1)))
struct FailureTests {
    @Test func closedPortIsAConnectionFailure() async throws {
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: HTTPError.self) {
            try await client.post("http://127.0.0.1:\(closedPort())/", body: [], timeout: .seconds(10))
        }
        #expect(error?.kind == .connectionFailed)
        #expect(error?.curlCode == 7)  // CURLE_COULDNT_CONNECT
    }

    @Test func slowAnswerTimesOutAtTheTimeoutNotAtTheDelay() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let clock = ContinuousClock()
        let start = clock.now

        let error = await #expect(throws: HTTPError.self) {
            try await client.post(server.url("/delay?ms=20000&tag=timeout"), body: [], timeout: .milliseconds(300))
        }

        let elapsed = clock.now - start
        #expect(error?.kind == .timeout)
        #expect(elapsed >= .milliseconds(290))
        #expect(elapsed < .seconds(3), "timed out after \(elapsed)")
    }

    @Test func droppedConnectionIsConnectionLost() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: HTTPError.self) {
            try await client.post(server.url("/drop"), body: Array("{}".utf8), timeout: .seconds(10))
        }
        #expect(error?.kind == .connectionLost)
        await server.waitFor("drop")
    }

    @Test func bodyOverTheCapIsAnError() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxResponseSize: 1024)
        defer { client.shutdown() }

        let atCap = try await client.send(method: "GET", url: server.url("/big?bytes=1024"), timeout: .seconds(10))
        #expect(atCap.body.count == 1024)

        // Announced by Content-Length: refused before the body is read.
        let announced = await #expect(throws: HTTPError.self) {
            try await client.send(method: "GET", url: server.url("/big?bytes=1025"), timeout: .seconds(10))
        }
        #expect(announced?.kind == .responseTooLarge)

        // Chunked, length unknown up front: refused once the received bytes pass the cap.
        let streamed = await #expect(throws: HTTPError.self) {
            try await client.send(method: "GET", url: server.url("/big-chunked?bytes=5000"), timeout: .seconds(10))
        }
        #expect(streamed?.kind == .responseTooLarge)

        // The client is still usable afterwards.
        let after = try await client.post(server.url("/echo"), body: [42], timeout: .seconds(10))
        #expect(after.body == [42])
    }

    @Test func defaultCapIsOneMebibyte() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: HTTPError.self) {
            try await client.send(method: "GET", url: server.url("/big-chunked?bytes=\((1 << 20) + 1)"), timeout: .seconds(20))
        }
        #expect(error?.kind == .responseTooLarge)
    }
}
