import ConvoyCore
import Foundation

extension S3Client {
    /// S3 takes at most 1,000 keys per DeleteObjects request.
    static let deleteBatchSize = 1000

    /// Deletes the given keys, 1,000 per request. Keys that do not exist count as deleted, as in S3. Fails with the
    /// first keys S3 refused; batches before the failing one stay deleted.
    public func deleteObjects(keys: [String]) async throws(ConvoyError) {
        for key in keys { try S3Addressing.validate(key: key) }
        var start = 0
        while start < keys.count {
            let batch = Array(keys[start..<min(start + Self.deleteBatchSize, keys.count)])
            try await deleteBatch(batch)
            start += batch.count
        }
    }

    private func deleteBatch(_ keys: [String]) async throws(ConvoyError) {
        // Quiet: the answer lists only the keys that failed.
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"#
            + #"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>"#
        for key in keys {
            xml += "<Object><Key>\(XMLText.escape(key))</Key></Object>"
        }
        xml += "</Delete>"
        let body = Data(xml.utf8)
        let detail = keys.count == 1 ? "key \(keys[0])" : "\(keys.count) keys, \(keys[0]) to \(keys[keys.count - 1])"
        // S3 refuses DeleteObjects without an integrity header; Content-MD5 is the one every S3 server knows.
        let call = S3Call(operation: "DeleteObjects", key: nil, detail: detail, method: "POST",
                          url: try addressing.url(query: [("delete", nil)]),
                          headers: ["Content-Type": "application/xml", "Content-MD5": Digests.md5Base64(body)],
                          body: body)
        let response = try check(try await send(call), call)

        let failures = XMLTree.parse(response.body)?.children("Error") ?? []
        guard !failures.isEmpty else { return }
        let sample = failures.prefix(3).map { error in
            "\(error.value("Key") ?? "?"): \(error.value("Code") ?? "?") \(error.value("Message") ?? "")"
        }.joined(separator: "; ")
        throw ConvoyError(.driverFailure, "\(describe(call)): S3 refused \(failures.count) of \(keys.count) keys "
            + "(\(sample)) (request id \(response.header("x-amz-request-id") ?? "none"))")
    }
}
