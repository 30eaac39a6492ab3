import Curl
import Foundation
import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

/// `PUT /v1/pushers` and `push.ip_range_blacklist`: a gateway named by a blocked address is
/// refused before anything is stored; a host name is left to the check at connect time.
@Suite("gateway addresses at PUT")
struct GatewayAddressTests {
    private func pusher(url: String, key: String = "key1") -> String {
        """
        {"user_id": "@alice:example.org", "kind": "http", "app_id": "org.example.app", "pushkey": "\(key)",
         "app_display_name": "App", "device_display_name": "Phone", "lang": "en", "data": {"url": "\(url)"}}
        """
    }

    private static let blockedURLs = [
        "http://169.254.169.254/_matrix/push/v1/notify",
        "http://[::1]/_matrix/push/v1/notify",
        "http://[::ffff:127.0.0.1]:8080/_matrix/push/v1/notify",
        "https://10.1.2.3/_matrix/push/v1/notify",
        "http://127.0.0.1:8080/_matrix/push/v1/notify",
        "http://2130706433/_matrix/push/v1/notify",
        "http://0x7f.1/_matrix/push/v1/notify",
        "http://127.1/_matrix/push/v1/notify",
        "http://0.0.0.0/_matrix/push/v1/notify",
    ]

    @Test("a literal address in the blocklist is 400 M_INVALID_PARAM naming data.url, and nothing is appended")
    func literalBlocked() async throws {
        try await withAPI { client, store in
            for url in Self.blockedURLs {
                let reply = try await client.send(.put, "/v1/pushers", pusher(url: url))
                #expect(reply.status == .badRequest, "\(url)")
                #expect(reply.errcode == "M_INVALID_PARAM", "\(url)")
                #expect(reply.error.hasPrefix("data.url: "), "\(url): \(reply.error)")
            }
            #expect(try store.read { view in try view.head() } == 0)
        }
    }

    @Test("a whitelist covering the address lets the same pushers in")
    func whitelisted() async throws {
        var config = APIConfig()
        config.gatewayAddressPolicy.allowed = try AddressPolicy.ranges("127.0.0.0/8, ::1, 169.254.169.254, 10.0.0.0/8, 0.0.0.0")
        try await withAPI(config) { client, store in
            for (i, url) in Self.blockedURLs.enumerated() {
                let reply = try await client.send(.put, "/v1/pushers", pusher(url: url, key: "k\(i)"))
                #expect(reply.status == .ok, "\(url): \(reply.json)")
            }
            #expect(try store.read { view in try view.head() } == UInt64(Self.blockedURLs.count))
        }
    }

    @Test("host names and public addresses pass: what a name resolves to is checked when the push connects")
    func namesPass() async throws {
        try await withAPI { client, _ in
            for url in ["http://localhost:8080/_matrix/push/v1/notify", "https://push.example.org/_matrix/push/v1/notify",
                        "https://203.0.114.1/_matrix/push/v1/notify", "https://[2606:4700::1111]/_matrix/push/v1/notify"] {
                let reply = try await client.send(.put, "/v1/pushers", pusher(url: url))
                #expect(reply.status == .ok, "\(url): \(reply.json)")
            }
        }
    }
}
