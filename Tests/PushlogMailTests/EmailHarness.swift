import Curl
import Foundation
import Logging
import PushlogCore
import PushlogMail
import TestSupport
@testable import PushlogRuntime

/// Runs `body` with a fresh ``EmailHarness`` and closes it afterwards, also when `body` throws.
func withEmailHarness<T>(email: EmailConfig = EmailHarness.fastConfig, templateDir: String? = nil,
                         smtpMode: TestSMTPServer.Mode = .accept, observe: (@Sendable (Digest) -> Void)? = nil,
                         _ body: (EmailHarness) async throws -> T) async throws -> T {
    let h = try await EmailHarness(email: email, templateDir: templateDir, smtpMode: smtpMode, observe: observe)
    do {
        let result = try await body(h)
        await h.close()
        return result
    } catch {
        await h.close()
        throw error
    }
}

/// A store in a temp dir, a real SMTP server on 127.0.0.1, and a pusher pool mailing to it with
/// the real templates and mailer; use it through ``withEmailHarness``, which closes it.
final class EmailHarness: @unchecked Sendable {
    let dir: String
    let store: Store
    var smtp: TestSMTPServer
    let http = try! CurlClient()
    let logs = LogCapture()
    var processes: BackgroundProcesses
    var pool: PusherPool
    let email: EmailConfig
    let templateDir: String?
    /// Sees every digest the pool composes (what it loaded for the mail), before it is rendered.
    let observe: (@Sendable (Digest) -> Void)?
    static let user = "@alice:example.org"
    static let address = "alice@example.org"
    static let pusher = PusherID(userID: user, appID: "m.email", pushkey: address)

    /// Short durations: a mail is due 300 ms after its notification; rooms throttle 400 ms, then
    /// 1.2 s; a room without mail for 10 s starts over.
    static var fastConfig: EmailConfig {
        var c = EmailConfig()
        c.delayBeforeMailMS = 300
        c.throttleStartMS = 400
        c.throttleMaxMS = 1_200
        c.throttleResetAfterMS = 10_000
        c.appName = "Pushlog Test"
        return c
    }

    static var pushConfig: PushConfig {
        var c = PushConfig()
        c.backoffInitialMS = 200
        c.backoffMaxMS = 1_000
        return c
    }

    init(email: EmailConfig = EmailHarness.fastConfig, templateDir: String? = nil,
         smtpMode: TestSMTPServer.Mode = .accept, observe: (@Sendable (Digest) -> Void)? = nil) async throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-mail-\(UUID().uuidString)").path
        store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync))
        smtp = try await TestSMTPServer.start(mode: smtpMode)
        var email = email
        email.smtpURL = smtp.url
        email.templateDir = templateDir
        self.email = email
        self.templateDir = templateDir
        self.observe = observe
        processes = BackgroundProcesses(logger: logs.logger)
        pool = try Self.makePool(store: store, http: http, processes: processes, email: email, templateDir: templateDir,
                                 dir: dir, logger: logs.logger, observe: observe)
        try store.append([.pusherSet(PusherConfig(id: Self.pusher, kind: .email, appDisplayName: "Email",
                                                  deviceDisplayName: Self.address))])
    }

    static func makePool(store: Store, http: CurlClient, processes: BackgroundProcesses, email: EmailConfig,
                         templateDir: String?, dir: String, logger: Logger,
                         observe: (@Sendable (Digest) -> Void)? = nil) throws -> PusherPool {
        let templates = try EmailTemplates.load(directory: templateDir, logger: logger)
        var delivery = try EmailDelivery.smtp(config: email, client: http, templates: templates,
                                              signer: try UnsubscribeSigner.load(dataDir: dir),
                                              publicBaseURL: { "http://pushlog.example.org/" })
        if let observe { delivery.willSend = { digest, _ in observe(digest) } }
        return PusherPool(store: store, http: http, processes: processes, config: pushConfig, email: delivery, logger: logger)
    }

    /// A new pool (and process registry) on the same store, as after a restart; its boot check runs.
    func restartPool() async throws {
        await pool.shutdown()
        processes = BackgroundProcesses(logger: logs.logger)
        pool = try Self.makePool(store: store, http: http, processes: processes, email: email, templateDir: templateDir,
                                 dir: dir, logger: logs.logger, observe: observe)
        await pool.start().value
    }

    func close() async {
        await pool.shutdown()
        smtp.stop()
        http.shutdown()
        store.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Appends notifications and pokes the pool, as the API does.
    @discardableResult
    func notify(_ notes: [PushNotification]) throws -> AppendResult {
        let r = try store.append(notes.map(LogEntry.notification))
        pool.onNewNotifications(users: r.notifiedUsers)
        return r
    }

    func read(room: String, through so: Int64) throws {
        let r = try store.append([.receipt(Receipt(userID: Self.user, roomID: room, eventID: "$read\(so)", streamOrdering: so,
                                                   receiptType: .read, ts: SystemClock.nowMS()))])
        pool.onNewReceipts(users: r.receiptUsers)
    }

    var state: ConsumerState? { (try? store.read { view in try view.pusherState(Self.pusher) })?.state }
    var throttles: [String: EmailThrottle] { (try? store.read { view in try view.emailThrottles(key: Keys.pusher(Self.pusher)) }) ?? [:] }

    /// Waits until the pusher's cursor reached the head and no email pass runs.
    func waitCaughtUp(timeout: Double = 15) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = state, s.cursor >= (try store.read({ view in try view.head(user: Self.user) })), pool.runningEmailLoops == 0 { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

func mailNote(_ i: Int, room: String = "!lunch:example.org", roomName: String? = "Lunch", sender: String = "Bob",
              body: String? = nil, receivedTS: Int64 = SystemClock.nowMS(), content: [String: JSON]? = nil) -> PushNotification {
    var context: [String: JSON] = ["sender_display_name": .string(sender)]
    if let roomName { context["room_name"] = .string(roomName) }
    return PushNotification(
        userID: EmailHarness.user, roomID: room, eventID: "$e\(i)", streamOrdering: Int64(1000 + i),
        receivedTS: receivedTS,
        event: ["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                "content": .object(content ?? ["msgtype": .string("m.text"), "body": .string(body ?? "message number \(i)")])],
        context: context)
}

extension TestSMTPServer.Message {
    var text: String { parts.first { $0.contentType == "text/plain" }?.body ?? "" }
    var html: String { parts.first { $0.contentType == "text/html" }?.body ?? "" }
}
