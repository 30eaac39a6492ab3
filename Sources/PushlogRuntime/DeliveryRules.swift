import PushlogCore

/// A store write decided by ``DeliveryRules``, queued by the engine for the writer's group
/// commit. Each is applied all or nothing (``apply(_:)``), and those that move a cursor carry
/// the generation of the consumer state they were decided on: after a rewind (which bumps it)
/// they are dropped, so a loop that was running cannot undo the rewind.
enum WriteOp: Sendable, Equatable {
    /// Done with the notification at `pos`: delivered (`success`, with the badge it carried), or
    /// skipped (read before its turn, compacted away, not a notification).
    case advance(key: [UInt8], pos: UInt64, generation: UInt32, success: Bool, now: Int64, badge: Int?)
    case deadLetter(key: [UInt8], pos: UInt64, generation: UInt32, reason: DeadLetterReason, now: Int64)
    /// A failed push: the failure's start and the next attempt; with `giveUp`, the notification
    /// is dead-lettered and passed.
    case failure(key: [UInt8], pos: UInt64, generation: UInt32, giveUp: Bool, since: Int64, nextAttempt: Int64, now: Int64)
    /// A pass ended caught up with no failure: the pusher is healthy again.
    case clearFailure(key: [UInt8], generation: UInt32)
    /// The badge about to be sent alone (recorded before sending, as Synapse does: a failed
    /// badge push is not resent with the same count).
    case badge(key: [UInt8], badge: Int)
    /// The gateway rejected the pusher's own pushkey: a `pusherRemoved` entry in the log.
    case removePusher(key: [UInt8], id: PusherID)

    var key: [UInt8] {
        switch self {
        case .advance(let key, _, _, _, _, _), .deadLetter(let key, _, _, _, _), .failure(let key, _, _, _, _, _, _),
             .clearFailure(let key, _), .badge(let key, _), .removePusher(let key, _): key
        }
    }

    var removesPusher: Bool { if case .removePusher = self { true } else { false } }

    /// Writes at most one record, as its last step (see ``StoreWriteContext/allOrNothing(writesOnce:_:)``).
    var writesOnce: Bool {
        switch self {
        case .advance, .clearFailure, .badge: true
        case .failure(_, _, _, let giveUp, _, _, _): !giveUp
        case .deadLetter, .removePusher: false
        }
    }

    /// Writes the operation in `ctx` (a child transaction of the job's: see
    /// ``StoreWriteContext/allOrNothing(_:)``). A stale generation writes nothing.
    func apply(_ ctx: StoreWriteContext) throws {
        switch self {
        case .advance(let key, let pos, let generation, let success, let now, let badge):
            try ctx.updateConsumer(key: key) { s in
                guard s.generation == generation else { return }
                s.cursor = max(s.cursor, pos)
                if success {
                    s.lastSuccess = now
                    s.failingSince = nil
                    s.nextAttempt = nil
                    if let badge { s.lastBadge = Int64(badge) }
                }
            }
        case .deadLetter(let key, let pos, let generation, let reason, let now):
            guard try ctx.consumerState(key: key)?.generation == generation else { return }
            try ctx.addDeadLetter(key: key, pos: pos, reason: reason, ts: now)
            try ctx.updateConsumer(key: key) { $0.cursor = max($0.cursor, pos) }
        case .failure(let key, let pos, let generation, let giveUp, let since, let nextAttempt, let now):
            guard try ctx.consumerState(key: key)?.generation == generation else { return }
            if giveUp { try ctx.addDeadLetter(key: key, pos: pos, reason: .giveUp, ts: now) }
            try ctx.updateConsumer(key: key) { s in
                if giveUp { s.cursor = max(s.cursor, pos) }
                s.failingSince = since
                s.nextAttempt = nextAttempt
            }
        case .clearFailure(let key, let generation):
            try ctx.updateConsumer(key: key) { s in
                guard s.generation == generation else { return }
                s.failingSince = nil
                s.nextAttempt = nil
            }
        case .badge(let key, let badge):
            try ctx.updateConsumer(key: key) { $0.lastBadge = Int64(badge) }
        case .removePusher(_, let id):
            try ctx.append([.pusherRemoved(id)])
        }
    }
}

/// Where a pusher's delivery stands, as the engine's run of it knows it (possibly ahead of the
/// store: its writes may not be committed yet).
struct DeliveryState: Sendable, Equatable {
    var key: [UInt8]
    /// The last pos this run is done with.
    var cursor: UInt64 = 0
    /// The consumer state's generation the run's writes are for.
    var generation: UInt32 = 0
    /// Since when the pusher has been failing (nil: healthy).
    var failingSince: Int64?
    /// No push before this time (ms; a backoff).
    var notBefore: Int64 = 0
    /// The badge last sent or recorded.
    var lastBadge: Int64?
    /// A push failed during this pass (so the pass does not end "healthy").
    var failedThisPass = false

    init(key: [UInt8]) { self.key = key }

    /// Takes the stored state in: the cursor never goes back unless a rewind bumped the
    /// generation (then the stored cursor wins); a failure recorded by a committed write is
    /// taken as is.
    mutating func load(_ stored: ConsumerState, writesCommitted: Bool) {
        if stored.generation != generation {
            generation = stored.generation
            cursor = stored.cursor
        } else {
            cursor = max(cursor, stored.cursor)
        }
        if writesCommitted {
            failingSince = stored.failingSince
            lastBadge = stored.lastBadge
        }
        notBefore = max(notBefore, stored.nextAttempt ?? 0)
    }
}

/// The delivery decisions, in one place and without I/O: given what happened, what to write
/// and what to do next. The engine (``HTTPDeliveryEngine``) reads, sends and queues writes; it
/// decides nothing itself.
enum DeliveryRules {
    /// The next notification of the pusher's user, as read.
    enum Candidate {
        /// Read before its turn: nothing to push.
        case read
        /// Gone from the log (compacted), or not a notification.
        case gone
        /// A notification the user has not read, received (by the homeserver) at `receivedTS`.
        case unread(receivedTS: Int64)
    }

    enum Before: Equatable {
        /// Push it.
        case send
        /// Pass it with this write (advanced, or dead-lettered), and look at the next.
        case pass(WriteOp)
    }

    /// Whether to push the notification at `pos`.
    static func before(_ candidate: Candidate, pos: UInt64, state: inout DeliveryState, config: PushConfig, now: Int64) -> Before {
        switch candidate {
        case .read, .gone:
            state.cursor = pos
            return .pass(.advance(key: state.key, pos: pos, generation: state.generation, success: false, now: now, badge: nil))
        case .unread(let receivedTS):
            if config.maxAgeMS > 0, now - receivedTS > config.maxAgeMS {
                state.cursor = pos
                return .pass(.deadLetter(key: state.key, pos: pos, generation: state.generation, reason: .maxAge, now: now))
            }
            return .send
        }
    }

    /// What came of a push (a notification or a badge).
    enum Answer: Equatable {
        /// 2xx with a JSON object; `rejectedOwn`: it lists this pusher's pushkey.
        case accepted(rejectedOwn: Bool)
        /// 429 or 503 with `Retry-After`: the host is paused; the pusher did nothing wrong.
        case retryAfter(ms: Int64)
        case failed(GatewayFailure)
        /// Cancelled by shutdown: not an answer at all.
        case cancelled
    }

    enum After: Equatable {
        /// Go on with the next notification.
        case next
        /// Send the same notification again (after the host's pause).
        case again
        /// Wait until `at` (ms), then reload and go on.
        case backoff(at: Int64)
        /// Stop: the pusher is removed, or the process is stopping.
        case stop
    }

    /// A notification push was answered.
    static func answered(_ answer: Answer, pos: UInt64, badge: Int, id: PusherID, state: inout DeliveryState,
                         config: PushConfig, now: Int64, jitter: Double? = nil) -> (op: WriteOp?, next: After) {
        // The jitter is drawn only on a failure: a default argument would cost a getrandom(2)
        // system call on every push.
        switch answer {
        case .accepted(rejectedOwn: true):
            return (.removePusher(key: state.key, id: id), .stop)
        case .accepted(rejectedOwn: false):
            state.cursor = max(state.cursor, pos)
            state.failingSince = nil
            state.notBefore = 0
            state.lastBadge = Int64(badge)
            return (.advance(key: state.key, pos: pos, generation: state.generation, success: true, now: now, badge: badge), .next)
        case .retryAfter:
            return (nil, .again)
        case .cancelled:
            return (nil, .stop)
        case .failed:
            state.failedThisPass = true
            let since = state.failingSince ?? now
            let giveUp = now - since >= config.giveUpAfterMS
            let delay = config.backoff(failingSince: since, now: now, jitter: jitter ?? Double.random(in: -0.1...0.1))
            state.failingSince = since
            state.notBefore = now + delay
            if giveUp { state.cursor = max(state.cursor, pos) }
            return (.failure(key: state.key, pos: pos, generation: state.generation, giveUp: giveUp, since: since,
                             nextAttempt: now + delay, now: now), .backoff(at: now + delay))
        }
    }

    /// A pass found nothing more to push. A pusher that failed before but not in this pass is
    /// healthy again: its `failing_since` is cleared (Synapse clears it only on a successful
    /// push, so a pusher whose later notifications were all read stays "failing" for days, and
    /// its next failure gives up at once).
    static func caughtUp(state: inout DeliveryState) -> [WriteOp] {
        defer { state.failedThisPass = false }
        guard state.failingSince != nil, !state.failedThisPass else { return [] }
        state.failingSince = nil
        state.notBefore = 0
        return [.clearFailure(key: state.key, generation: state.generation)]
    }

    /// Whether a badge-only push is due: the badge differs from the last one sent, and the
    /// pusher does not turn badges off. When due, the write records it before sending.
    static func badge(_ badge: Int, disabled: Bool, state: inout DeliveryState) -> WriteOp? {
        guard !disabled, state.lastBadge != Int64(badge) else { return nil }
        state.lastBadge = Int64(badge)
        return .badge(key: state.key, badge: badge)
    }

    /// A badge-only push was answered: it is not retried and does not touch the backoff; only a
    /// rejection of the pusher's own pushkey removes it.
    static func badgeAnswered(_ answer: Answer, id: PusherID, state: DeliveryState) -> [WriteOp] {
        if case .accepted(rejectedOwn: true) = answer { return [.removePusher(key: state.key, id: id)] }
        return []
    }
}
