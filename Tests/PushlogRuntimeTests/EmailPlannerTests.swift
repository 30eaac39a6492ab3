import PushlogCore
import Testing
@testable import PushlogRuntime

@Suite("Email planner: when a mail is due and what it covers")
struct EmailPlannerTests {
    static let minute: Int64 = 60_000
    var config: EmailConfig {
        var c = EmailConfig()
        c.delayBeforeMailMS = 10 * Self.minute
        c.throttleStartMS = 10 * Self.minute
        c.throttleMaxMS = 24 * 60 * Self.minute
        c.throttleResetAfterMS = 12 * 60 * Self.minute
        return c
    }

    func pending(_ pos: UInt64, _ room: String, at ts: Int64) -> EmailPlanner.Pending {
        EmailPlanner.Pending(pos: pos, roomID: room, receivedTS: ts)
    }

    @Test("no mail before delay_before_mail; the wake-up is when the first notification becomes due")
    func delay() {
        let planner = EmailPlanner(config: config)
        let d = planner.decide(unread: [pending(5, "!a", at: 1_000)], scannedThrough: 5, cursor: 4, throttles: [:],
                               now: 1_000 + 9 * Self.minute)
        #expect(d == .wait(cursor: 4, wakeAt: 1_000 + 10 * Self.minute))
        guard case .send(let mail) = planner.decide(unread: [pending(5, "!a", at: 1_000)], scannedThrough: 5, cursor: 4,
                                                    throttles: [:], now: 1_000 + 10 * Self.minute) else {
            Issue.record("due at exactly the delay")
            return
        }
        #expect(mail.positions == [5])
        #expect(mail.cursorAfter == 5)
        #expect(mail.throttles["!a"] == EmailThrottle(lastSentTS: 1_000 + 10 * Self.minute, throttleMS: 10 * Self.minute, mailedThrough: 5))
    }

    @Test("one mail covers every due notification across rooms, with one throttle per room")
    func oneMailManyRooms() {
        let planner = EmailPlanner(config: config)
        let now = 100 * Self.minute
        let unread = [pending(1, "!a", at: 0), pending(2, "!b", at: 0), pending(3, "!a", at: 1), pending(4, "!c", at: 2)]
        guard case .send(let mail) = planner.decide(unread: unread, scannedThrough: 6, cursor: 0, throttles: [:], now: now) else {
            Issue.record("expected a mail")
            return
        }
        #expect(mail.positions == [1, 2, 3, 4])
        #expect(Set(mail.throttles.keys) == ["!a", "!b", "!c"])
        // Once per room per email: two notifications of !a still give throttle_start.
        #expect(mail.throttles["!a"]?.throttleMS == 10 * Self.minute)
        #expect(mail.cursorAfter == 6)
        #expect(mail.reason.roomID == "!a")
    }

    @Test("a throttled room waits; the next mail multiplies its throttle up to throttle_max")
    func throttleProgression() {
        let planner = EmailPlanner(config: config)
        let sent = EmailThrottle(lastSentTS: 0, throttleMS: 10 * Self.minute, mailedThrough: 1)
        let unread = [pending(2, "!a", at: 0)]
        #expect(planner.decide(unread: unread, scannedThrough: 2, cursor: 1, throttles: ["!a": sent], now: 5 * Self.minute)
                == .wait(cursor: 1, wakeAt: 10 * Self.minute))
        guard case .send(let mail) = planner.decide(unread: unread, scannedThrough: 2, cursor: 1, throttles: ["!a": sent],
                                                    now: 10 * Self.minute) else {
            Issue.record("due once the throttle passed")
            return
        }
        #expect(mail.throttles["!a"]?.throttleMS == 24 * 60 * Self.minute)
        let capped = planner.nextThrottle(EmailThrottle(lastSentTS: 0, throttleMS: 24 * 60 * Self.minute, mailedThrough: 0),
                                          now: Self.minute)
        #expect(capped == 24 * 60 * Self.minute)
    }

    @Test("a room without mail for throttle_reset_after is unthrottled and starts over at throttle_start")
    func reset() {
        let planner = EmailPlanner(config: config)
        let day = EmailThrottle(lastSentTS: 0, throttleMS: 24 * 60 * Self.minute, mailedThrough: 1)
        let now = 12 * 60 * Self.minute
        guard case .send(let mail) = planner.decide(unread: [pending(2, "!a", at: 0)], scannedThrough: 2, cursor: 1,
                                                    throttles: ["!a": day], now: now) else {
            Issue.record("the reset makes the room ready after throttle_reset_after")
            return
        }
        #expect(mail.throttles["!a"]?.throttleMS == 10 * Self.minute)
    }

    @Test("a room still throttled holds the cursor; what was mailed ahead of it is never mailed again")
    func mailedAheadOfTheCursor() {
        let planner = EmailPlanner(config: config)
        let now = 100 * Self.minute
        let throttled = EmailThrottle(lastSentTS: now - Self.minute, throttleMS: 60 * Self.minute, mailedThrough: 0)
        let unread = [pending(3, "!slow", at: 0), pending(4, "!fast", at: 0)]
        guard case .send(let mail) = planner.decide(unread: unread, scannedThrough: 4, cursor: 2,
                                                    throttles: ["!slow": throttled], now: now) else {
            Issue.record("!fast is due")
            return
        }
        #expect(mail.positions == [4])
        #expect(mail.cursorAfter == 2)
        var after = ["!slow": throttled]
        after.merge(mail.throttles) { $1 }
        // Next look: !fast's notification is done; only !slow is waited for.
        #expect(planner.decide(unread: unread, scannedThrough: 4, cursor: 2, throttles: after, now: now + 1)
                == .wait(cursor: 2, wakeAt: now - Self.minute + 60 * Self.minute))
    }

    @Test("with nothing unread the cursor moves to what was scanned and nothing is scheduled")
    func allRead() {
        let planner = EmailPlanner(config: config)
        #expect(planner.decide(unread: [], scannedThrough: 9, cursor: 3, throttles: [:], now: 0) == .wait(cursor: 9, wakeAt: nil))
    }

    @Test("within a room, everything up to the newest due notification goes, even if received times are out of order")
    func outOfOrderReceivedTimes() {
        let planner = EmailPlanner(config: config)
        let now = 20 * Self.minute
        let unread = [pending(1, "!a", at: now), pending(2, "!a", at: 0)]
        guard case .send(let mail) = planner.decide(unread: unread, scannedThrough: 2, cursor: 0, throttles: [:], now: now) else {
            Issue.record("pos 2 is due")
            return
        }
        #expect(mail.positions == [1, 2])
        #expect(mail.cursorAfter == 2)
    }
}
