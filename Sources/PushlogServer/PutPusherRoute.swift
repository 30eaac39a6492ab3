import Curl
import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `PUT /v1/pushers` with a Pusher body → `{"pusher": PusherState}`. `"kind": null` removes
    /// the pusher and answers `{"pusher": null}`; removing one that does not exist appends nothing.
    func putPusher(_ request: Request) async throws -> JSONResponse {
        let body = try await JSONBody.read(request, limit: maxBodySize)
        let entry: LogEntry
        do {
            entry = try EntryDecoder.pusher(body, now: SystemClock.nowMS())
            try gatewayAddressPolicy.checkGatewayAddress(entry)
        } catch let e as InputError { throw APIError(e) }
        switch entry {
        case .pusherSet(let config):
            let result = try await store.appendAsync([entry])
            pool?.onPushersChanged(result.pusherChanges)
            return JSONResponse(.object(["pusher": try store.read { view in try view.pusherState(config.id) }?.json ?? .null]))
        case .pusherRemoved(let id):
            if try store.read({ view in try view.pusherState(id) }) != nil {
                let result = try await store.appendAsync([entry])
                pool?.onPushersChanged(result.pusherChanges)
            }
            return JSONResponse(.object(["pusher": .null]))
        case .notification, .receipt:
            throw APIError(.internalServerError, .unknown, "internal error")
        }
    }
}
