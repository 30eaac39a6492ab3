import Hummingbird
import PushlogCore

/// An error as the API answers it: an HTTP status and `{"errcode": "M_…", "error": "…"}`.
struct APIError: HTTPResponseError, Equatable {
    enum Code: String, Sendable {
        case notJSON = "M_NOT_JSON"
        case badJSON = "M_BAD_JSON"
        case missingParam = "M_MISSING_PARAM"
        case invalidParam = "M_INVALID_PARAM"
        case missingToken = "M_MISSING_TOKEN"
        case unknownToken = "M_UNKNOWN_TOKEN"
        case notFound = "M_NOT_FOUND"
        case forbidden = "M_FORBIDDEN"
        /// Matrix's code for a known path asked with the wrong method.
        case unrecognized = "M_UNRECOGNIZED"
        case tooLarge = "M_TOO_LARGE"
        case unknown = "M_UNKNOWN"
    }

    var status: HTTPResponse.Status
    var code: Code
    var message: String

    init(_ status: HTTPResponse.Status, _ code: Code, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ code: Code, _ message: String) -> APIError { APIError(.badRequest, code, message) }
    static func missing(_ field: String) -> APIError { .badRequest(.missingParam, "\(field): is required") }
    static func invalid(_ field: String, _ message: String) -> APIError { .badRequest(.invalidParam, "\(field): \(message)") }

    /// A validation error, its field placed under `path` (such as `notifications[3]`); the
    /// body itself is called `body`.
    init(_ e: InputError, under path: String = "") {
        let at = [path, e.field].filter { !$0.isEmpty }.joined(separator: ".")
        let code: Code = switch e.kind {
        case .notJSON: .notJSON
        case .badType: .badJSON
        case .missing: .missingParam
        case .invalid: .invalidParam
        }
        self.init(.badRequest, code, "\(at.isEmpty ? "body" : at): \(e.message)")
    }

    var json: JSON { .object(["errcode": .string(code.rawValue), "error": .string(message)]) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse(json, status: status).response()
    }
}
