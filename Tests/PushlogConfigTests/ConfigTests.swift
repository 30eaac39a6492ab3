import Curl
import PushlogConfig
import PushlogRuntime
import Testing

@Suite("Configuration")
struct ConfigTests {
    @Test("no file and no environment gives the contract's defaults")
    func defaults() throws {
        let c = try Config.load(yaml: nil)
        #expect(c.listen == "127.0.0.1:8690")
        #expect(c.dataDir == "./pushlog-data")
        #expect(c.apiMaxBodySize == 16 << 20)
        #expect(c.storeDurability == "sync")
        #expect(c.push == PushConfig())
        #expect(c.push.backoffInitialMS == 1_000 && c.push.backoffMaxMS == 3_600_000)
        #expect(c.push.giveUpAfterMS == 86_400_000 && c.push.maxAgeMS == 86_400_000)
        #expect(c.push.requestTimeoutMS == 60_000 && c.push.startupConcurrency == 10)
        #expect(c.email.delayBeforeMailMS == 600_000 && c.email.throttleMaxMS == 86_400_000)
        #expect(c.logLevel == "info" && c.logFormat == "text")
    }

    @Test("nested YAML keys, durations and sizes are read")
    func yaml() throws {
        let c = try Config.load(yaml: """
            listen: 127.0.0.1:9000
            data_dir: /var/lib/pushlog
            api:
              token: s3cret
              max_body_size: 512KiB
            store:
              durability: nometasync
            push:
              backoff_initial: 250ms
              backoff_max: 10m
              max_age: 0
              include_content: false
              startup_concurrency: 4
              max_in_flight_per_host: 256
              shutdown_grace: 2s
            log:
              level: debug
            """)
        #expect(c.listen == "127.0.0.1:9000")
        #expect(c.dataDir == "/var/lib/pushlog")
        #expect(c.apiToken == "s3cret")
        #expect(c.apiMaxBodySize == 512 * 1024)
        #expect(c.storeDurability == "nometasync")
        #expect(c.push.backoffInitialMS == 250 && c.push.backoffMaxMS == 600_000)
        #expect(c.push.maxAgeMS == 0)
        #expect(c.push.includeContent == false)
        #expect(c.push.startupConcurrency == 4)
        #expect(c.push.maxInFlightPerHost == 256 && c.push.shutdownGraceMS == 2_000)
        let d = try Config.load(yaml: nil).push
        #expect(d.maxInFlightPerHost == 1_024 && d.shutdownGraceMS == 10_000)
        #expect(c.logLevel == "debug")
    }

    @Test("PUSHLOG_ environment variables override the file")
    func environment() throws {
        let c = try Config.load(yaml: "push:\n  backoff_initial: 2s\n",
                                environment: ["PUSHLOG_PUSH_BACKOFF_INITIAL": "5s", "PUSHLOG_DATA_DIR": "/tmp/x",
                                              "PUSHLOG_BIN": "ignored: not a configuration key"])
        #expect(c.push.backoffInitialMS == 5_000)
        #expect(c.dataDir == "/tmp/x")
    }

    @Test("an unknown key or a bad value stops with one line naming the key")
    func problems() {
        let cases: [(String, String)] = [
            ("push:\n  backof_initial: 1s\n", "push.backof_initial"),
            ("push:\n  backoff_initial: soon\n", "push.backoff_initial"),
            ("push:\n  backoff_initial: 0\n", "push.backoff_initial"),
            ("api:\n  max_body_size: big\n", "api.max_body_size"),
            ("store:\n  durability: fast\n", "store.durability"),
            ("push:\n  include_content: maybe\n", "push.include_content"),
            ("listen: nowhere\n", "listen"),
            ("email:\n  smtp_url: http://mail\n", "email.smtp_url"),
            ("log:\n  level: loud\n", "log.level"),
            ("push:\n  startup_concurrency: -1\n", "push.startup_concurrency"),
            ("push:\n  max_in_flight_per_host: 0\n", "push.max_in_flight_per_host"),
            ("push:\n  shutdown_grace: later\n", "push.shutdown_grace"),
            ("colour: blue\n", "colour"),
            ("push:\n  ip_range_blacklist: [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n", "push.ip_range_blacklist"),
            ("push:\n  ip_range_whitelist: [localhost]\n", "push.ip_range_whitelist"),
        ]
        for (yaml, key) in cases {
            #expect(throws: Config.Problem.self, "\(key)") { try Config.load(yaml: yaml, file: "pushlog.yaml") }
            do {
                _ = try Config.load(yaml: yaml, file: "pushlog.yaml")
            } catch let p as Config.Problem {
                #expect(p.key == key)
                #expect(p.description.contains("'\(key)'") && p.description.contains("pushlog.yaml"))
                #expect(!p.description.contains("\n"))
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        #expect(throws: Config.Problem.self) {
            try Config.load(yaml: nil, environment: ["PUSHLOG_PUSH_MAX_AGE": "forever"])
        }
        #expect(throws: Config.Problem.self) { try Config.load(yaml: "- a\n- b\n") }
    }

    @Test("the email security and size keys: defaults, days in durations, and their bad values")
    func emailKeys() throws {
        let d = try Config.load(yaml: nil).email
        #expect(!d.allowPlaintextAuth && d.tlsVerify && d.tlsCAFile == nil)
        #expect(d.unsubscribeLinkLifetimeMS == 90 * 86_400_000)
        #expect(d.maxNotificationsPerRoom == 20)
        let c = try Config.load(yaml: """
            email:
              allow_plaintext_auth: true
              tls_ca_file: \(#filePath)
              tls_verify: false
              unsubscribe_link_lifetime: 7d
              max_notifications_per_room: 5
            """).email
        #expect(c.allowPlaintextAuth && !c.tlsVerify && c.tlsCAFile == #filePath)
        #expect(c.unsubscribeLinkLifetimeMS == 7 * 86_400_000)
        #expect(c.maxNotificationsPerRoom == 5)
        for (yaml, key) in [
            ("email:\n  tls_ca_file: /nonexistent/ca.pem\n", "email.tls_ca_file"),
            ("email:\n  tls_ca_file: /tmp\n", "email.tls_ca_file"),  // a directory is not a bundle
            ("email:\n  tls_verify: sometimes\n", "email.tls_verify"),
            ("email:\n  unsubscribe_link_lifetime: 3 months\n", "email.unsubscribe_link_lifetime"),
            ("email:\n  unsubscribe_link_lifetime: 0\n", "email.unsubscribe_link_lifetime"),
            ("email:\n  max_notifications_per_room: 0\n", "email.max_notifications_per_room"),
        ] {
            do {
                _ = try Config.load(yaml: yaml, file: "pushlog.yaml")
                Issue.record("\(key) accepted")
            } catch let p as Config.Problem {
                #expect(p.key == key)
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test("smtp_user over smtp:// needs require_tls, smtps:// or allow_plaintext_auth")
    func plaintextAuth() throws {
        let base = "email:\n  smtp_user: pushlog\n  smtp_pass: s3cret\n"
        let refused = #expect(throws: Config.Problem.self) {
            try Config.load(yaml: base + "  smtp_url: smtp://mail.example.org:587\n").validate()
        }
        #expect(refused?.key == "email.smtp_user")
        #expect(refused?.description.contains("email.allow_plaintext_auth") == true)
        #expect(refused?.description.contains("s3cret") == false)
        for extra in ["  smtp_url: smtp://mail.example.org:587\n  require_tls: true\n",
                      "  smtp_url: smtps://mail.example.org:465\n",
                      "  smtp_url: smtp://mail.example.org:587\n  allow_plaintext_auth: true\n"] {
            try Config.load(yaml: base + extra).validate()
        }
        // Without credentials there is nothing to protect.
        try Config.load(yaml: "email:\n  smtp_url: smtp://mail.example.org:25\n").validate()
    }

    @Test("push.ip_range_*: Synapse's blocklist by default; YAML lists and comma-separated environment values")
    func ipRanges() throws {
        #expect(try Config.load(yaml: nil).push.addressPolicy == AddressPolicy.default)
        #expect(AddressPolicy.default.blocked.count == 19 && AddressPolicy.default.allowed.isEmpty)
        let yaml = try Config.load(yaml: "push:\n  ip_range_blacklist: [\"10.0.0.0/8\", \"fc00::/7\"]\n  ip_range_whitelist:\n    - 10.1.0.0/16\n")
        #expect(yaml.push.addressPolicy == AddressPolicy(blocked: [IPRange("10.0.0.0/8")!, IPRange("fc00::/7")!], allowed: [IPRange("10.1.0.0/16")!]))
        let none = try Config.load(yaml: "push:\n  ip_range_blacklist: []\n")
        #expect(none.push.addressPolicy.blocked.isEmpty)
        let env = try Config.load(yaml: nil, environment: ["PUSHLOG_PUSH_IP_RANGE_WHITELIST": "127.0.0.0/8, ::1",
                                                           "PUSHLOG_PUSH_IP_RANGE_BLACKLIST": ""])
        #expect(env.push.addressPolicy == AddressPolicy(blocked: [], allowed: [IPRange("127.0.0.0/8")!, IPRange("::1")!]))
        do {
            _ = try Config.load(yaml: nil, environment: ["PUSHLOG_PUSH_IP_RANGE_WHITELIST": "127.0.0.0/8,nonsense"])
            Issue.record("a malformed range was accepted")
        } catch let p as Config.Problem {
            #expect(p.key == "push.ip_range_whitelist" && p.description.contains("nonsense") && p.source.contains("PUSHLOG_PUSH_IP_RANGE_WHITELIST"))
        }
    }

    @Test("a blank token, a bad api.token_file, both token keys, and an unknown PUSHLOG_ variable are problems naming the key")
    func tokensAndVariables() throws {
        func problemKey(_ yaml: String?, _ environment: [String: String] = [:]) -> String? {
            do { _ = try Config.load(yaml: yaml, environment: environment) } catch let p as Config.Problem { return p.key } catch {}
            return nil
        }
        #expect(problemKey("api:\n  token: \"\"\n") == "api.token")
        #expect(problemKey(nil, ["PUSHLOG_API_TOKEN": " \n"]) == "api.token")
        #expect(problemKey("metrics:\n  token: \"\t\"\n") == "metrics.token")
        #expect(problemKey(nil, ["PUSHLOG_API_TOKEN_FILE": "/nonexistent/pushlog-token"]) == "api.token_file")
        #expect(problemKey(nil, ["PUSHLOG_API_TOKN": "x"]) == "PUSHLOG_API_TOKN")
        // The switch to the one-task-per-pusher delivery is gone with it.
        #expect(problemKey(nil, ["PUSHLOG_TASK_DELIVERY": "1"]) == "PUSHLOG_TASK_DELIVERY")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-token-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("\n  tok3n \n\n".utf8).write(to: file)
        #expect(problemKey("api:\n  token: a\n", ["PUSHLOG_API_TOKEN_FILE": file.path]) == "api.token_file")
        let c = try Config.load(yaml: "api:\n  token_file: \(file.path)\n", environment: ["PUSHLOG_BIN": "x"])
        #expect(c.apiToken == "tok3n")
    }

    @Test("the example configuration documents every key and loads to the defaults")
    func example() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("data/pushlog.example.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        for key in Config.keys {
            let leaf = String(key.split(separator: ".").last!)
            #expect(text.contains("\(leaf):"), "\(key) is documented")
        }
        // Every key is commented out, so the example is the defaults.
        #expect(try Config.load(yaml: text) == Config())
    }
}

import Foundation
