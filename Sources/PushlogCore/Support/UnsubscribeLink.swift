import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The signed one-click unsubscribe link of an email: `…/v1/unsubscribe?user_id=…&app_id=…&
/// pushkey=…&t=…&sig=…`, where `t` is when the link was made (Unix seconds) and `sig` is
/// HMAC-SHA256 over the four values under a key kept in the data directory (`unsubscribe.key`,
/// made at first use, readable by its owner only). Anyone holding the link can remove that one
/// email pusher and nothing else, until the link is older than ``lifetimeMS``; an altered link
/// fails.
///
/// Links made before links carried a time (no `t`, signed as "v1") still verify and never
/// expire: mails already in inboxes keep a working link.
public struct UnsubscribeSigner: Sendable {
    let key: [UInt8]
    /// How long a link works after it was made (`email.unsubscribe_link_lifetime`).
    public var lifetimeMS: Int64

    public static let defaultLifetimeMS: Int64 = 90 * 86_400_000

    public init(key: [UInt8], lifetimeMS: Int64 = UnsubscribeSigner.defaultLifetimeMS) {
        self.key = key
        self.lifetimeMS = lifetimeMS
    }

    /// Loads the data directory's key, making it first when there is none.
    ///
    /// A new key is written to a temporary file, synced, then linked into place and the
    /// directory synced: a crash leaves either no key or a whole one, never a short one. Linked
    /// rather than renamed so that a key another process put there first is never replaced
    /// (links made with it would stop working).
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
        let temporaryName = ".unsubscribe.key.\(getpid()).\(UInt32.random(in: .min ... .max, using: &rng)).tmp"
        let temporary = dataDir + "/" + temporaryName
        try writeSynced(key, to: temporaryName, in: dataDir)
        defer { unlink(temporary) }
        if Glibc.link(temporary, path) != 0 {
            switch errno {
            case EEXIST:
                return try load(dataDir: dataDir)  // another process made it first: use theirs
            case EPERM, EOPNOTSUPP, ENOSYS:
                // A file system without hard links: rename is atomic too, only not exclusive.
                guard rename(temporary, path) == 0 else { throw posixError() }
            default:
                throw posixError()
            }
        }
        try syncDirectory(dataDir)
        return UnsubscribeSigner(key: key)
    }

    private static func posixError() -> POSIXError { POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }

    /// Made 0600 and, as root, owned by the data directory's owner (as every file of the store).
    private static func writeSynced(_ bytes: [UInt8], to name: String, in dataDir: String) throws {
        let path = dataDir + "/" + name
        let fd = try DataDir.openFile(name, in: dataDir, flags: O_WRONLY)
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            let error = written >= 0 && written < bytes.count ? POSIXError(.EIO) : posixError()
            unlink(path)
            throw error
        }
    }

    private static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError() }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw posixError() }
    }

    /// The signature of the link for `id` made at `issuedAt` (Unix seconds), in hex; with no
    /// time, the signature of a link of the first kind (no `t`).
    public func signature(_ id: PusherID, issuedAt: Int64? = nil) -> String {
        var message = Array((issuedAt == nil ? "pushlog-unsubscribe-v1" : "pushlog-unsubscribe-v2").utf8)
        for part in [id.userID, id.appID, id.pushkey] + (issuedAt.map { ["\($0)"] } ?? []) {
            message.append(0)
            message.append(contentsOf: part.utf8)
        }
        return Hashing.hmacSHA256(key: key, message: message).map { String(format: "%02x", $0) }.joined()
    }

    /// What a link's values are worth.
    public enum Verdict: Sendable, Equatable {
        case valid
        /// Not signed with this key for these values (altered, forged, or another server's).
        case forged
        /// Signed, but made longer than ``lifetimeMS`` ago.
        case expired
    }

    /// Checks a link's signature (in constant time), then its age. `issuedAt` is the link's
    /// `t` as given (nil for a link of the first kind); `now` in milliseconds.
    public func check(_ id: PusherID, signature: String, issuedAt: String?, now: Int64) -> Verdict {
        var time: Int64?
        if let issuedAt {
            // Only the canonical decimal form was ever signed; anything else cannot match.
            guard let t = Int64(issuedAt), t >= 0, "\(t)" == issuedAt else { return .forged }
            time = t
        }
        let expected = Array(self.signature(id, issuedAt: time).utf8)
        let given = Array(signature.lowercased().utf8)
        guard expected.count == given.count else { return .forged }
        var diff: UInt8 = 0
        for i in expected.indices { diff |= expected[i] ^ given[i] }
        guard diff == 0 else { return .forged }
        if let time {
            let (issuedMS, overflow) = time.multipliedReportingOverflow(by: 1000)
            if overflow || now - issuedMS > lifetimeMS { return .expired }
        }
        return .valid
    }

    /// The link for `id` under `baseURL` (which ends with `/`), made at `now` (milliseconds).
    public func link(baseURL: String, _ id: PusherID, now: Int64 = SystemClock.nowMS()) -> String {
        let base = baseURL.hasSuffix("/") ? baseURL : baseURL + "/"
        let issuedAt = now / 1000
        let query = [("user_id", id.userID), ("app_id", id.appID), ("pushkey", id.pushkey), ("t", "\(issuedAt)"),
                     ("sig", signature(id, issuedAt: issuedAt))]
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
