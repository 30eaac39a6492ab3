import PushlogCore

extension PusherPool {
    /// Email loops now: running a pass or waiting for their next due time.
    public var runningEmailLoops: Int { lock.withLock { emailLoops.count } }

    /// Starts the email pusher's loop, or makes a running one look again at once (cutting short
    /// its wait for the next due time). Returns false when the pool is stopping or email is off.
    @discardableResult
    func pokeEmail(key: [UInt8], bootSlot: Bool = false) -> Bool {
        guard let email else { return false }
        return lock.withLock {
            guard !stopping else { return false }
            if let running = emailLoops[key] {
                // A new notification is due no sooner than delay_before_mail from now: a loop
                // already waking before that has nothing to look at sooner.
                if running.waiter != nil, let at = running.wakeAt, at <= SystemClock.nowMS() + email.config.delayBeforeMailMS {
                    if bootSlot { bootSlots.release() }
                    return true
                }
                running.dirty = true
                running.waiter?.cancel()
                if bootSlot { bootSlots.release() }
                return true
            }
            let loop = EmailLoop()
            loop.bootSlot = bootSlot
            emailLoops[key] = loop
            emailLoopsAwake.add()
            loop.runner = Task { await runEmailLoop(key: key, loop: loop, delivery: email) }
            return true
        }
    }

    private func runEmailLoop(key: [UInt8], loop: EmailLoop, delivery: EmailDelivery) async {
        // Awake (counted in emailLoopsAwake) from its start, except while it waits.
        defer {
            releaseEmailBootSlot(loop)
            lock.withLock {
                if emailLoops[key] === loop { emailLoops.removeValue(forKey: key) }
                emailLoopsAwake.subtract()
            }
        }
        while true {
            let carry = NextBox()
            let go: Bool = lock.withLock {
                guard !stopping else { return false }
                loop.dirty = false
                return true
            }
            guard go else { return }
            let pass = processes.run("emailpush.process") { [self] ctx in
                carry.value = try await EmailPusher(pool: self, delivery: delivery, key: key, context: ctx).process()
            }
            await withTaskCancellationHandler { await pass.value } onCancel: { pass.cancel() }
            releaseEmailBootSlot(loop)
            // A pass that threw (logged by its process) is retried after the backoff's start.
            let next = carry.value ?? .wake(at: SystemClock.nowMS() + config.backoffInitialMS)
            if next == .again { continue }
            enum Then { case end, again, wait(Task<Void, Error>) }
            let then: Then = lock.withLock {
                if stopping { return .end }
                if loop.dirty { return .again }  // poked during the pass: look again at once
                guard case .wake(let at) = next else {
                    _ = emailLoops.removeValue(forKey: key)  // idle: a poke starts a new loop
                    return .end
                }
                let wait = at - SystemClock.nowMS()
                let waiter = Task { if wait > 0 { try await Task.sleep(for: .milliseconds(wait)) } }
                loop.wakeAt = at
                loop.waiter = waiter
                emailLoopsAwake.subtract()
                return .wait(waiter)
            }
            guard case .wait(let waiter) = then else {
                if case .again = then { continue }
                return
            }
            _ = await waiter.result  // cancelled by a poke or by shutdown
            lock.withLock {
                loop.waiter = nil
                loop.wakeAt = nil
                emailLoopsAwake.add()
            }
        }
    }

    private func releaseEmailBootSlot(_ loop: EmailLoop) {
        let had: Bool = lock.withLock {
            defer { loop.bootSlot = false }
            return loop.bootSlot
        }
        if had { bootSlots.release() }
    }

    final class NextBox: @unchecked Sendable {
        var value: EmailPusher.Next?
    }
}
