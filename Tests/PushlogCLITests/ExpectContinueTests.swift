import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A client that asks `Expect: 100-continue` (curl does for bodies over 1 MiB) is told to go on
/// at once, instead of waiting out its own timeout before it sends the body: the real binary.
@Suite("Expect: 100-continue")
struct ExpectContinueTests {
    @Test("a POST that asks first is answered 100 Continue before its body is sent, then lands; a refused one still gets its final answer")
    func continueBeforeTheBody() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-expect-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let token = "expect-token"
        let server = try ServeProcess(dataDir: dir, environment: ["PUSHLOG_API_TOKEN": token])
        defer { server.stop(SIGKILL) }
        let body = #"{"notifications": [{"user_id": "@alice:example.org", "room_id": "!r:example.org", "event_id": "$x", "stream_ordering": 9, "actions": ["notify"], "event": {"type": "m.room.message", "sender": "@bob:example.org", "content": {}}}]}"#
        let headers = ["Authorization": "Bearer \(token)", "Content-Type": "application/json"]

        // The server waits for a body it has not asked for: without the interim answer the head
        // read times out (5 s) and `interim` is nil.
        let posted = try rawHTTPExpectingContinue(port: server.port, method: "POST", target: "/v1/notifications",
                                                  headers: headers, body: body)
        #expect(posted.interim == "HTTP/1.1 100 Continue")
        #expect(posted.reply.status == 200, "\(posted.reply.body)")
        #expect(posted.reply.body.contains(#""first_pos""#), "\(posted.reply.body)")

        // Without the token: told to go on, then refused, and nothing appended.
        let refused = try rawHTTPExpectingContinue(port: server.port, method: "POST", target: "/v1/notifications",
                                                   headers: ["Content-Type": "application/json"], body: body)
        #expect(refused.interim == "HTTP/1.1 100 Continue")
        #expect(refused.reply.status == 401)

        // A request without the header gets no interim answer, only its final one.
        let plain = try rawHTTP(port: server.port, method: "GET", target: "/health")
        #expect(plain.status == 200)
    }
}
