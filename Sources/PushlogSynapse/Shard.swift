import Crypto

/// `source.synapse.shard: "k/N"`: this Pushlog takes the users Synapse's `pusher_instances`
/// hash gives to instance k of N, `int.from_bytes(sha256(user_id), "little") % N == k`
/// (`ShardedWorkerHandlingConfig.get_instance`).
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public static let all = Shard(index: 0, count: 1)

    public init(index: Int, count: Int) {
        precondition(count >= 1 && (0..<count).contains(index), "shard \(index)/\(count)")
        self.index = index
        self.count = count
    }

    /// Parses "k/N" with 0 <= k < N; nil otherwise.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]),
              n >= 1, n <= 1 << 20, k >= 0, k < n else { return nil }
        self.init(index: k, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// The instance Synapse would give `userID` among `count`.
    public static func instance(of userID: String, count: Int) -> Int {
        let digest = Array(SHA256.hash(data: Array(userID.utf8)))
        // Little-endian: the last byte is the most significant.
        var r: UInt64 = 0
        let n = UInt64(count)
        for byte in digest.reversed() { r = (r << 8 | UInt64(byte)) % n }
        return Int(r)
    }

    public func owns(_ userID: String) -> Bool {
        count == 1 || Self.instance(of: userID, count: count) == index
    }
}

