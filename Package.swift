// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Pushlog",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pushlog", targets: ["pushlog"]),
        .library(name: "LMDB", targets: ["LMDB"]),
        .library(name: "PushlogCore", targets: ["PushlogCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .target(name: "LMDB", dependencies: ["CLMDB"]),
        .target(name: "PushlogCore", dependencies: ["LMDB"]),
        .executableTarget(
            name: "pushlog",
            dependencies: [
                "PushlogCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "pushlog-bench",
            dependencies: ["PushlogCore", "LMDB"],
            path: "Tools/Bench"
        ),
        .testTarget(name: "LMDBTests", dependencies: ["LMDB"]),
        .testTarget(name: "PushlogCoreTests", dependencies: ["PushlogCore", "LMDB"]),
        .testTarget(name: "PushlogCLITests", dependencies: ["PushlogCore"]),
    ],
    swiftLanguageModes: [.v6]
)
