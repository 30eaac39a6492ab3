// Email figures: users with notifications due, mailed by the pusher pool (each digest rendered
// with the built-in templates and sent by the Mailer over libcurl SMTP) to a local SMTP sink,
// beside the SMTP transport alone: the same number of already-rendered mails of the same size sent
// straight through CurlClient.sendMail, as many at a time, in the same run.
// The sink: `Tools/smtp-sink.sh start` (Postfix's smtp-sink on 127.0.0.1:2525).
import Curl
import Foundation
import PushlogCore
import PushlogMail
import PushlogRuntime

let smtpSinkURL = stringOption("smtp", "smtp://127.0.0.1:2525")

func emailUser(_ i: Int) -> String { String(format: "@mail%05d:example.org", i) }
func emailAddress(_ i: Int) -> String { String(format: "user%05d@example.org", i) }

/// `users` email pushers, each with `per` notifications in two rooms, received an hour ago.
func populateEmail(_ dir: String, users: Int, per: Int) {
    let store = try! Store(dataDir: dir, options: StoreOptions(durability: .nometasync))
    var batch: [LogEntry] = []
    for i in 0..<users {
        batch.append(.pusherSet(PusherConfig(id: PusherID(userID: emailUser(i), appID: "m.email", pushkey: emailAddress(i)),
                                             kind: .email, appDisplayName: "Email", deviceDisplayName: emailAddress(i))))
    }
    try! store.append(batch)
    batch.removeAll()
    let received = SystemClock.nowMS() - 3_600_000
    for k in 0..<per {
        for i in 0..<users {
            let room = k % 2 == 0 ? "!lunch:example.org" : "!work:example.org"
            batch.append(.notification(PushNotification(
                userID: emailUser(i), roomID: room, eventID: "$m\(i)-\(k)", streamOrdering: Int64(1 + k * users + i),
                receivedTS: received + Int64(k),
                event: ["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                        "content": .object(["msgtype": .string("m.text"),
                                            "body": .string("Message \(k) for user \(i): are we still on for lunch at noon?")])],
                context: ["sender_display_name": .string("Bob"), "room_name": .string(k % 2 == 0 ? "Lunch" : "Work")])))
        }
    }
    try! store.append(batch)
    store.close()
}

final class Count: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    private var bytes = 0
    func add(_ size: Int) { lock.withLock { n += 1; bytes += size } }
    var value: (count: Int, bytes: Int) { lock.withLock { (n, bytes) } }
}

func benchEmail() async {
    let users = option("users", 1_000), per = option("per", 5), runs = option("runs", 3)
    let concurrency = option("concurrency", 10)
    var rows: [[String]] = []
    for run in 1...runs {
        // Pushlog: the pool from its boot check until every mail was accepted.
        let dir = fresh("email")
        populateEmail(dir, users: users, per: per)
        let sent = Count()
        let http = try! CurlClient()
        let store = try! Store(dataDir: dir, options: StoreOptions(durability: .nometasync))
        var email = EmailConfig()
        email.smtpURL = smtpSinkURL
        email.delayBeforeMailMS = 0
        var counted = try! EmailDelivery.smtp(config: email, client: http,
                                              templates: try! EmailTemplates.load(directory: nil, logger: quietLogger()),
                                              signer: try! UnsubscribeSigner.load(dataDir: dir),
                                              publicBaseURL: { "http://127.0.0.1:8690/" })
        counted.willSend = { _, mail in sent.add(mail.text.utf8.count + mail.html.utf8.count) }
        var push = PushConfig()
        push.startupConcurrency = concurrency
        let pool = PusherPool(store: store, http: http, processes: BackgroundProcesses(logger: quietLogger()), config: push,
                              email: counted, logger: quietLogger())
        let cpu0 = cpuSeconds()
        let t0 = now()
        await pool.start().value
        await pool.waitUntilIdle()
        let seconds = now() - t0
        let cpu = cpuSeconds() - cpu0
        await pool.shutdown()
        store.close()
        let (mails, bodyBytes) = sent.value
        precondition(mails == users, "mailed \(mails) of \(users)")

        // The transport alone: one rendered digest's message, sent as many times, as many at a time.
        let mailer = try! Mailer(config: MailerConfig(smtpURL: smtpSinkURL), client: http)
        let sample = try! MailMessage(from: mailer.from, to: MailAddress(address: emailAddress(0), field: "to"),
                                      subject: "[Matrix] You have messages on Matrix",
                                      text: String(repeating: "x", count: bodyBytes / mails / 2),
                                      html: String(repeating: "y", count: bodyBytes / mails / 2),
                                      unsubscribeURL: "http://127.0.0.1:8690/v1/unsubscribe?x=1").bytes()
        let next = Ticket()
        let t1 = now()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while next.take() < users {
                        try! await http.sendMail(SMTPRequest(url: smtpSinkURL, from: "noreply@localhost",
                                                             recipients: [emailAddress(0)], message: sample))
                    }
                }
            }
        }
        let transport = now() - t1
        http.shutdown()

        // Rendering alone.
        let renderer = DigestRenderer(templates: try! EmailTemplates.load(directory: nil, logger: quietLogger()))
        let store2 = try! Store(dataDir: dir, options: StoreOptions(durability: .nometasync))
        let notes = Array(try! store2.read { view in try view.notifications(at: (1...UInt64(per)).map { UInt64(users) + 1 + ($0 - 1) * UInt64(users) }) }.values)
        store2.close()
        let t2 = now()
        for _ in 0..<users {
            _ = renderer.render(Digest(userID: emailUser(0), appName: "Matrix", publicBaseURL: "http://127.0.0.1:8690/",
                                       unsubscribeLink: "http://127.0.0.1:8690/v1/unsubscribe?x=1", now: SystemClock.nowMS(),
                                       reason: Digest.Reason(roomID: "!lunch:example.org", receivedAt: 0, delayBeforeMail: 600_000),
                                       notifications: notes))
        }
        let render = now() - t2
        rows.append([
            "\(run)", fmt(Double(mails) / seconds), fmt(Double(users) / transport),
            fmt((Double(mails) / seconds) / (Double(users) / transport) * 100) + "%",
            fmt(render / Double(users) * 1e6), fmt(cpu / Double(mails) * 1e6), "\(bodyBytes / mails)",
        ])
        progress("email runs", run, runs)
    }
    print("\n\(users) users × \(per) notifications, one digest each, \(concurrency) at a time, to \(smtpSinkURL)")
    table(["run", "pushlog mails/s", "transport alone mails/s", "ratio", "render µs/mail", "pushlog CPU µs/mail", "body bytes/mail"], rows)
}
