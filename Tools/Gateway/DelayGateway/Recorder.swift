import Foundation
import Synchronization

/// The gateway's shared state: the mode, the counters, what arrived, the held requests and the
/// waiters. Every event-loop thread records through it under one lock; waiters whose condition
/// comes to hold are resumed outside the lock.
final class Recorder: Sendable {
    /// An answer decided when a request arrives; written after `delayMS` (nil: held).
    struct Answer: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: String
        var delayMS: Int?
        /// `devices[0].pushkey`, counted in flight per pushkey until answered.
        var pushkey: String?
    }

    /// Schedules a held request's answer after the given delay in milliseconds.
    typealias Release = @Sendable (Int) -> Void

    private struct Waiter {
        var condition: @Sendable (DelayGateway.Stats) -> Bool
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var mode: DelayGateway.Mode
        var failuresLeft: Int
        var stats = DelayGateway.Stats()
        var bodies: [Data] = []
        var pushkeys: [String] = []
        var countsByPushkey: [String: Int] = [:]
        var inFlightByPushkey: [String: Int] = [:]
        var peakInFlightByPushkey: [String: Int] = [:]
        var held: [Release] = []
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 0
    }

    let keepBodies: Bool
    private let state: Mutex<State>

    init(mode: DelayGateway.Mode, keepBodies: Bool) {
        self.keepBodies = keepBodies
        state = Mutex(State(mode: mode, failuresLeft: mode.failure?.count ?? 0))
    }

    // MARK: events from the handlers

    /// A notify request has fully arrived: counts it and decides its answer. `release` is kept
    /// if the answer is held.
    func arrived(body: Data, release: @escaping Release) -> Answer {
        let devices = Self.devicePushkeys(body)
        return update { s in
            s.stats.received += 1
            s.stats.inFlight += 1
            s.stats.peakInFlight = max(s.stats.peakInFlight, s.stats.inFlight)
            let at = ContinuousClock.now
            if s.stats.firstReceived == nil { s.stats.firstReceived = at }
            s.stats.lastReceived = at
            if keepBodies { s.bodies.append(body) }
            if let first = devices?.first {
                s.pushkeys.append(first)
                s.countsByPushkey[first, default: 0] += 1
                let now = s.inFlightByPushkey[first, default: 0] + 1
                s.inFlightByPushkey[first] = now
                s.peakInFlightByPushkey[first] = max(s.peakInFlightByPushkey[first] ?? 0, now)
                s.stats.peakInFlightPerPushkey = max(s.stats.peakInFlightPerPushkey, now)
            }
            var answer = Answer(status: 200, headers: [("Content-Type", "application/json")], body: "{\"rejected\":[]}",
                                delayMS: s.mode.latency.delayMS(inFlight: s.stats.inFlight), pushkey: devices?.first)
            if let failure = s.mode.failure, s.failuresLeft > 0 {
                s.failuresLeft -= 1
                if s.failuresLeft == 0 { s.mode.failure = nil }
                switch failure {
                case .status(let status, _):
                    answer.status = status
                    answer.body = "{}"
                case .tooManyRequests(let seconds, _):
                    answer.status = 429
                    answer.headers.append(("Retry-After", String(seconds)))
                    answer.body = "{\"errcode\":\"M_LIMIT_EXCEEDED\",\"error\":\"Too many requests\"}"
                }
            } else if let devices {
                let rejected = devices.filter { s.mode.rejectedPushkeys.contains($0) }
                if !rejected.isEmpty {
                    answer.body = "{\"rejected\":[" + rejected.map(Self.jsonString).joined(separator: ",") + "]}"
                }
            } else {
                answer.status = 400
                answer.body = "{\"errcode\":\"M_BAD_JSON\",\"error\":\"no notification.devices\"}"
            }
            if answer.delayMS == nil { s.held.append(release) }
            return answer
        }
    }

    /// An answer was written.
    func answered(status: Int, pushkey: String?) {
        update { s in
            s.stats.inFlight -= 1
            Self.leave(pushkey, &s)
            s.stats.answered += 1
            s.stats.statuses[status, default: 0] += 1
        }
    }

    /// A connection closed with its request unanswered.
    func abandoned(pushkey: String?) {
        update { s in
            s.stats.inFlight -= 1
            Self.leave(pushkey, &s)
            s.stats.abandoned += 1
        }
    }

    private static func leave(_ pushkey: String?, _ s: inout State) {
        guard let pushkey, let n = s.inFlightByPushkey[pushkey] else { return }
        s.inFlightByPushkey[pushkey] = n > 1 ? n - 1 : nil
    }

    // MARK: control

    func setMode(_ mode: DelayGateway.Mode) {
        let (released, delay) = update { s -> ([Release], Int?) in
            s.mode = mode
            s.failuresLeft = mode.failure?.count ?? 0
            guard let delay = mode.latency.delayMS(inFlight: s.stats.inFlight) else { return ([], nil) }
            defer { s.held.removeAll() }
            return (s.held, delay)
        }
        // Each held request gets its own draw of a uniform latency; overload counts the current in-flight.
        for release in released { release(mode.latency.delayMS(inFlight: stats.inFlight) ?? delay ?? 0) }
    }

    var mode: DelayGateway.Mode { state.withLock { $0.mode } }
    var stats: DelayGateway.Stats { state.withLock { $0.stats } }
    var bodies: [Data] { state.withLock { $0.bodies } }
    var pushkeys: [String] { state.withLock { $0.pushkeys } }
    var countsByPushkey: [String: Int] { state.withLock { $0.countsByPushkey } }
    func inFlight(for pushkey: String) -> Int { state.withLock { $0.inFlightByPushkey[pushkey] ?? 0 } }
    func peakInFlight(for pushkey: String) -> Int { state.withLock { $0.peakInFlightByPushkey[pushkey] ?? 0 } }

    /// Zeroes the counters (requests in flight stay counted in `inFlight`) and forgets bodies.
    func reset() {
        update { s in
            let inFlight = s.stats.inFlight
            s.stats = DelayGateway.Stats()
            s.stats.inFlight = inFlight
            s.stats.peakInFlight = inFlight
            s.peakInFlightByPushkey = s.inFlightByPushkey
            s.stats.peakInFlightPerPushkey = s.inFlightByPushkey.values.max() ?? 0
            s.bodies.removeAll()
            s.pushkeys.removeAll()
            s.countsByPushkey.removeAll()
        }
    }

    // MARK: waiters

    func makeWaiterID() -> UInt64 {
        state.withLock { s in
            s.nextWaiterID += 1
            return s.nextWaiterID
        }
    }

    /// Resumes `continuation` at once if `condition` holds now, else when it first does.
    func addWaiter(_ id: UInt64, _ condition: @escaping @Sendable (DelayGateway.Stats) -> Bool,
                   _ continuation: CheckedContinuation<Void, any Error>) {
        let holds = state.withLock { s in
            if condition(s.stats) { return true }
            s.waiters[id] = Waiter(condition: condition, continuation: continuation)
            return false
        }
        if holds { continuation.resume() }
    }

    /// Fails the waiter `id` if it is still waiting; `error` gets the current counters.
    func failWaiter(_ id: UInt64, _ error: (DelayGateway.Stats) -> any Error) {
        let (waiter, stats) = state.withLock { s in (s.waiters.removeValue(forKey: id), s.stats) }
        waiter?.continuation.resume(throwing: error(stats))
    }

    /// Runs `body` under the lock, then resumes the waiters whose condition now holds.
    @discardableResult
    private func update<T>(_ body: (inout State) -> T) -> T {
        let (result, ready) = state.withLock { s -> (T, [CheckedContinuation<Void, any Error>]) in
            let result = body(&s)
            guard !s.waiters.isEmpty else { return (result, []) }
            var ready: [CheckedContinuation<Void, any Error>] = []
            for (id, waiter) in s.waiters where waiter.condition(s.stats) {
                ready.append(waiter.continuation)
                s.waiters[id] = nil
            }
            return (result, ready)
        }
        for continuation in ready { continuation.resume() }
        return result
    }

    // MARK: bodies

    /// `notification.devices[].pushkey` of a notify body; nil if it is not such a body.
    static func devicePushkeys(_ body: Data) -> [String]? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let notification = object["notification"] as? [String: Any],
              let devices = notification["devices"] as? [[String: Any]] else { return nil }
        return devices.compactMap { $0["pushkey"] as? String }
    }

    static func jsonString(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
