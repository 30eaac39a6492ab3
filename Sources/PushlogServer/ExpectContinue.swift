import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers a request's `Expect: 100-continue` with an interim `100 Continue`, so that the client
/// sends its body now.
///
/// Why: a client that asks first waits for this answer before it sends the body, and gives up
/// waiting only after a timeout of its own; curl, for one, asks for every body over 1 MiB
/// (a `POST /v1/notifications` of a few thousand notifications) and waits 1 s. Hummingbird does
/// not answer the expectation itself, so every such POST took a second longer than its work.
///
/// The answer is given for every request that asks, before the route has looked at it: a
/// request that is then refused (401, 413, a bad body) has sent its body for nothing, which
/// RFC 9110 allows. The expectation is removed from the head handed on, since it is met. (The
/// request's HTTP version is not visible at this point of the pipeline, so an HTTP/1.0 client
/// that sends the header, which RFC 9110 says to ignore, is answered too.)
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data),
              let expectation = head.headerFields[.expect],
              expectation.lowercased() == "100-continue" else {
            context.fireChannelRead(data)
            return
        }
        head.headerFields[.expect] = nil
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}
