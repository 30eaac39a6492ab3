import Foundation
import NIOCore
import NIOHTTP1

/// One connection's handler: collects a request, asks the ``Recorder`` for its answer, and
/// writes it when its delay has passed. NIO's pipelining handler, in front, passes on one
/// request at a time per connection, so there is at most one answer pending here.
final class NotifyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let notifyPath = "/_matrix/push/v1/notify"

    private let recorder: Recorder
    private var context: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// The answer decided on arrival, until it is written or the connection closes.
    private var pending: (answer: Recorder.Answer, keepAlive: Bool, version: HTTPVersion)?

    init(recorder: Recorder) {
        self.recorder = recorder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            guard head.method == .POST, path == Self.notifyPath else {
                pending = (Recorder.Answer(status: 404, headers: [("Content-Type", "application/json")],
                                           body: "{\"errcode\":\"M_UNRECOGNIZED\"}", delayMS: 0),
                           head.isKeepAlive, head.version)
                write(counted: false)
                return
            }
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let answer = recorder.arrived(body: Data(body.readableBytesView)) { ms in
                loop.scheduleTask(in: .milliseconds(Int64(ms))) { bound.value.write(counted: true) }
            }
            pending = (answer, head.isKeepAlive, head.version)
            if let ms = answer.delayMS {
                loop.scheduleTask(in: .milliseconds(Int64(ms))) { bound.value.write(counted: true) }
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let (answer, _, _) = pending {
            pending = nil
            recorder.abandoned(pushkey: answer.pushkey)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Writes the pending answer, if the connection is still there.
    private func write(counted: Bool) {
        guard let context, let (answer, keepAlive, version) = pending else { return }
        pending = nil
        if counted { recorder.answered(status: answer.status, pushkey: answer.pushkey) }
        var headers = HTTPHeaders(answer.headers)
        let bytes = context.channel.allocator.buffer(string: answer.body)
        headers.add(name: "Content-Length", value: String(bytes.readableBytes))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: answer.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
