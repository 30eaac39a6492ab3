import ArgumentParser
import Foundation
import Logging
import PushlogCore
import PushlogSynapse

/// `pushlog follow synapse`: the Synapse follower alone, without the server: a first import, a
/// one-off catch-up (`--once`), or a follower that another process delivers from.
struct Follow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a homeserver's database into the log.",
        subcommands: [Synapse.self])

    struct Synapse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow (or catch up once from) a Synapse database: pushers, push actions, read receipts.",
            discussion: """
                Synapse must run with `pusher_instances: []` so that it does not push as well (docs/synapse.md). \
                The first start imports the last --backfill of push actions and the current receipts, then the \
                pushers, which start at the head: no history is pushed. Positions are kept in the data directory; \
                a restart goes on from them. Exit 69 while a server holds the data directory (let `serve` follow \
                instead, with source.synapse.database).
                """)
        @OptionGroup var dataDir: DataDirOption
        @Option(help: ArgumentHelp("postgresql://user@host:port/db or sqlite:///path/homeserver.db", valueName: "url"))
        var database: String
        @Option(help: ArgumentHelp("A file whose first line is the database password.", valueName: "path"))
        var passwordFile: String?
        @Option(help: ArgumentHelp("k/N: only the users of shard k of N (Synapse's pusher_instances hash).", valueName: "k/N"))
        var shard: String = "0/1"
        @Option(help: "How far back the first start imports push actions (e.g. 7d, 12h).")
        var backfill: String = "7d"
        @Option(help: "How long a late commit may trail a newer one (e.g. 10s).")
        var lateness: String = "10s"
        @Flag(help: "Catch up once and exit, instead of following.")
        var once = false

        func run() async throws {
            try await tool {
                do {
                    try await follow()
                } catch let e as SynapseDatabaseURL.Invalid {
                    throw UsageError(message: "--database: \(e)")
                }
            }
        }

        func follow() async throws {
            let url = try SynapseDatabaseURL(parsing: database)
            guard let shard = Shard(parsing: shard) else { throw UsageError(message: "--shard must be k/N with 0 <= k < N, not '\(self.shard)'") }
            guard let backfillMS = DurationText.milliseconds(backfill) else { throw UsageError(message: "--backfill must be a duration such as 7d, not '\(backfill)'") }
            guard let latenessMS = DurationText.milliseconds(lateness) else { throw UsageError(message: "--lateness must be a duration such as 10s, not '\(lateness)'") }
            var password: String?
            if let passwordFile {
                guard let data = FileManager.default.contents(atPath: passwordFile) else {
                    throw UsageError(message: "--password-file \(passwordFile) cannot be read")
                }
                password = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) }
            }
            let lock = try DataDirLock.exclusive(dataDir: dataDir.dataDir)
            defer { withExtendedLifetime(lock) {} }
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = .info
                return h
            }
            let store = try dataDir.openStore()
            defer { store.close() }
            let source = try await SynapseSources.open(url, password: password)
            var options = SynapseFollowerOptions()
            options.shard = shard
            options.backfill = .milliseconds(backfillMS)
            options.lateness = .milliseconds(latenessMS)
            let follower = SynapseFollower(store: store, source: source, options: options,
                                           logger: Logger(label: "pushlog.synapse"))
            let display = FollowProgress()
            if once {
                let appended = try await follower.catchUp { display.show($0) }
                display.finish()
                note("caught up from \(url): \(appended) entries appended, log head \(try store.read { view in try view.head() })")
            } else {
                let task = Task { await follower.run() }
                for await _ in stopSignals() { break }
                task.cancel()
                await task.value
            }
            await source.close()
        }
    }
}

/// Rows appended and each stream's position, on a terminal only (stderr), at most ten times a second.
final class FollowProgress: @unchecked Sendable {
    let enabled = isatty(2) != 0
    private let lock = NSLock()
    private var appended = 0
    private var lastDraw = 0.0
    private let start = Date()

    func show(_ p: SynapseFollower.Progress) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        appended += p.appended
        let now = Date().timeIntervalSince1970
        guard now - lastDraw >= 0.1 || p.caughtUp else { return }
        lastDraw = now
        let rate = Double(appended) / max(Date().timeIntervalSince(start), 0.001)
        let streams = p.positions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        FileHandle.standardError.write(Data("\rsynapse: \(appended) appended (\(Int(rate))/s); \(streams)   ".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
