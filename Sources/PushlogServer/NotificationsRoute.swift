import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `POST /v1/notifications` `{"notifications": [Notification…]}` → `{"first_pos", "last_pos"}`,
    /// answered once the entries are durable.
    func postNotifications(_ request: Request) async throws -> JSONResponse {
        let body = try await JSONBody.read(request, limit: maxBodySize)
        let now = SystemClock.nowMS()
        let notifications = try Batch.decode(body, key: "notifications") { try EntryDecoder.notification($0, now: now) }
        let result = try await store.appendAsync(notifications.map(LogEntry.notification))
        pool?.onNewNotifications(users: result.notifiedUsers)
        return JSONResponse(AppendResponse(firstPos: result.firstPos, lastPos: result.lastPos).json)
    }
}
