// A real Synapse for the tests: Tests/Support/synapse/synapse_harness.py run by the venv that
// Tools/synapse-env.sh makes, driven over its JSON-lines protocol (one command, one answer).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The harness process: a push gateway, PostgreSQL (started on first use, once) and one Synapse
/// at a time. Commands are serialised; one harness serves a whole suite.
///
/// The harness runs in a process group of its own (it calls `setsid`), holding every process it
/// starts; ``shutdown()`` asks it to stop them and then kills the group, since Foundation's
/// `Process` reaps only its own child. If the test process dies first, the harness sees its
/// standard input close and stops everything itself.
public final class SynapseServer: @unchecked Sendable {
    public enum Database: String, Sendable, CaseIterable {
        case sqlite, postgresql
    }

    /// One running Synapse (a fresh database each time).
    public struct Instance: Sendable {
        /// The client API, `http://127.0.0.1:PORT`.
        public var url: String
        /// What Pushlog's `source.synapse.database` takes: `sqlite:///…/homeserver.db` or
        /// `postgresql://synapse@127.0.0.1:PORT/NAME`.
        public var databaseURL: String
        /// Synapse's directory (homeserver.yaml, homeserver.log).
        public var directory: String
    }

    /// One body the gateway received, with its arrival time (ms since the epoch).
    public struct Body: @unchecked Sendable {
        public var arrivalMS: Int64
        /// The decoded JSON (`JSONSerialization`'s dictionaries, arrays, strings, `NSNumber`s).
        public var json: [String: Any]
        /// The body as path → JSON text of each leaf (`notification.devices[0].tweaks.highlight`
        /// → `true`), made by the harness, where JSON's types are still known.
        public var flat: [String: String]
        /// Who sent it: Synapse says `Synapse/1.163.2`; Pushlog's libcurl sends none.
        public var userAgent: String
        public var notification: [String: Any] { json["notification"] as? [String: Any] ?? [:] }
        public var pushkey: String { ((notification["devices"] as? [[String: Any]])?.first?["pushkey"] as? String) ?? "" }
        public var eventID: String? { notification["event_id"] as? String }
    }

    public struct Failed: Error, CustomStringConvertible {
        public var description: String
    }

    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer: [UInt8] = []
    private let lock = NSLock()
    private var stopped = false
    /// The gateway's notify URL.
    public private(set) var gatewayURL = ""

    /// Where the harness and the venv are: this file's checkout.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The venv's Python (`SYNAPSE_PYTHON` overrides it).
    public static var python: String {
        ProcessInfo.processInfo.environment["SYNAPSE_PYTHON"] ?? packageRoot.appendingPathComponent(".build/venv/bin/python").path
    }

    /// Whether Tools/synapse-env.sh has run here (the venv holds Synapse).
    public static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: python)
            && FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent(".build/venv").path)
    }

    public init() throws {
        guard Self.isInstalled else {
            throw Failed(description: "no Synapse venv at \(Self.python): run Tools/synapse-env.sh")
        }
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.packageRoot.appendingPathComponent("Tests/Support/synapse/synapse_harness.py").path]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = ProcessInfo.processInfo.environment["SYNAPSE_HARNESS_VERBOSE"] != nil
            ? FileHandle.standardError : FileHandle.nullDevice
        try process.run()
        // Children started later (pushlog serve) must not hold the harness's stdin open.
        _ = fcntl(input.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        _ = fcntl(output.fileHandleForReading.fileDescriptor, F_SETFD, FD_CLOEXEC)
        gatewayURL = try string(command("gateway"), "url")
    }

    deinit { shutdown() }

    /// Sends one command and returns its answer; throws the harness's error.
    @discardableResult
    public func command(_ name: String, _ arguments: [String: Any] = [:]) throws -> [String: Any] {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { throw Failed(description: "the harness was shut down") }
        var request = arguments
        request["cmd"] = name
        var line = try JSONSerialization.data(withJSONObject: request)
        line.append(0x0A)
        try input.fileHandleForWriting.write(contentsOf: line)
        let answerLine = try readLine()
        guard let answer = try JSONSerialization.jsonObject(with: Data(answerLine)) as? [String: Any] else {
            throw Failed(description: "\(name): not a JSON object")
        }
        guard answer["ok"] as? Bool == true else {
            throw Failed(description: "\(name): \(answer["error"] as? String ?? "failed")")
        }
        return answer
    }

    private func readLine() throws -> [UInt8] {
        let fd = output.fileHandleForReading.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failed(description: "the harness exited (run with SYNAPSE_HARNESS_VERBOSE=1 to see why)") }
            buffer += chunk[..<n]
        }
    }

    private func string(_ answer: [String: Any], _ key: String) throws -> String {
        guard let value = answer[key] as? String else { throw Failed(description: "no \(key) in the answer") }
        return value
    }

    /// Stops every process the harness started and removes its directories; then kills its
    /// process group for anything left.
    public func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        try? input.fileHandleForWriting.write(contentsOf: Data("{\"cmd\":\"shutdown\"}\n".utf8))
        _ = try? readLine()
        let pid = process.processIdentifier
        if pid > 0 {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
    }

    // MARK: Synapse

    /// Starts a new Synapse (stopping the one before) on a fresh database. `pushers`: Synapse
    /// pushes by itself (`pusher_instances: [master]`); false, no Synapse process pushes
    /// (`pusher_instances: []`), for Pushlog to follow.
    public func startSynapse(_ database: Database, pushers: Bool) throws -> Instance {
        let answer = try command("start_synapse", ["database": database.rawValue, "pushers": pushers])
        return Instance(url: try string(answer, "url"), databaseURL: try string(answer, "database_url"),
                        directory: try string(answer, "dir"))
    }

    public func stopSynapse() throws { try command("stop_synapse") }

    /// Registers `user` (a localpart) with the shared-secret admin API; returns the user id.
    @discardableResult
    public func register(_ user: String, displayName: String) throws -> String {
        try string(command("register", ["user": user, "displayname": displayName]), "user_id")
    }

    /// `user` creates a room (private chat preset) and invites `invite`; returns its id.
    public func createRoom(by user: String, name: String? = nil, invite: [String] = [], isDirect: Bool = false) throws -> String {
        var arguments: [String: Any] = ["user": user, "invite": invite, "is_direct": isDirect]
        if let name { arguments["name"] = name }
        return try string(command("create_room", arguments), "room_id")
    }

    public func join(_ user: String, _ room: String) throws { try command("join", ["user": user, "room": room]) }
    public func invite(by user: String, _ target: String, to room: String) throws {
        try command("invite", ["user": user, "room": room, "target": target])
    }
    public func leave(_ user: String, _ room: String) throws { try command("leave", ["user": user, "room": room]) }
    /// `user` sets the room's `m.room.name`.
    public func setRoomName(by user: String, _ room: String, _ name: String) throws {
        try command("set_room_name", ["user": user, "room": room, "name": name])
    }

    /// An http pusher through `/_matrix/client/v3/pushers/set` pointing at the test gateway.
    public func setPusher(_ user: String, appID: String, pushkey: String, format: String? = nil,
                          data: [String: String] = [:], url: String? = nil) throws {
        var arguments: [String: Any] = ["user": user, "app_id": appID, "pushkey": pushkey, "url": url ?? gatewayURL, "data": data]
        if let format { arguments["format"] = format }
        try command("set_pusher", arguments)
    }

    public func deletePusher(_ user: String, appID: String, pushkey: String) throws {
        try command("delete_pusher", ["user": user, "app_id": appID, "pushkey": pushkey])
    }

    /// What `send` sends.
    public enum Message: Sendable {
        case plain(String)
        /// `m.mentions` naming these users (localparts), and the body.
        case mention(String, [String])
        /// An `m.room.encrypted` event (megolm-shaped; nobody can decrypt it).
        case encrypted
        /// A reply in the thread rooted at the event id.
        case thread(String, root: String)
    }

    /// Sends a message as `user`; returns its event id.
    @discardableResult
    public func send(_ user: String, _ room: String, _ message: Message) throws -> String {
        var arguments: [String: Any] = ["user": user, "room": room]
        switch message {
        case .plain(let body): arguments["kind"] = "plain"; arguments["body"] = body
        case .mention(let body, let users): arguments["kind"] = "mention"; arguments["body"] = body; arguments["mention"] = users
        case .encrypted: arguments["kind"] = "encrypted"
        case .thread(let body, let root): arguments["kind"] = "thread"; arguments["body"] = body; arguments["thread_root"] = root
        }
        return try string(command("send", arguments), "event_id")
    }

    /// Posts a read receipt (`m.read` or `m.read.private`), in a thread when `threadID` is set.
    public func receipt(_ user: String, _ room: String, _ eventID: String, type: String = "m.read", threadID: String? = nil) throws {
        var arguments: [String: Any] = ["user": user, "room": room, "event_id": eventID, "type": type]
        if let threadID { arguments["thread_id"] = threadID }
        try command("receipt", arguments)
    }

    /// Rows of a query against the running Synapse's database (`?` placeholders).
    public func sql(_ query: String, _ arguments: [Any] = []) throws -> [[Any]] {
        try command("sql", ["query": query, "args": arguments])["rows"] as? [[Any]] ?? []
    }

    public func waitForBackgroundUpdates(timeout: Double = 120) throws {
        try command("wait_background_updates", ["timeout": timeout])
    }

    /// Stops (a fast shutdown) and restarts the PostgreSQL cluster.
    public func stopPostgres() throws { try command("postgres_stop") }
    public func startPostgres() throws { try command("postgres_start") }

    // MARK: the gateway

    /// From now on the gateway answers `rejected` with these pushkeys (when they are in the body),
    /// or `status` (0: 200).
    public func gatewayMode(reject: [String] = [], status: Int = 0) throws {
        try command("gateway_mode", ["reject": reject, "status": status])
    }

    /// The bodies received after the first `since`, once there are `count` of them or `timeout`
    /// seconds have passed (then fewer).
    public func bodies(count: Int, since: Int = 0, timeout: Double = 30) throws -> [Body] {
        let answer = try command("gateway_bodies", ["count": count, "since": since, "timeout": timeout])
        return (answer["bodies"] as? [[String: Any]] ?? []).map {
            Body(arrivalMS: ($0["t"] as? NSNumber)?.int64Value ?? 0, json: $0["body"] as? [String: Any] ?? [:],
                 flat: $0["flat"] as? [String: String] ?? [:], userAgent: $0["user_agent"] as? String ?? "")
        }
    }
}
