import Foundation
import PushlogCore
@testable import PushlogSynapse
import SQLiteNIO

/// The repository root (this file is Tests/PushlogSynapseTests/…).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// The venv with matrix-synapse that `Tools/test.sh` and `.ci/run` install; created here when missing.
func synapsePython() throws -> String {
    let python = "\(repoRoot)/.build/venv/bin/python"
    if !FileManager.default.fileExists(atPath: python) || (try? run(python, ["-c", "import synapse"])) == nil {
        try run("/bin/sh", ["-c", "python3 -m venv '\(repoRoot)/.build/venv' && '\(repoRoot)/.build/venv/bin/pip' install -q matrix-synapse==1.163.2 psycopg2-binary"])
    }
    return python
}

/// Runs a command to its end; `detached`: for one that leaves a daemon behind (pg_ctl start),
/// whose inherited pipe would never reach end-of-file, so its output goes nowhere.
@discardableResult
func run(_ exe: String, _ args: [String], environment: [String: String]? = nil, detached: Bool = false) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let environment { p.environment = environment }
    if detached {
        // posix_spawn and waitpid: Foundation's Process can miss the exit of a child whose
        // grandchild (the daemon) lives on, and its waitUntilExit then never returns.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid = pid_t()
        guard posix_spawn(&pid, exe, &actions, nil, argv, environ) == 0 else {
            throw SynapseSourceError("cannot start \(exe)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw SynapseSourceError("\(exe) \(args.joined(separator: " ")) exited with status \(status)") }
        return ""
    }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard p.terminationStatus == 0 else {
        throw SynapseSourceError("\(exe) \(args.joined(separator: " ")) exited \(p.terminationStatus): \(text)")
    }
    return text
}

func tempDir(_ name: String) -> String {
    let dir = TestRoot.path + "/\(name)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// One directory per test process that holds every test's files (its PostgreSQL cluster too, a
/// few hundred MB), removed when the process exits: a directory per test left behind filled
/// /tmp by gigabytes over repeated runs. Registered before the cluster's own stop, so it runs
/// after it (`atexit` runs in reverse order).
enum TestRoot {
    static let path: String = {
        let dir = NSTemporaryDirectory() + "pushlog-synapse-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // The cluster runs as `postgres` when the tests run as root: it must reach its directory.
        chmod(dir, 0o755)
        atexit { try? FileManager.default.removeItem(atPath: TestRoot.path) }
        return dir
    }()
}

/// Synapse's schema in SQLite, made once per test run by Synapse's own code, then copied.
actor SQLiteTemplate {
    static let shared = SQLiteTemplate()
    private var path: String?

    func copy(to dest: String) throws {
        if path == nil {
            let p = tempDir("template") + "/homeserver.db"
            try run(try synapsePython(), ["\(repoRoot)/Tools/synapse-schema.py", "sqlite", p])
            path = p
        }
        try FileManager.default.copyItem(atPath: path!, toPath: dest)
    }
}

/// Writes Synapse's rows the way Synapse would, for the follower to read. SQL with literals,
/// valid on both engines.
struct SynapseWriter: Sendable {
    let db: any SynapseSource

    func exec(_ sql: String) async throws { _ = try await db.query(sql, []) }

    static func q(_ s: String?) -> String { s.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" } ?? "NULL" }

    func pusher(id: Int64, user: String, pushkey: String = "key", appID: String = "com.example.app",
                url: String = "http://127.0.0.1:9/_matrix/push/v1/notify", kind: String = "http", enabled: Bool = true) async throws {
        // Synapse upserts: a changed pusher is the same row with a new id.
        try await exec("DELETE FROM pushers WHERE user_name = \(Self.q(user)) AND app_id = \(Self.q(appID)) AND pushkey = \(Self.q(pushkey))")
        let data = kind == "http" ? "{\"url\": \"\(url)\"}" : "{}"
        try await exec("""
            INSERT INTO pushers (id, user_name, access_token, profile_tag, kind, app_id, app_display_name,
              device_display_name, pushkey, ts, lang, data, enabled, device_id)
            VALUES (\(id), \(Self.q(user)), NULL, '', \(Self.q(kind)), \(Self.q(appID)), 'App', 'Phone',
              \(Self.q(pushkey)), 1700000000000, 'en', \(Self.q(data)), \(enabled ? "TRUE" : "FALSE"), NULL)
            """)
    }

    func deletePusher(streamID: Int64, user: String, pushkey: String = "key", appID: String = "com.example.app") async throws {
        try await exec("DELETE FROM pushers WHERE user_name = \(Self.q(user)) AND app_id = \(Self.q(appID)) AND pushkey = \(Self.q(pushkey))")
        try await exec("INSERT INTO deleted_pushers (stream_id, app_id, pushkey, user_id) VALUES (\(streamID), \(Self.q(appID)), \(Self.q(pushkey)), \(Self.q(user)))")
    }

    func room(_ room: String, name: String?, alias: String?, members: Int) async throws {
        try await exec("INSERT INTO room_stats_state (room_id, name, canonical_alias) VALUES (\(Self.q(room)), \(Self.q(name)), \(Self.q(alias)))")
        try await exec("""
            INSERT INTO room_stats_current (room_id, current_state_events, joined_members, invited_members, left_members,
              banned_members, local_users_in_room, completed_delta_stream_id) VALUES (\(Self.q(room)), 5, \(members), 0, 0, 0, \(members), 1)
            """)
    }

    func event(_ so: Int64, id: String, room: String, sender: String, type: String = "m.room.message",
               content: String = "{\"msgtype\": \"m.text\", \"body\": \"Hi!\"}", stateKey: String? = nil,
               ts: Int64 = SystemClock.nowMS()) async throws {
        let sk = stateKey.map { ", \"state_key\": \"\($0)\"" } ?? ""
        let json = "{\"event_id\": \"\(id)\", \"room_id\": \"\(room)\", \"type\": \"\(type)\", \"sender\": \"\(sender)\", \"content\": \(content), \"origin_server_ts\": \(ts)\(sk)}"
        try await exec("""
            INSERT INTO events (stream_ordering, topological_ordering, event_id, type, room_id, processed, outlier,
              origin_server_ts, received_ts, sender, state_key)
            VALUES (\(so), \(so), \(Self.q(id)), \(Self.q(type)), \(Self.q(room)), TRUE, FALSE, \(ts), \(ts), \(Self.q(sender)), \(Self.q(stateKey)))
            """)
        try await exec("INSERT INTO event_json (event_id, room_id, internal_metadata, json, format_version) VALUES (\(Self.q(id)), \(Self.q(room)), '{}', \(Self.q(json)), 3)")
    }

    /// The member event of `user` in `room`, with a display name, as current state.
    func member(_ so: Int64, room: String, user: String, displayName: String) async throws {
        let id = "$member\(so)"
        try await event(so, id: id, room: room, sender: user, type: "m.room.member",
                        content: "{\"membership\": \"join\", \"displayname\": \"\(displayName)\"}", stateKey: user)
        try await exec("""
            INSERT INTO current_state_events (event_id, room_id, type, state_key, membership, event_stream_ordering)
            VALUES (\(Self.q(id)), \(Self.q(room)), 'm.room.member', \(Self.q(user)), 'join', \(so))
            """)
        try await exec("""
            INSERT INTO room_memberships (event_id, user_id, sender, room_id, membership, display_name, event_stream_ordering)
            VALUES (\(Self.q(id)), \(Self.q(user)), \(Self.q(user)), \(Self.q(room)), 'join', \(Self.q(displayName)), \(so))
            """)
    }

    /// A push action of `event` for `user` (`actions` nil: Synapse's compressed default).
    func pushAction(_ so: Int64, event: String, room: String, user: String, actions: String? = nil,
                    highlight: Bool = false, thread: String = "main", notif: Bool = true) async throws {
        try await exec("""
            INSERT INTO event_push_actions (room_id, event_id, user_id, profile_tag, actions, topological_ordering,
              stream_ordering, notif, highlight, unread, thread_id)
            VALUES (\(Self.q(room)), \(Self.q(event)), \(Self.q(user)), NULL, \(Self.q(actions ?? "")), \(so), \(so),
              \(notif ? 1 : 0), \(highlight ? 1 : 0), 1, \(Self.q(thread)))
            """)
    }

    /// A message `so` in `room` that notifies each of `users`.
    func message(_ so: Int64, room: String, sender: String, notifying users: [String], ts: Int64 = SystemClock.nowMS()) async throws {
        try await event(so, id: "$e\(so)", room: room, sender: sender, ts: ts)
        for user in users { try await pushAction(so, event: "$e\(so)", room: room, user: user) }
    }

    func receipt(_ streamID: Int64, user: String, room: String, event: String, so: Int64,
                 type: String = "m.read", thread: String? = nil) async throws {
        try await exec("DELETE FROM receipts_linearized WHERE room_id = \(Self.q(room)) AND receipt_type = \(Self.q(type)) AND user_id = \(Self.q(user))")
        try await exec("""
            INSERT INTO receipts_linearized (stream_id, room_id, receipt_type, user_id, event_id, data, event_stream_ordering, thread_id)
            VALUES (\(streamID), \(Self.q(room)), \(Self.q(type)), \(Self.q(user)), \(Self.q(event)), '{"ts": 1700000000123}', \(so), \(Self.q(thread)))
            """)
    }
}

extension SQLiteSynapseSource {
    /// A read-write connection, as Synapse holds (for the tests' writes).
    static func openWritable(path: String) async throws -> SQLiteSynapseSource {
        let c = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await c.query("PRAGMA journal_mode = WAL")
        _ = try await c.query("PRAGMA busy_timeout = 10000")
        return SQLiteSynapseSource(connection: c, path: path, timeout: 10)
    }
}

/// The log's entries, read back.
func entries(_ store: Store) throws -> [LogEntry] {
    var out: [LogEntry] = []
    try store.read { view in try view.forEachEntry { out.append($0.entry); return true } }
    return out
}

func notifications(_ store: Store) throws -> [PushNotification] {
    try entries(store).compactMap { if case .notification(let n) = $0 { n } else { nil } }
}

func testOptions(shard: Shard = .all) -> SynapseFollowerOptions {
    var o = SynapseFollowerOptions()
    o.shard = shard
    o.pollInterval = .milliseconds(20)
    o.windowCheckInterval = .zero  // every poll checks the whole window: a late row goes out at the next one
    return o
}
