import Curl
import Logging
import Metrics
import PushlogCore

/// One HTTP pusher's work: deliver its user's notifications after its cursor, one at a time, in
/// log order, until it is caught up; and badge-only pushes when a receipt changes the badge.
///
/// The pool delivers notifications with ``HTTPDeliveryEngine`` (the same rules, batched on the
/// curl thread); ``deliverUntilCaughtUp()`` runs only with `PUSHLOG_TASK_DELIVERY` set. A rule
/// changed here must be changed there too. Badge-only pushes always take this path.
struct HTTPPusher {
    let pool: PusherPool
    let key: [UInt8]
    let context: BackgroundProcessContext

    var store: Store { pool.store }
    var config: PushConfig { pool.config }
    var log: Logger { context.logger }

    enum Outcome {
        case delivered(badge: Int)
        case failed(GatewayFailure)
        /// The gateway rejected this pusher's own pushkey: the pusher is removed.
        case rejected
    }

    /// Runs until the pusher has nothing after its cursor (or is gone, disabled, or stopping).
    ///
    /// Cursor advances are queued for the writer's group commit without waiting (the next push
    /// does not wait for an fsync); the loop tracks its cursor itself and waits for the last
    /// advance before it ends, so a caught-up pusher's cursor is durable.
    func deliverUntilCaughtUp() async throws {
        var lastWrite: WriteTicket?
        var cursor: UInt64 = 0
        let rule = config.badgeRule
        while true {
            try Task.checkCancellation()
            guard let pusher = try store.read({ view in try view.loadPusher(key: key) }), pusher.state.enabled, pusher.config.kind == .http else { break }
            cursor = max(cursor, pusher.state.cursor)
            // A persisted backoff is honoured, across restarts too; pokes do not cut it short.
            if let next = pusher.state.nextAttempt {
                let wait = next - SystemClock.nowMS()
                if wait > 0 {
                    pool.releaseBootSlot(key: key)
                    if pool.setSleeping(key: key, true) { break }
                    defer { _ = pool.setSleeping(key: key, false) }
                    try await Task.sleep(for: .milliseconds(wait))
                    continue
                }
            }
            let batch = try context.transaction {
                try store.read { view in try view.notifications(user: pusher.config.id.userID, after: cursor, limit: 100) }
            }
            if batch.isEmpty { break }
            var stop = false
            delivery: for n in batch {
                try Task.checkCancellation()
                if pool.isStopping {
                    stop = true  // shutting down: send nothing new
                    break delivery
                }
                if n.isRead {
                    lastWrite = advance(to: n.pos)  // read before its turn: nothing to push
                    cursor = n.pos
                    continue
                }
                guard let input = try store.read({ view in try view.pushInput(key: key, pos: n.pos, rule: rule) }), input.pusher.state.enabled else {
                    stop = true  // removed or disabled
                    break delivery
                }
                guard let logged = input.entry, case .notification(let note) = logged.entry else {
                    lastWrite = advance(to: n.pos)  // compacted away
                    cursor = n.pos
                    continue
                }
                if config.maxAgeMS > 0, SystemClock.nowMS() - note.receivedTS > config.maxAgeMS {
                    lastWrite = deadLetter(pos: n.pos, reason: .maxAge, pusher: input.pusher.config.id)
                    cursor = n.pos
                    continue
                }
                switch try await push(note, pusher: input.pusher.config, badge: input.badge) {
                case .delivered(let badge):
                    pool.pushesProcessed.increment()
                    let latency = Double(SystemClock.nowMS() - logged.ts) / 1000
                    pool.pushLatency.recordSeconds(latency)
                    pool.onDelivered?(n.pos, latency)
                    lastWrite = advance(to: n.pos, success: true, badge: badge)
                    cursor = n.pos
                case .rejected:
                    pool.pushesProcessed.increment()
                    stop = true
                    break delivery
                case .failed(let failure):
                    pool.pushesFailed.increment()
                    failure.count()
                    try await lastWrite?.wait()
                    lastWrite = nil
                    try await failed(pos: n.pos, pusher: input.pusher, why: failure.why)
                    break delivery  // the next attempt waits for the backoff, read from the store
                }
            }
            if stop { break }
            // The next round reads the stored state: let this round's advances land first.
            try await lastWrite?.wait()
            lastWrite = nil
        }
        try await lastWrite?.wait()
        lastWrite = nil
    }

    /// Posts one notification.
    func push(_ n: PushNotification, pusher: PusherConfig, badge: Int) async throws -> Outcome {
        let body = GatewayPayload.notification(n, pusher: pusher, badge: badge,
                                               options: .init(includeContent: config.includeContent))
        return try await post(body, pusher: pusher, success: .delivered(badge: badge))
    }

    func post(_ body: JSON, pusher: PusherConfig, success: Outcome) async throws -> Outcome {
        guard let url = pusher.data["url"]?.stringValue else { return .failed(.noURL) }
        let response: HTTPResponse
        let slots = pool.slots(for: url)
        do {
            try await slots.acquire()
            defer { slots.release() }
            response = try await pool.http.post(url, body: body.serialized(), headers: ["Content-Type": "application/json"],
                                                timeout: .milliseconds(config.requestTimeoutMS), addressPolicy: config.addressPolicy)
        } catch is CancellationError {
            throw CancellationError()  // stopping: not a failure of the gateway
        } catch {
            return .failed(GatewayFailure(error))
        }
        guard (200..<300).contains(response.status) else { return .failed(.status(response.status)) }
        // Sygnal labels its JSON text/html: parse whatever the Content-Type says.
        guard let rejected = GatewayPayload.rejected(response.body) else { return .failed(.badAnswer) }
        for pushkey in rejected {
            if pushkey == pusher.id.pushkey {
                log.warning("gateway rejected our pushkey: removing the pusher (\(pusher.id.logName))")
                _ = try? store.append([.pusherRemoved(pusher.id)])
                return .rejected
            }
            log.warning("gateway rejected pushkey \(PusherID.shortened(pushkey)), not this pusher's; ignored (\(pusher.id.logName))")
        }
        return success
    }

    /// Queues a store write, charged to this process when the writer runs it.
    func deferredWrite(_ body: @escaping @Sendable (StoreWriteContext) throws -> Void) -> WriteTicket {
        let context = self.context
        return store.writeDeferred { ctx in
            try context.transaction { try body(ctx) }
        }
    }

    /// Queues a cursor advance for the next group commit.
    func advance(to pos: UInt64, success: Bool = false, badge: Int? = nil) -> WriteTicket {
        let key = self.key
        let now = SystemClock.nowMS()
        return deferredWrite { ctx in
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
    }

    func deadLetter(pos: UInt64, reason: DeadLetterReason, pusher: PusherID) -> WriteTicket {
        let key = self.key
        let now = SystemClock.nowMS()
        Counter(label: "pushlog_dead_letters_total", dimensions: [("reason", reason.label)]).increment()
        log.warning("dead-lettered notification at pos \(pos) for \(pusher.logName): \(reason.label)")
        return deferredWrite { ctx in
            try ctx.addDeadLetter(key: key, pos: pos, reason: reason, ts: now)
            try ctx.updateConsumer(key: key) { $0.cursor = max($0.cursor, pos) }
        }
    }

    /// A failed push: schedule the next attempt, or give this notification up when the pusher
    /// has failed for longer than `push.give_up_after`.
    func failed(pos: UInt64, pusher: LoadedPusher, why: String) async throws {
        let now = SystemClock.nowMS()
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
        log.warning("push failed (\(why)) for \(pusher.config.id.logName); \(giveUp ? "gave up on pos \(pos); " : "")next attempt in \(delay) ms")
    }

    /// The badge-only push after a receipt, sent only when the badge changed and the pusher does
    /// not disable badges. Not retried, and it does not touch the backoff.
    func updateBadge() async throws {
        guard let pusher = try store.read({ view in try view.loadPusher(key: self.key) }), pusher.state.enabled,
              !GatewayPayload.badgeDisabled(pusher.config) else { return }
        let rule = config.badgeRule
        let badge = try store.read { view in try view.badge(user: pusher.config.id.userID, rule: rule) }
        if let last = pusher.state.lastBadge, last == Int64(badge) { return }
        let key = self.key
        // Recorded before sending, as Synapse does: a failure is not resent with the same count.
        _ = try await store.writeAsync { ctx in try ctx.updateConsumer(key: key) { $0.lastBadge = Int64(badge) } }
        switch try await post(GatewayPayload.badge(badge, pusher: pusher.config), pusher: pusher.config, success: .delivered(badge: badge)) {
        case .delivered, .rejected: pool.badgesProcessed.increment()
        case .failed(let failure):
            pool.badgesFailed.increment()
            failure.count()
            log.warning("failed to send badge count (\(failure.why)) for \(pusher.config.id.logName)")
        }
    }
}
