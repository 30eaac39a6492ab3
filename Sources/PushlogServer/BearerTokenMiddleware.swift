import Hummingbird

/// `Authorization: Bearer <token>` on every `/v1` request; `/health` needs none, and neither does
/// `/v1/unsubscribe`, whose signed link is its own authority (it arrives from a mail client).
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path == "/v1" || path.hasPrefix("/v1/"), path != "/v1/unsubscribe" else { return try await next(request, context) }
        let parts = request.headers[.authorization]?.split(separator: " ", maxSplits: 1) ?? []
        guard let scheme = parts.first, scheme.lowercased() == "bearer" else {
            throw APIError(.unauthorized, .missingToken, "missing access token")
        }
        let given = parts.count > 1 ? Array(parts[1].utf8.drop { $0 == 0x20 }) : []
        guard Self.constantTimeEqual(given, token) else {
            throw APIError(.unauthorized, .unknownToken, "unrecognised access token")
        }
        return try await next(request, context)
    }

    /// Takes the same time whatever the given bytes are: it always walks the whole expected
    /// token, so timing tells neither how much of a guess was right nor the token's content.
    static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var diff = given.count ^ expected.count
        for i in expected.indices {
            let g = given.isEmpty ? 0 : given[i % given.count]
            diff |= Int(g ^ expected[i])
        }
        return diff == 0
    }
}
