import Crypto
import Foundation

/// SHA-256 and HMAC-SHA256 from swift-crypto, as the byte arrays our keys and links are made of.
/// The bytes are those of the hand-written SHA-256 this replaced: stored pusher keys, receipt
/// keys, throttle keys and unsubscribe links made before still match (`HashCompatibilityTests`).
public enum Hashing {
    /// SHA-256 of `message` (32 bytes).
    public static func sha256(_ message: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: message))
    }

    /// HMAC-SHA256 (RFC 2104) of `message` under `key` (32 bytes).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
