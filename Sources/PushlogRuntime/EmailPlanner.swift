import PushlogCore
import PushlogMail

/// Decides, for one email pusher at one moment, whether a mail is due, what it covers, and what
/// is written once the SMTP server accepted it. Pure: the store and the clock come in as values.
///
/// The rules:
/// - a notification is due once `delay_before_mail` has passed since it was received and its
///   room is not throttled; a room is throttled until `last_sent + throttle`, or until
///   `last_sent + throttle_reset_after` when that comes first (a room without mail for that long
///   starts over);
/// - one mail covers every room with a due notification: each such room's unread notifications
///   up to its newest due one (so none is skipped when received times are out of log order);
/// - each room in the mail gets its throttle once (Synapse multiplies once per notification):
///   `throttle_start` the first time or after a reset, else × 144 up to `throttle_max`;
/// - notifications mailed ahead of the cursor (another room is still waiting) are remembered
///   per room, so they are never mailed twice; the cursor moves to just before the oldest
///   notification not yet mailed.
public struct EmailPlanner: Sendable {
    public let config: EmailConfig

    public init(config: EmailConfig) { self.config = config }

    /// An unread notification after the cursor, with what the plan needs of it.
    public struct Pending: Sendable, Equatable {
        public var pos: UInt64
        public var roomID: String
        public var receivedTS: Int64

        public init(pos: UInt64, roomID: String, receivedTS: Int64) {
            self.pos = pos
            self.roomID = roomID
            self.receivedTS = receivedTS
        }
    }

    public struct Mail: Sendable, Equatable {
        /// What the mail covers, in log order.
        public var positions: [UInt64]
        /// Why the mail goes now (the templates show it).
        public var reason: Digest.Reason
        /// Written with the cursor once the mail was accepted.
        public var throttles: [String: EmailThrottle]
        public var cursorAfter: UInt64
    }

    public enum Decision: Sendable, Equatable {
        /// Nothing to mail now; move the cursor to `cursor` (past what is read or mailed) and
        /// look again at `wakeAt` (ms), or never when nil.
        case wait(cursor: UInt64, wakeAt: Int64?)
        case send(Mail)
    }

    /// When `room` may be mailed about again (0: now).
    func roomReadyAt(_ t: EmailThrottle?) -> Int64 {
        guard let t else { return 0 }
        return t.lastSentTS + min(t.throttleMS, config.throttleResetAfterMS)
    }

    /// The throttle a room gets when a mail about it is sent at `now`.
    func nextThrottle(_ t: EmailThrottle?, now: Int64) -> Int64 {
        guard let t, now - t.lastSentTS < config.throttleResetAfterMS, t.throttleMS > 0 else { return config.throttleStartMS }
        let (product, overflow) = t.throttleMS.multipliedReportingOverflow(by: EmailConfig.throttleMultiplier)
        return max(config.throttleStartMS, min(overflow ? .max : product, config.throttleMaxMS))
    }

    /// - Parameters:
    ///   - unread: unread notifications after the cursor, in log order (read ones left out).
    ///   - scannedThrough: the newest pos looked at (where the cursor goes when all is done).
    ///   - cursor: the pusher's cursor now.
    public func decide(unread: [Pending], scannedThrough: UInt64, cursor: UInt64,
                       throttles: [String: EmailThrottle], now: Int64) -> Decision {
        // Already mailed ahead of the cursor: done with.
        let open = unread.filter { $0.pos > (throttles[$0.roomID]?.mailedThrough ?? 0) }
        var newestDue: [String: UInt64] = [:]
        var first: Pending?
        var soonest: Int64?
        for n in open {
            let dueAt = max(n.receivedTS &+ config.delayBeforeMailMS, roomReadyAt(throttles[n.roomID]))
            if dueAt <= now {
                newestDue[n.roomID] = max(newestDue[n.roomID] ?? 0, n.pos)
                if first == nil { first = n }
            } else {
                soonest = min(soonest ?? .max, dueAt)
            }
        }
        guard let first else {
            let holdBack = open.first.map { $0.pos - 1 } ?? scannedThrough
            return .wait(cursor: max(cursor, holdBack), wakeAt: soonest)
        }
        let covered = open.filter { n in newestDue[n.roomID].map { n.pos <= $0 } ?? false }
        var written: [String: EmailThrottle] = [:]
        for (room, through) in newestDue {
            written[room] = EmailThrottle(lastSentTS: now, throttleMS: nextThrottle(throttles[room], now: now),
                                          mailedThrough: through)
        }
        let coveredSet = Set(covered.map(\.pos))
        let cursorAfter = open.first { !coveredSet.contains($0.pos) }.map { $0.pos - 1 } ?? scannedThrough
        let t = throttles[first.roomID]
        return .send(Mail(positions: covered.map(\.pos),
                          reason: Digest.Reason(roomID: first.roomID, receivedAt: first.receivedTS,
                                                delayBeforeMail: config.delayBeforeMailMS,
                                                lastSentTS: t?.lastSentTS ?? 0, throttleMS: t?.throttleMS ?? 0),
                          throttles: written, cursorAfter: max(cursor, cursorAfter)))
    }
}
