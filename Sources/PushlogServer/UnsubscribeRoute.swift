import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `GET` or `POST /v1/unsubscribe?user_id=U&app_id=A&pushkey=K&sig=S`: the one-click link of
    /// an email (RFC 8058's `List-Unsubscribe-Post` sends the POST). Needs no token: the signature
    /// is the authority, and it names one email pusher. A missing or altered signature gets 403
    /// `M_FORBIDDEN` and changes nothing; a pusher already gone is still a success.
    func unsubscribe(_ request: Request) async throws -> Response {
        guard let signer = unsubscribeSigner else {
            throw APIError(.forbidden, .forbidden, "unsubscribe links are not served here")
        }
        let user = try Fields.query(request, "user_id")
        let appID = try Fields.query(request, "app_id")
        let pushkey = try Fields.query(request, "pushkey")
        let sig = try Fields.query(request, "sig")
        guard let user, let appID, let pushkey, let sig else {
            throw APIError(.forbidden, .forbidden, "this unsubscribe link is incomplete")
        }
        let id = PusherID(userID: user, appID: appID, pushkey: pushkey)
        guard signer.verify(id, signature: sig) else {
            throw APIError(.forbidden, .forbidden, "this unsubscribe link is not valid (altered or forged)")
        }
        if let state = try store.pusherState(id), state.config.kind == .email {
            let result = try await store.appendAsync([.pusherRemoved(id)])
            pool?.onPushersChanged(result.pusherChanges)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        let page = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>"
            + "<body><p>You have been unsubscribed: no more notification emails will be sent to this address.</p></body></html>\n"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}
