import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `GET /health` → `{"status": "ok", "head": pos}`; needs no token.
    func health() throws -> JSONResponse {
        JSONResponse(.object(["status": .string("ok"), "head": .int(Int64(try store.read { view in try view.head() }))]))
    }
}
