import Hummingbird
import NIOCore
import PushlogCore
import PushlogMail

extension PushlogAPI {
    /// `GET /v1/unsubscribe?user_id=U&app_id=A&pushkey=K&t=T&sig=S`: the link of an email, as a
    /// person (or a link scanner) opens it. Shows a page whose button POSTs the same link, and
    /// changes nothing: mail filters that fetch every link must not unsubscribe anyone.
    func unsubscribePage(_ request: Request) async throws -> Response {
        let link = try verifiedLink(request)
        let action = "?" + link.query.replacingOccurrences(of: "&", with: "&amp;")
        return htmlPage(title: "Unsubscribe", body:
            "<p>Stop notification emails to <strong>\(escapeHTML(link.id.pushkey))</strong>?</p>"
            + "<form method=\"post\" action=\"\(action)\">"
            + "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
            + "<button type=\"submit\">Unsubscribe</button></form>")
    }

    /// `POST` of the same link: unsubscribes (RFC 8058 one-click, body
    /// `List-Unsubscribe=One-Click`, form-encoded; an empty body is taken too). Needs no token:
    /// the signature is the authority, and it names one email pusher. A missing, altered or
    /// expired link gets 403 `M_FORBIDDEN` and changes nothing; a pusher already gone is still a
    /// success.
    func unsubscribe(_ request: Request) async throws -> Response {
        let link = try verifiedLink(request)
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: 1024) } catch is NIOTooManyBytesError { throw APIError.tooLarge }
        let text = String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.isEmpty || text == "List-Unsubscribe=One-Click" else {
            throw APIError.invalid("body", "must be List-Unsubscribe=One-Click (form-encoded) or empty")
        }
        if let state = try store.read({ view in try view.pusherState(link.id) }), state.config.kind == .email {
            let result = try await store.appendAsync([.pusherRemoved(link.id)])
            pool?.onPushersChanged(result.pusherChanges)
        }
        return htmlPage(title: "Unsubscribed",
                        body: "<p>You have been unsubscribed: no more notification emails will be sent to this address.</p>")
    }

    /// The pusher a link names and its query in canonical form, once its signature and age
    /// were checked.
    private func verifiedLink(_ request: Request) throws -> (id: PusherID, query: String) {
        guard let signer = unsubscribeSigner else {
            throw APIError(.forbidden, .forbidden, "unsubscribe links are not served here")
        }
        let user = try Fields.query(request, "user_id")
        let appID = try Fields.query(request, "app_id")
        let pushkey = try Fields.query(request, "pushkey")
        let issuedAt = try Fields.query(request, "t")
        let sig = try Fields.query(request, "sig")
        guard let user, let appID, let pushkey, let sig else {
            throw APIError(.forbidden, .forbidden, "this unsubscribe link is incomplete")
        }
        let id = PusherID(userID: user, appID: appID, pushkey: pushkey)
        switch signer.check(id, signature: sig, issuedAt: issuedAt, now: SystemClock.nowMS()) {
        case .valid: break
        case .forged: throw APIError(.forbidden, .forbidden, "this unsubscribe link is not valid (altered or forged)")
        case .expired: throw APIError(.forbidden, .forbidden, "this unsubscribe link has expired; use the link of a newer email")
        }
        let query = [("user_id", user), ("app_id", appID), ("pushkey", pushkey)] + (issuedAt.map { [("t", $0)] } ?? []) + [("sig", sig)]
        return (id, query.map { "\($0)=\(UnsubscribeSigner.percentEncoded($1))" }.joined(separator: "&"))
    }

    private func htmlPage(title: String, body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        let page = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">"
            + "<title>\(title)</title></head><body>\(body)</body></html>\n"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}
