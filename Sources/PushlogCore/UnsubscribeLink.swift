import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The signed one-click unsubscribe link of an email: `…/v1/unsubscribe?user_id=…&app_id=…&
/// pushkey=…&sig=…`, where `sig` is HMAC-SHA256 over the three values under a key kept in the
/// data directory (`unsubscribe.key`, made at first use, readable by its owner only). Anyone
/// holding the link can remove that one email pusher and nothing else; an altered link fails.
public struct UnsubscribeSigner: Sendable {
    let key: [UInt8]

    public init(key: [UInt8]) { self.key = key }

    /// Loads the data directory's key, making it first when there is none.
    public static func load(dataDir: String) throws -> UnsubscribeSigner {
        let path = dataDir + "/unsubscribe.key"
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count == 32 else {
                throw CorruptData(what: "unsubscribe key \(path)", reason: "\(data.count) bytes, expected 32")
            }
            return UnsubscribeSigner(key: Array(data))
        }
        var rng = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            // Another process made it first: use theirs.
            if errno == EEXIST { return try load(dataDir: dataDir) }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        defer { close(fd) }
        let written = key.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, 32) }
        guard written == 32, fsync(fd) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return UnsubscribeSigner(key: key)
    }

    /// The signature of the link for `id`, in hex.
    public func signature(_ id: PusherID) -> String {
        var message = Array("pushlog-unsubscribe-v1".utf8)
        for part in [id.userID, id.appID, id.pushkey] {
            message.append(0)
            message.append(contentsOf: part.utf8)
        }
        return HMAC.sha256(key: key, message: message).map { String(format: "%02x", $0) }.joined()
    }

    /// True when `signature` is the one for `id` (compared in constant time).
    public func verify(_ id: PusherID, signature: String) -> Bool {
        let expected = Array(self.signature(id).utf8)
        let given = Array(signature.lowercased().utf8)
        guard expected.count == given.count else { return false }
        var diff: UInt8 = 0
        for i in expected.indices { diff |= expected[i] ^ given[i] }
        return diff == 0
    }

    /// The link for `id` under `baseURL` (which ends with `/`).
    public func link(baseURL: String, _ id: PusherID) -> String {
        let base = baseURL.hasSuffix("/") ? baseURL : baseURL + "/"
        let query = [("user_id", id.userID), ("app_id", id.appID), ("pushkey", id.pushkey), ("sig", signature(id))]
            .map { "\($0)=\(Self.percentEncoded($1))" }.joined(separator: "&")
        return base + "v1/unsubscribe?" + query
    }

    /// Everything but RFC 3986's unreserved characters percent-encoded.
    public static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }
}

/// HMAC (RFC 2104) over our SHA-256.
public enum HMAC {
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? SHA256.hash(key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = SHA256.hash(k.map { $0 ^ 0x36 } + message)
        return SHA256.hash(k.map { $0 ^ 0x5c } + inner)
    }
}
