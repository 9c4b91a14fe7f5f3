/// What an AWS service said about a failed request, whatever the document's shape (S3's `<Error>`, EC2's
/// `<Response><Errors>`): the part every client puts in its messages and its retry decision.
protocol AWSErrorAnswer {
    var status: Int { get }
    var code: String? { get }
    var message: String? { get }
    var requestID: String? { get }
}

extension AWSErrorAnswer {
    var isRetryable: Bool { RetryPolicy.isRetryable(status: status, code: code) }

    /// `HTTP 403 SignatureDoesNotMatch: The request signature ... (request id 4442587FB7D0A2F9)`. Only what the
    /// service returned; the request's own headers (which carry the signature) are never quoted.
    var summary: String {
        var text = "HTTP \(status)"
        if let code { text += " \(code)" }
        if let message, !message.isEmpty { text += ": \(message)" }
        return text + " (request id \(requestID ?? "none"))"
    }
}
