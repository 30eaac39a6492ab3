// The documentation of every configuration key, kept beside the setters so that it cannot
// drift: `docs/configuration.md` is generated from it (`ConfigDocsTests` fails when a key has
// no entry here, or when the file differs from `configurationMarkdown()`;
// `PUSHLOG_WRITE_DOCS=1 swift test --filter ConfigDocs` rewrites the file).
extension Config {
    /// What an operator needs to know about one key.
    public struct KeyDoc: Sendable, Equatable {
        /// The dotted key, as in `setters`.
        public let key: String
        /// The default, as Markdown text (`` `1s` ``, or words such as "none").
        public let defaultText: String
        /// What the key does.
        public let meaning: String
        /// What raising, lowering or setting it costs.
        public let tradeOff: String
    }

    /// Keys documented here before their setter exists (they are added on another branch). The
    /// docs test tolerates them; it fails once they have a setter, so the list is emptied then.
    public static let documentedAheadOfSetters: Set<String> = []

    /// The sections of `docs/configuration.md`, in order: a key's section is its first segment
    /// (`source.synapse` for the follower's keys; the top-level keys under "General").
    static let docSections: [(prefix: String, title: String)] = [
        ("", "General"), ("api", "HTTP API"), ("metrics", "Metrics"), ("store", "Store"),
        ("push", "HTTP pushes"), ("email", "Email"), ("log", "Logging"), ("source.synapse", "Synapse follower"),
    ]

    /// The `PUSHLOG_…` variables that are no configuration key, and what reads them.
    static let otherEnvironmentDocs: [String: String] = [
        "PUSHLOG_BIN": "the tests and `Tools/fuzz-api.sh`: the `pushlog` binary to run.",
        "PUSHLOG_WRITE_DOCS": "`1`: `swift test --filter ConfigDocs` rewrites `docs/configuration.md` from `Config+Docs.swift` instead of comparing.",
    ]

    /// Every key's documentation, in the order of the generated page.
    public static let documentation: [KeyDoc] = [
        KeyDoc(key: "listen", defaultText: "`127.0.0.1:8690`",
               meaning: "`HOST:PORT` the HTTP API listens on (`--listen` wins over it). Port 0 picks a free port, named in the boot line.",
               tradeOff: "A non-loopback address is refused unless `api.token` (or `api.token_file`) is set. Keep it on loopback behind a reverse proxy unless the homeserver is on another host."),
        KeyDoc(key: "data_dir", defaultText: "`./pushlog-data`",
               meaning: "The LMDB data directory (`data.mdb`, `lock.mdb`, `unsubscribe.key`). `--data-dir` and `PUSHLOG_DATA_DIR` win over it. Created 0700, files 0600.",
               tradeOff: "Put it on a local disk with a real `fsync` (not NFS): every append and cursor advance is committed there. Back it up with the service stopped, or with `mdb_copy`."),
        KeyDoc(key: "api.token", defaultText: "none",
               meaning: "Bearer token every `/v1` request must carry (`Authorization: Bearer …`), except the signed unsubscribe link.",
               tradeOff: "Without it the API is open to anyone who reaches the port, so `serve` then refuses a non-loopback `listen`. A blank token stops start-up (exit 64). Prefer `api.token_file`: a token in the config file or the environment is readable by more processes."),
        KeyDoc(key: "api.token_file", defaultText: "none",
               meaning: "A file holding the API token, read once at start and trimmed (for example a systemd credential, `%d/api_token`).",
               tradeOff: "Setting both `api.token` and `api.token_file` stops start-up, as does a missing, unreadable or blank file. The token is read at start only: a new token needs a restart."),
        KeyDoc(key: "metrics.token", defaultText: "none",
               meaning: "Bearer token for `GET /metrics`.",
               tradeOff: "None: `/metrics` is open to whoever reaches the port (it names no user, but shows gateway host names). A blank token stops start-up."),
        KeyDoc(key: "api.max_body_size", defaultText: "`16MiB`",
               meaning: "Largest request body; a larger one gets 413 `M_TOO_LARGE` without being read.",
               tradeOff: "Larger allows bigger append batches (fewer requests, fewer commits) at the cost of memory: a request body is held whole while it is decoded."),
        KeyDoc(key: "store.map_size", defaultText: "grows on demand",
               meaning: "The initial size of the LMDB memory map. The map grows by itself when full, so this is only a starting point.",
               tradeOff: "Setting it to the expected size avoids the brief pause of growing the map under load; it reserves address space, not disk or memory."),
        KeyDoc(key: "store.durability", defaultText: "`sync`",
               meaning: "`sync`: every commit is flushed to disk before an append is answered (full ACID). `nometasync`: the data is flushed but the meta page is not, so an operating-system crash or power loss may undo the last commit.",
               tradeOff: "`nometasync` saves one `fsync` per commit (more appends per second on slow disks) but a power loss may lose the entries of the last commit, although their append was answered 200. A crash of Pushlog alone loses nothing either way."),
        KeyDoc(key: "push.backoff_initial", defaultText: "`1s`",
               meaning: "The first wait after a failed push. The wait then doubles with the time spent failing (±10% jitter), up to `push.backoff_max`. Must not exceed `push.backoff_max`.",
               tradeOff: "Shorter recovers faster from a blip but hammers a gateway that is down; longer is gentler but delays every push of that pusher after a short outage."),
        KeyDoc(key: "push.backoff_max", defaultText: "`1h`",
               meaning: "The longest wait between two attempts of a failing pusher. The schedule is stored (`next_attempt`), so a restart keeps it.",
               tradeOff: "Shorter notices a revived gateway sooner; longer costs less against gateways that are gone for good."),
        KeyDoc(key: "push.give_up_after", defaultText: "`24h`",
               meaning: "After this long of continuous failure, the pusher's pending notification is dead-lettered (reason `give_up`) and the next one is tried.",
               tradeOff: "Longer keeps trying old notifications; shorter drops them sooner. Dead letters are counted in `pushlog_dead_letters_total{reason}` and visible in `pushlog cursors`."),
        KeyDoc(key: "push.max_age", defaultText: "`24h` (`0`: no limit)",
               meaning: "A notification older than this (from its `received_ts`) when its turn comes is dead-lettered (reason `max_age`) instead of pushed.",
               tradeOff: "A revived gateway gets fresh pushes rather than a day-old backlog. `0` delivers everything however late, which after a long outage means a burst of stale notifications on phones."),
        KeyDoc(key: "push.request_timeout", defaultText: "`60s`",
               meaning: "A gateway that has not answered within this time fails the push (reason `timeout`).",
               tradeOff: "Shorter frees the pusher (and its per-host slot) sooner from a hung gateway but fails slow, healthy ones; a timed-out push may have been delivered and is sent again."),
        KeyDoc(key: "push.include_content", defaultText: "`true`",
               meaning: "Send the event's `content` to the gateway (left out when false).",
               tradeOff: "`false` keeps message bodies away from the push gateway and the phone vendor's push service, at the price of notifications without text (the app must fetch it)."),
        KeyDoc(key: "push.group_unread_count_by_room", defaultText: "`true`",
               meaning: "The badge (`counts.unread`) is the number of rooms with unread notifications; `false` makes it the number of unread notifications.",
               tradeOff: "Synapse's default is the room count. The notification count changes more often, so it sends more badge-only pushes."),
        KeyDoc(key: "push.startup_concurrency", defaultText: "`10`",
               meaning: "How many pending pusher loops are started at once at boot. A start is the first push of a loop; the next start does not wait for that loop's backlog to drain.",
               tradeOff: "Higher drains a post-restart backlog sooner; lower spreads the first pushes over time, so a restart does not burst at the gateways."),
        KeyDoc(key: "push.max_in_flight_per_host", defaultText: "`1024`",
               meaning: "The ceiling of the adaptive limit on requests in flight to one gateway host, shared by every delivery thread (not multiplied by them). The limit itself moves below it with the gateway's latency and errors.",
               tradeOff: "Higher lets a fast gateway take more of a backlog at once; lower protects a small gateway (and the file descriptors of this host) from bursts."),
        KeyDoc(key: "push.shutdown_grace", defaultText: "`10s`",
               meaning: "On SIGTERM, how long pushes in flight may finish before they are cancelled. A second signal exits at once. Cancelled pushes keep their cursor and are sent again after the restart.",
               tradeOff: "Longer repeats fewer pushes after a restart; shorter stops sooner. Keep it below the unit's `TimeoutStopSec` (30 s in `Tools/pushlog.service`), or systemd kills the service first."),
        KeyDoc(key: "push.ip_range_blacklist", defaultText: "Synapse's default list: `127.0.0.0/8`, `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `100.64.0.0/10`, `192.0.0.0/24`, `169.254.0.0/16`, `192.88.99.0/24`, `198.18.0.0/15`, `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `224.0.0.0/4`, `::1/128`, `fe80::/10`, `fc00::/7`, `2001:db8::/32`, `ff00::/8`, `fec0::/10`",
               meaning: "Gateway addresses never connected to (`0.0.0.0` and `::` always), checked on each resolved address as it is connected to. A `data.url` naming one literally is refused at `PUT /v1/pushers` and `pushers set`; a resolved one fails the push (reason `blocked_address`). In the environment: comma-separated.",
               tradeOff: "It stops a user from making the service reach internal hosts through a pusher URL (SSRF). Emptying it is only safe when no untrusted user can register pushers."),
        KeyDoc(key: "push.ip_range_whitelist", defaultText: "`[]`",
               meaning: "Exceptions to the blocklist, for example `[\"10.20.0.0/16\"]` for a gateway on your own network. In the environment: comma-separated.",
               tradeOff: "Every range listed here is reachable by any user who can register a pusher: list the gateway's range, not the whole network."),
        KeyDoc(key: "email.smtp_url", defaultText: "none (email pushers inert, with one warning)",
               meaning: "The SMTP server mail is sent through: `smtp://host:port` (STARTTLS when offered) or `smtps://host:port` (TLS from the first byte).",
               tradeOff: "Unset, email pushers are kept but mail nothing. `smtps://` or `email.require_tls` keep mail encrypted on the way to the MTA."),
        KeyDoc(key: "email.smtp_user", defaultText: "none",
               meaning: "SMTP AUTH user name.",
               tradeOff: "With `smtp://` and no `email.require_tls`, start-up stops (AUTH would go in clear) unless `email.allow_plaintext_auth` is set."),
        KeyDoc(key: "email.smtp_pass", defaultText: "none",
               meaning: "SMTP AUTH password.",
               tradeOff: "It is read from the config file or the environment: keep the file mode 0640 `root:pushlog`, as `Tools/install.sh` does."),
        KeyDoc(key: "email.require_tls", defaultText: "`false`",
               meaning: "`true`: never send over `smtp://` without STARTTLS (it is used whenever offered either way).",
               tradeOff: "`true` fails every mail to an MTA that does not offer STARTTLS, rather than sending it in clear."),
        KeyDoc(key: "email.allow_plaintext_auth", defaultText: "`false`",
               meaning: "Allow SMTP AUTH over a connection that may not be encrypted (`smtp://` without `email.require_tls`).",
               tradeOff: "Only for an MTA on the same host or a trusted network: the password crosses the wire in clear."),
        KeyDoc(key: "email.tls_ca_file", defaultText: "none (the system's CAs)",
               meaning: "A PEM bundle of the CAs that sign the SMTP server's certificate. A missing or unreadable file stops start-up (exit 64).",
               tradeOff: "Pins trust to your own CA instead of every public one; the bundle must be renewed with the CA."),
        KeyDoc(key: "email.tls_verify", defaultText: "`true`",
               meaning: "`false`: the SMTP server's certificate and host name are not checked (`serve` logs a warning at start-up).",
               tradeOff: "Lets a local MTA with a self-made certificate work, but anyone on the path could pose as it. Prefer `email.tls_ca_file`."),
        KeyDoc(key: "email.notif_from", defaultText: "`\"%(app)s <noreply@localhost>\"`",
               meaning: "The `From:` of notification mails; `%(app)s` becomes `email.app_name`.",
               tradeOff: "Use an address of a domain whose SPF/DKIM the MTA satisfies, or mail lands in spam."),
        KeyDoc(key: "email.app_name", defaultText: "`Matrix`",
               meaning: "The application name in subjects and bodies (\"[Matrix] You have a message …\").",
               tradeOff: "None; cosmetic."),
        KeyDoc(key: "email.client_base_url", defaultText: "`https://matrix.to`",
               meaning: "Base of the links to rooms and events in mails.",
               tradeOff: "Point it at your own web client to open rooms there instead of through matrix.to."),
        KeyDoc(key: "email.public_baseurl", defaultText: "`http://<listen>/`",
               meaning: "Base of the unsubscribe links in mails (`…/v1/unsubscribe?…`).",
               tradeOff: "The default is only reachable on this host: set it to the public address of the reverse proxy in front of Pushlog, or the links in mails do not work."),
        KeyDoc(key: "email.template_dir", defaultText: "none: the built-in templates (`data/templates`)",
               meaning: "A directory whose templates override the built-in ones file by file. A directory that does not exist logs one warning; a template that does not parse stops start-up naming the file.",
               tradeOff: "Custom templates must be kept in step with the built-in ones across upgrades."),
        KeyDoc(key: "email.delay_before_mail", defaultText: "`10m`",
               meaning: "No mail about a notification sooner than this after it was received; one read in the meantime is not mailed.",
               tradeOff: "Shorter mails sooner but about more messages the user reads on a device anyway; longer mails less, later."),
        KeyDoc(key: "email.throttle_start", defaultText: "`10m`",
               meaning: "A room's wait after its first mail; each further mail about it multiplies the wait by 144, up to `email.throttle_max`.",
               tradeOff: "Shorter means more mails about a busy room."),
        KeyDoc(key: "email.throttle_max", defaultText: "`24h`",
               meaning: "The longest wait between two mails about one room.",
               tradeOff: "Shorter keeps a busy room in every digest; longer keeps inboxes quiet."),
        KeyDoc(key: "email.throttle_reset_after", defaultText: "`12h`",
               meaning: "A room not mailed about for this long starts over at `email.throttle_start`.",
               tradeOff: "Shorter forgives a busy room sooner (more mails); longer keeps it throttled."),
        KeyDoc(key: "email.unsubscribe_link_lifetime", defaultText: "`90d`",
               meaning: "An unsubscribe link older than this gets 403. Links made before links carried a time never expire.",
               tradeOff: "Longer keeps links in old mails working; shorter limits how long a leaked link can unsubscribe someone."),
        KeyDoc(key: "email.max_notifications_per_room", defaultText: "`20`",
               meaning: "Events loaded and shown per room in one mail (the newest); older ones are counted (\"30 earlier messages not shown\").",
               tradeOff: "Higher shows more of a busy room but makes each mail cost more to build and read."),
        KeyDoc(key: "log.level", defaultText: "`info`",
               meaning: "`trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical`.",
               tradeOff: "`debug` and `trace` log per push: useful for one incident, too much for a busy server."),
        KeyDoc(key: "log.format", defaultText: "`text`",
               meaning: "`text` (one line per event, `key=value` metadata) or `json` (one object per line).",
               tradeOff: "`json` for a log pipeline; `text` for `journalctl` by eye."),
        KeyDoc(key: "source.synapse.database", defaultText: "none",
               meaning: "A Synapse database to follow into the log: `postgresql://user@host:port/db` or `sqlite:///path/homeserver.db`. Set, `serve` follows it as `pushlog follow synapse` does; Synapse then runs with `pusher_instances: []`.",
               tradeOff: "The follower only reads Synapse's tables: give it a read-only database role. If the database goes away, it retries with backoff while delivery of what is in the log goes on. Unset, notifications come only through the API and `pushlog append`."),
        KeyDoc(key: "source.synapse.password_file", defaultText: "none",
               meaning: "A file holding the database password, read at start, instead of a password in the URL (which then stays out of the config and the environment).",
               tradeOff: "A missing or unreadable file stops start-up."),
        KeyDoc(key: "source.synapse.shard", defaultText: "`0/1`",
               meaning: "`k/N`: follow only the users with `int.from_bytes(sha256(user_id), \"little\") % N == k`, the hash Synapse's `pusher_instances` uses.",
               tradeOff: "Several Pushlog instances can share one homeserver's pushers, each with its own data directory; every instance still reads every row and skips the others' users."),
        KeyDoc(key: "source.synapse.poll_interval", defaultText: "`50ms`",
               meaning: "How often the follower asks Synapse's database for new rows.",
               tradeOff: "Shorter pushes sooner at the cost of more (cheap, indexed) queries on the homeserver's database."),
        KeyDoc(key: "source.synapse.lateness", defaultText: "`10s`",
               meaning: "The trailing window the follower reads again on every poll, for rows Synapse commits late (a lower stream ordering committed after a higher one); what is already in the log is skipped by `(user, event_id)` or receipt identity.",
               tradeOff: "Longer catches later commits at the cost of re-reading more rows per poll; shorter may miss a notification committed later than the window."),
        KeyDoc(key: "source.synapse.backfill", defaultText: "`7d`",
               meaning: "On the first start against a database, how far back unread push actions are imported (with the current receipts), so badges match Synapse's from the first push. Pushers still start at the head: no history is pushed.",
               tradeOff: "Longer carries more unread state over (badges, email digests); shorter makes the first start faster."),
    ]

    /// `docs/configuration.md`, generated from `documentation`.
    public static func configurationMarkdown() -> String {
        var out = """
            # Configuration

            <!-- Generated from Sources/PushlogConfig/Config+Docs.swift: edit that file, then run
                 `PUSHLOG_WRITE_DOCS=1 swift test --filter ConfigDocs`. A test fails when they differ. -->

            `pushlog serve --config FILE` reads a YAML file. Dotted keys are nested maps:
            `push.backoff_initial` is written

            ```yaml
            push:
              backoff_initial: 1s
            ```

            Every key can also be set by an environment variable `PUSHLOG_<KEY>`, upper case, dots as
            underscores (`push.backoff_initial` → `PUSHLOG_PUSH_BACKOFF_INITIAL`); the environment wins
            over the file. Durations are written `250ms`, `10s`, `10m`, `24h`, `90d`; sizes `512KiB`,
            `16MiB`; lists in YAML as lists and in the environment comma-separated. A key written with no
            value keeps its default.

            Start-up stops (exit 64, one line naming the key and where it came from) on an unknown key, a
            bad value, or a `PUSHLOG_…` variable that is no key (a misspelt `PUSHLOG_API_TOKN` is not
            silently ignored). `data/pushlog.example.yaml` is a commented file with every key.

            | key | default | environment variable |
            |---|---|---|

            """
        for doc in documentation {
            out += "| [`\(doc.key)`](#\(anchor(doc.key))) | \(doc.defaultText) | `\(environmentName(doc.key))` |\n"
        }
        for section in docSections {
            let docs = documentation.filter { sectionPrefix(of: $0.key) == section.prefix }
            guard !docs.isEmpty else { continue }
            out += "\n## \(section.title)\n"
            if section.prefix == "source.synapse" {
                out += "\nThe follower of a Synapse database (`pushlog follow synapse`, or `serve` with `source.synapse.database` set).\n"
            }
            for doc in docs {
                out += """

                    ### `\(doc.key)`

                    - Default: \(doc.defaultText)
                    - Environment: `\(environmentName(doc.key))`

                    \(doc.meaning)

                    Trade-off: \(doc.tradeOff)

                    """
            }
        }
        out += """

            ## Other environment variables

            These `PUSHLOG_…` variables are no configuration key; `serve` accepts them beside the keys'.

            """
        for name in otherEnvironmentNames.sorted() {
            out += "- `\(name)`: \(otherEnvironmentDocs[name] ?? "(undocumented)")\n"
        }
        return out
    }

    /// The section a key belongs to: `source.synapse` for the follower, else its first segment
    /// ("" for the top-level keys).
    static func sectionPrefix(of key: String) -> String {
        if key.hasPrefix("source.synapse.") { return "source.synapse" }
        guard let dot = key.firstIndex(of: ".") else { return "" }
        return String(key[..<dot])
    }

    /// The anchor GitHub gives the heading `` ### `key` ``: dots and backquotes dropped.
    static func anchor(_ key: String) -> String {
        String(key.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" })
    }
}
