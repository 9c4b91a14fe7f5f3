import ConvoyCore
import Foundation

/// What S3 said about a failed request: the `<Error>` document when there is one (HEAD answers have no body),
/// and the request id from `x-amz-request-id`, which AWS support asks for.
struct S3ErrorResponse: AWSErrorAnswer, Sendable {
    var status: Int
    var code: String?
    var message: String?
    var requestID: String?

    init(_ response: HTTPResponse) {
        status = response.status
        let document = XMLTree.parse(response.body)
        let error = document?.name == "Error" ? document : nil
        code = error?.value("Code")
        message = error?.value("Message")
        requestID = response.header("x-amz-request-id") ?? error?.value("RequestId")
    }

    /// An `<Error>` document in a 200 answer: CompleteMultipartUpload reports late failures that way.
    static func embedded(in response: HTTPResponse) -> S3ErrorResponse? {
        guard XMLTree.parse(response.body)?.name == "Error" else { return nil }
        return S3ErrorResponse(response)
    }

    var kind: ConvoyError.Kind {
        if status == 404 || code == "NoSuchKey" || code == "NoSuchBucket" || code == "NoSuchUpload" {
            return .notFound
        }
        return .driverFailure
    }
}
