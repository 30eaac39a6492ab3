import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `GET /metrics` → the metrics in Prometheus text format; needs `metrics.token` when set.
    func metrics(_ request: Request) throws -> Response {
        guard let render = metricsText else { throw APIError(.notFound, .notFound, "no such endpoint: /metrics") }
        try metricsToken?.check(request.headers, for: " for /metrics")
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: render())))
    }
}
