import Curl
import Foundation
import Testing

@Suite(.timeLimit(.minutes(1)))
struct CancellationAndShutdownTests {
    @Test func cancellingTheTaskAbortsTheTransfer() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let task = Task {
            try await client.post(server.url("/delay?ms=30000&tag=cancel"), body: [], timeout: .seconds(60))
        }
        await server.waitFor("delay cancel")
        let clock = ContinuousClock()
        let start = clock.now

        task.cancel()
        let result = await task.result

        let elapsed = clock.now - start
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(elapsed < .seconds(2), "cancellation took \(elapsed)")
        // The server sees its client go away: the transfer was aborted, not merely abandoned.
        await server.waitFor("closed cancel")
        // The client carries on.
        let after = try await client.post(server.url("/echo"), body: [7], timeout: .seconds(10))
        #expect(after.body == [7])
    }

    @Test func alreadyCancelledTaskSendsNothing() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await client.post(server.url("/echo"), body: [], timeout: .seconds(10))
        }

        let result = await task.result

        #expect(throws: CancellationError.self) { try result.get() }
        let stats = try await client.send(method: "GET", url: server.url("/stats"), timeout: .seconds(10))
        #expect(String(decoding: stats.body, as: UTF8.self).contains(#""requests": 1"#))
    }

    @Test func shutdownFailsPendingRequestsAndRefusesNewOnes() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        let url = server.url("/delay?ms=30000&tag=shutdown")
        let tasks = (0..<3).map { _ in
            Task { try await client.post(url, body: [], timeout: .seconds(60)) }
        }
        await server.waitFor("delay shutdown", count: 3)
        let clock = ContinuousClock()
        let start = clock.now

        client.shutdown()
        for task in tasks {
            let result = await task.result
            let error = #expect(throws: HTTPError.self) { try result.get() }
            #expect(error?.kind == .shutdown)
        }

        #expect(clock.now - start < .seconds(2))
        await server.waitFor("closed shutdown", count: 3)
        let later = await #expect(throws: HTTPError.self) {
            try await client.post(server.url("/echo"), body: [], timeout: .seconds(10))
        }
        #expect(later?.kind == .shutdown)
        client.shutdown()  // a second call does nothing
    }
}
