import Curl
import Foundation
import PushlogCore
import PushlogRuntime
import Yams

/// Pushlog's configuration: the contract's keys, from a YAML file, each overridable by an
/// environment variable `PUSHLOG_<KEY>` (dots become underscores, upper case). Unknown keys and
/// bad values stop start-up with one line naming the key.
public struct Config: Sendable, Equatable {
    public var listen = "127.0.0.1:8690"
    public var dataDir = "./pushlog-data"
    public var apiToken: String?
    /// `api.token_file`: where `apiToken` was read from (``load`` reads it).
    public var apiTokenFile: String?
    public var metricsToken: String?
    public var apiMaxBodySize = 16 << 20
    /// nil: grows on demand from LMDB's start size.
    public var storeMapSize: Int?
    public var storeDurability: String = "sync"
    public var push = PushConfig()
    public var email = Email()
    public var logLevel = "info"
    public var logFormat = "text"
    public var synapse = SynapseSourceConfig()

    /// The `email.*` settings.
    public typealias Email = EmailConfig

    public init() {}

    /// A bad configuration: which key, what is wrong, where it came from.
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public var key: String
        public var message: String
        public var source: String
        public init(key: String, message: String, source: String) {
            self.key = key
            self.message = message
            self.source = source
        }
        public var description: String {
            key.isEmpty ? "configuration: \(source) \(message)" : "configuration: \(source): '\(key)' \(message)"
        }
    }

    /// Every key of the contract, in the dotted form.
    public static let keys: [String] = setters.map(\.key)

    /// Reads `yaml` (the file's text; nil for none), then the environment.
    public static func load(yaml: String?, file: String = "config", environment: [String: String] = [:]) throws -> Config {
        var config = Config()
        if let yaml, !yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            let tree: Any?
            do { tree = try Yams.load(yaml: yaml) } catch {
                throw Problem(key: "", message: "is not valid YAML: \(error)", source: file)
            }
            // A file of comments only is empty: the defaults.
            let root: [String: Any]
            if tree == nil || tree is NSNull {
                root = [:]
            } else if let map = tree as? [String: Any] {
                root = map
            } else {
                throw Problem(key: "", message: "must be a mapping of keys", source: file)
            }
            for (key, value) in flatten(root, prefix: "") {
                try config.set(key, value, source: file)
            }
        }
        try checkEnvironmentNames(environment)
        for key in keys {
            if let value = environment[environmentName(key)] { try config.set(key, value, source: "env \(environmentName(key))") }
        }
        try config.readTokenFile()
        return config
    }

    static func flatten(_ map: [String: Any], prefix: String) -> [(String, String?)] {
        var out: [(String, String?)] = []
        for (k, v) in map.sorted(by: { $0.key < $1.key }) {
            let key = prefix.isEmpty ? k : prefix + "." + k
            if let nested = v as? [String: Any], !keys.contains(key) {
                out += flatten(nested, prefix: key)
            } else if v is NSNull {
                out.append((key, nil))
            } else if let list = v as? [Any] {
                // Lists take the form their environment variable has: items joined by commas.
                out.append((key, list.map { "\($0)" }.joined(separator: ",")))
            } else {
                out.append((key, "\(v)"))
            }
        }
        return out
    }

    mutating func set(_ key: String, _ value: String?, source: String) throws {
        guard let setter = Self.setters.first(where: { $0.key == key }) else {
            throw Problem(key: key, message: "is not a configuration key", source: source)
        }
        guard let value else { return }  // `key:` with no value keeps the default
        do { try setter.apply(&self, value) } catch let reason as Reason {
            throw Problem(key: key, message: reason.text, source: source)
        }
    }

    struct Reason: Error { let text: String }

    struct Setter: Sendable {
        let key: String
        let apply: @Sendable (inout Config, String) throws -> Void
    }

    static func duration(_ v: String, allowZero: Bool = false) throws -> Int64 {
        guard let ms = DurationText.milliseconds(v) else {
            throw Reason(text: "must be a duration such as 250ms, 10s, 10m, 24h or 90d, not '\(v)'")
        }
        if ms == 0 && !allowZero { throw Reason(text: "must be longer than 0") }
        return ms
    }

    static func size(_ v: String) throws -> Int {
        let t = v.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)] where t.hasSuffix(suffix) {
            if let n = Int(t.dropLast(suffix.count)), n > 0 { return n * factor }
        }
        if let n = Int(t), n > 0 { return n }
        throw Reason(text: "must be a size such as 512KiB or 16MiB, not '\(v)'")
    }

    static func bool(_ v: String) throws -> Bool {
        switch v.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw Reason(text: "must be true or false, not '\(v)'")
        }
    }

    static func oneOf(_ v: String, _ allowed: [String]) throws -> String {
        guard allowed.contains(v) else {
            throw Reason(text: "must be one of \(allowed.joined(separator: ", ")), not '\(v)'")
        }
        return v
    }

    static func ranges(_ v: String) throws -> [IPRange] {
        do { return try AddressPolicy.ranges(v) } catch {
            throw Reason(text: "must list address ranges such as 10.0.0.0/8 or fe80::/10, not '\(error.text)'")
        }
    }

    static func hostPort(_ v: String) throws -> String {
        guard let colon = v.lastIndex(of: ":"), !v[..<colon].isEmpty, let port = Int(v[v.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw Reason(text: "must be HOST:PORT, not '\(v)'")
        }
        return v
    }

    static func url(_ v: String, schemes: [String]) throws -> String {
        guard let c = URLComponents(string: v), let s = c.scheme?.lowercased(), schemes.contains(s),
              !(c.host ?? "").isEmpty else {
            throw Reason(text: "must be a \(schemes.joined(separator: " or ")) URL, not '\(v)'")
        }
        return v
    }

    /// A path to a file this process can read now (a CA bundle): a typo stops start-up rather
    /// than every mail.
    static func readableFile(_ v: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: v, isDirectory: &isDirectory), !isDirectory.boolValue,
              FileManager.default.isReadableFile(atPath: v) else {
            throw Reason(text: "must name a readable file, not '\(v)'")
        }
        return v
    }

    static let setters: [Setter] = [
        Setter(key: "listen") { $0.listen = try hostPort($1) },
        Setter(key: "data_dir") { $0.dataDir = $1 },
        Setter(key: "api.token") { $0.apiToken = try token($1) },
        Setter(key: "api.token_file") { $0.apiTokenFile = try path($1) },
        Setter(key: "metrics.token") { $0.metricsToken = try token($1) },
        Setter(key: "api.max_body_size") { $0.apiMaxBodySize = try size($1) },
        Setter(key: "store.map_size") { $0.storeMapSize = try size($1) },
        Setter(key: "store.durability") { $0.storeDurability = try oneOf($1, ["sync", "nometasync"]) },
        Setter(key: "push.backoff_initial") { $0.push.backoffInitialMS = try duration($1) },
        Setter(key: "push.backoff_max") { $0.push.backoffMaxMS = try duration($1) },
        Setter(key: "push.give_up_after") { $0.push.giveUpAfterMS = try duration($1) },
        Setter(key: "push.max_age") { $0.push.maxAgeMS = try duration($1, allowZero: true) },
        Setter(key: "push.request_timeout") { $0.push.requestTimeoutMS = try duration($1) },
        Setter(key: "push.include_content") { $0.push.includeContent = try bool($1) },
        Setter(key: "push.group_unread_count_by_room") { $0.push.groupUnreadCountByRoom = try bool($1) },
        Setter(key: "push.startup_concurrency") {
            guard let n = Int($1), n > 0 else { throw Reason(text: "must be a positive integer, not '\($1)'") }
            $0.push.startupConcurrency = n
        },
        Setter(key: "push.max_in_flight_per_host") {
            guard let n = Int($1), n > 0 else { throw Reason(text: "must be a positive integer, not '\($1)'") }
            $0.push.maxInFlightPerHost = n
        },
        Setter(key: "push.shutdown_grace") { $0.push.shutdownGraceMS = try duration($1, allowZero: true) },
        Setter(key: "push.ip_range_blacklist") { $0.push.addressPolicy.blocked = try ranges($1) },
        Setter(key: "push.ip_range_whitelist") { $0.push.addressPolicy.allowed = try ranges($1) },
        Setter(key: "email.smtp_url") { $0.email.smtpURL = try url($1, schemes: ["smtp", "smtps"]) },
        Setter(key: "email.smtp_user") { $0.email.smtpUser = $1 },
        Setter(key: "email.smtp_pass") { $0.email.smtpPass = $1 },
        Setter(key: "email.require_tls") { $0.email.requireTLS = try bool($1) },
        Setter(key: "email.allow_plaintext_auth") { $0.email.allowPlaintextAuth = try bool($1) },
        Setter(key: "email.tls_ca_file") { $0.email.tlsCAFile = try readableFile($1) },
        Setter(key: "email.tls_verify") { $0.email.tlsVerify = try bool($1) },
        Setter(key: "email.notif_from") { $0.email.notifFrom = $1 },
        Setter(key: "email.app_name") { $0.email.appName = $1 },
        Setter(key: "email.client_base_url") { $0.email.clientBaseURL = try url($1, schemes: ["http", "https"]) },
        Setter(key: "email.public_baseurl") { $0.email.publicBaseURL = try url($1, schemes: ["http", "https"]) },
        Setter(key: "email.template_dir") { $0.email.templateDir = $1 },
        Setter(key: "email.delay_before_mail") { $0.email.delayBeforeMailMS = try duration($1, allowZero: true) },
        Setter(key: "email.throttle_start") { $0.email.throttleStartMS = try duration($1) },
        Setter(key: "email.throttle_max") { $0.email.throttleMaxMS = try duration($1) },
        Setter(key: "email.throttle_reset_after") { $0.email.throttleResetAfterMS = try duration($1) },
        Setter(key: "email.unsubscribe_link_lifetime") { $0.email.unsubscribeLinkLifetimeMS = try duration($1) },
        Setter(key: "email.max_notifications_per_room") {
            guard let n = Int($1), n > 0 else { throw Reason(text: "must be a positive integer, not '\($1)'") }
            $0.email.maxNotificationsPerRoom = n
        },
        Setter(key: "source.synapse.database") { $0.synapse.database = try synapseDatabase($1) },
        Setter(key: "source.synapse.password_file") { $0.synapse.passwordFile = try path($1) },
        Setter(key: "source.synapse.shard") {
            let parts = $1.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, n <= 1 << 20, (0..<n).contains(k) else {
                throw Reason(text: "must be k/N with 0 <= k < N, such as 0/1 or 2/3, not '\($1)'")
            }
            $0.synapse.shardIndex = k
            $0.synapse.shardCount = n
        },
        Setter(key: "source.synapse.poll_interval") { $0.synapse.pollIntervalMS = try duration($1) },
        Setter(key: "source.synapse.lateness") { $0.synapse.latenessMS = try duration($1, allowZero: true) },
        Setter(key: "source.synapse.backfill") { $0.synapse.backfillMS = try duration($1, allowZero: true) },
        Setter(key: "log.level") { $0.logLevel = try oneOf($1, ["trace", "debug", "info", "notice", "warning", "error", "critical"]) },
        Setter(key: "log.format") { $0.logFormat = try oneOf($1, ["text", "json"]) },
    ]

    /// `postgresql://user@host:port/db` (or `postgres://`) or `sqlite:///absolute/path`.
    static func synapseDatabase(_ v: String) throws -> String {
        if v.hasPrefix("sqlite://") {
            guard v.dropFirst("sqlite://".count).hasPrefix("/"), v.count > "sqlite:///".count else {
                throw Reason(text: "must be sqlite:///absolute/path/homeserver.db, not '\(v)'")
            }
            return v
        }
        guard let c = URLComponents(string: v), ["postgresql", "postgres"].contains(c.scheme?.lowercased() ?? ""),
              !(c.user ?? "").isEmpty, c.path.count > 1, !(c.host ?? "").isEmpty || c.queryItems?.contains(where: { $0.name == "host" }) == true else {
            throw Reason(text: "must be postgresql://user@host:port/database or sqlite:///path/homeserver.db, not '\(v)'")
        }
        return v
    }

    /// The host part of `listen` (brackets of an IPv6 literal removed).
    public var listenHost: String {
        let host = String(listen[..<(listen.lastIndex(of: ":") ?? listen.endIndex)])
        return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    public var listenPort: Int { Int(listen[listen.index(after: listen.lastIndex(of: ":")!)...]) ?? 8690 }

    /// Cross-key rules, checked once everything is read.
    public func validate() throws {
        if push.backoffInitialMS > push.backoffMaxMS {
            throw Problem(key: "push.backoff_initial", message: "must not exceed push.backoff_max", source: "config")
        }
        try validateSMTPAuth()
    }

    /// SMTP AUTH only over TLS: `smtps://`, or `smtp://` with `email.require_tls` (libcurl then
    /// refuses to go on without STARTTLS, so AUTH never crosses in clear).
    func validateSMTPAuth() throws {
        guard email.smtpUser != nil, let url = email.smtpURL, !email.allowPlaintextAuth,
              !url.lowercased().hasPrefix("smtps://"), !email.requireTLS else { return }
        throw Problem(key: "email.smtp_user",
                      message: "is set with email.smtp_url \(url) and no email.require_tls: SMTP AUTH would go in clear; set email.require_tls: true, use smtps://, or set email.allow_plaintext_auth: true",
                      source: "config")
    }
}

/// `source.synapse.*`: the Synapse follower, on when `database` is set.
public struct SynapseSourceConfig: Sendable, Equatable {
    public var database: String?
    public var passwordFile: String?
    public var shardIndex = 0
    public var shardCount = 1
    public var pollIntervalMS: Int64 = 50
    public var latenessMS: Int64 = 10_000
    public var backfillMS: Int64 = 7 * 86_400_000
    public init() {}

    /// The database password: `password_file`'s first line, trimmed (nil when not set).
    public func password() throws -> String? {
        guard let passwordFile else { return nil }
        guard let data = FileManager.default.contents(atPath: passwordFile) else {
            throw Config.Problem(key: "source.synapse.password_file", message: "cannot be read", source: passwordFile)
        }
        let text = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return text.trimmingCharacters(in: .whitespaces)
    }
}
