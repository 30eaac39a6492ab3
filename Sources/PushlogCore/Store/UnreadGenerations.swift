import LMDB
import Synchronization

/// Change counters for the `unread` projection, so that a reader can tell, without scanning,
/// that a user's badge cannot have changed since it last computed it.
///
/// Per user (hashed into one of ``slotCount`` slots: two users sharing a slot only cost a
/// needless recount) the counter is bumped twice for every write transaction that changes that
/// user's unread rows: once before the commit, when the projector changes the row (the counter
/// is then odd: "changing"), and once after the commit (even again). A ``global`` counter moves
/// with every bump.
///
/// The reader's protocol (``BadgeCache``): read ``global`` *before* opening the read
/// transaction; compute the badge in the transaction; read the user's counter, then ``global``
/// again. The result may be cached under that counter only if the counter is even and
/// ``global`` did not move: then every commit the counter accounts for happened before the
/// snapshot. A cached badge is used while the user's counter is unchanged; a commit that the
/// snapshot of a later read sees was bumped (odd) before it was committed, so the counter has
/// changed by then.
///
/// Thread safety: a mutex; the writer thread bumps, any thread reads.
public final class UnreadGenerations: Sendable {
    static let slotCount = 4096
    private struct Counters {
        var slots = [UInt64](repeating: 0, count: UnreadGenerations.slotCount)
        var global: UInt64 = 0
        /// Slots bumped to odd in the transaction being written.
        var changing: [Int] = []
    }
    private let counters = Mutex(Counters())

    init() {}

    static func slot(_ user: String) -> Int {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in user.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return Int(h % UInt64(slotCount))
    }

    /// The writer changes `user`'s unread rows in the transaction it is writing.
    func changing(user: String) {
        let i = Self.slot(user)
        counters.withLock { c in
            guard c.slots[i] & 1 == 0 else { return }  // already marked in this transaction
            c.slots[i] += 1
            c.global += 1
            c.changing.append(i)
        }
    }

    /// The writer's transaction is over (committed or not).
    func transactionEnded() {
        counters.withLock { c in
            guard !c.changing.isEmpty else { return }
            for i in c.changing { c.slots[i] += 1 }
            c.global += 1
            c.changing.removeAll(keepingCapacity: true)
        }
    }

    /// Something rewrote the projection wholesale (compaction, rebuild): nothing cached holds.
    func invalidateAll() {
        counters.withLock { c in
            for i in c.slots.indices { c.slots[i] += 2 }
            c.global += 2
        }
    }

    public var global: UInt64 { counters.withLock { $0.global } }

    public func generation(user: String) -> UInt64 { generation(slot: Self.slot(user)) }

    func generation(slot i: Int) -> UInt64 { counters.withLock { $0.slots[i] } }

    /// A slot's counter and the global one, read together.
    func generations(slot i: Int) -> (user: UInt64, global: UInt64) {
        counters.withLock { ($0.slots[i], $0.global) }
    }
}

/// One user's badge as last computed, with the counter it is valid under (see
/// ``UnreadGenerations``).
public struct BadgeCache: Sendable {
    var generation: UInt64 = 1  // odd: nothing cached
    var badge = 0
    var rule = BadgeRule.rooms
    /// The user's slot in ``UnreadGenerations`` (a hash of the user id), once known.
    var slot: Int?

    public init() {}

    init(generation: UInt64, badge: Int, rule: BadgeRule, slot: Int?) {
        self.generation = generation
        self.badge = badge
        self.rule = rule
        self.slot = slot
    }
}

extension StoreReadView {
    /// `user`'s badge, from `cache` when the user's unread rows cannot have changed since, else
    /// counted (and cached when that is safe). `globalBeforeRead` is ``UnreadGenerations/global``
    /// read before this view's transaction began.
    public func badge(user: String, rule: BadgeRule, cache: inout BadgeCache, globalBeforeRead: UInt64) throws -> Int {
        let gens = store.unreadGenerations
        let slot = cache.slot ?? UnreadGenerations.slot(user)
        if cache.generation & 1 == 0, cache.rule == rule, gens.generation(slot: slot) == cache.generation {
            return cache.badge
        }
        let badge = try badge(user: user, rule: rule)
        let (now, global) = gens.generations(slot: slot)
        if now & 1 == 0, global == globalBeforeRead {
            cache = BadgeCache(generation: now, badge: badge, rule: rule, slot: slot)
        } else {
            cache = BadgeCache(generation: 1, badge: 0, rule: rule, slot: slot)
        }
        return badge
    }
}
