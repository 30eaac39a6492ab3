import Hummingbird
import NIOCore

/// Turns every error into the API's JSON error shape: unknown paths into 404 `M_NOT_FOUND`, a
/// known path with the wrong method into 405, anything unexpected into 500 `M_UNKNOWN` (logged;
/// its text is not shown to the client).
///
/// A wrong method on a guarded path (`TRACE /v1/pushers`) matches no route, so no route's token
/// check ran: without the token it is a 401 like any other `/v1` request, not a 405 that would
/// answer an anonymous caller's questions about the API.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let knownPaths: Set<String>
    /// The `/v1` token and the paths it guards; nil: no token is configured.
    var token: BearerToken? = nil
    var guardedPaths: Set<String> = []

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch is NIOTooManyBytesError {
            return try APIError.tooLarge.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            if error.status == .notFound, let token, guardedPaths.contains(Self.routed(request.uri.path)) {
                do { try token.check(request.headers, for: "") } catch let refused as APIError {
                    return try refused.response(from: request, context: context)
                }
            }
            return try translate(error.status, request).response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return try APIError(.internalServerError, .unknown, "internal error").response(from: request, context: context)
        }
    }

    /// The path as the router matches it: empty segments dropped (`//v1/pushers/` is `/v1/pushers`).
    static func routed(_ path: String) -> String {
        "/" + path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    func translate(_ status: HTTPResponse.Status, _ request: Request) -> APIError {
        switch status {
        case .notFound where knownPaths.contains(Self.routed(request.uri.path)):
            APIError(.methodNotAllowed, .unrecognized, "\(request.method) is not allowed on \(request.uri.path)")
        case .notFound: APIError(.notFound, .notFound, "no such endpoint: \(request.uri.path)")
        case .contentTooLarge: .tooLarge
        case .methodNotAllowed: APIError(.methodNotAllowed, .unrecognized, "\(request.method) is not allowed on \(request.uri.path)")
        default: APIError(status, .unknown, status.reasonPhrase)
        }
    }
}

extension APIError {
    static let tooLarge = APIError(.contentTooLarge, .tooLarge, "request body is too large")
}
