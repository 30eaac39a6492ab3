import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

/// A bounded fuzz of the POST/PUT endpoints: thousands of random and mutated bodies. The server
/// must answer each with a 2xx or a 4xx (never a 500), stay healthy, and the log must hold
/// exactly what the 200s appended.
@Suite("fuzzing the API")
struct FuzzTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let seeds: [(path: String, method: HTTPRequest.Method, body: String)] = [
        ("/v1/notifications", .post, Body.notifications([Body.notification(), Body.notification("@bob:example.org", so: 2)])),
        ("/v1/receipts", .post, Body.receipts([Body.receipt()])),
        ("/v1/pushers", .put, Body.pusher()),
        ("/v1/pushers/rewind", .post, #"{"to_pos": 1, "user_id": "@alice:example.org"}"#),
    ]

    static let fragments = ["null", "true", "-1", "1e400", "\"\"", "[]", "{}", "\"\u{0}\"", "\"\\ud800\"", "9223372036854775808",
                            String(repeating: "[", count: 100), "\"" + String(repeating: "x", count: 70_000) + "\""]

    /// One mutation of `body`: flip, delete or insert bytes, truncate, or splice a fragment in.
    static func mutate(_ body: String, _ g: inout Generator) -> [UInt8] {
        var b = Array(body.utf8)
        for _ in 0...g.below(3) {
            guard !b.isEmpty else { break }
            switch g.below(6) {
            case 0: b[g.below(b.count)] = UInt8(truncatingIfNeeded: g.next())
            case 1: b.remove(at: g.below(b.count))
            case 2: b.insert(UInt8(truncatingIfNeeded: g.next()), at: g.below(b.count))
            case 3: b = Array(b.prefix(g.below(b.count)))
            case 4:
                // Replace a value after a colon with a fragment of another type.
                let colons = b.indices.filter { b[$0] == UInt8(ascii: ":") }
                if let c = colons.isEmpty ? nil : colons[g.below(colons.count)] {
                    let end = b[(c + 1)...].firstIndex { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "}") } ?? b.count
                    b.replaceSubrange((c + 1)..<end, with: Array(fragments[g.below(fragments.count)].utf8))
                }
            default:
                b = (0..<g.below(64)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            }
        }
        return b
    }

    @Test("3,000 random and mutated bodies: never a 500, the server stays healthy, only 200s change the log")
    func fuzz() async throws {
        try await withAPI(APIConfig(maxBodySize: 64 << 10)) { client, store in
            var g = Generator(state: 0x9E37_79B9_7F4A_7C15)
            var appended: UInt64 = 0
            var statuses: [Int: Int] = [:]
            for i in 0..<3_000 {
                let seed = Self.seeds[i % Self.seeds.count]
                let body = i % 10 == 0 ? Array(seed.body.utf8) : Self.mutate(seed.body, &g)
                let headBefore = try store.read { view in try view.head() }
                try await client.execute(uri: seed.path, method: seed.method, headers: [:], body: ByteBuffer(bytes: body)) { r in
                    statuses[Int(r.status.code), default: 0] += 1
                    #expect(r.status.code < 500, "\(seed.path) answered \(r.status) to \(String(decoding: body.prefix(200), as: UTF8.self))")
                    if r.status != .ok {
                        #expect(try store.read { view in try view.head() } == headBefore, "a refused request changed the log")
                    } else if seed.path != "/v1/pushers/rewind" {
                        appended += try store.read { view in try view.head() } - headBefore
                    }
                }
            }
            #expect(try store.read { view in try view.head() } == appended)
            #expect((statuses[200] ?? 0) > 0 && (statuses[400] ?? 0) > 0)
            try await client.execute(uri: "/health", method: .get) { r in #expect(r.status == .ok) }
            // Every stored entry still decodes.
            #expect(try store.allEntries().count == Int(appended))
        }
    }
}
