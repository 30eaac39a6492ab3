import Synchronization

/// The log positions this process appended, so that the server's log follower (which notices
/// appends by other processes) can skip them: whoever appended here has already poked the pool.
///
/// Off until ``start()``: a process without a follower records nothing. Positions are staged by
/// the writer thread while a transaction is written and published once it commits; a job that
/// fails in its child transaction, or a transaction that aborts, takes its positions back.
public final class OwnAppends: @unchecked Sendable {
    private struct Shared {
        var recording = false
        /// Committed ranges not yet taken, in increasing order.
        var committed: [ClosedRange<UInt64>] = []
    }
    private let shared = Mutex(Shared())
    /// Writer thread only: ranges appended in the transaction being written.
    private var staged: [ClosedRange<UInt64>] = []

    init() {}

    /// Starts recording (the follower calls this before it reads the head it starts from).
    public func start() { shared.withLock { $0.recording = true } }

    var isRecording: Bool { shared.withLock { $0.recording } }

    // MARK: the writer thread

    func stage(_ range: ClosedRange<UInt64>) {
        guard isRecording else { return }
        staged.append(range)
    }

    var mark: Int { staged.count }

    /// A job failed: what it staged was undone with its child transaction.
    func rollback(to mark: Int) {
        if staged.count > mark { staged.removeLast(staged.count - mark) }
    }

    /// The transaction is over: committed (its ranges published) or not (dropped).
    func transactionEnded(committed didCommit: Bool) {
        guard !staged.isEmpty else { return }
        if didCommit {
            let ranges = staged
            shared.withLock { $0.committed.append(contentsOf: ranges) }
        }
        staged.removeAll(keepingCapacity: true)
    }

    // MARK: the follower

    /// The parts of `from...to` that this process did not append (in order); the ranges at or
    /// below `to` are forgotten.
    public func othersIn(from: UInt64, to: UInt64) -> [ClosedRange<UInt64>] {
        guard from <= to else { return [] }
        let mine: [ClosedRange<UInt64>] = shared.withLock { s in
            let i = s.committed.firstIndex { $0.upperBound > to } ?? s.committed.count
            defer { s.committed.removeFirst(i) }
            return Array(s.committed[..<i]) + (i < s.committed.count && s.committed[i].lowerBound <= to ? [s.committed[i]] : [])
        }
        var out: [ClosedRange<UInt64>] = []
        var next = from
        for r in mine.sorted(by: { $0.lowerBound < $1.lowerBound }) where r.upperBound >= next {
            if r.lowerBound > next { out.append(next...min(to, r.lowerBound - 1)) }
            next = max(next, r.upperBound &+ 1)
            if next > to { return out }
        }
        if next <= to { out.append(next...to) }
        return out
    }
}
