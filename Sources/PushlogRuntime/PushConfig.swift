import Curl
import PushlogCore
#if canImport(Glibc)
import Glibc
#endif

/// The `push.*` settings (contract, Configuration). Durations in milliseconds.
public struct PushConfig: Sendable, Equatable {
    public var backoffInitialMS: Int64 = 1_000
    public var backoffMaxMS: Int64 = 3_600_000
    public var giveUpAfterMS: Int64 = 86_400_000
    /// 0: no limit.
    public var maxAgeMS: Int64 = 86_400_000
    public var requestTimeoutMS: Int64 = 60_000
    public var includeContent = true
    public var groupUnreadCountByRoom = true
    public var startupConcurrency = 10
    /// `push.max_in_flight_per_host`: the ceiling of each gateway host's adaptive limit on
    /// requests in flight, shared by every delivery thread (not multiplied by them).
    public var maxInFlightPerHost = 1_024
    /// `push.shutdown_grace`: how long a SIGTERM lets in-flight pushes finish before they are
    /// cancelled (their cursors are not advanced, so they are sent again after the restart).
    public var shutdownGraceMS: Int64 = 10_000
    /// `push.ip_range_blacklist` and `push.ip_range_whitelist`: the gateway addresses pushes
    /// may connect to, checked on each address as it is connected to.
    public var addressPolicy = AddressPolicy.default
    /// Curl threads the HTTP pushers' delivery is spread over (not a configuration key): one
    /// per core, at most 4, so a busy server's pushes use every core while each pusher stays on
    /// one thread (its pushes in order, one in flight). Each thread has its own libcurl multi
    /// handle and its own connections; the per-host limit on requests in flight is shared by
    /// all of them (``GatewayHosts``).
    public var deliveryThreads = PushConfig.defaultDeliveryThreads

    public static let defaultDeliveryThreads: Int = {
        let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return max(1, min(4, cores > 0 ? cores : 1))
    }()

    public init() {}

    /// What `counts.unread` counts.
    public var badgeRule: BadgeRule { groupUnreadCountByRoom ? .rooms : .notifications }

    /// The wait before the next attempt of a pusher that has been failing since `failingSince`:
    /// the time already spent failing, at least `backoff_initial`, at most `backoff_max`, so the
    /// waits double (1, 1, 2, 4, 8 … × initial) with nothing to remember but `failing_since`.
    /// ±10% jitter keeps pushers that failed together from retrying together.
    public func backoff(failingSince: Int64, now: Int64, jitter: Double = Double.random(in: -0.1...0.1)) -> Int64 {
        let base = min(backoffMaxMS, max(backoffInitialMS, now - failingSince))
        return max(1, base + Int64(Double(base) * jitter))
    }
}
