import Foundation
@testable import PushlogCore
import Testing

/// The bytes the hand-written SHA-256 and HMAC gave, before swift-crypto replaced them: keys
/// already in stores and links already in inboxes must still match. Every literal below was
/// printed by the old `SHA256.hash` / `HMAC.sha256` (commit 8268428) for the same input.
@Suite("Hash compatibility with stored keys and sent links")
struct HashCompatibilityTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("a stored pusher key (user, app id, pushkey) is the same bytes")
    func pusherKeys() {
        let id = PusherID(userID: "@alice:example.org", appID: "com.example.app", pushkey: "abc123")
        #expect(Self.hex(Keys.appKeyHash(appID: id.appID, pushkey: id.pushkey))
                == "24e3ae7a9d5a2f6ceef64d6c06ab1f79e7ba88d1fca36a4dbcfb4890c8f22d0e")
        #expect(Keys.pusher(id) == Array("@alice:example.org".utf8) + [0] + Keys.appKeyHash(appID: id.appID, pushkey: id.pushkey))
        let long = PusherID(userID: "@bob:example.org", appID: "m.email", pushkey: String(repeating: "k", count: 512))
        #expect(Self.hex(Keys.appKeyHash(appID: long.appID, pushkey: long.pushkey))
                == "f642453152b4498e54f928af1dc42c17bcd4dfc997bb7304c5a86e27579fcee9")
    }

    @Test("a hashed receipt key and a room throttle key are the same bytes")
    func receiptAndThrottleKeys() {
        let key = Keys.receipt("@u:x", String(repeating: "r", count: 300), thread: String(repeating: "t", count: 300))
        #expect(Array(key.prefix(5)) == Array("@u:x".utf8) + [0])
        #expect(key[5] == 0xFF)
        #expect(Self.hex(Array(key.dropFirst(6))) == "bfc607086c1fb1da5843e7d42a1b8d5af80e17527893627329af97d2531a3905")
        let throttle = EmailThrottle.key(pusher: [1, 2, 3], room: "!room:example.org")
        #expect(Array(throttle.prefix(3)) == [1, 2, 3])
        #expect(Self.hex(Array(throttle.dropFirst(3))) == "03cbb71e7ec22cfce1875295478d262636197456240d09448bd8040959a9328a")
    }

    @Test("unsubscribe links signed before the change still verify, with and without a time")
    func unsubscribeLinks() {
        let signer = UnsubscribeSigner(key: (0..<32).map { UInt8($0) })
        let id = PusherID(userID: "@alice:example.org", appID: "m.email", pushkey: "alice@example.org")
        let v1 = "0d1f2c3e5908c929ac42c3dc79c4fadbfcb7979e8bc0487df7695e274da1883d"
        let v2 = "0e549a45eb69c1519c1023540f6aaacf4972b5d3daa5b4dea77ef07c33342e3a"
        #expect(signer.signature(id) == v1)
        #expect(signer.signature(id, issuedAt: 1_700_000_000) == v2)
        #expect(signer.check(id, signature: v1, issuedAt: nil, now: 1_700_000_000_000) == .valid)
        #expect(signer.check(id, signature: v2.uppercased(), issuedAt: "1700000000", now: 1_700_000_000_000) == .valid)
        #expect(signer.check(id, signature: v2, issuedAt: "1700000001", now: 1_700_000_000_000) == .forged)
    }

    @Test("SHA-256 of nothing and HMAC with a key longer than a block (RFC 4231 case 6)")
    func vectors() {
        #expect(Self.hex(Hashing.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let mac = Hashing.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131),
                                     message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
        #expect(Self.hex(mac) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }
}
