import Curl
import Foundation
import Synchronization
import Testing
import TestSupport

/// An ``AddressPolicy`` on a request: the address libcurl is about to connect to is checked,
/// whatever name or spelling led to it, on both request paths (awaited and batched).
@Suite(.timeLimit(.minutes(1)))
struct BlockedAddressTests {
    private static let allowingLoopback = AddressPolicy(blocked: AddressPolicy.defaultBlocked, allowed: [IPRange("127.0.0.0/8")!])

    /// Requests the server has seen, this `/stats` excluded (earlier ones included).
    private func requestsSeen(_ server: TestServer, _ client: CurlClient) async throws -> Int {
        let r = try await client.send(method: "GET", url: server.url("/stats"), timeout: .seconds(5))
        let stats = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
        return (stats?["requests"] as? Int ?? 0) - 1
    }

    @Test("a blocked address gets no connection and fails as blockedAddress; the allowed range lets it through")
    func blockedThenAllowed() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: HTTPError.self) {
            try await client.post(server.url("/echo"), body: [], timeout: .seconds(5), addressPolicy: .default)
        }
        #expect(error?.kind == .blockedAddress)
        #expect(error?.message.contains("127.0.0.1") == true, "\(String(describing: error))")
        #expect(try await requestsSeen(server, client) == 0)

        let ok = try await client.post(server.url("/echo"), body: Array("hi".utf8), timeout: .seconds(5),
                                       addressPolicy: Self.allowingLoopback)
        #expect(ok.status == 200)
        #expect(try await requestsSeen(server, client) == 2, "the first /stats and the allowed POST")
    }

    @Test("a host name is judged by the addresses it resolves to, and odd IPv4 spellings by what they mean")
    func namesAndSpellings() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        for host in ["localhost", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]"] {
            let error = await #expect(throws: HTTPError.self, "\(host)") {
                try await client.post("http://\(host):\(server.port)/echo", body: [], timeout: .seconds(5), addressPolicy: .default)
            }
            #expect(error?.kind == .blockedAddress, "\(host): \(String(describing: error))")
        }
        #expect(try await requestsSeen(server, client) == 0)
        // The same names reach the server once 127.0.0.0/8 is allowed.
        let ok = try await client.post("http://127.1:\(server.port)/echo", body: [], timeout: .seconds(5),
                                       addressPolicy: Self.allowingLoopback)
        #expect(ok.status == 200)
    }

    @Test("a permitted address that refuses the connection is a connection failure, not a blocked address")
    func refusedIsNotBlocked() async throws {
        let client = try CurlClient()
        defer { client.shutdown() }
        _ = try? await client.post("http://127.0.0.1:\(closedPort())/", body: [], timeout: .seconds(5), addressPolicy: .default)
        let error = await #expect(throws: HTTPError.self) {
            try await client.post("http://127.0.0.1:\(closedPort())/", body: [], timeout: .seconds(5), addressPolicy: Self.allowingLoopback)
        }
        #expect(error?.kind == .connectionFailed)
    }

    @Test("redirects are not followed")
    func noRedirects() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let target = server.url("/echo").addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let r = try await client.post(server.url("/redirect?to=\(target)"), body: [], timeout: .seconds(5),
                                      addressPolicy: Self.allowingLoopback)
        #expect(r.status == 302)
        #expect(try await requestsSeen(server, client) == 1)
    }

    @Test("batched POSTs are checked too, on fresh and reused handles alike")
    func batched() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        // Rounds of one request each, so every round reuses the handle the previous one left.
        // The second blocked round names the host differently: a connection the allowing
        // rounds left open to 127.0.0.1 would be reused without a new check (see the trap on
        // ``CurlClient/send(method:url:body:headers:timeout:addressPolicy:)``).
        let policies: [AddressPolicy] = [.default, Self.allowingLoopback, Self.allowingLoopback, .default, Self.allowingLoopback]
        let hosts = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "localhost", "127.0.0.1"]
        let results = Mutex<[UInt64: Result<HTTPResponse, any Error>]>([:])
        let next = Atomic<Int>(0)
        let (done, finished) = AsyncStream<Void>.makeStream()
        let batcher = client.makeBatcher { batch in
            for c in batch.completions { results.withLock { $0[c.tag] = c.result } }
            let round = next.load(ordering: .relaxed)
            guard round < policies.count, results.withLock({ $0.count }) == round else {
                if results.withLock({ $0.count }) == policies.count { finished.finish() }
                return
            }
            next.store(round + 1, ordering: .relaxed)
            batch.start(PostRequest(tag: UInt64(round), url: "http://\(hosts[round]):\(server.port)/echo", body: [], headers: ["Content-Type": "application/json"],
                                    timeout: .seconds(5), addressPolicy: policies[round]))
        }
        batcher.wake()
        for await _ in done {}
        let all = results.withLock { $0 }
        for (round, policy) in policies.enumerated() {
            let result = try #require(all[UInt64(round)])
            if policy == .default {
                guard case .failure(let e as HTTPError) = result else { Issue.record("round \(round): \(result)"); continue }
                #expect(e.kind == .blockedAddress, "round \(round)")
            } else {
                #expect((try? result.get().status) == 200, "round \(round): \(result)")
            }
        }
        #expect(try await requestsSeen(server, client) == 3)
    }
}
