import ConvoyCore
import Foundation

/// An S3 client for one bucket: the few operations convoy's backups need, with SigV4, retries and typed errors.
///
/// Keys are used exactly as given. Listing and batch deletion work on an explicit prefix string; callers that
/// address a volume's objects must pass `"<volume>/"`, never the bare name: prefix `vol1` also matches
/// `vol10/...`, which belongs to another volume.
///
/// Errors are `ConvoyError`s: `.notFound` (NoSuchKey, NoSuchBucket, any 404), `.unavailable` (the endpoint could
/// not be reached), `.driverFailure` (anything else). Their messages name the operation, the object, the HTTP status,
/// S3's error code and message, and the request id; never the credentials.
public struct S3Client: Sendable {
    public let configuration: Configuration
    let addressing: S3Addressing
    let signer: SigV4Signer
    let transport: HTTPTransport

    public init(_ configuration: Configuration) throws(ConvoyError) {
        try configuration.validate()
        self.configuration = configuration
        addressing = try S3Addressing(bucket: configuration.bucket, region: configuration.region,
                                      endpoint: configuration.endpoint)
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "s3")
        transport = HTTPTransport(idleTimeout: configuration.idleTimeout, timeLimit: configuration.requestTimeLimit,
                                  maximumConnections: max(configuration.connections,
                                                          configuration.multipartConcurrency),
                                  proxy: ProxyEnvironment().proxy(for: try addressing.url()))
    }

    /// Creates the bucket. A bucket this account already owns counts as created.
    public func createBucket() async throws(ConvoyError) {
        var body = Data()
        // us-east-1 is the default location and refuses to be named as a constraint.
        if configuration.region != "us-east-1" {
            body = Data("""
                <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
                <LocationConstraint>\(XMLText.escape(configuration.region))</LocationConstraint>\
                </CreateBucketConfiguration>
                """.utf8)
        }
        let call = S3Call(operation: "CreateBucket", key: nil, method: "PUT", url: try addressing.url(),
                          headers: body.isEmpty ? [:] : ["Content-Type": "application/xml"], body: body)
        let response = try await send(call)
        if S3ErrorResponse(response).code == "BucketAlreadyOwnedByYou" { return }
        try check(response, call)
    }

    /// Stores `bytes` at `key`, replacing any object there; above `multipartThreshold` as a multipart upload.
    public func putObject(key: String, bytes: [UInt8]) async throws(ConvoyError) {
        if bytes.count > configuration.multipartThreshold {
            try await multipartUpload(key: key, bytes: bytes)
            return
        }
        try await putObject(key: key, body: Data(bytes))
    }

    /// `putObject` of bytes already in a `Data`; larger than the multipart threshold, they go up in parts.
    public func putObject(key: String, body: Data) async throws(ConvoyError) {
        if body.count > configuration.multipartThreshold {
            try await multipartUpload(key: key, bytes: [UInt8](body))
            return
        }
        // application/octet-stream: some S3-compatible servers store form-encoded bodies as empty.
        let call = S3Call(operation: "PutObject", key: key, method: "PUT", url: try addressing.url(key: key),
                          headers: ["Content-Type": "application/octet-stream"], body: body)
        try check(try await send(call), call)
    }

    /// The object's bytes. A missing key or bucket is `.notFound`.
    public func getObject(key: String) async throws(ConvoyError) -> [UInt8] {
        let call = S3Call(operation: "GetObject", key: key, method: "GET", url: try addressing.url(key: key))
        let response = try check(try await send(call), call)
        return [UInt8](response.body)
    }

    /// `length` bytes of the object from `offset` (an HTTP range request); fewer when the object ends first. A
    /// missing key or bucket is `.notFound`.
    public func getObject(key: String, offset: Int, length: Int) async throws(ConvoyError) -> [UInt8] {
        [UInt8](try await getObjectData(key: key, offset: offset, length: length))
    }

    /// `getObject(key:offset:length:)` as the answer's `Data`, without a copy into an array (a restore's pack
    /// ranges: 8 MiB each).
    public func getObjectData(key: String, offset: Int, length: Int) async throws(ConvoyError) -> Data {
        guard offset >= 0, length > 0 else {
            throw ConvoyError(.internalFailure,
                              "S3 GetObject \(addressing.describe(key)): invalid range \(offset)+\(length)")
        }
        let call = S3Call(operation: "GetObject", key: key, detail: "bytes \(offset)+\(length)", method: "GET",
                          url: try addressing.url(key: key),
                          headers: ["Range": "bytes=\(offset)-\(offset + length - 1)"])
        let response = try await send(call)
        // 416: the range starts past the end; the object is shorter than the caller expected.
        if response.status == 416 { return Data() }
        try check(response, call)
        // A server that ignores Range answers 200 with the whole object.
        if response.status == 200 {
            let body = response.body
            return offset < body.count ? Data(body[(body.startIndex + offset)..<(body.startIndex
                + min(body.count, offset + length))]) : Data()
        }
        return response.body
    }

    /// The object's size in bytes, or nil when there is no such object. A HEAD answer has no body, so a missing
    /// bucket also reads as nil here.
    public func headObject(key: String) async throws(ConvoyError) -> Int? {
        let call = S3Call(operation: "HeadObject", key: key, method: "HEAD", url: try addressing.url(key: key))
        let response = try await send(call)
        if response.status == 404 { return nil }
        try check(response, call)
        guard let length = response.header("content-length").flatMap({ Int($0) }) else {
            throw ConvoyError(.driverFailure, "S3 HeadObject \(addressing.describe(key)): "
                + "the answer has no Content-Length (request id \(response.header("x-amz-request-id") ?? "none"))")
        }
        return length
    }

    /// Deletes one object. Deleting a key that does not exist succeeds, as in S3.
    public func deleteObject(key: String) async throws(ConvoyError) {
        let call = S3Call(operation: "DeleteObject", key: key, method: "DELETE", url: try addressing.url(key: key))
        try check(try await send(call), call)
    }
}
