import Foundation
import LMDB

/// A fresh directory under the system temp dir, removed when `body` returns.
func withTempDir<T>(_ body: (String) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("lmdb-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

/// An environment in a fresh temp directory, closed and removed when `body` returns.
func withEnvironment<T>(mapSize: Int? = nil, _ body: (Environment) throws -> T) throws -> T {
    try withTempDir { dir in
        var options = EnvironmentOptions()
        if let mapSize { options.mapSize = mapSize }
        let env = try Environment(path: dir, options: options)
        return try body(env)
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func text(_ b: UnsafeRawBufferPointer?) -> String? {
    b.map { String(decoding: $0, as: UTF8.self) }
}

struct Boom: Error, Equatable {}

/// Deterministic bytes for value `i` of length `n`, so a read can check every byte.
func pattern(_ i: Int, length n: Int) -> [UInt8] {
    (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7) }
}
