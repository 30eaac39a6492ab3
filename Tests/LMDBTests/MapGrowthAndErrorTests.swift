import Foundation
import LMDB
import Synchronization
import Testing

@Suite("LMDB map growth")
struct MapGrowthTests {
    static let tinyMap = 1 << 16

    @Test("a write larger than the whole map succeeds after the map grows, and every byte reads back")
    func oneBigWrite() throws {
        try withEnvironment(mapSize: Self.tinyMap) { env throws in
            let db = try env.database("big")
            #expect(env.info.mapSize == Self.tinyMap)
            var runs = 0
            let n = 2_000
            try env.write { txn throws in
                runs += 1
                for i in 0..<n { try txn.put(db, BigEndian.bytes(UInt64(i)), pattern(i, length: 200)) }
            }
            // The body had to be retried at least once, after at least one growth.
            #expect(runs > 1)
            #expect(env.info.mapSize > Self.tinyMap)
            #expect(env.info.usedBytes > Self.tinyMap)
            try env.read { txn throws in
                #expect(try txn.count(db) == n)
                for i in 0..<n {
                    #expect(try txn.getBytes(db, BigEndian.bytes(UInt64(i))) == pattern(i, length: 200))
                }
            }
        }
    }

    @Test("a single value bigger than the map is stored after growth")
    func oneHugeValue() throws {
        try withEnvironment(mapSize: Self.tinyMap) { env throws in
            let db = try env.database("blob")
            let huge = pattern(3, length: 300_000)
            try env.write { try $0.put(db, bytes("blob"), huge) }
            #expect(try env.read { try $0.getBytes(db, bytes("blob")) } == huge)
            #expect(env.info.mapSize >= 300_000)
        }
    }

    @Test("many small writes keep growing the map and nothing is lost")
    func manySmallWrites() throws {
        try withEnvironment(mapSize: Self.tinyMap) { env throws in
            let db = try env.database("small")
            for batch in 0..<40 {
                try env.write { txn throws in
                    for j in 0..<50 {
                        let i = batch * 50 + j
                        try txn.put(db, BigEndian.bytes(UInt64(i)), pattern(i, length: 100), flags: .append)
                    }
                }
            }
            var count = 0
            try env.read { txn throws in
                try txn.forEach(db) { k, v in
                    let i = Int(BigEndian.uint64(k))
                    #expect(i == count)
                    #expect(Array(v) == pattern(i, length: 100))
                    count += 1
                    return true
                }
            }
            #expect(count == 2_000)
        }
    }

    @Test("a grown map is kept when the environment is reopened with the tiny initial size")
    func reopenAfterGrowth() throws {
        try withTempDir { dir in
            var o = EnvironmentOptions()
            o.mapSize = Self.tinyMap
            do {
                let env = try Environment(path: dir, options: o)
                let db = try env.database("big")
                try env.write { txn throws in
                    for i in 0..<1_500 { try txn.put(db, BigEndian.bytes(UInt64(i)), pattern(i, length: 200)) }
                }
            }
            let env = try Environment(path: dir, options: o)
            #expect(env.info.mapSize > Self.tinyMap)
            let db = try env.database("big", create: false)
            try env.read { txn throws in
                #expect(try txn.count(db) == 1_500)
                #expect(try txn.getBytes(db, BigEndian.bytes(1_499)) == pattern(1_499, length: 200))
            }
            // And it keeps taking writes.
            try env.write { txn throws in
                for i in 1_500..<3_000 { try txn.put(db, BigEndian.bytes(UInt64(i)), pattern(i, length: 200)) }
            }
            #expect(try env.read { try $0.count(db) } == 3_000)
        }
    }

    @Test("readers on other threads see consistent snapshots while the map grows under them")
    func readersDuringGrowth() throws {
        try withEnvironment(mapSize: Self.tinyMap) { env throws in
            let db = try env.database("grow")
            let countKey = bytes("count")
            let failures = Counter()
            DispatchQueue.concurrentPerform(iterations: 3) { worker in
                do {
                    if worker == 0 {
                        for batch in 0..<30 {
                            try env.write { txn throws in
                                for j in 0..<60 {
                                    let i = batch * 60 + j
                                    try txn.put(db, BigEndian.bytes(UInt64(i)), pattern(i, length: 120))
                                }
                                try txn.put(db, countKey, BigEndian.bytes(UInt64((batch + 1) * 60)))
                            }
                        }
                    } else {
                        for _ in 0..<200 {
                            try env.read { txn throws in
                                let n = try txn.get(db, countKey).map { Int(BigEndian.uint64($0)) } ?? 0
                                // Every key the snapshot's count promises is there, with its bytes.
                                for i in stride(from: 0, to: n, by: 37) {
                                    guard try txn.getBytes(db, BigEndian.bytes(UInt64(i))) == pattern(i, length: 120) else {
                                        failures.add()
                                        return
                                    }
                                }
                            }
                        }
                    }
                } catch {
                    failures.add()
                }
            }
            #expect(failures.value == 0)
            #expect(env.info.mapSize > Self.tinyMap)
            #expect(try env.read { try $0.count(db) } == 30 * 60 + 1)
        }
    }
}

final class Counter: Sendable {
    private let n = Mutex(0)
    func add() { n.withLock { $0 += 1 } }
    var value: Int { n.withLock { $0 } }
}

@Suite("LMDB errors and environment facts")
struct ErrorTests {
    @Test("opening a missing database without create gives LMDBError with code, operation and database name")
    func missingDatabase() throws {
        try withEnvironment { env throws in
            let e = #expect(throws: LMDBError.self) { try env.database("nope", create: false) }
            #expect(e?.code == LMDBError.notFound)
            #expect(e?.operation == "dbi_open")
            #expect(e?.database == "nope")
            #expect(e?.description.contains("nope") == true)
            #expect(e?.description.contains("dbi_open") == true)
            #expect(e?.message.isEmpty == false)
        }
    }

    @Test("databases opens existing ones and creates missing ones; without create, a missing one is an error naming it")
    func databasesTogether() throws {
        try withTempDir { dir throws in
            do {
                let env = try Environment(path: dir)
                let a = try env.database("a")
                try env.write { txn in try txn.put(a, bytes("k"), bytes("in a")) }
            }
            // A new environment (as another process would open it): "a" exists, "b" does not.
            let env = try Environment(path: dir)
            let e = #expect(throws: LMDBError.self) { try env.databases(["a", "b"], create: false) }
            #expect(e?.code == LMDBError.notFound && e?.database == "b")
            let dbs = try env.databases(["a", "b"])
            #expect(dbs.map(\.name) == ["a", "b"])
            try env.write { txn in try txn.put(dbs[1], bytes("k"), bytes("in b")) }
            try env.read { txn throws in
                #expect(text(try txn.get(dbs[0], bytes("k"))) == "in a")
                #expect(text(try txn.get(dbs[1], bytes("k"))) == "in b")
            }
            // Handles opened in the read transaction serve later ones, and are the cached ones.
            #expect(try env.database("a", create: false) == dbs[0])
        }
    }

    @Test("MDB_NOOVERWRITE on an existing key fails with keyExists naming the database")
    func noOverwrite() throws {
        try withEnvironment { env throws in
            let db = try env.database("unique")
            try env.write { try $0.put(db, bytes("k"), bytes("first"), flags: .noOverwrite) }
            let e = #expect(throws: LMDBError.self) {
                try env.write { try $0.put(db, bytes("k"), bytes("second"), flags: .noOverwrite) }
            }
            #expect(e == LMDBError(code: LMDBError.keyExists, operation: "put", database: "unique"))
            #expect(try env.read { text(try $0.get(db, bytes("k"))) } == "first")
        }
    }

    @Test("insert puts a missing key and leaves an existing one, and the transaction goes on")
    func insertIfMissing() throws {
        try withEnvironment { env throws in
            let db = try env.database("unique")
            let results = try env.write { txn in
                [try txn.insert(db, bytes("k"), bytes("first")), try txn.insert(db, bytes("k"), bytes("second")),
                 try txn.insert(db, bytes("l"), bytes("third"))]
            }
            #expect(results == [true, false, true])
            #expect(try env.read { [text(try $0.get(db, bytes("k"))), text(try $0.get(db, bytes("l")))] } == ["first", "third"])
        }
    }

    @Test("a write through a read-only transaction fails with an LMDBError naming the operation and database")
    func writeInReadTransaction() throws {
        try withEnvironment { env throws in
            let db = try env.database("ro")
            let e = #expect(throws: LMDBError.self) {
                try env.read { try $0.put(db, bytes("k"), bytes("v")) }
            }
            #expect(e?.code == EACCES)
            #expect(e?.operation == "put")
            #expect(e?.database == "ro")
        }
    }

    // Run in a child process: while Environment.init closes a failed env twice (once in its
    // catch, again in deinit) this aborts with a double free, which must not take the whole
    // test run down with it.
    @Test("opening an environment in a directory that does not exist throws an LMDBError naming env_open and the path, and does not crash")
    func missingDirectory() async {
        await #expect(processExitsWith: .success) {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString)").path
            do {
                _ = try Environment(path: path)
                Issue.record("opening \(path) should have failed")
            } catch let e as LMDBError {
                #expect(e.code == ENOENT)
                #expect(e.operation.hasPrefix("env_open"))
                #expect(e.operation.contains(path))
                #expect(e.database == nil)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test("the description reads 'LMDB op on db: message (code)'")
    func description() {
        let e = LMDBError(code: LMDBError.mapFull, operation: "put", database: "log")
        #expect(e.isMapFull)
        #expect(e.description.hasPrefix("LMDB put on 'log': "))
        #expect(e.description.hasSuffix("(\(LMDBError.mapFull))"))
        #expect(!LMDBError(code: LMDBError.notFound, operation: "get").isMapFull)
        #expect(LMDBError(code: 1, operation: "x").description.hasPrefix("LMDB x: "))
    }

    @Test("a fresh environment reports no stale readers at open and none to clear")
    func staleReaders() throws {
        try withEnvironment { env throws in
            #expect(env.staleReadersCleared == 0)
            #expect(try env.clearStaleReaders() == 0)
            let info = env.info
            #expect(info.pageSize > 0)
            #expect(info.maxReaders >= 510)
            #expect(info.mapSize == EnvironmentOptions().mapSize)
        }
    }
}

@Suite("LMDB stale readers")
struct StaleReaderTests {
    @Test("a reader slot left by a process that died is found and cleared, once")
    func deadReaderCleared() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lmdb-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // This process keeps the environment open, so LMDB does not reset the reader table
        // when the child opens it.
        let env = try Environment(path: dir)
        #expect(env.staleReadersCleared == 0)
        let db = try env.database("kv")
        try env.write { try $0.put(db, bytes("k"), bytes("v")) }
        await #expect(processExitsWith: .success) { [dir = dir as String] in
            let child = try Environment(path: dir)
            try child.read { _ in exit(0) }  // dies holding a reader slot
        }
        #expect(try env.clearStaleReaders() == 1)
        #expect(try env.clearStaleReaders() == 0)
        #expect(try env.read { text(try $0.get(db, bytes("k"))) } == "v")
    }
}
