import Foundation
import Glibc
import Synchronization
import TestSupport

/// A real SMTP server for tests: `Tests/Support/smtp_server.py` (aiosmtpd) on 127.0.0.1, one
/// per test, on a port the system picks.
///
/// Started, like the other Python test servers, through TestSupport's `PythonServer`. Usage:
///
///     let server = try await TestSMTPServer.start(tls: .startTLS, auth: ("user", "secret"))
///     defer { server.stop() }
///     // send to server.url ("smtp://127.0.0.1:PORT"), trusting server.certificatePath
///     let mail = try await server.messages(count: 1)[0]
///     #expect(mail.recipients == ["alice@example.org"] && mail.tls)
///     try await server.setMode(.rejectRecipient(550))
///
/// Tests wait for what the server reports (messages, closed sessions, mode changes), never
/// for a fixed time. If `aiosmtpd` is not installed, ``start(tls:auth:mode:)`` throws an error
/// that says so (the test fails; it is not skipped).
final class TestSMTPServer: Sendable {
    enum TLS: Sendable {
        /// Plain SMTP; STARTTLS not offered.
        case none
        /// Plain SMTP offering STARTTLS with a self-signed certificate (``certificatePath``).
        case startTLS
        /// TLS from the first byte (`smtps://`).
        case implicit
    }

    enum Mode: Sendable, Equatable {
        case accept
        /// Answers every `RCPT TO` with `code` (550: permanent, 451: temporary).
        case rejectRecipient(Int)
        /// Accepts the recipients, then answers the end of the message with `code`.
        case rejectData(Int)
        /// Waits `milliseconds` before answering the end of the message (then accepts it).
        case slow(milliseconds: Int)
        /// Waits `milliseconds` before answering each `RCPT TO` (then accepts it).
        case slowRecipient(milliseconds: Int)
        /// Waits `milliseconds` before answering the end of the message, then refuses it with 451.
        case slowReject(milliseconds: Int)

        var argument: String {
            switch self {
            case .accept: return "accept"
            case .rejectRecipient(let code): return "reject-rcpt:\(code)"
            case .rejectData(let code): return "reject-data:\(code)"
            case .slow(let milliseconds): return "slow:\(milliseconds)"
            case .slowRecipient(let milliseconds): return "slow-rcpt:\(milliseconds)"
            case .slowReject(let milliseconds): return "slow-reject:\(milliseconds)"
            }
        }
    }

    /// A message the server accepted, as Python's `email` package (policy `default`) parsed it.
    struct Message: Sendable {
        struct Part: Sendable, Decodable {
            var contentType: String
            var charset: String?
            var cte: String?
            /// The decoded text (transfer encoding and charset undone), line breaks as sent.
            var body: String
        }

        var number: Int
        /// The envelope: `MAIL FROM` and `RCPT TO` addresses.
        var mailFrom: String
        var recipients: [String]
        /// Whether the message arrived over TLS (STARTTLS or implicit).
        var tls: Bool
        /// The user that authenticated, if any.
        var authenticatedUser: String?
        /// The bytes received, dot-stuffing undone.
        var raw: [UInt8]
        var contentType: String
        /// Header fields in order, values decoded (encoded-words, folding).
        var headers: [(String, String)]
        /// The parts of a multipart message in order, or the message itself.
        var parts: [Part]
        /// Defects Python's parser noticed (names of its defect classes); empty when clean.
        var defects: [String]

        /// The first value of header `name` (case-insensitive).
        func header(_ name: String) -> String? {
            headerValues(name).first
        }

        func headerValues(_ name: String) -> [String] {
            headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
        }
    }

    /// One client connection, reported when it closed.
    struct Session: Sendable, Decodable {
        var tls: Bool
        var auth: String?
        /// The SMTP commands received, in order (`EHLO`, `STARTTLS`, `AUTH`, `MAIL`, …).
        var verbs: [String]
    }

    enum Failure: Error, CustomStringConvertible {
        case cannotStart(String)
        case timedOut(String)
        case exited(String)

        var description: String {
            switch self {
            case .cannotStart(let why): return "the test SMTP server did not start: \(why)"
            case .timedOut(let what): return "timed out waiting for the test SMTP server: \(what)"
            case .exited(let why): return "the test SMTP server exited: \(why)"
            }
        }
    }

    let port: Int
    let tls: TLS
    /// The server's self-signed certificate (PEM): the CA file for clients. `nil` without TLS.
    let certificatePath: String?
    private let events: EventLog
    private let child: Mutex<ChildProcess?>

    /// `smtp://127.0.0.1:PORT`, or `smtps://…` for implicit TLS.
    var url: String {
        "\(tls == .implicit ? "smtps" : "smtp")://127.0.0.1:\(port)"
    }

    private init(port: Int, tls: TLS, certificatePath: String?, events: EventLog, child: ChildProcess) {
        self.port = port
        self.tls = tls
        self.certificatePath = certificatePath
        self.events = events
        self.child = Mutex(child)
    }

    deinit {
        stop()
    }

    /// Starts a server and waits until it listens.
    /// - Throws: ``Failure/cannotStart(_:)`` with the server's stderr when it could not
    ///   (aiosmtpd missing, python3 missing, certificate generation failed).
    /// `port`: 0 lets the system pick one; another number restarts a stopped server where it was.
    static func start(tls: TLS = .none, auth: (user: String, password: String)? = nil, mode: Mode = .accept,
                      port: Int = 0) async throws -> TestSMTPServer {
        var arguments = ["--mode", mode.argument, "--port", "\(port)"]
        var certificatePath: String?
        if tls != .none {
            let pair = try testCertificate.get()
            arguments += ["--tls", tls == .implicit ? "implicit" : "starttls", "--cert", pair.certificate, "--key", pair.key]
            certificatePath = pair.certificate
        }
        if let auth {
            arguments += ["--auth", "\(auth.user):\(auth.password)"]
        }
        let stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-smtp-\(UUID().uuidString).stderr").path
        let child: ChildProcess
        do {
            child = try PythonServer.start("smtp_server.py", arguments: arguments, stderrPath: stderrPath)
        } catch {
            throw Failure.cannotStart("\(error)")
        }
        let events = EventLog(stderrPath: stderrPath)
        let reader = ReaderThread(fd: child.stdout, events: events)
        Thread.detachNewThread { reader.run() }

        let port: Int
        do {
            port = try await events.port(timeout: .seconds(30))
        } catch {
            child.kill()
            unlink(stderrPath)
            throw Failure.cannotStart("\(error)")
        }
        return TestSMTPServer(port: port, tls: tls, certificatePath: certificatePath, events: events, child: child)
    }

    /// Waits until the server has accepted at least `count` messages; returns all so far.
    func messages(count: Int, timeout: Duration = .seconds(15)) async throws -> [Message] {
        try await events.wait(for: "\(count) message(s)", timeout: timeout) { $0.messages.count >= count }.messages
    }

    /// The messages accepted so far.
    var receivedMessages: [Message] {
        events.snapshot.messages
    }

    /// Waits until at least `count` client connections have closed; returns all so far.
    func sessions(count: Int, timeout: Duration = .seconds(15)) async throws -> [Session] {
        try await events.wait(for: "\(count) closed session(s)", timeout: timeout) { $0.sessions.count >= count }.sessions
    }

    /// Waits until the server has reported event `name` at least `count` times; `delaying`
    /// means a slow answer has started (the client is waiting for the end of its DATA).
    func waitForEvent(_ name: String, count: Int = 1, timeout: Duration = .seconds(15)) async throws {
        _ = try await events.wait(for: "\(count) \(name) event(s)", timeout: timeout) { $0.eventCounts[name, default: 0] >= count }
    }

    /// Changes how the server answers from now on, and waits until it has taken the change.
    func setMode(_ mode: Mode, timeout: Duration = .seconds(15)) async throws {
        let fd: Int32? = child.withLock { $0?.stdin }
        guard let fd else { throw Failure.exited("stopped") }
        let before = events.snapshot.modeChanges
        let line = Array("mode \(mode.argument)\n".utf8)
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else { throw Failure.exited("cannot write to its stdin (errno \(errno))") }
        _ = try await events.wait(for: "mode \(mode.argument)", timeout: timeout) { $0.modeChanges > before }
    }

    /// Kills the server (SIGKILL), reaps it and removes its stderr file. Calling it again does
    /// nothing.
    func stop() {
        guard let child = child.withLock({ $0.take() }) else { return }
        child.kill()
        unlink(events.stderrPath)
    }

    // MARK: Process

    /// One self-signed certificate for 127.0.0.1 and localhost, made once per test process.
    private static let testCertificate: Result<(certificate: String, key: String), any Error> = Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-smtp-tls-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        testCertificateDirectory = directory.path
        atexit { if let d = testCertificateDirectory { try? FileManager.default.removeItem(atPath: d) } }
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        do {
            try ChildProcess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                  "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                                  "-keyout", key, "-out", certificate])
        } catch {
            throw Failure.cannotStart("\(error)")
        }
        return (certificate, key)
    }
}

/// Where the test certificate is, removed when the test process exits.
nonisolated(unsafe) private var testCertificateDirectory: String?

/// Reads the server's stdout on a thread of its own (a blocking `read`), feeding the log.
private struct ReaderThread: Sendable {
    let fd: Int32
    let events: EventLog

    func run() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            events.feed(buffer[..<count])
        }
        close(fd)
        events.end()
    }
}

/// What the server printed, parsed line by line, and the tasks waiting for some of it.
private final class EventLog: Sendable {
    struct Snapshot: Sendable {
        var port: Int?
        var messages: [TestSMTPServer.Message] = []
        var sessions: [TestSMTPServer.Session] = []
        var modeChanges = 0
        /// How many times each event was reported, by its `event` name (`delaying`, …).
        var eventCounts: [String: Int] = [:]
        var unexpected: [String] = []
        var ended = false
    }

    private struct Waiter {
        var id: Int
        var isSatisfied: @Sendable (Snapshot) -> Bool
        var continuation: CheckedContinuation<Snapshot, any Error>
    }

    private struct State {
        var snapshot = Snapshot()
        var partial: [UInt8] = []
        var waiters: [Waiter] = []
        var nextID = 0
    }

    private let state = Mutex(State())
    /// Where the server's stderr goes; quoted when it exits unexpectedly.
    let stderrPath: String

    init(stderrPath: String) {
        self.stderrPath = stderrPath
    }

    var snapshot: Snapshot {
        state.withLock { $0.snapshot }
    }

    func port(timeout: Duration) async throws -> Int {
        try await wait(for: "its port", timeout: timeout) { $0.port != nil }.port!
    }

    /// Returns the snapshot once `isSatisfied` holds for it.
    /// - Throws: ``TestSMTPServer/Failure`` when `timeout` passes first, or the server exits.
    func wait(for what: String, timeout: Duration, until isSatisfied: @escaping @Sendable (Snapshot) -> Bool) async throws -> Snapshot {
        try await withCheckedThrowingContinuation { continuation in
            let (ready, id): (Result<Snapshot, any Error>?, Int) = state.withLock { state in
                if isSatisfied(state.snapshot) { return (.success(state.snapshot), 0) }
                if state.snapshot.ended { return (.failure(TestSMTPServer.Failure.exited(exitReport(state.snapshot, waitingFor: what))), 0) }
                state.nextID += 1
                state.waiters.append(Waiter(id: state.nextID, isSatisfied: isSatisfied, continuation: continuation))
                return (nil, state.nextID)
            }
            if let ready {
                continuation.resume(with: ready)
                return
            }
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                self?.expire(id, what: what)
            }
        }
    }

    private func expire(_ id: Int, what: String) {
        let expired: (Waiter, Snapshot)? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return (state.waiters.remove(at: index), state.snapshot)
        }
        guard let (waiter, snapshot) = expired else { return }
        waiter.continuation.resume(throwing: TestSMTPServer.Failure.timedOut(
            "\(what); got \(snapshot.messages.count) message(s), \(snapshot.sessions.count) session(s)"))
    }

    func feed(_ bytes: ArraySlice<UInt8>) {
        let ready: [(Waiter, Snapshot)] = state.withLock { state in
            for byte in bytes {
                guard byte == UInt8(ascii: "\n") else {
                    state.partial.append(byte)
                    continue
                }
                Self.record(state.partial, into: &state.snapshot)
                state.partial.removeAll(keepingCapacity: true)
            }
            let snapshot = state.snapshot
            let ready = state.waiters.filter { $0.isSatisfied(snapshot) }
            state.waiters.removeAll { $0.isSatisfied(snapshot) }
            return ready.map { ($0, snapshot) }
        }
        for (waiter, snapshot) in ready { waiter.continuation.resume(returning: snapshot) }
    }

    func end() {
        let (waiters, snapshot) = state.withLock { state in
            state.snapshot.ended = true
            defer { state.waiters.removeAll() }
            return (state.waiters, state.snapshot)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: TestSMTPServer.Failure.exited(exitReport(snapshot, waitingFor: "")))
        }
    }

    private func exitReport(_ snapshot: Snapshot, waitingFor what: String) -> String {
        let errors = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        var report = errors.isEmpty ? "no output on stderr" : "stderr: \(errors)"
        if !snapshot.unexpected.isEmpty { report += "; unexpected lines: \(snapshot.unexpected)" }
        if !what.isEmpty { report += " (while waiting for \(what))" }
        return report
    }

    private struct WireEvent: Decodable {
        var event: String
        var n: Int?
        var mailFrom: String?
        var rcptTos: [String]?
        var tls: Bool?
        var auth: String?
        var raw: String?
        var contentType: String?
        var headers: [[String]]?
        var parts: [TestSMTPServer.Message.Part]?
        var defects: [String]?
        var verbs: [String]?
    }

    private static func record(_ line: [UInt8], into snapshot: inout Snapshot) {
        let text = String(decoding: line, as: UTF8.self)
        if snapshot.port == nil, let port = Int(text) {
            snapshot.port = port
            return
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let event = try? decoder.decode(WireEvent.self, from: Data(line)) else {
            snapshot.unexpected.append(text)
            return
        }
        snapshot.eventCounts[event.event, default: 0] += 1
        switch event.event {
        case "message":
            snapshot.messages.append(TestSMTPServer.Message(
                number: event.n ?? 0,
                mailFrom: event.mailFrom ?? "",
                recipients: event.rcptTos ?? [],
                tls: event.tls ?? false,
                authenticatedUser: event.auth,
                raw: event.raw.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } ?? [],
                contentType: event.contentType ?? "",
                headers: (event.headers ?? []).map { ($0.first ?? "", $0.count > 1 ? $0[1] : "") },
                parts: event.parts ?? [],
                defects: event.defects ?? []
            ))
        case "session":
            snapshot.sessions.append(TestSMTPServer.Session(tls: event.tls ?? false, auth: event.auth, verbs: event.verbs ?? []))
        case "mode":
            snapshot.modeChanges += 1
        case "delaying":
            break
        default:
            snapshot.unexpected.append(text)
        }
    }
}
