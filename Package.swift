// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Pushlog",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pushlog", targets: ["pushlog"]),
        .library(name: "LMDB", targets: ["LMDB"]),
        .library(name: "PushlogCore", targets: ["PushlogCore"]),
        .library(name: "Curl", targets: ["Curl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", exact: "2.1.1"),
        // Already pulled in by Hummingbird; named here for the delaying gateway's NIOHTTP1 server.
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        // Also pulled in by Hummingbird; named for the API server's `Expect: 100-continue` handler.
        .package(url: "https://github.com/apple/swift-nio-extras", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", exact: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-collections", exact: "1.6.0"),
        // The Synapse follower: Synapse's database, PostgreSQL or SQLite; sha256 for its shard hash.
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio", exact: "1.13.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .target(name: "LMDB", dependencies: ["CLMDB"]),
        .target(name: "PushlogCore", dependencies: ["LMDB", .product(name: "Crypto", package: "swift-crypto")]),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(name: "Curl", dependencies: ["CCurl"]),
        .target(
            name: "PushlogMail",
            dependencies: [
                "PushlogCore", "Curl",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["EmbedTemplates"]
        ),
        // Compiles data/templates/ into PushlogMail (EmailTemplates.builtinTemplates).
        .executableTarget(name: "EmbedTemplatesTool", path: "Tools/EmbedTemplates"),
        .plugin(name: "EmbedTemplates", capability: .buildTool(), dependencies: ["EmbedTemplatesTool"]),
        .target(
            name: "PushlogRuntime",
            dependencies: [
                "PushlogCore", "Curl", "PushlogMail",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Follows a Synapse database (pushers, push actions, receipts) into the log.
        .target(
            name: "PushlogSynapse",
            dependencies: [
                "PushlogCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "PushlogConfig",
            dependencies: ["PushlogCore", "PushlogRuntime", "Curl", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "PushlogServer",
            dependencies: [
                "PushlogCore", "PushlogRuntime", "PushlogMail", "Curl",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "pushlog",
            dependencies: [
                "PushlogCore", "PushlogRuntime", "PushlogConfig", "PushlogServer", "PushlogMail", "Curl", "PushlogSynapse",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "pushlog-bench",
            dependencies: ["PushlogCore", "LMDB", "PushlogRuntime", "PushlogMail", "Curl", "DelayGateway", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus")],
            path: "Tools/Bench"
        ),
        // A Matrix push gateway test double that answers after a configurable delay (tests and benchmarks).
        .target(
            name: "DelayGateway",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tools/Gateway/DelayGateway"
        ),
        .executableTarget(name: "pushlog-gateway", dependencies: ["DelayGateway"], path: "Tools/Gateway/CLI"),
        // The decoder fuzzing logic, shared by the libFuzzer target and the corpus replay test.
        .target(name: "PushlogFuzzing", dependencies: ["PushlogCore", "PushlogRuntime"]),
        // libFuzzer's driver and entry point when Tools/fuzz.sh builds it (ASan + coverage); otherwise a replayer.
        .executableTarget(name: "pushlog-fuzz", dependencies: ["PushlogFuzzing"], path: "Tools/Fuzz", exclude: ["corpus", "decoders.dict"]),
        // What several test targets share: the built binary, `ServeProcess`, the Python test
        // servers' launcher, `LogCapture`, `SplitMix64`, a closed port, `eventually`.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/Support/TestSupport"
        ),
        .testTarget(name: "LMDBTests", dependencies: ["LMDB", "TestSupport"]),
        .testTarget(name: "PushlogCoreTests", dependencies: ["PushlogCore", "LMDB", "TestSupport"]),
        .testTarget(name: "PushlogCLITests", dependencies: ["PushlogCore", "pushlog", "TestSupport"]),
        .testTarget(name: "CurlTests", dependencies: ["Curl", "TestSupport"]),
        .testTarget(
            name: "PushlogMailTests",
            dependencies: [
                "PushlogMail", "PushlogCore", "PushlogRuntime", "Curl", "pushlog", "TestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .testTarget(
            name: "PushlogServerTests",
            dependencies: [
                "PushlogServer", "PushlogCore", "Curl",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                // The OpenAPI document's test: read with Yams, checked against the real binary.
                "pushlog", "TestSupport", .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "PushlogFuzzingTests", dependencies: ["PushlogFuzzing", "pushlog-fuzz", "TestSupport"]),
        .testTarget(name: "DelayGatewayTests", dependencies: ["DelayGateway", "Curl"]),
        .testTarget(name: "PushlogSynapseTests", dependencies: [
            "PushlogSynapse", "PushlogCore", "TestSupport", "pushlog",
            .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "SQLiteNIO", package: "sqlite-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PushlogConfigTests", dependencies: ["PushlogConfig", "PushlogRuntime", "Curl"]),
        // The documentation's own checks: links resolve, docs/api.md matches docs/openapi.yaml, the
        // Grafana dashboard loads and names real metrics. Reads files only: no dependencies.
        .testTarget(name: "DocumentationTests"),
        // Real Synapse 1.163 (Tests/Support/synapse/synapse_harness.py) pushing by itself, then
        // followed by a real `pushlog serve`: gateway bodies compared. Needs Tools/synapse-env.sh.
        .testTarget(name: "SynapseTests", dependencies: ["pushlog", "TestSupport"]),
        .testTarget(
            name: "PushlogRuntimeTests",
            dependencies: ["PushlogRuntime", "PushlogCore", "PushlogMail", "Curl", "pushlog", "TestSupport", .product(name: "Logging", package: "swift-log"), "DelayGateway"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
