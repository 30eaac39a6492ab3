import Hummingbird

/// `Authorization: Bearer <token>` on the routes it is added to. It is bound to routes, not to
/// paths: the router adds it to the `/v1` group (all of `/v1` but the unsubscribe link), so it
/// runs for whatever spelling of a path the router resolves to one of those routes (`//v1/…`,
/// `/v1/pushers/`, …), and nothing that resolves elsewhere reaches a `/v1` handler without it.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: BearerToken

    init(token: String) { self.token = BearerToken(token) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try token.check(request.headers, for: "")
        return try await next(request, context)
    }
}

/// One expected bearer token, and the one check of a request's `Authorization` header against it
/// (shared by the `/v1` routes and `/metrics`).
struct BearerToken: Sendable {
    let expected: [UInt8]

    init(_ token: String) { expected = Array(token.utf8) }

    /// Throws 401 `M_MISSING_TOKEN` when there is no bearer credential, `M_UNKNOWN_TOKEN` when it
    /// is not the expected one. `what` names the guarded thing in the error text (" for /metrics").
    func check(_ headers: HTTPFields, for what: String) throws {
        let parts = headers[.authorization]?.split(separator: " ", maxSplits: 1) ?? []
        guard let scheme = parts.first, scheme.lowercased() == "bearer" else {
            throw APIError(.unauthorized, .missingToken, "missing access token\(what)")
        }
        let given = parts.count > 1 ? Array(parts[1].utf8.drop { $0 == 0x20 }) : []
        guard Self.constantTimeEqual(given, expected) else {
            throw APIError(.unauthorized, .unknownToken, "unrecognised access token\(what)")
        }
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
