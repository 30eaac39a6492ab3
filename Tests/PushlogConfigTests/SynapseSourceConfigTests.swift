import PushlogConfig
import Testing

@Suite("Configuration: source.synapse")
struct SynapseSourceConfigTests {
    @Test("defaults: no database (the follower is off), shard 0/1, 50ms, 10s, 7d")
    func defaults() throws {
        let c = try Config.load(yaml: nil)
        #expect(c.synapse.database == nil && c.synapse.passwordFile == nil)
        #expect(c.synapse.shardIndex == 0 && c.synapse.shardCount == 1)
        #expect(c.synapse.pollIntervalMS == 50 && c.synapse.latenessMS == 10_000 && c.synapse.backfillMS == 7 * 86_400_000)
    }

    @Test("the keys are read from YAML and the environment")
    func read() throws {
        let c = try Config.load(yaml: """
            source:
              synapse:
                database: postgresql://synapse_ro@db.internal:5432/synapse
                password_file: /run/secrets/synapse
                shard: 2/3
                poll_interval: 100ms
                lateness: 30s
                backfill: 1d
            """, environment: ["PUSHLOG_SOURCE_SYNAPSE_LATENESS": "5s"])
        #expect(c.synapse.database == "postgresql://synapse_ro@db.internal:5432/synapse")
        #expect(c.synapse.passwordFile == "/run/secrets/synapse")
        #expect(c.synapse.shardIndex == 2 && c.synapse.shardCount == 3)
        #expect(c.synapse.pollIntervalMS == 100 && c.synapse.latenessMS == 5_000 && c.synapse.backfillMS == 86_400_000)
        let s = try Config.load(yaml: "source: {synapse: {database: 'sqlite:///var/lib/synapse/homeserver.db'}}")
        #expect(s.synapse.database == "sqlite:///var/lib/synapse/homeserver.db")
    }

    @Test("a bad value stops with a line naming the key", arguments: [
        ("database", "mysql://u@h/db"), ("database", "postgresql://host/db"), ("database", "postgresql://u@h/"),
        ("database", "sqlite://relative.db"), ("shard", "3/3"), ("shard", "1"), ("shard", "-1/2"), ("shard", "0/0"),
        ("poll_interval", "0"), ("poll_interval", "fast"), ("lateness", "10"), ("backfill", "a week"), ("password_file", " "),
    ])
    func bad(field: String, value: String) {
        #expect {
            _ = try Config.load(yaml: "source: {synapse: {\(field): '\(value)'}}", file: "pushlog.yaml")
        } throws: { error in
            guard let p = error as? Config.Problem else { return false }
            return p.key == "source.synapse.\(field)" && "\(p)".contains("source.synapse.\(field)")
        }
    }
}
