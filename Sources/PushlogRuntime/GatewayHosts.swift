import Metrics
import PushlogCore
import Synchronization

/// How many pushes one gateway host gets at once: a limit that adapts to the host's latency.
///
/// A gateway 100 ms away needs about (pushes per second × 0.1) requests in flight; a gateway that
/// slows down as it is loaded needs fewer. The limit is a delay-based one, in the manner of TCP
/// Vegas and Netflix's gradient limiter:
/// - The baseline is the fastest single answer of the last 10–20 s (the host unloaded), so a
///   host that is steadily slower (not loaded: farther) does not keep the limit down for long.
/// - It starts modest (``initial``) and holds that for the first ``warmUp`` answers. Then,
///   while the host's smoothed latency stays within ``tolerance`` × its baseline (2.5: jitter
///   such as 100–300 ms is not congestion), it grows fast (slow start: by two per answer, so it triples per round trip,
///   from 32 to 1,024 in four round trips, and overshoots a host's knee by at most about three
///   times before the latency says so), then, after the first sign of
///   congestion, by 1/√limit per answer (√limit per round trip).
/// - When the smoothed latency climbs above ``tolerance`` × the baseline, the limit stops
///   growing; above that and ``slackMS`` more than the baseline, it shrinks in proportion (at
///   most halved, at most once per round trip). On a timeout, a 429 or a 503 it is halved.
///   A climb of less than ``slackMS`` is never congestion: a gateway on the same machine or
///   network answers in under a millisecond unloaded, and the few milliseconds a busy CPU adds
///   to that once held it at the minimum, two pushes at a time. (For a baseline above
///   ``slackMS`` / 1.5, the two bounds are one.)
/// - It never grows while the host is not using it (fewer than half the slots in flight).
///
/// `push.max_in_flight_per_host` is the ceiling.
struct AdaptiveLimit: Sendable {
    static let initial = 32.0
    static let minimum = 2.0
    static let tolerance = 2.5
    static let slackMS = 10.0
    static let baselineWindowMS: Int64 = 10_000

    let ceiling: Double
    private(set) var limit: Double
    private(set) var slowStart = true
    /// Smoothed latency (ms), an exponential average over ~10 answers.
    private(set) var smoothed: Double?
    private var windowMin = Double.infinity
    private var previousWindowMin = Double.infinity
    private var windowStart: Int64 = 0
    private var lastDecrease: Int64 = .min
    /// Answers so far: the limit holds at ``initial`` for the first ``warmUp`` answers, while
    /// the smoothed latency (their mean) and the baseline settle.
    private var samples = 0
    static let warmUp = 10
    /// Growth per answer in slow start.
    static let slowStartStep = 2.0

    init(ceiling: Int) {
        self.ceiling = Double(max(1, ceiling))
        limit = min(self.ceiling, Self.initial)
    }

    var baseline: Double { min(windowMin, previousWindowMin) }

    /// Requests that may be in flight now.
    var slots: Int { max(1, Int(limit)) }

    /// An answer that came back in `latencyMS`, with `inFlight` requests out (this one included).
    mutating func answered(latencyMS: Double, inFlight: Int, now: Int64) {
        let latency = max(0.1, latencyMS)
        samples += 1
        // A plain mean over the warm-up, then an exponential average over ~10 answers.
        let s = smoothed.map { samples <= Self.warmUp ? $0 + (latency - $0) / Double(samples) : $0 * 0.9 + latency * 0.1 } ?? latency
        smoothed = s
        if now - windowStart >= Self.baselineWindowMS {
            previousWindowMin = windowMin
            windowMin = .infinity
            windowStart = now
        }
        // The baseline is measured at the initial limit: during the warm-up the limit holds.
        // The baseline is the fastest single answer of the last 10–20 s: noise and load only
        // ever slow answers down, so the fastest is the host's unloaded latency (an average
        // would take a burst of slow first answers for the host's normal).
        windowMin = min(windowMin, latency)
        guard samples >= Self.warmUp else { return }
        // Between the two bounds it holds: a host next door past its knee (answers a few
        // milliseconds slower than unloaded) gains nothing from more requests, and one whose
        // answers merely jitter by a few milliseconds is not congested.
        let growsBelow = Self.tolerance * baseline
        let shrinksAbove = max(growsBelow, baseline + Self.slackMS)
        if s <= growsBelow {
            guard Double(inFlight) >= limit / 2 else { return }  // not using what it has
            limit = min(ceiling, slowStart ? limit + Self.slowStartStep : limit + 1 / limit.squareRoot())
        } else if s > shrinksAbove {
            slowStart = false
            decrease(by: max(0.5, shrinksAbove / s), now: now)
        } else {
            slowStart = false
        }
    }

    /// A timeout, a 429 or a 503.
    mutating func congested(now: Int64) {
        slowStart = false
        decrease(by: 0.5, now: now)
    }

    private mutating func decrease(by factor: Double, now: Int64) {
        // Once per round trip: the answers of requests sent before a decrease say nothing of it.
        let roundTrip = Int64(smoothed ?? 0)
        guard lastDecrease == .min || now - lastDecrease >= roundTrip else { return }
        lastDecrease = now
        limit = max(Self.minimum, min(limit, ceiling) * factor)
    }
}

/// The gateway hosts pushed to, each with its adaptive limit, shared by every delivery thread:
/// the limit is per host, not per thread. A thread asks for a slot (``acquire(_:shard:)``);
/// when there is none it is told later how many slots it was given: by the return value of its
/// own ``release(_:shard:_:)`` (no wake-up: the common case, a thread's answer freeing the slot
/// its next push takes), or through ``grant`` when another thread's slot came back.
///
/// A free slot goes to the waiting thread that holds the fewest, the releasing one first on a
/// tie: the threads share the limit evenly, and in the steady state a thread keeps its own.
final class GatewayHosts: Sendable {
    enum Sample {
        /// Answered (whatever the status, unless congestion) in this many milliseconds.
        case answered(ms: Double)
        /// A timeout, a 429 or a 503.
        case congested
        /// Says nothing about the host's load (cancelled, refused, or never sent).
        case none
    }

    /// A class, changed in place under the lock (a struct copied out of the dictionary and back
    /// would copy its arrays on every change).
    private final class Host {
        var limit: AdaptiveLimit
        var inFlight = 0
        /// Slots each delivery thread is waiting for.
        var wanted: [Int]
        /// Slots each delivery thread holds.
        var held: [Int]
        var pausedUntil: Int64 = 0
        var resumeScheduled = false
        /// Where the grants go round from.
        var nextShard = 0
        let metrics: HostMetrics

        init(limit: AdaptiveLimit, shards: Int, metrics: HostMetrics) {
            self.limit = limit
            wanted = [Int](repeating: 0, count: shards)
            held = [Int](repeating: 0, count: shards)
            self.metrics = metrics
        }
    }

    private struct State {
        var hosts: [String: Host] = [:]
        var labelled = 0
    }

    private let state = Mutex(State())
    private let ceiling: Int
    private let shards: Int
    /// Called (outside the lock) with a delivery thread and the slots it was given for a host.
    private let grant: @Sendable (_ shard: Int, _ host: String, _ count: Int) -> Void
    /// Hosts labelled by name in the metrics; the others are counted as `other` (the URLs come
    /// from pusher registrations, so their number is not ours to bound).
    static let labelledHosts = 64

    init(ceiling: Int, shards: Int, grant: @escaping @Sendable (_ shard: Int, _ host: String, _ count: Int) -> Void) {
        self.ceiling = max(1, ceiling)
        self.shards = max(1, shards)
        self.grant = grant
    }

    /// A slot for one request to `host`, or false: then the thread is owed one, given later.
    func acquire(_ host: String, shard: Int) -> Bool {
        let now = SystemClock.nowMS()
        var resumeAt: Int64?
        var grants: [(Int, Int)] = []
        let ok: Bool = state.withLock { s in
            let h = s.hosts[host] ?? newHost(&s, host)
            if now >= h.pausedUntil, h.inFlight < h.limit.slots {
                h.inFlight += 1
                h.held[shard] += 1
                grants = distribute(h, now: now, releaser: nil).others  // any other thread owed a slot gets it now
                h.metrics.inFlight.record(h.inFlight)
                return true
            }
            h.wanted[shard] += 1
            if now < h.pausedUntil, !h.resumeScheduled {
                h.resumeScheduled = true
                resumeAt = h.pausedUntil
            }
            return false
        }
        if let resumeAt { scheduleResume(host, at: resumeAt) }
        for (shard, count) in grants { grant(shard, host, count) }
        return ok
    }

    /// A request's slot comes back, with what its answer says about the host. Returns the slots
    /// given to `shard` itself (for runs it has waiting); other threads are told through `grant`.
    @discardableResult
    func release(_ host: String, shard: Int, _ sample: Sample) -> Int {
        let now = SystemClock.nowMS()
        let grants: Grants = state.withLock { s in
            guard let h = s.hosts[host] else { return Grants() }
            h.inFlight -= 1
            h.held[shard] -= 1
            switch sample {
            case .answered(let ms):
                h.limit.answered(latencyMS: ms, inFlight: h.inFlight + 1, now: now)
                h.metrics.latency.recordNanoseconds(Int64(ms * 1_000_000))
            case .congested:
                h.limit.congested(now: now)
            case .none:
                break
            }
            h.metrics.limit.record(h.limit.slots)
            let g = distribute(h, now: now, releaser: shard)
            h.metrics.inFlight.record(h.inFlight)
            return g
        }
        for (to, count) in grants.others { grant(to, host, count) }
        return grants.own
    }

    /// A thread that was given slots it no longer needs hands them back. Returns the slots
    /// given to it again (for runs that began waiting since).
    func giveBack(_ host: String, shard: Int, count: Int) -> Int {
        var own = 0
        for _ in 0..<count { own += release(host, shard: shard, .none) }
        return own
    }

    /// The host answered 429 or 503 with `Retry-After`: nothing is sent to it until then.
    func pause(_ host: String, forMS ms: Int64) {
        let until = SystemClock.nowMS() + ms
        let schedule: Bool = state.withLock { s in
            guard let h = s.hosts[host] else { return false }
            h.pausedUntil = max(h.pausedUntil, until)
            h.limit.congested(now: SystemClock.nowMS())
            h.metrics.limit.record(h.limit.slots)
            guard !h.resumeScheduled else { return false }
            h.resumeScheduled = true
            return true
        }
        if schedule { scheduleResume(host, at: until) }
    }

    /// `scheme://host:port` of a URL, cheaply.
    static func host(of url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        return String(url[..<end])
    }

    /// The current limit and in-flight count of `host` (for tests and logs).
    func snapshot(_ host: String) -> (limit: Int, inFlight: Int, pausedUntil: Int64)? {
        state.withLock { s in s.hosts[host].map { ($0.limit.slots, $0.inFlight, $0.pausedUntil) } }
    }

    private func scheduleResume(_ host: String, at: Int64) {
        Task.detached { [weak self] in
            let wait = at - SystemClock.nowMS()
            if wait > 0 { try? await Task.sleep(for: .milliseconds(wait)) }
            self?.resume(host)
        }
    }

    private func resume(_ host: String) {
        let now = SystemClock.nowMS()
        var again: Int64?
        let grants: [(Int, Int)] = state.withLock { s in
            guard let h = s.hosts[host] else { return [] }
            h.resumeScheduled = false
            if now < h.pausedUntil {  // paused again meanwhile, for longer
                h.resumeScheduled = true
                again = h.pausedUntil
                return []
            }
            return distribute(h, now: now, releaser: nil).others
        }
        if let again { scheduleResume(host, at: again) }
        for (shard, count) in grants { grant(shard, host, count) }
    }

    /// Slots handed out by ``distribute(_:now:releaser:)``: the releasing thread's own (the
    /// common case after every answer, counted without an array) and the other threads'.
    private struct Grants {
        var own = 0
        var others: [(Int, Int)] = []
    }

    /// Hands the free slots to the threads that wait, one at a time to the one holding the
    /// fewest (`releaser` first on a tie, then in turn from ``Host/nextShard``).
    private func distribute(_ h: Host, now: Int64, releaser: Int?) -> Grants {
        var grants = Grants()
        guard now >= h.pausedUntil else { return grants }
        var free = h.limit.slots - h.inFlight
        guard free > 0, h.wanted.contains(where: { $0 > 0 }) else { return grants }
        while free > 0 {
            var best: Int?
            if let r = releaser, h.wanted[r] > 0 { best = r }
            for i in 0..<shards {
                let shard = (h.nextShard + i) % shards
                guard h.wanted[shard] > 0 else { continue }
                if let b = best, h.held[b] <= h.held[shard] { continue }
                best = shard
            }
            guard let shard = best else { break }
            h.wanted[shard] -= 1
            h.held[shard] += 1
            h.inFlight += 1
            free -= 1
            if shard == releaser {
                grants.own += 1
            } else {
                h.nextShard = (shard + 1) % shards
                if let i = grants.others.firstIndex(where: { $0.0 == shard }) {
                    grants.others[i].1 += 1
                } else {
                    grants.others.append((shard, 1))
                }
            }
        }
        return grants
    }

    private func newHost(_ s: inout State, _ host: String) -> Host {
        let label: String
        if s.labelled < Self.labelledHosts {
            s.labelled += 1
            label = host
        } else {
            label = "other"
        }
        let h = Host(limit: AdaptiveLimit(ceiling: ceiling), shards: shards, metrics: HostMetrics(label: label))
        h.metrics.limit.record(h.limit.slots)
        s.hosts[host] = h
        return h
    }
}

/// `pushlog_gateway_in_flight{host}`, `pushlog_gateway_limit{host}` and
/// `pushlog_gateway_latency_seconds{host}`.
struct HostMetrics: Sendable {
    let inFlight: Gauge
    let limit: Gauge
    let latency: Timer

    init(label: String) {
        inFlight = Gauge(label: "pushlog_gateway_in_flight", dimensions: [("host", label)])
        limit = Gauge(label: "pushlog_gateway_limit", dimensions: [("host", label)])
        latency = Timer(label: "pushlog_gateway_latency_seconds", dimensions: [("host", label)])
    }
}
