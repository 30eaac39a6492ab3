@testable import Curl
import Foundation
import Synchronization
import Testing
import TestSupport

/// ``PostBatcher``: a handler on the curl thread gets completions in batches and starts the next
/// requests itself.
@Suite(.timeLimit(.minutes(1)))
struct PostBatcherTests {
    /// What the handler saw, shared with the test.
    private final class Log: @unchecked Sendable {
        let lock = NSLock()
        var completions: [UInt64: Result<HTTPResponse, any Error>] = [:]
        var calls = 0
        var largestBatch = 0
        var started = 0
        var done: CheckedContinuation<Void, Never>?
        var expected = 0

        func waitUntilDone(_ c: CheckedContinuation<Void, Never>) {
            lock.withLock { done = c }
        }

        var results: [UInt64: Result<HTTPResponse, any Error>] { lock.withLock { completions } }

        /// Wakes `batcher` and returns the completions once `expected` of them came.
        func results(wakingUp batcher: PostBatcher) async -> [UInt64: Result<HTTPResponse, any Error>] {
            await withCheckedContinuation { c in
                waitUntilDone(c)
                batcher.wake()
            }
            return results
        }
        var callCount: Int { lock.withLock { calls } }

        func record(_ batch: PostBatch) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            calls += 1
            largestBatch = max(largestBatch, batch.completions.count)
            for c in batch.completions { completions[c.tag] = c.result }
            if completions.count >= expected, let d = done {
                done = nil
                d.resume()
            }
            return completions.count >= expected
        }
    }

    @Test func chainsManyPostsFromTheHandlerWithEveryCompletionDeliveredOnce() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxConnectionsPerHost: 8)
        defer { client.shutdown() }
        let url = server.url("/echo")
        let total = 400
        let log = Log()
        log.expected = total
        // 8 chains: each completion starts the next request of its chain from the handler.
        let batcher = client.makeBatcher { batch in
            _ = log.record(batch)
            log.lock.lock()
            var toStart: [UInt64] = []
            if log.started == 0 {
                toStart = Array(0..<8)
            } else {
                for c in batch.completions where log.started < total {
                    _ = c
                    toStart.append(UInt64(log.started))
                    log.started += 1
                }
            }
            if log.started == 0 { log.started = 8 }
            log.lock.unlock()
            for tag in toStart {
                batch.start(PostRequest(tag: tag, url: url, body: Array(#"{"n":\#(tag)}"#.utf8),
                                        headers: ["Content-Type": "application/json"], timeout: .seconds(10)))
            }
        }
        let completions = await log.results(wakingUp: batcher)
        #expect(completions.count == total)
        for tag in 0..<UInt64(total) {
            let response = try #require(try completions[tag]?.get())
            #expect(response.status == 200)
            #expect(response.body == Array(#"{"n":\#(tag)}"#.utf8))
        }
        // Fewer handler calls than requests: completions arrive together.
        #expect(log.callCount <= total)
    }

    @Test func failuresInvalidRequestsAndCancellationComeBackAsCompletions() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let log = Log()
        log.expected = 3
        let first = Atomic<Bool>(true)
        let cancelRequested = Atomic<Bool>(false)
        let batcher = client.makeBatcher { batch in
            _ = log.record(batch)
            if first.exchange(false, ordering: .relaxed) {
                batch.start(PostRequest(tag: 1, url: "http://127.0.0.1:\(closedPort())/", body: [], timeout: .seconds(5)))
                batch.start(PostRequest(tag: 2, url: server.url("/echo"), body: [], headers: ["Bad\r\nName": "x"], timeout: .seconds(5)))
                batch.start(PostRequest(tag: 3, url: server.url("/delay?ms=5000&tag=b"), body: [], timeout: .seconds(10)))
            }
            if cancelRequested.exchange(false, ordering: .relaxed) {
                batch.cancel(tag: 3)
                batch.cancel(tag: 99)  // unknown: ignored
            }
        }
        batcher.wake()
        await server.waitFor("delay b")
        await withCheckedContinuation { c in
            log.waitUntilDone(c)
            cancelRequested.store(true, ordering: .relaxed)
            batcher.wake()
        }
        let completions = log.results
        #expect(completions.count == 3)
        #expect((completions[1].map { if case .failure(let e as HTTPError) = $0 { e.kind == .connectionFailed } else { false } }) == true)
        #expect((completions[2].map { if case .failure(let e as HTTPError) = $0 { e.kind == .invalidRequest } else { false } }) == true)
        #expect((completions[3].map { if case .failure(let e) = $0 { e is CancellationError } else { false } }) == true)
    }

    /// A busy client's requests in flight swing by hundreds from one step to the next: the easy
    /// handles of a burst are kept for the next one (up to the connection cache), not cleaned
    /// up and made again (with 64 kept, the second burst made 136 more).
    @Test func aSecondBurstReusesTheFirstBurstsHandles() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxConnectionsPerHost: Self.burst, connectionCacheSize: Self.burst)
        defer { client.shutdown() }
        for round in 0..<2 {
            try await Self.burst(of: client, to: server.url("/echo"), round: round)
            #expect(client.easyHandlesMade == Self.burst, "after round \(round)")
        }
    }

    /// ... and given back once the client is quiet: all but 64, the least recently used.
    @Test func aQuietClientKeepsOnly64IdleHandles() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxConnectionsPerHost: Self.burst, connectionCacheSize: Self.burst)
        defer { client.shutdown() }
        try await Self.burst(of: client, to: server.url("/echo"), round: 0)
        // Trimmed after a second with nothing running (the thread wakes at least once a second).
        let deadline = ContinuousClock.now + .seconds(10)
        while client.easyHandlesFreedWhenQuiet == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(client.easyHandlesFreedWhenQuiet == Self.burst - 64, "all 200 were idle; 64 are kept")
        try await Self.burst(of: client, to: server.url("/echo"), round: 1)
        #expect(client.easyHandlesMade == 2 * Self.burst - 64)
    }

    /// A handle keeps the options of its last POST, and the next POST of the same shape sets only
    /// its URL and body. A POST of another shape (headers, address policy) must get its own
    /// options: here each request runs alone, so all of them go through the client's one handle.
    @Test func aWarmHandleTakesAPostOfAnotherShapeOnlyWithItsOwnOptions() async throws {
        let a = try await TestServer.start()
        defer { a.stop() }
        let b = try await TestServer.start()
        defer { b.stop() }
        let client = try CurlClient(maxConnectionsPerHost: 1)
        defer { client.shutdown() }
        let loopback = AddressPolicy(blocked: AddressPolicy.defaultBlocked, allowed: [IPRange("127.0.0.0/8")!])
        let strict = AddressPolicy(blocked: AddressPolicy.defaultBlocked)
        let requests = [
            PostRequest(tag: 0, url: a.url("/headers"), body: [], headers: ["X-Shape": "a"], timeout: .seconds(5), addressPolicy: loopback),
            PostRequest(tag: 1, url: a.url("/headers"), body: [], headers: ["X-Shape": "b"], timeout: .seconds(5), addressPolicy: loopback),
            // A new host (a new connection), with a policy that blocks it.
            PostRequest(tag: 2, url: b.url("/headers"), body: [], headers: ["X-Shape": "b"], timeout: .seconds(5), addressPolicy: strict),
            PostRequest(tag: 3, url: b.url("/headers"), body: [], headers: ["X-Shape": "b"], timeout: .seconds(5), addressPolicy: loopback),
            PostRequest(tag: 4, url: b.url("/headers"), body: [], headers: ["X-Shape": "a"], timeout: .seconds(5), addressPolicy: loopback),
        ]
        let log = Log()
        log.expected = requests.count
        let next = Atomic<Int>(0)
        let batcher = client.makeBatcher { batch in
            _ = log.record(batch)
            // One at a time: the next when the last has completed (or at the first call).
            let n = next.load(ordering: .relaxed)
            guard n < requests.count, n == log.results.count else { return }
            next.store(n + 1, ordering: .relaxed)
            batch.start(requests[n])
        }
        let completions = await log.results(wakingUp: batcher)
        func shape(_ tag: UInt64) -> String? {
            guard let body = try? completions[tag]?.get().body,
                  let seen = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: String] else { return nil }
            return seen["x-shape"]
        }
        #expect(shape(0) == "a")
        #expect(shape(1) == "b", "the headers changed on a warm handle")
        let blocked = completions[2].flatMap { if case .failure(let e as HTTPError) = $0 { e.kind } else { nil } }
        #expect(blocked == .blockedAddress, "the address policy changed on a warm handle")
        #expect(shape(3) == "b")
        #expect(shape(4) == "a")
        #expect(client.easyHandlesMade == 1)
    }

    private static let burst = 200

    /// `burst` POSTs started at once from one handler call; returns when all are answered 200.
    private static func burst(of client: CurlClient, to url: String, round: Int) async throws {
        let log = Log()
        log.expected = burst
        let first = Atomic<Bool>(true)
        let batcher = client.makeBatcher { batch in
            _ = log.record(batch)
            guard first.exchange(false, ordering: .relaxed) else { return }
            for tag in 0..<UInt64(burst) {
                batch.start(PostRequest(tag: tag, url: url, body: Array(#"{"round":\#(round)}"#.utf8),
                                        headers: ["Content-Type": "application/json"], timeout: .seconds(30)))
            }
        }
        let completions = await log.results(wakingUp: batcher)
        #expect(completions.count == burst)
        #expect(completions.values.allSatisfy { (try? $0.get().status) == 200 })
    }

    @Test func shutdownFailsRunningPostsInALastCall() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        let log = Log()
        log.expected = 1
        let first = Atomic<Bool>(true)
        let batcher = client.makeBatcher { batch in
            _ = log.record(batch)
            if first.exchange(false, ordering: .relaxed) {
                batch.start(PostRequest(tag: 7, url: server.url("/delay?ms=5000&tag=s"), body: [], timeout: .seconds(10)))
            }
        }
        batcher.wake()
        await server.waitFor("delay s")
        client.shutdown()
        let completions = log.results
        #expect((completions[7].map { if case .failure(let e as HTTPError) = $0 { e.kind == .shutdown } else { false } }) == true)
        batcher.wake()  // does nothing after shutdown
    }
}

