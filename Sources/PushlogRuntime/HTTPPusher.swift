import Curl
import Logging
import Metrics
import PushlogCore

/// One HTTP pusher's work: deliver its user's notifications after its cursor, one at a time, in
/// log order, until it is caught up; and badge-only pushes when a receipt changes the badge.
struct HTTPPusher {
    let pool: PusherPool
    let key: [UInt8]
    let context: BackgroundProcessContext

    var store: Store { pool.store }
    var config: PushConfig { pool.config }
    var log: Logger { context.logger }

    enum Outcome {
        case delivered(badge: Int)
        case failed(String)
        /// The gateway rejected this pusher's own pushkey: the pusher is removed.
        case rejected
    }

    /// Runs until the pusher has nothing after its cursor (or is gone, disabled, or stopping).
    func deliverUntilCaughtUp() async throws {
        while true {
            try Task.checkCancellation()
            guard let pusher = try store.loadPusher(key: key), pusher.state.enabled else { return }
            // A persisted backoff is honoured, across restarts too; pokes do not cut it short.
            if let next = pusher.state.nextAttempt {
                let wait = next - Clock.nowMS()
                if wait > 0 {
                    pool.releaseBootSlot(key: key)
                    try await Task.sleep(for: .milliseconds(wait))
                    continue
                }
            }
            let batch = try context.transaction {
                try store.notifications(user: pusher.config.id.userID, after: pusher.state.cursor, limit: 100)
            }
            if batch.isEmpty { return }
            delivery: for n in batch {
                try Task.checkCancellation()
                if n.isRead {
                    try await advance(to: n.pos)  // read before its turn: nothing to push
                    continue
                }
                guard case .notification(let note)? = try store.entry(at: n.pos)?.entry else {
                    try await advance(to: n.pos)  // compacted away
                    continue
                }
                if config.maxAgeMS > 0, Clock.nowMS() - note.receivedTS > config.maxAgeMS {
                    try await deadLetter(pos: n.pos, reason: .maxAge)
                    continue
                }
                guard let current = try store.loadPusher(key: key), current.state.enabled else { return }
                switch await push(note, pusher: current.config) {
                case .delivered(let badge):
                    pool.pushesProcessed.increment()
                    try await advance(to: n.pos, success: true, badge: badge)
                case .rejected:
                    pool.pushesProcessed.increment()
                    return
                case .failed(let why):
                    pool.pushesFailed.increment()
                    try await failed(pos: n.pos, pusher: current, why: why)
                    break delivery  // the next attempt waits for the backoff, read from the store
                }
            }
        }
    }

    /// Posts one notification.
    func push(_ n: Notification, pusher: PusherConfig) async -> Outcome {
        let rule: BadgeRule = config.groupUnreadCountByRoom ? .rooms : .notifications
        let badge = (try? store.badge(user: n.userID, rule: rule)) ?? 0
        let body = GatewayPayload.notification(n, pusher: pusher, badge: badge,
                                               options: .init(includeContent: config.includeContent))
        return await post(body, pusher: pusher, success: .delivered(badge: badge))
    }

    func post(_ body: JSON, pusher: PusherConfig, success: Outcome) async -> Outcome {
        guard let url = pusher.data["url"]?.stringValue else { return .failed("no data.url") }
        let response: HTTPResponse
        do {
            response = try await pool.http.post(url, body: body.serialized(), headers: ["Content-Type": "application/json"],
                                                timeout: .milliseconds(config.requestTimeoutMS))
        } catch {
            return .failed("\(error)")
        }
        guard (200..<300).contains(response.status) else { return .failed("HTTP \(response.status)") }
        // Sygnal labels its JSON text/html: parse whatever the Content-Type says.
        guard let rejected = GatewayPayload.rejected(response.body) else { return .failed("answer is not a JSON object") }
        for pushkey in rejected {
            if pushkey == pusher.id.pushkey {
                log.warning("gateway rejected our pushkey: removing the pusher", metadata: ["app_id": "\(pusher.id.appID)"])
                _ = try? store.append([.pusherRemoved(pusher.id)])
                return .rejected
            }
            log.warning("gateway rejected a pushkey that is not this pusher's; ignored", metadata: ["rejected": "\(pushkey)"])
        }
        return success
    }

    func advance(to pos: UInt64, success: Bool = false, badge: Int? = nil) async throws {
        let key = self.key
        let now = Clock.nowMS()
        let t0 = Clock.monotonicSeconds()
        _ = try await store.writeAsync { ctx in
            try ctx.updateConsumer(key: key) { s in
                s.cursor = max(s.cursor, pos)
                if success {
                    s.lastSuccess = now
                    s.failingSince = nil
                    s.nextAttempt = nil
                    if let badge { s.lastBadge = Int64(badge) }
                }
            }
        }
        context.recordTransaction(seconds: Clock.monotonicSeconds() - t0)
    }

    func deadLetter(pos: UInt64, reason: DeadLetterReason) async throws {
        let key = self.key
        let now = Clock.nowMS()
        _ = try await store.writeAsync { ctx in
            try ctx.addDeadLetter(key: key, pos: pos, reason: reason, ts: now)
            try ctx.updateConsumer(key: key) { $0.cursor = max($0.cursor, pos) }
        }
        Counter(label: "pushlog_dead_letters_total", dimensions: [("reason", reason.label)]).increment()
        log.warning("dead-lettered notification at pos \(pos): \(reason.label)")
    }

    /// A failed push: schedule the next attempt, or give this notification up when the pusher
    /// has failed for longer than `push.give_up_after`.
    func failed(pos: UInt64, pusher: LoadedPusher, why: String) async throws {
        let now = Clock.nowMS()
        let since = pusher.state.failingSince ?? now
        let giveUp = now - since >= config.giveUpAfterMS
        let delay = config.backoff(failingSince: since, now: now)
        let key = self.key
        _ = try await store.writeAsync { ctx in
            if giveUp { try ctx.addDeadLetter(key: key, pos: pos, reason: .giveUp, ts: now) }
            try ctx.updateConsumer(key: key) { s in
                if giveUp { s.cursor = max(s.cursor, pos) }
                s.failingSince = since
                s.nextAttempt = now + delay
            }
        }
        if giveUp {
            Counter(label: "pushlog_dead_letters_total", dimensions: [("reason", DeadLetterReason.giveUp.label)]).increment()
        }
        log.warning("push failed (\(why)); \(giveUp ? "gave up on pos \(pos); " : "")next attempt in \(delay) ms")
    }

    /// The badge-only push after a receipt, sent only when the badge changed and the pusher does
    /// not disable badges. Not retried, and it does not touch the backoff.
    func updateBadge() async throws {
        guard let pusher = try store.loadPusher(key: key), pusher.state.enabled,
              !GatewayPayload.badgeDisabled(pusher.config) else { return }
        let rule: BadgeRule = config.groupUnreadCountByRoom ? .rooms : .notifications
        let badge = try store.badge(user: pusher.config.id.userID, rule: rule)
        if let last = pusher.state.lastBadge, last == Int64(badge) { return }
        let key = self.key
        // Recorded before sending, as Synapse does: a failure is not resent with the same count.
        _ = try await store.writeAsync { ctx in try ctx.updateConsumer(key: key) { $0.lastBadge = Int64(badge) } }
        switch await post(GatewayPayload.badge(badge, pusher: pusher.config), pusher: pusher.config, success: .delivered(badge: badge)) {
        case .delivered, .rejected: pool.badgesProcessed.increment()
        case .failed(let why):
            pool.badgesFailed.increment()
            log.warning("failed to send badge count: \(why)")
        }
    }
}
