import Foundation
import LMDB
import Testing

@Suite("LMDB transactions")
struct TransactionTests {
    @Test("a committed write is visible to later reads and write returns the closure's value")
    func commitIsVisible() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            let answer = try env.write { txn -> Int in
                #expect(!txn.isReadOnly)
                try txn.put(db, bytes("alpha"), bytes("one"))
                try txn.put(db, bytes("beta"), bytes("two"))
                return 42
            }
            #expect(answer == 42)
            try env.read { txn throws in
                #expect(txn.isReadOnly)
                #expect(text(try txn.get(db, bytes("alpha"))) == "one")
                #expect(try txn.getBytes(db, bytes("beta")) == bytes("two"))
                #expect(try txn.get(db, bytes("gamma")) == nil)
                #expect(try txn.count(db) == 2)
            }
        }
    }

    @Test("a write closure that throws is aborted: none of its writes survive and the error comes out")
    func throwAborts() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            try env.write { try $0.put(db, bytes("kept"), bytes("1")) }
            #expect(throws: Boom.self) {
                try env.write { txn throws in
                    try txn.put(db, bytes("lost"), bytes("2"))
                    try txn.put(db, bytes("kept"), bytes("overwritten"))
                    _ = try txn.delete(db, bytes("kept"))
                    throw Boom()
                }
            }
            try env.read { txn throws in
                #expect(try txn.get(db, bytes("lost")) == nil)
                #expect(text(try txn.get(db, bytes("kept"))) == "1")
                #expect(try txn.count(db) == 1)
            }
        }
    }

    @Test("a write transaction reads its own uncommitted writes")
    func readOwnWrites() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            try env.write { txn throws in
                try txn.put(db, bytes("k"), bytes("v1"))
                #expect(text(try txn.get(db, bytes("k"))) == "v1")
                try txn.put(db, bytes("k"), bytes("v2"))
                #expect(text(try txn.get(db, bytes("k"))) == "v2")
                #expect(try txn.count(db) == 1)
            }
        }
    }

    @Test("delete reports whether the key was there, and clear empties a database but keeps it")
    func deleteAndClear() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            try env.write { txn throws in
                for i in 0..<10 { try txn.put(db, bytes("k\(i)"), bytes("\(i)")) }
            }
            try env.write { txn throws in
                #expect(try txn.delete(db, bytes("k3")))
                #expect(!(try txn.delete(db, bytes("k3"))))
                #expect(!(try txn.delete(db, bytes("absent"))))
            }
            #expect(try env.read { try $0.count(db) } == 9)
            try env.write { try $0.clear(db) }
            #expect(try env.read { try $0.count(db) } == 0)
            // The database still exists and takes writes.
            try env.write { try $0.put(db, bytes("again"), bytes("x")) }
            #expect(try env.read { try $0.count(db) } == 1)
        }
    }

    @Test("a read transaction keeps the snapshot it began with while a write commits")
    func readSnapshot() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            try env.write { try $0.put(db, bytes("k"), bytes("old")) }
            try env.read { txn throws in
                try env.write { try $0.put(db, bytes("k"), bytes("new")) }
                #expect(text(try txn.get(db, bytes("k"))) == "old")
            }
            #expect(try env.read { text(try $0.get(db, bytes("k"))) } == "new")
        }
    }

    @Test("a throwing nested transaction undoes only its own writes")
    func nestedThrowUndoesChildOnly() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            try env.write { txn throws in
                try txn.put(db, bytes("parent"), bytes("p"))
                try txn.put(db, bytes("shared"), bytes("parent-value"))
                #expect(throws: Boom.self) {
                    try txn.nested { child in
                        // The child sees the parent's uncommitted writes.
                        #expect(text(try child.get(db, bytes("parent"))) == "p")
                        try child.put(db, bytes("bad-child"), bytes("x"))
                        try child.put(db, bytes("shared"), bytes("child-value"))
                        _ = try child.delete(db, bytes("parent"))
                        throw Boom()
                    }
                }
                let r = try txn.nested { child -> String in
                    try child.put(db, bytes("good-child"), bytes("y"))
                    return "ok"
                }
                #expect(r == "ok")
                // Back in the parent: the failed child left no trace, the good one is visible.
                #expect(try txn.get(db, bytes("bad-child")) == nil)
                #expect(text(try txn.get(db, bytes("shared"))) == "parent-value")
                #expect(text(try txn.get(db, bytes("parent"))) == "p")
                #expect(text(try txn.get(db, bytes("good-child"))) == "y")
            }
            try env.read { txn throws in
                #expect(try txn.count(db) == 3)
                #expect(try txn.get(db, bytes("bad-child")) == nil)
                #expect(text(try txn.get(db, bytes("good-child"))) == "y")
                #expect(text(try txn.get(db, bytes("shared"))) == "parent-value")
            }
        }
    }

    @Test("nested transactions nest: an inner throw keeps the outer child's writes")
    func nestedTwoLevels() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            try env.write { txn throws in
                try txn.nested { outer in
                    try outer.put(db, bytes("outer"), bytes("1"))
                    #expect(throws: Boom.self) {
                        try outer.nested { inner in
                            try inner.put(db, bytes("inner"), bytes("2"))
                            throw Boom()
                        }
                    }
                }
            }
            try env.read { txn throws in
                #expect(text(try txn.get(db, bytes("outer"))) == "1")
                #expect(try txn.get(db, bytes("inner")) == nil)
            }
        }
    }

    @Test("when the parent aborts, a committed child's writes go with it")
    func parentAbortUndoesChild() throws {
        try withEnvironment { env throws in
            let db = try env.database("kv")
            #expect(throws: Boom.self) {
                try env.write { txn throws in
                    try txn.nested { try $0.put(db, bytes("child"), bytes("1")) }
                    throw Boom()
                }
            }
            #expect(try env.read { try $0.get(db, bytes("child")) } == nil)
        }
    }

    @Test("database handles are cached per name and databases are independent")
    func databaseHandles() throws {
        try withEnvironment { env throws in
            let a1 = try env.database("a")
            let a2 = try env.database("a")
            let b = try env.database("b")
            #expect(a1 == a2)
            #expect(a1 != b)
            #expect(a1.name == "a")
            try env.write { txn throws in
                try txn.put(a1, bytes("k"), bytes("in-a"))
                try txn.put(b, bytes("k"), bytes("in-b"))
            }
            try env.read { txn throws in
                #expect(text(try txn.get(a2, bytes("k"))) == "in-a")
                #expect(text(try txn.get(b, bytes("k"))) == "in-b")
            }
        }
    }

    @Test("data survives closing and reopening the environment")
    func reopen() throws {
        try withTempDir { dir in
            do {
                let env = try Environment(path: dir)
                let db = try env.database("kv")
                try env.write { try $0.put(db, bytes("durable"), bytes("yes")) }
                try env.sync()
            }
            let env = try Environment(path: dir)
            let db = try env.database("kv", create: false)
            #expect(try env.read { text(try $0.get(db, bytes("durable"))) } == "yes")
        }
    }

    @Test("nometasync durability opens, commits and reads back")
    func nometasync() throws {
        try withTempDir { dir in
            var o = EnvironmentOptions()
            o.durability = .nometasync
            let env = try Environment(path: dir, options: o)
            let db = try env.database("kv")
            try env.write { try $0.put(db, bytes("a"), bytes("b")) }
            try env.sync()
            #expect(try env.read { text(try $0.get(db, bytes("a"))) } == "b")
        }
    }

    @Test("copyCompacted writes a copy that opens with the same data")
    func compactedCopy() throws {
        try withTempDir { dir in
            let src = dir + "/src", dst = dir + "/dst"
            try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dst, withIntermediateDirectories: true)
            do {
                let env = try Environment(path: src)
                let db = try env.database("kv")
                try env.write { txn throws in
                    for i in 0..<500 { try txn.put(db, BigEndian.bytes(UInt64(i)), pattern(i, length: 100)) }
                }
                try env.write { txn throws in
                    for i in 0..<400 { _ = try txn.delete(db, BigEndian.bytes(UInt64(i))) }
                }
                try env.copyCompacted(to: dst)
            }
            let copy = try Environment(path: dst)
            let db = try copy.database("kv", create: false)
            try copy.read { txn throws in
                #expect(try txn.count(db) == 100)
                #expect(try txn.getBytes(db, BigEndian.bytes(450)) == pattern(450, length: 100))
                #expect(try txn.get(db, BigEndian.bytes(10)) == nil)
            }
        }
    }
}
