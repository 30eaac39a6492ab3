// The scenario both runs play against a real Synapse (Synapse pushing by itself, then Pushlog
// following its database), and the normalisation that makes their gateway bodies comparable.
import Testing
import Foundation
import TestSupport

/// One harness for the whole target: the gateway and the PostgreSQL cluster start once.
let sharedSynapse = Result { try SynapseServer() }

/// Both suites drive the one shared harness (its Synapse is started and stopped per test), so
/// they run one test at a time together, not only each within itself.
@Suite("real Synapse 1.163", .serialized)
enum RealSynapse {}

/// The pushers of the scenario: bob has two (the full format with an extra data key that must be
/// forwarded, and `event_id_only`), carol one. alice, who sends, has none.
struct ScenarioPusher: Sendable {
    var user: String, appID: String, pushkey: String, format: String?, data: [String: String]
}

let scenarioPushers = [
    ScenarioPusher(user: "bob", appID: "org.example.full", pushkey: "pk-bob-full", format: nil, data: ["custom_key": "custom-value"]),
    ScenarioPusher(user: "bob", appID: "org.example.eio", pushkey: "pk-bob-eio", format: "event_id_only", data: [:]),
    ScenarioPusher(user: "carol", appID: "org.example.full", pushkey: "pk-carol", format: nil, data: [:]),
]

/// What one run of the scenario saw: the bodies of each step, ids replaced by labels.
struct ScenarioRun {
    /// step name → pushkey → flattened body (path → JSON text of the leaf).
    var steps: [(name: String, bodies: [String: [String: String]])] = []
    /// Steps whose bodies did not all arrive (name → how many were missing).
    var missing: [String: Int] = [:]
    /// Steps where one pushkey got more than one body.
    var duplicates: [String] = []
    /// The User-Agent headers the bodies came with (which process sent them).
    var userAgents: Set<String> = []
}

/// Plays the scenario on `synapse` (just started, empty). `beforeRooms` runs once the users and
/// pushers exist (Pushlog's run waits there until it has the pushers). `holdPushes(true)` stops
/// the pushing process until `holdPushes(false)` (Pushlog's run: SIGSTOP and SIGCONT), so that
/// a change can land before it reads an event.
func playScenario(_ synapse: SynapseServer, stepTimeout: Double, holdPushes: (Bool) -> Void = { _ in },
                  beforeRooms: () async throws -> Void) async throws -> ScenarioRun {
    try synapse.register("alice", displayName: "Alice")
    try synapse.register("bob", displayName: "Bob")
    try synapse.register("carol", displayName: "Carol")
    for p in scenarioPushers {
        try synapse.setPusher(p.user, appID: p.appID, pushkey: p.pushkey, format: p.format, data: p.data)
    }
    try await beforeRooms()

    var labels: [String: String] = [:]
    var run = ScenarioRun()
    var since = try synapse.bodies(count: 0, timeout: 0).count
    /// Runs `action`, then waits for `expected` bodies (one per pushkey) and keeps them under `name`.
    func step(_ name: String, expected: Int, _ action: () throws -> Void) throws {
        try action()
        let bodies = try synapse.bodies(count: expected, since: since, timeout: stepTimeout)
        since += bodies.count
        if bodies.count < expected { run.missing[name] = expected - bodies.count }
        var byPushkey: [String: [String: String]] = [:]
        for body in bodies {
            run.userAgents.insert(body.userAgent)
            // An event first seen here (an invite's member event) is this step's event.
            if let id = body.eventID, labels[id] == nil { labels[id] = "$<\(name)>" }
            if byPushkey[body.pushkey] != nil { run.duplicates.append("\(name) \(body.pushkey)") }
            byPushkey[body.pushkey] = normalised(body, labels: labels)
        }
        run.steps.append((name, byPushkey))
    }

    var room = ""
    try step("invite to a named group room", expected: 3) {
        room = try synapse.createRoom(by: "alice", name: "Peer Room", invite: ["@bob:localhost", "@carol:localhost"])
        labels[room] = "!<group room>"
    }
    try synapse.join("bob", room)
    try synapse.join("carol", room)
    var plain = ""
    try step("plain message", expected: 3) {
        plain = try synapse.send("alice", room, .plain("hello all"))
        labels[plain] = "$<plain message>"
    }
    try step("mention of bob", expected: 3) {
        labels[try synapse.send("alice", room, .mention("hey Bob, look", ["bob"]))] = "$<mention of bob>"
    }
    try step("encrypted message", expected: 3) {
        labels[try synapse.send("alice", room, .encrypted)] = "$<encrypted message>"
    }
    try step("reply in a thread", expected: 3) {
        labels[try synapse.send("alice", room, .thread("in the thread", root: plain))] = "$<reply in a thread>"
    }
    try step("message, then the room renamed before it was pushed", expected: 3) {
        holdPushes(true)
        defer { holdPushes(false) }
        labels[try synapse.send("alice", room, .plain("just before the rename"))] = "$<message, then the room renamed>"
        try synapse.setRoomName(by: "alice", room, "Renamed Room")
    }
    var last = ""
    try step("message from carol", expected: 2) {
        last = try synapse.send("carol", room, .plain("carol here"))
        labels[last] = "$<message from carol>"
    }
    try step("bob reads everything (badge only)", expected: 2) {
        try synapse.receipt("bob", room, last)
    }
    try step("invite to a direct chat", expected: 1) {
        let direct = try synapse.createRoom(by: "alice", invite: ["@carol:localhost"], isDirect: true)
        labels[direct] = "!<direct room>"
    }
    try step("carol reads privately (badge only)", expected: 1) {
        try synapse.receipt("carol", room, last, type: "m.read.private")
    }
    return run
}

/// A body's flattened fields with every string that is a known id replaced by its label, and
/// `pushkey_ts` (when the pusher was set: different in each run) kept only as present.
func normalised(_ body: SynapseServer.Body, labels: [String: String]) -> [String: String] {
    var out: [String: String] = [:]
    for (path, leaf) in body.flat {
        if path.hasSuffix(".pushkey_ts") {
            out[path] = "<seconds>"
        } else if leaf.hasPrefix("\""), let string = try? JSONDecoder().decode(String.self, from: Data(leaf.utf8)),
                  let label = labels[string] {
            out[path] = label
        } else {
            out[path] = leaf
        }
    }
    return out
}

/// Every field where `pushlog` differs from `synapse`: "step / pushkey / path: synapse X, pushlog Y".
func differences(synapse: ScenarioRun, pushlog: ScenarioRun) -> [(step: String, pushkey: String, path: String, text: String)] {
    var out: [(String, String, String, String)] = []
    let theirs = Dictionary(pushlog.steps.map { ($0.name, $0.bodies) }, uniquingKeysWith: { a, _ in a })
    for (name, bodies) in synapse.steps {
        let other = theirs[name] ?? [:]
        for pushkey in Set(bodies.keys).union(other.keys).sorted() {
            let a = bodies[pushkey], b = other[pushkey]
            guard let a, let b else {
                out.append((name, pushkey, "(body)", a == nil ? "only Pushlog sent one" : "only Synapse sent one"))
                continue
            }
            for path in Set(a.keys).union(b.keys).sorted() where a[path] != b[path] {
                out.append((name, pushkey, path, "synapse \(a[path] ?? "(absent)"), pushlog \(b[path] ?? "(absent)")"))
            }
        }
    }
    return out
}
