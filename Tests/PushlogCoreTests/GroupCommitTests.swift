import Foundation
import PushlogCore
import Testing

@Suite("Group commit")
struct GroupCommitTests {
    @Test("many concurrent appendAsync calls all succeed with distinct, contiguous positions")
    func concurrentAppends() async throws {
        try await withStore { store in
            let tasks = 64, perTask = 3
            let results = try await withThrowingTaskGroup(of: (Int, AppendResult).self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        let entries = (0..<perTask).map { k in
                            LogEntry.notification(Make.notification("@u\(t % 8):x", room: "!r\(t)", so: Int64(t * 10 + k),
                                                                    event: "$t\(t)-\(k)"))
                        }
                        return (t, try await store.appendAsync(entries))
                    }
                }
                var out: [(Int, AppendResult)] = []
                for try await r in group { out.append(r) }
                return out
            }
            #expect(results.count == tasks)
            let ranges = results.map { $0.1.firstPos...$0.1.lastPos }.sorted { $0.lowerBound < $1.lowerBound }
            #expect(ranges.allSatisfy { $0.count == perTask })
            // Sorted by start, each range begins right after the previous one: no gap, no overlap.
            #expect(ranges.first?.lowerBound == 1)
            for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(b.lowerBound == a.upperBound + 1) }
            #expect(try store.read { view in try view.head() } == UInt64(tasks * perTask))
            // Each task's entries sit at the positions it was told, in its order.
            for (t, r) in results {
                for k in 0..<perTask {
                    guard case .notification(let n)? = try store.read({ view in try view.entry(at: r.firstPos + UInt64(k)) })?.entry else {
                        Issue.record("no notification at \(r.firstPos + UInt64(k))")
                        continue
                    }
                    #expect(n.eventID == "$t\(t)-\(k)")
                }
                #expect(r.notifiedUsers == ["@u\(t % 8):x"])
            }
            // Every user's head is the pos of their last notification.
            for u in 0..<8 {
                let last = results.filter { $0.0 % 8 == u }.map(\.1.lastPos).max()!
                #expect(try store.read { view in try view.head(user: "@u\(u):x") } == last)
            }
            let report = try store.rebuild(repair: false)
            #expect(report.isClean)
        }
    }

    @Test("in concurrent appends, a failing one appends nothing and leaves no gap for the others")
    func failingJobInGroup() async throws {
        try await withStore { store in
            // A damaged unread count makes any notification for (@bad:x, !bad) fail to apply.
            let unread = try store.env.database("unread")
            try store.env.write { txn in try txn.put(unread, Array("@bad:x".utf8) + [0] + Array("!bad".utf8), [9]) }
            let outcomes = await withTaskGroup(of: (Bool, AppendResult?).self) { group in
                for t in 0..<40 {
                    group.addTask {
                        let bad = t % 5 == 0
                        let entries = [bad ? Make.notify("@bad:x", room: "!bad", so: Int64(t)) : Make.notify("@ok:x", so: Int64(t)),
                                       Make.notify("@ok:x", so: Int64(1000 + t))]
                        return (bad, try? await store.appendAsync(entries))
                    }
                }
                var out: [(Bool, AppendResult?)] = []
                for await o in group { out.append(o) }
                return out
            }
            #expect(outcomes.filter { $0.0 }.allSatisfy { $0.1 == nil })
            let good = outcomes.filter { !$0.0 }.compactMap(\.1)
            #expect(good.count == 32)
            let positions = good.flatMap { Array($0.firstPos...$0.lastPos) }.sorted()
            #expect(positions == Array(1...64))
            #expect(try store.read { view in try view.head() } == 64)
            #expect(try store.allEntries().map(\.pos) == Array(1...64))
            #expect(try store.read { view in try view.head(user: "@bad:x") } == 0)
        }
    }

    @Test("concurrent consumer-state writes and appends interleave without losing either")
    func mixedWrites() async throws {
        try await withStore { store in
            try store.append((0..<20).map { Make.set("@u\($0):x") })
            let ids = (0..<20).map { Make.pusher("@u\($0):x").id }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, id) in ids.enumerated() {
                    group.addTask {
                        try await store.writeAsync { ctx in
                            guard var s = try ctx.consumerState(id) else { throw TestFailure("missing state") }
                            s.cursor = UInt64(1_000 + i)
                            s.lastSuccess = Int64(i)
                            try ctx.setConsumerState(id, s)
                        }
                    }
                    group.addTask { _ = try await store.appendAsync([Make.notify("@u\(i):x", so: Int64(i))]) }
                }
                try await group.waitForAll()
            }
            #expect(try store.read { view in try view.head() } == 40)
            for (i, id) in ids.enumerated() {
                let s = try #require(try store.read { view in try view.pusherState(id) })
                #expect(s.state.cursor == UInt64(1_000 + i))
                #expect(s.state.lastSuccess == Int64(i))
            }
        }
    }
}

@Suite("Group commit on a growing map")
struct GroupCommitGrowthTests {
    @Test("concurrent appends on a tiny map all commit after the map grows mid-group")
    func concurrentOnTinyMap() async throws {
        try await withStore(mapSize: 1 << 16) { store in
            let tasks = 32, perTask = 20
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        try await store.appendAsync((0..<perTask).map { k in Make.notify("@u\(t):x", room: "!r\(k % 3)", so: Int64(t * 100 + k)) })
                    }
                }
                var out: [AppendResult] = []
                for try await r in group { out.append(r) }
                return out
            }
            let positions = results.flatMap { Array($0.firstPos...$0.lastPos) }.sorted()
            #expect(positions == Array(1...UInt64(tasks * perTask)))
            #expect(try store.allEntries().count == tasks * perTask)
            #expect(try store.read { view in try view.stats() }.mapSizeBytes > 1 << 16)
            for t in 0..<tasks { #expect(try store.read { view in try view.badge(user: "@u\(t):x", rule: .notifications) } == perTask) }
            #expect(try store.rebuild(repair: false).isClean)
        }
    }
}
