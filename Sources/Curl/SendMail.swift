extension CurlClient {
    /// Sends one message over SMTP, on the client's mail thread (a curl thread like the HTTP
    /// one, started with the first message).
    ///
    /// Returns once the server has accepted the message (its `250` after the data).
    ///
    /// Traps (libcurl's SMTP, as of 7.88):
    /// - libcurl waits for the server's answer to the end of the message in a blocking call,
    ///   so while one server takes its time, every other message on this client waits too
    ///   (HTTP requests do not: they have their own thread). A cancel that arrives during that
    ///   wait takes effect only when it ends.
    /// - A timeout does not prove the message was lost: the server may accept it after the
    ///   client gave up, and a retry then delivers it twice.
    /// - Throws: ``SMTPError`` when the request is invalid (before any I/O) or the message was
    ///   not accepted: its ``SMTPError/kind`` says what failed and ``SMTPError/isPermanent``
    ///   whether sending it again can help. `CancellationError` if the calling task was
    ///   cancelled (the connection is then closed mid-exchange, so nothing is delivered unless
    ///   the server had already accepted the data).
    public func sendMail(_ request: SMTPRequest) async throws {
        try request.validate()
        do {
            let thread = try mailThread.get()
            _ = try await thread.perform(TransferRequest(timeout: request.timeout, configure: request.configure))
        } catch let error as HTTPError {
            throw SMTPError(error)
        }
    }
}
