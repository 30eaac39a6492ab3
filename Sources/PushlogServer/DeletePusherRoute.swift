import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `DELETE /v1/pushers?user_id=U&app_id=A&pushkey=K` → `{}`; 404 `M_NOT_FOUND` when there is
    /// no such pusher.
    func deletePusher(_ request: Request) async throws -> JSONResponse {
        guard let user = try Fields.query(request, "user_id", .userID) else { throw APIError.missing("user_id") }
        guard let appID = try Fields.query(request, "app_id", .appID) else { throw APIError.missing("app_id") }
        guard let pushkey = try Fields.query(request, "pushkey", .pushkey) else { throw APIError.missing("pushkey") }
        let id = PusherID(userID: user, appID: appID, pushkey: pushkey)
        guard try store.read({ view in try view.pusherState(id) }) != nil else {
            throw APIError(.notFound, .notFound, "no pusher with user_id \(user), app_id \(appID) and that pushkey")
        }
        let result = try await store.appendAsync([.pusherRemoved(id)])
        pool?.onPushersChanged(result.pusherChanges)
        return JSONResponse(.object([:]))
    }
}
