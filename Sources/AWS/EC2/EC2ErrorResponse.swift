import ConvoyCore
import Foundation

/// What EC2 said about a failed call: `<Response><Errors><Error><Code>..<Message>..</Error></Errors>
/// <RequestID>..</RequestID></Response>` (signature failures may come as `<ErrorResponse>`; both are read).
struct EC2ErrorResponse: AWSErrorAnswer, Sendable {
    var status: Int
    var code: String?
    var message: String?
    var requestID: String?

    init(_ response: HTTPResponse) {
        status = response.status
        let document = XMLTree.parse(response.body)
        let error = document?.descendant("Error")
        code = error?.value("Code")
        message = error?.value("Message")
        requestID = document?.descendant("RequestID")?.text ?? document?.descendant("RequestId")?.text
            ?? response.header("x-amzn-requestid")
    }

    var kind: ConvoyError.Kind {
        guard let code else { return status == 404 ? .notFound : .driverFailure }
        if code.hasSuffix(".NotFound") { return .notFound }
        if code.hasPrefix("InvalidParameter") || code == "MissingParameter" || code.hasSuffix(".Malformed") {
            return .invalidArgument
        }
        return .driverFailure
    }
}
