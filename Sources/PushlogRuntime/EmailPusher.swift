import Logging
import Metrics
import PushlogCore
import PushlogMail

/// One email pusher's pass: load its state and room throttles, decide with `EmailPlanner`, and
/// mail what is due. The cursor and throttles move only after the SMTP server accepted the mail
/// (so a crash before that mails again, never loses); a failed send waits out a backoff and
/// touches no throttle (Synapse never retries a failed mail).
struct EmailPusher {
    let pool: PusherPool
    let delivery: EmailDelivery
    let key: [UInt8]
    let context: BackgroundProcessContext

    var store: Store { pool.store }
    var log: Logger { context.logger }

    /// What the loop does next.
    enum Next: Equatable {
        /// Nothing more to do until new notifications arrive.
        case idle
        /// Look again at this time (ms): a notification or room becomes due, or a retry.
        case wake(at: Int64)
        /// A mail went: look again at once.
        case again
    }

    func process() async throws -> Next {
        guard let pusher = try context.transaction({ try store.read({ view in try view.loadPusher(key: key) }) }),
              pusher.state.enabled, pusher.config.kind == .email else { return .idle }
        let now = SystemClock.nowMS()
        // A failed mail waits out its backoff, whatever pokes it.
        if let next = pusher.state.nextAttempt, next > now { return .wake(at: next) }
        let user = pusher.config.id.userID
        let cursor = pusher.state.cursor
        // Throttles, notifications and the events a mail shows from one snapshot: nothing is
        // decided with a room's throttle unknown or out of step with what it covers.
        let planner = EmailPlanner(config: delivery.config)
        let perRoom = delivery.config.maxNotificationsPerRoom
        let plan = try context.transaction {
            try store.read { view -> Plan in
                let throttles = try view.emailThrottles(key: key)
                var unread: [UserNotification] = []
                var scanned = cursor
                try view.forEachNotification(user: user, after: cursor) { n in
                    scanned = n.pos
                    if !n.isRead { unread.append(n) }  // read before its mail was due: never mailed
                    return true
                }
                // The plan needs only receive times, read in place; events are decoded for the
                // few notifications the mail shows.
                let received = try view.receivedTimes(at: unread.map(\.pos))
                let pending = unread.compactMap { n in
                    received[n.pos].map { EmailPlanner.Pending(pos: n.pos, roomID: n.roomID, receivedTS: $0) }
                }
                switch planner.decide(unread: pending, scannedThrough: scanned, cursor: cursor, throttles: throttles, now: now) {
                case .wait(let newCursor, let wakeAt):
                    return .wait(cursor: newCursor, wakeAt: wakeAt)
                case .send(let mail):
                    let rooms = Dictionary(uniqueKeysWithValues: pending.map { ($0.pos, $0.roomID) })
                    let (positions, omitted) = Self.shown(mail.positions, rooms: rooms, perRoom: perRoom)
                    let notes = try view.notifications(at: positions)
                    return .send(mail, Shown(notifications: positions.compactMap { notes[$0] }, omittedPerRoom: omitted))
                }
            }
        }
        switch plan {
        case .wait(let newCursor, let wakeAt):
            if newCursor > cursor {
                try await write { ctx in try ctx.updateConsumer(key: key) { $0.cursor = max($0.cursor, newCursor) } }
            }
            return wakeAt.map { .wake(at: $0) } ?? .idle
        case .send(let mail, let shown):
            return try await send(mail, shown: shown, pusher: pusher, now: now)
        }
    }

    /// The planner's decision, with the events to show when it is a mail.
    enum Plan {
        case wait(cursor: UInt64, wakeAt: Int64?)
        case send(EmailPlanner.Mail, Shown)
    }

    /// What a mail shows: the events loaded for it, and per room how many more it covers.
    struct Shown {
        var notifications: [PushNotification]
        var omittedPerRoom: [String: Int]
    }

    func send(_ mail: EmailPlanner.Mail, shown: Shown, pusher: LoadedPusher, now: Int64) async throws -> Next {
        let id = pusher.config.id
        let link = delivery.signer.link(baseURL: delivery.publicBaseURL(), id, now: now)
        let digest = Digest(userID: id.userID, appName: delivery.config.appName, clientBaseURL: delivery.config.clientBaseURL,
                            publicBaseURL: delivery.publicBaseURL(),  // the link and the thumbnails each add a missing "/"
                            unsubscribeLink: link, now: now, reason: mail.reason,
                            notifications: shown.notifications, omittedPerRoom: shown.omittedPerRoom)
        do {
            try await delivery.send(digest, to: id.pushkey)
        } catch is CancellationError {
            throw CancellationError()  // stopping: mailed again after a restart
        } catch {
            pool.emailsFailed.increment()
            return try await failed(pusher: pusher, why: "\(error)")
        }
        pool.emailsSent.increment()
        log.info("sent notification email covering \(mail.positions.count) notifications in \(mail.throttles.count) rooms")
        let key = self.key
        let done = SystemClock.nowMS()
        try await write { ctx in
            guard try ctx.updateConsumer(key: key, { s in
                s.cursor = max(s.cursor, mail.cursorAfter)
                s.lastSuccess = done
                s.failingSince = nil
                s.nextAttempt = nil
            }) != nil else { return }
            try ctx.setEmailThrottles(key: key, mail.throttles)
        }
        return .again
    }

    /// Of `positions` (log order), the newest `perRoom` of each room, still in log order, and
    /// per room how many older ones are left out: a mail about a busy room loads a bounded
    /// number of events and counts the rest.
    static func shown(_ positions: [UInt64], rooms: [UInt64: String], perRoom: Int) -> (shown: [UInt64], omitted: [String: Int]) {
        var total: [String: Int] = [:]
        for pos in positions { total[rooms[pos] ?? "", default: 0] += 1 }
        var seen: [String: Int] = [:]
        var shown: [UInt64] = []
        var omitted: [String: Int] = [:]
        for pos in positions {
            let room = rooms[pos] ?? ""
            seen[room, default: 0] += 1
            if total[room]! - seen[room]! < perRoom {
                shown.append(pos)
            } else {
                omitted[room, default: 0] += 1
            }
        }
        return (shown, omitted)
    }

    /// A mail the server did not take: retry after the `push.backoff_*` schedule; the cursor
    /// and throttles stay as they were.
    func failed(pusher: LoadedPusher, why: String) async throws -> Next {
        let now = SystemClock.nowMS()
        let since = pusher.state.failingSince ?? now
        let delay = pool.config.backoff(failingSince: since, now: now)
        let key = self.key
        try await write { ctx in
            try ctx.updateConsumer(key: key) { s in
                s.failingSince = since
                s.nextAttempt = now + delay
            }
        }
        log.warning("sending notification email failed (\(why)) for \(pusher.config.id.logName); next attempt in \(delay) ms")
        return .wake(at: now + delay)
    }

    func write(_ body: @escaping @Sendable (StoreWriteContext) throws -> Void) async throws {
        let context = self.context
        _ = try await store.writeAsync { ctx in try context.transaction { try body(ctx) } }
    }
}
