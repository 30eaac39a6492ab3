import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `GET /metrics` → the metrics in Prometheus text format; needs `metrics.token` when set.
    func metrics(_ request: Request) throws -> Response {
        guard let render = metricsText else { throw APIError(.notFound, .notFound, "no such endpoint: /metrics") }
        if let token = metricsToken {
            let parts = request.headers[.authorization]?.split(separator: " ", maxSplits: 1) ?? []
            guard let scheme = parts.first, scheme.lowercased() == "bearer" else {
                throw APIError(.unauthorized, .missingToken, "missing access token for /metrics")
            }
            let given = parts.count > 1 ? Array(parts[1].utf8) : []
            guard BearerTokenMiddleware<BasicRequestContext>.constantTimeEqual(given, Array(token.utf8)) else {
                throw APIError(.unauthorized, .unknownToken, "unrecognised access token for /metrics")
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: render())))
    }
}
