import Hummingbird
import PushlogCore

extension PushlogAPI {
    /// `POST /v1/receipts` `{"receipts": [Receipt…]}` → `{"first_pos", "last_pos"}`, answered once
    /// the entries are durable.
    func postReceipts(_ request: Request) async throws -> JSONResponse {
        let body = try await JSONBody.read(request, limit: maxBodySize)
        let now = SystemClock.nowMS()
        let receipts = try Batch.decode(body, key: "receipts") { try EntryDecoder.receipt($0, now: now) }
        let result = try await store.appendAsync(receipts.map(LogEntry.receipt))
        pool?.onNewReceipts(users: result.receiptUsers)
        return JSONResponse(AppendResponse(firstPos: result.firstPos, lastPos: result.lastPos).json)
    }
}
