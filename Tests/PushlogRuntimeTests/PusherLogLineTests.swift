import Foundation
import Logging
import PushlogCore
@testable import PushlogRuntime
import Testing
import TestSupport

@Suite("log lines name the pusher, never its whole pushkey")
struct PusherLogLineTests {
    static let user = "@carol:example.org"
    /// Past its first 8 characters the pushkey holds a word no log line may contain.
    static let pushkey = "abcdefgh-SECRETPART-of-the-device-token"

    @Test("a failed push's warning names the user, the app id and the pushkey's first 8 characters")
    func failedPush() async throws {
        try await withHarness { h in
            let id = try h.addPusher(user: Self.user, pushkey: Self.pushkey)
            try await h.gateway.setMode("status", status: 500)
            try h.notify([note(1, user: Self.user)])
            #expect(try await eventually { h.logs.lines.contains { $0.message.hasPrefix("push failed") } })
            let line = try #require(h.logs.lines.first { $0.message.hasPrefix("push failed") })
            #expect(line.level == .warning)
            #expect(line.message.contains("HTTP 500"), "\(line.message)")
            #expect(line.message.contains("user \(Self.user)"), "\(line.message)")
            #expect(line.message.contains("app \(id.appID)"), "\(line.message)")
            #expect(line.message.contains("pushkey abcdefgh…"), "\(line.message)")
            #expect(!h.logs.lines.contains { "\($0.message) \($0.metadata)".contains("SECRETPART") })
        }
    }

    @Test("a gateway's rejection of another pushkey is logged with that pushkey shortened too")
    func rejectedOther() async throws {
        try await withHarness { h in
            try h.addPusher(user: Self.user, pushkey: "pk1")
            try await h.gateway.setMode("ok", reject: [Self.pushkey])
            try h.notify([note(1, user: Self.user)])
            await h.pool.waitUntilIdle()
            let line = try #require(h.logs.lines.first { $0.message.contains("not this pusher's") })
            #expect(line.message.contains("abcdefgh…") && line.message.contains("user \(Self.user)"), "\(line.message)")
            #expect(!h.logs.lines.contains { "\($0.message) \($0.metadata)".contains("SECRETPART") })
        }
    }

    @Test("a pushkey of at most 8 characters is logged whole, without an ellipsis")
    func shortPushkey() {
        #expect(PusherID.shortened("abcdefgh") == "abcdefgh")
        #expect(PusherID.shortened("abcdefghi") == "abcdefgh…")
        #expect(PusherID(userID: "@u:x", appID: "a", pushkey: "k").logName == "user @u:x, app a, pushkey k")
    }
}
