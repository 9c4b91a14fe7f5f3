import AWS
import ConvoyCore
import Foundation

/// `s3://bucket@region/path`: objects under a key prefix of a bucket. S3 makes each PUT atomic and durable when
/// it returns, so there is nothing to defer and no temporary to clean up; the client pages listings, batches
/// deletes by 1,000, uses multipart uploads for large objects and retries transient failures.
public struct S3ObjectStore: ObjectStore {
    public let client: S3Client
    /// "" or a path ending in "/".
    public let prefix: String
    public let location: String
    public let requestConcurrency: Int
    /// A 1 MiB block as an object of its own cost a PUT to write and a GET to read: packed, 8 MiB take one each.
    public var packsLargeBlocks: Bool { true }
    /// S3 answers each request after a round trip of tens of milliseconds: many in flight hide it.
    public static let defaultConcurrency = 16

    public init(bucket: String, region: String, prefix: String, endpoint: URL?, concurrency: Int = defaultConcurrency,
                credentials: AWSCredentials) throws(ConvoyError) {
        var configuration = S3Client.Configuration(bucket: bucket, region: region, endpoint: endpoint,
                                                   credentials: credentials)
        configuration.connections = concurrency
        client = try S3Client(configuration)
        requestConcurrency = concurrency
        let trimmed = prefix.split(separator: "/").joined(separator: "/")
        self.prefix = trimmed.isEmpty ? "" : trimmed + "/"
        location = "s3://\(bucket)@\(region)/\(trimmed)" + (endpoint.map { " at \($0.absoluteString)" } ?? "")
    }

    public func put(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) {
        try ObjectKey.validate(key)
        try await client.putObject(key: prefix + key, bytes: bytes)
    }

    /// A pack goes up from its own buffer, not a copy: the `Data` wraps the memory and keeps the buffer alive for
    /// as long as anything holds it. An attempt abandoned on a timeout may still be sending when the buffer is
    /// reused for the next pack; its body is signed (`x-amz-content-sha256`), so other bytes are never stored
    /// under this key.
    public func putDeferred(_ key: String, aligned buffer: AlignedBuffer) async throws(ConvoyError) {
        try ObjectKey.validate(key)
        let body = Data(bytesNoCopy: buffer.memory, count: buffer.count,
                        deallocator: .custom { _, _ in withExtendedLifetime(buffer) {} })
        try await client.putObject(key: prefix + key, body: body)
    }

    public func get(_ key: String) async throws(ConvoyError) -> [UInt8] {
        try ObjectKey.validate(key)
        return try await client.getObject(key: prefix + key)
    }

    public func getRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> [UInt8] {
        try ObjectKey.validate(key)
        return try await client.getObject(key: prefix + key, offset: offset, length: length)
    }

    public func getOnceRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> ObjectBytes {
        try ObjectKey.validate(key)
        return ObjectBytes(try await client.getObjectData(key: prefix + key, offset: offset, length: length))
    }

    public func exists(_ key: String) async throws(ConvoyError) -> Bool {
        try ObjectKey.validate(key)
        return try await client.headObject(key: prefix + key) != nil
    }

    public func delete(_ keys: [String]) async throws(ConvoyError) {
        for key in keys { try ObjectKey.validate(key) }
        guard !keys.isEmpty else { return }
        try await client.deleteObjects(keys: keys.map { prefix + $0 })
    }

    public func list(prefix listPrefix: String) async throws(ConvoyError) -> [ObjectInfo] {
        try ObjectKey.validatePrefix(listPrefix)
        return try await client.listObjects(prefix: prefix + listPrefix).map {
            ObjectInfo(key: String($0.key.dropFirst(prefix.count)), size: $0.size)
        }.sorted { $0.key < $1.key }
    }

    /// Failed multipart uploads are aborted by the client itself; a PUT is never visible half-written.
    public func removeAbandonedWrites(under prefix: String, olderThan age: Double) async throws(ConvoyError) -> Int {
        0
    }
}
