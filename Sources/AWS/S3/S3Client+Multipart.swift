import ConvoyCore
import Foundation

extension S3Client {
    /// CreateMultipartUpload, the parts (up to `multipartConcurrency` at once), CompleteMultipartUpload. On any
    /// failure the upload is aborted, so that S3 does not keep (and bill) the parts already sent.
    func multipartUpload(key: String, bytes: [UInt8]) async throws(ConvoyError) {
        let partSize = configuration.partSize
        let partCount = max(1, (bytes.count + partSize - 1) / partSize)
        guard partCount <= Configuration.maximumParts else {
            throw ConvoyError(.invalidArgument, "S3 PutObject \(addressing.describe(key)): "
                + "\(bytes.count) bytes need \(partCount) parts of \(partSize) bytes; "
                + "S3 allows \(Configuration.maximumParts): raise the part size")
        }
        let uploadID = try await createMultipartUpload(key: key)
        do throws(ConvoyError) {
            let etags = try await uploadParts(key: key, uploadID: uploadID, bytes: bytes, partCount: partCount)
            try await completeMultipartUpload(key: key, uploadID: uploadID, etags: etags)
        } catch {
            // An unstructured task: the abort must run even when the failure is the caller's cancellation.
            let abortFailure = await Task { () async -> ConvoyError? in
                do throws(ConvoyError) {
                    try await abortMultipartUpload(key: key, uploadID: uploadID)
                    return nil
                } catch {
                    return error
                }
            }.value
            guard let abortFailure else { throw error }
            throw ConvoyError(error.kind, "\(error.message); aborting upload \(uploadID) failed too "
                + "(\(abortFailure.message)): a lifecycle rule for incomplete multipart uploads removes its parts")
        }
    }

    private func createMultipartUpload(key: String) async throws(ConvoyError) -> String {
        let call = S3Call(operation: "CreateMultipartUpload", key: key, method: "POST",
                          url: try addressing.url(key: key, query: [("uploads", nil)]),
                          headers: ["Content-Type": "application/octet-stream"])
        let response = try check(try await send(call), call)
        guard let uploadID = XMLTree.parse(response.body)?.value("UploadId"), !uploadID.isEmpty else {
            throw ConvoyError(.driverFailure, "\(describe(call)): the answer has no UploadId "
                + "(request id \(response.header("x-amz-request-id") ?? "none"))")
        }
        return uploadID
    }

    /// The ETag of each part, by part number (1-based).
    private func uploadParts(key: String, uploadID: String, bytes: [UInt8], partCount: Int)
        async throws(ConvoyError) -> [Int: String]
    {
        let concurrency = configuration.multipartConcurrency
        do {
            return try await withThrowingTaskGroup(of: (Int, String).self) { group in
                var etags: [Int: String] = [:]
                var next = 1
                while next <= min(partCount, concurrency) {
                    let number = next
                    group.addTask {
                        (number, try await self.uploadPart(key: key, uploadID: uploadID, number: number, of: bytes))
                    }
                    next += 1
                }
                do {
                    while let (number, etag) = try await group.next() {
                        etags[number] = etag
                        if next <= partCount {
                            let number = next
                            group.addTask {
                                (number, try await self.uploadPart(key: key, uploadID: uploadID, number: number,
                                                                   of: bytes))
                            }
                            next += 1
                        }
                    }
                } catch {
                    group.cancelAll()
                    throw error
                }
                return etags
            }
        } catch let error as ConvoyError {
            throw error
        } catch {
            throw ConvoyError(.internalFailure, "S3 UploadPart \(addressing.describe(key)): \(error)")
        }
    }

    private func uploadPart(key: String, uploadID: String, number: Int,
                            of bytes: [UInt8]) async throws(ConvoyError) -> String {
        let partSize = configuration.partSize
        let range = (number - 1) * partSize..<min(number * partSize, bytes.count)
        let call = S3Call(operation: "UploadPart", key: key, detail: "part \(number) of upload \(uploadID)",
                          method: "PUT",
                          url: try addressing.url(key: key,
                                                  query: [("partNumber", String(number)), ("uploadId", uploadID)]),
                          headers: ["Content-Type": "application/octet-stream"], body: Data(bytes[range]))
        let response = try check(try await send(call), call)
        guard let etag = response.header("etag"), !etag.isEmpty else {
            throw ConvoyError(.driverFailure, "\(describe(call)): the answer has no ETag "
                + "(request id \(response.header("x-amz-request-id") ?? "none"))")
        }
        return etag
    }

    private func completeMultipartUpload(key: String, uploadID: String,
                                         etags: [Int: String]) async throws(ConvoyError) {
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"#
            + #"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#
        for (number, etag) in etags.sorted(by: { $0.key < $1.key }) {
            xml += "<Part><PartNumber>\(number)</PartNumber><ETag>\(XMLText.escape(etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let call = S3Call(operation: "CompleteMultipartUpload", key: key, method: "POST",
                          url: try addressing.url(key: key, query: [("uploadId", uploadID)]),
                          headers: ["Content-Type": "application/xml"], body: Data(xml.utf8), errorMayComeWith200: true)
        try check(try await send(call), call)
    }

    private func abortMultipartUpload(key: String, uploadID: String) async throws(ConvoyError) {
        let call = S3Call(operation: "AbortMultipartUpload", key: key, method: "DELETE",
                          url: try addressing.url(key: key, query: [("uploadId", uploadID)]))
        let response = try await send(call)
        if response.status == 404 { return }  // NoSuchUpload: nothing left to abort
        try check(response, call)
    }
}
