extension DelayGateway {
    /// How long the gateway waits, after a notify request has fully arrived, before it answers.
    public enum Latency: Sendable, Equatable {
        /// Every answer after `ms` milliseconds.
        case fixed(ms: Int)
        /// Each answer after a delay drawn uniformly from `minMS...maxMS`.
        case uniform(minMS: Int, maxMS: Int)
        /// A gateway that slows down as it gets busier: `baseMS + perInFlightMS × inFlight`, where
        /// `inFlight` counts the requests in flight when this one arrived, itself included.
        case overload(baseMS: Int, perInFlightMS: Double)
        /// No answer at all until ``DelayGateway/setMode(_:)`` sets another latency; the held
        /// requests are then answered after the new latency, counted from the change.
        case hold

        /// The delay for a request that arrives with `inFlight` requests in flight (itself
        /// included); nil for ``hold``.
        func delayMS(inFlight: Int) -> Int? {
            switch self {
            case .fixed(let ms): return max(0, ms)
            case .uniform(let lo, let hi): return max(0, lo <= hi ? Int.random(in: lo...hi) : lo)
            case .overload(let base, let per): return max(0, base + Int((per * Double(inFlight)).rounded()))
            case .hold: return nil
            }
        }
    }

    /// An answer other than 200 for the next few notify requests.
    public enum Failure: Sendable, Equatable {
        /// The next `count` requests are answered with `status` (body `{}`).
        case status(Int, count: Int)
        /// The next `count` requests are answered 429 with `Retry-After: retryAfterSeconds`
        /// (body `{"errcode":"M_LIMIT_EXCEEDED"}`).
        case tooManyRequests(retryAfterSeconds: Int, count: Int)

        var count: Int {
            switch self {
            case .status(_, let count), .tooManyRequests(_, let count): return count
            }
        }
    }

    /// Everything that decides an answer. Set as a whole with ``DelayGateway/setMode(_:)``.
    public struct Mode: Sendable, Equatable {
        public var latency: Latency
        /// Applied to the next requests, whatever their pushkey, until its count is used up
        /// (``DelayGateway/mode`` then shows nil).
        public var failure: Failure?
        /// A request any of whose devices has one of these pushkeys is answered 200 with those
        /// pushkeys in `rejected` (Sygnal's answer for an unregistered device).
        public var rejectedPushkeys: Set<String>

        public init(latency: Latency = .fixed(ms: 100), failure: Failure? = nil, rejectedPushkeys: Set<String> = []) {
            self.latency = latency
            self.failure = failure
            self.rejectedPushkeys = rejectedPushkeys
        }
    }

    /// The gateway's counters. Every notify request is counted in `received` when its body has
    /// fully arrived, in `inFlight` until it is answered (or its connection closes first), and
    /// in `answered` and `statuses` once its answer is written.
    public struct Stats: Sendable, CustomStringConvertible {
        public var inFlight = 0
        /// The most requests in flight at once since the start or the last ``DelayGateway/reset()``.
        public var peakInFlight = 0
        /// The most requests in flight at once for any one pushkey (`devices[0]`), e.g. to check
        /// that a pusher never has two pushes outstanding.
        public var peakInFlightPerPushkey = 0
        public var received = 0
        public var answered = 0
        /// Requests whose connection closed before their answer was written.
        public var abandoned = 0
        /// Answers written, by status code.
        public var statuses: [Int: Int] = [:]
        /// When the first and the latest notify request arrived (fully), on the continuous clock.
        public var firstReceived: ContinuousClock.Instant?
        public var lastReceived: ContinuousClock.Instant?

        public var description: String {
            let byStatus = statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            return "received \(received), answered \(answered), in flight \(inFlight) (peak \(peakInFlight), per pushkey \(peakInFlightPerPushkey)), abandoned \(abandoned), statuses [\(byStatus)]"
        }
    }

    /// Thrown by ``DelayGateway/waitUntil(timeout:_:)`` when the condition did not hold in time.
    public struct TimedOut: Error, CustomStringConvertible {
        public var timeout: Duration
        /// The counters when the wait gave up.
        public var stats: Stats
        public var description: String { "gateway condition not met within \(timeout): \(stats)" }
    }
}
