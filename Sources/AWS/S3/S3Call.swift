import Foundation

/// One S3 request as the client describes it, before signing. `operation` and `key` only serve error messages.
struct S3Call: Sendable {
    var operation: String
    var key: String?
    /// Said after the object in messages: `part 3 of upload ...`.
    var detail: String?
    var method: String
    var url: URL
    var headers: [String: String] = [:]
    var body: Data = Data()
    /// CompleteMultipartUpload can answer 200 and still fail, with an `<Error>` document as the body.
    var errorMayComeWith200 = false
}
