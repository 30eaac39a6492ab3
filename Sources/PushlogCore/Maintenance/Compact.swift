import Foundation
import LMDB

public struct CompactReport: Sendable {
    /// Entries before this pos were dropped.
    public var newFirst: UInt64
    public var dropped: UInt64
    /// Entries kept in the checkpoint because they are still in force (pusher sets, latest receipts).
    public var checkpointed: Int
    public var bytesBefore: Int = 0
    public var bytesAfter: Int = 0
}

extension Store {
    /// Drops the log prefix that every enabled pusher's cursor has passed and that was appended
    /// before `olderThan` (ms). Pusher sets and receipts from that prefix that are still in force
    /// move to the checkpoint, so `replay --rebuild` derives the same state afterwards.
    /// The caller must hold the data-dir lock and keep appenders out. `progress(dropped, toDrop)`
    /// is called after each chunk.
    public func dropPassedPrefix(olderThan cutoffTS: Int64, chunk: Int = 20_000,
                                 progress: ((UInt64, UInt64) -> Void)? = nil) throws -> CompactReport {
        let first = try read { try $0.firstPos() }
        let head = try read { try $0.head() }
        var minCursor = head
        try env.read { txn in
            try txn.forEach(consumers) { _, v in
                let s = try ConsumerState.decode(v)
                if s.enabled { minCursor = min(minCursor, s.cursor) }
                return true
            }
        }
        let end = min(minCursor + 1, try read { try $0.position(atOrAfter: cutoffTS) }, head + 1)  // drop pos < end
        guard end > first else { return CompactReport(newFirst: first, dropped: 0, checkpointed: 0) }

        // What stays in force: the latest pusher set per pusher still registered at `end`,
        // the latest receipt per (user, room, thread).
        var pusherSets: [PusherID: LoggedEntry] = [:]
        var receipts: [[UInt8]: LoggedEntry] = [:]
        func keep(_ e: LoggedEntry) {
            switch e.entry {
            case .pusherSet(var c):
                // An update keeps the pusher's creation time, which the dropped first set carried.
                if case .pusherSet(let first)? = pusherSets[c.id]?.entry { c.createdTS = first.createdTS }
                pusherSets[c.id] = LoggedEntry(pos: e.pos, ts: e.ts, entry: .pusherSet(c))
                if !c.append {
                    for id in pusherSets.keys where id.appID == c.id.appID && id.pushkey == c.id.pushkey && id.userID != c.id.userID {
                        pusherSets[id] = nil
                    }
                }
            case .pusherRemoved(let id): pusherSets[id] = nil
            case .receipt(let r):
                let k = Keys.receipt(r.userID, r.roomID, thread: r.threadID)
                if case .receipt(let held)? = receipts[k]?.entry, held.streamOrdering >= r.streamOrdering { return }
                receipts[k] = e
            case .notification: break
            }
        }
        try env.read { txn in
            try txn.forEach(checkpoint) { k, v in
                keep(try EntryCodec.decode(v, pos: BigEndianRead.uint64(k, at: 0)))
                return true
            }
        }

        var dropped: UInt64 = 0
        var touchedRooms = Set<[String]>()
        var next = first
        while next < end {
            let stop = min(end, next + UInt64(chunk))
            try writer.write { [self] txn in
                for pos in next..<stop {
                    let key = Keys.pos(pos)
                    guard let raw = try txn.get(log, key) else { continue }
                    let e = try EntryCodec.decode(raw, pos: pos)
                    keep(e)
                    if case .notification(let n) = e.entry, n.notifies {
                        try txn.delete(projections.notifs, Keys.notif(n.userID, pos))
                        // The head stays (a head behind the cursors would read as a rewind); it
                        // is recorded for rebuilds, which no longer see this notification.
                        if let h = try txn.get(projections.heads, Keys.user(n.userID)), BigEndianRead.uint64(h, at: 0) == pos {
                            try txn.put(compactedHeads, Keys.user(n.userID), BigEndian.bytes(pos))
                        }
                        touchedRooms.insert([n.userID, n.roomID])
                    }
                    try txn.delete(log, key)
                }
                try setMeta(txn, .first, stop)
            }
            dropped += stop - next
            next = stop
            progress?(dropped, end - first)
        }

        let kept = (Array(pusherSets.values) + Array(receipts.values)).sorted { $0.pos < $1.pos }
        try writer.write { [self] txn in
            try txn.clear(checkpoint)
            for e in kept { try txn.put(checkpoint, Keys.pos(e.pos), EntryCodec.encode(e.entry, ts: e.ts)) }
            let projector = Projector(txn: txn, projections: projections, generations: unreadGenerations)
            for room in touchedRooms { try projector.recountUnread(user: room[0], room: room[1]) }
        }
        return CompactReport(newFirst: end, dropped: dropped, checkpointed: kept.count)
    }

    /// Rewrites the data file without its free pages. Call with no `Store` open on `dataDir` in
    /// this process, holding the data-dir lock with appenders kept out.
    public static func rewriteCompactly(dataDir: String) throws -> (before: Int, after: Int) {
        let fm = FileManager.default
        let dataFile = dataDir + "/data.mdb"
        let before = (try? fm.attributesOfItem(atPath: dataFile)[.size] as? Int) ?? 0
        let tmpName = "compact.tmp"
        let tmp = dataDir + "/" + tmpName
        try? fm.removeItem(atPath: tmp)
        do {
            // Our own file, so the copy is born 0600 with the directory's owner.
            let fd = try DataDir.openFile(tmpName, in: dataDir, flags: O_WRONLY)
            defer { Glibc.close(fd) }
            let env = try Environment(path: dataDir)
            try env.copyCompacted(toFile: fd, path: tmp)
        }
        // No process opens the store from here until lock.mdb is gone (readers take no other lock).
        let replacing = try DataDirLock.replacingFiles(dataDir: dataDir)
        // rename(2) is atomic: a crash leaves either the old file or the new one.
        guard rename(tmp, dataFile) == 0 else {
            throw DataDir.FileError(dataFile, errno: errno)
        }
        // The reader table in lock.mdb describes the old file; no writer has it open now, and a
        // reader that still does reads the old file, which it keeps open.
        try? fm.removeItem(atPath: dataDir + "/lock.mdb")
        withExtendedLifetime(replacing) {}
        let after = (try? fm.attributesOfItem(atPath: dataFile)[.size] as? Int) ?? 0
        return (before, after)
    }
}
