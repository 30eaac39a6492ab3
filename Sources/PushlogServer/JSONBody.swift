import Hummingbird
import NIOCore
import PushlogCore

/// A request body as JSON: read up to the size limit (413 past it), then parsed by our strict
/// parser (400 `M_NOT_JSON` when empty, not UTF-8 or not JSON).
enum JSONBody {
    static func read(_ request: Request, limit: Int) async throws -> JSON {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw APIError.tooLarge }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limit) } catch is NIOTooManyBytesError { throw APIError.tooLarge }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest(.notJSON, "request body is empty") }
        do {
            return try JSON.parse(buffer.readableBytesView)
        } catch {
            throw APIError.badRequest(.notJSON, "request body is not JSON: \(error)")
        }
    }

    /// The body as an object, for endpoints whose body has named fields.
    static func readObject(_ request: Request, limit: Int) async throws -> [String: JSON] {
        let body = try await read(request, limit: limit)
        guard case .object(let o) = body else {
            throw APIError.badRequest(.badJSON, "body: must be a JSON object, not \(body.typeName)")
        }
        return o
    }
}

/// A JSON answer, written with sorted keys by `JSON.serialized()`.
struct JSONResponse: ResponseGenerator {
    var json: JSON
    var status: HTTPResponse.Status

    init(_ json: JSON, status: HTTPResponse.Status = .ok) {
        self.json = json
        self.status = status
    }

    func response() -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: json.serialized()))
        )
    }

    func response(from request: Request, context: some RequestContext) throws -> Response { response() }
}
