import Foundation
import LMDB
import PushlogCore
import Testing

/// The delivery engine applies each write operation with `allOrNothing`. A full map must reach
/// the writer (which grows the map and runs the job again), not be caught per operation: caught
/// there, LMDB fails the whole commit with MDB_BAD_TXN and the map never grows (issue 10).
@Suite("Store write context")
struct StoreWriteContextTests {
    struct NotStorage: Error {}

    @Test("allOrNothing: a full map is thrown, so the writer grows the map and runs the job again; another error undoes only its body")
    func allOrNothingLetsTheWriterGrowTheMap() throws {
        try withStore(mapSize: 1 << 20) { store in
            let db = try store.env.database("unread")
            let big = [UInt8](repeating: 7, count: 3 << 20)  // more than the 1 MiB map holds
            let returned = try store.write { ctx -> [String] in
                [try ctx.allOrNothing { c in try c.txn.put(db, Array("nested".utf8), big) },
                 try ctx.allOrNothing(writesOnce: true) { c in try c.txn.put(db, Array("once".utf8), big) },
                 try ctx.allOrNothing { c in
                     try c.txn.put(db, Array("undone".utf8), [1])
                     throw NotStorage()
                 }].map { $0.map { "\(type(of: $0))" } ?? "nil" }
            }
            #expect(returned == ["nil", "nil", "NotStorage"])
            #expect(try store.env.read { txn in try txn.getBytes(db, Array("nested".utf8)) } == big)
            #expect(try store.env.read { txn in try txn.getBytes(db, Array("once".utf8)) } == big)
            #expect(try store.env.read { txn in try txn.getBytes(db, Array("undone".utf8)) } == nil)
        }
    }
}
