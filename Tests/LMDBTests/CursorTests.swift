import Foundation
import LMDB
import Testing
import TestSupport

@Suite("LMDB cursors and range iteration")
struct CursorTests {
    /// Keys a, b, d, e with values A, B, D, E.
    func seeded(_ env: Environment) throws -> Database {
        let db = try env.database("letters")
        try env.write { txn throws in
            for k in ["e", "a", "d", "b"] { try txn.put(db, bytes(k), bytes(k.uppercased())) }
        }
        return db
    }

    @Test("cursor first, last, next, prev and current walk the keys in order")
    func walk() throws {
        try withEnvironment { env throws in
            let db = try seeded(env)
            try env.read { txn throws in
                try txn.withCursor(db) { c throws in
                    #expect(text(try c.first()?.key) == "a")
                    #expect(text(try c.current()?.value) == "A")
                    #expect(text(try c.next()?.key) == "b")
                    #expect(text(try c.next()?.key) == "d")
                    #expect(text(try c.next()?.key) == "e")
                    #expect(try c.next() == nil)
                    #expect(text(try c.last()?.key) == "e")
                    #expect(text(try c.prev()?.key) == "d")
                    #expect(text(try c.prev()?.value) == "B")
                }
            }
        }
    }

    @Test("seek lands on the first key at or after the target; find wants the exact key")
    func seekAndFind() throws {
        try withEnvironment { env throws in
            let db = try seeded(env)
            try env.read { txn throws in
                try txn.withCursor(db) { c throws in
                    #expect(text(try c.seek(bytes("c"))?.key) == "d")
                    #expect(text(try c.seek(bytes("b"))?.key) == "b")
                    #expect(try c.seek(bytes("f")) == nil)
                    #expect(try c.find(bytes("c")) == nil)
                    #expect(text(try c.find(bytes("d"))?.value) == "D")
                    #expect(text(try c.next()?.key) == "e")
                }
            }
        }
    }

    @Test("an empty database has no first or last entry")
    func emptyCursor() throws {
        try withEnvironment { env throws in
            let db = try env.database("empty")
            try env.read { txn throws in
                try txn.withCursor(db) { c throws in
                    #expect(try c.first() == nil)
                    #expect(try c.last() == nil)
                    #expect(try c.seek(bytes("x")) == nil)
                }
                var seen = 0
                try txn.forEach(db) { _, _ in seen += 1; return true }
                #expect(seen == 0)
            }
        }
    }

    @Test("forEach from a key visits that key and every later one, in order")
    func forEachFrom() throws {
        try withEnvironment { env throws in
            let db = try seeded(env)
            try env.read { txn throws in
                func keys(from start: [UInt8]?) throws -> [String] {
                    var out: [String] = []
                    try txn.forEach(db, from: start) { k, _ in out.append(text(k)!); return true }
                    return out
                }
                #expect(try keys(from: nil) == ["a", "b", "d", "e"])
                #expect(try keys(from: []) == ["a", "b", "d", "e"])
                #expect(try keys(from: bytes("b")) == ["b", "d", "e"])
                #expect(try keys(from: bytes("c")) == ["d", "e"])
                #expect(try keys(from: bytes("z")) == [])
            }
        }
    }

    @Test("forEach stops as soon as the body returns false")
    func forEachStops() throws {
        try withEnvironment { env throws in
            let db = try seeded(env)
            var seen: [String] = []
            try env.read { txn throws in
                try txn.forEach(db) { k, _ in
                    seen.append(text(k)!)
                    return seen.count < 2
                }
            }
            #expect(seen == ["a", "b"])
        }
    }

    @Test("forEach with a prefix visits exactly the keys that start with it")
    func forEachPrefix() throws {
        try withEnvironment { env throws in
            let db = try env.database("prefixed")
            try env.write { txn throws in
                for k in ["aa", "ab", "ab\u{0}1", "ab\u{0}2", "abc", "ac", "b"] {
                    try txn.put(db, bytes(k), bytes("v"))
                }
            }
            try env.read { txn throws in
                func keys(_ prefix: String) throws -> [String] {
                    var out: [String] = []
                    try txn.forEach(db, prefix: bytes(prefix)) { k, _ in out.append(text(k)!); return true }
                    return out
                }
                #expect(try keys("ab") == ["ab", "ab\u{0}1", "ab\u{0}2", "abc"])
                #expect(try keys("ab\u{0}") == ["ab\u{0}1", "ab\u{0}2"])
                #expect(try keys("a") == ["aa", "ab", "ab\u{0}1", "ab\u{0}2", "abc", "ac"])
                #expect(try keys("") == ["aa", "ab", "ab\u{0}1", "ab\u{0}2", "abc", "ac", "b"])
                #expect(try keys("x") == [])
                #expect(try keys("abcd") == [])
            }
        }
    }

    @Test("big-endian keys iterate in numeric order")
    func bigEndianOrder() throws {
        try withEnvironment { env throws in
            let db = try env.database("numbers")
            var rng = SplitMix64(seed: 7)
            var values = Set<UInt64>()
            while values.count < 500 { values.insert(rng.next()) }
            values.formUnion([0, 1, 255, 256, 65_535, 65_536, .max])
            try env.write { txn throws in
                for v in values { try txn.put(db, BigEndian.bytes(v), [UInt8]()) }
            }
            var seen: [UInt64] = []
            try env.read { txn throws in
                try txn.forEach(db) { k, _ in seen.append(BigEndian.uint64(k)); return true }
            }
            #expect(seen == values.sorted())
            #expect(BigEndian.uint64(BigEndian.bytes(0x0102_0304_0506_0708)) == 0x0102_0304_0506_0708)
            #expect(BigEndian.bytes(1) == [0, 0, 0, 0, 0, 0, 0, 1])
        }
    }

    @Test("MDB_APPEND takes keys in ascending order and refuses one that does not sort last")
    func appendOrdering() throws {
        try withEnvironment { env throws in
            let db = try env.database("log")
            try env.write { txn throws in
                for i in UInt64(1)...100 { try txn.put(db, BigEndian.bytes(i), BigEndian.bytes(i * 10), flags: .append) }
            }
            let outOfOrder = #expect(throws: LMDBError.self) {
                try env.write { txn throws in
                    try txn.put(db, BigEndian.bytes(101), [1], flags: .append)
                    try txn.put(db, BigEndian.bytes(50), [2], flags: .append)
                }
            }
            #expect(outOfOrder?.code == LMDBError.keyExists)
            #expect(outOfOrder?.operation == "put")
            #expect(outOfOrder?.database == "log")
            let duplicate = #expect(throws: LMDBError.self) {
                try env.write { try $0.put(db, BigEndian.bytes(100), [3], flags: .append) }
            }
            #expect(duplicate?.code == LMDBError.keyExists)
            try env.read { txn throws in
                // The failed writes were aborted as a whole, 101 included.
                #expect(try txn.count(db) == 100)
                #expect(try txn.get(db, BigEndian.bytes(101)) == nil)
                #expect(try txn.getBytes(db, BigEndian.bytes(50)) == BigEndian.bytes(500))
            }
        }
    }

    @Test("cursor put with MDB_APPEND appends runs and names the cursor operation when it refuses")
    func cursorAppend() throws {
        try withEnvironment { env throws in
            let db = try env.database("log")
            try env.write { txn throws in
                try txn.withCursor(db) { c throws in
                    for i in UInt64(1)...50 { try c.put(BigEndian.bytes(i), pattern(Int(i), length: 16), flags: .append) }
                }
            }
            let e = #expect(throws: LMDBError.self) {
                try env.write { txn throws in
                    try txn.withCursor(db) { c in try c.put(BigEndian.bytes(7), [0], flags: .append) }
                }
            }
            #expect(e?.code == LMDBError.keyExists)
            #expect(e?.operation == "cursor_put")
            #expect(e?.database == "log")
            var seen: [UInt64] = []
            try env.read { txn throws in
                try txn.forEach(db) { k, v in
                    let i = BigEndian.uint64(k)
                    #expect(Array(v) == pattern(Int(i), length: 16))
                    seen.append(i)
                    return true
                }
            }
            #expect(seen == Array(1...50))
        }
    }

    @Test("deleteCurrent removes the entry under the cursor")
    func cursorDelete() throws {
        try withEnvironment { env throws in
            let db = try seeded(env)
            try env.write { txn throws in
                try txn.withCursor(db) { c throws in
                    _ = try c.find(bytes("b"))
                    try c.deleteCurrent()
                }
            }
            var keys: [String] = []
            try env.read { txn in try txn.forEach(db) { k, _ in keys.append(text(k)!); return true } }
            #expect(keys == ["a", "d", "e"])
        }
    }
}

