import ConvoyCore
import Foundation

/// One ListObjectsV2 page.
public struct S3ListPage: Sendable {
    public let objects: [S3Object]
    /// Pass it back to get the next page; nil on the last page.
    public let nextContinuationToken: String?
}

extension S3Client {
    /// Every object whose key starts with `prefix`, in key order, fetched page by page.
    ///
    /// `prefix` is matched as a plain string: to list a volume pass `"<volume>/"`, never the bare name, or
    /// volume `vol1` would also get `vol10`'s objects.
    public func listObjects(prefix: String) async throws(ConvoyError) -> [S3Object] {
        var objects: [S3Object] = []
        var token: String?
        repeat {
            let page = try await listObjectsPage(prefix: prefix, continuationToken: token)
            objects += page.objects
            token = page.nextContinuationToken
        } while token != nil
        return objects
    }

    /// The pages of a listing as they arrive, for listings too large to hold or to count pages.
    public func listObjectPages(prefix: String) -> S3ListPages {
        S3ListPages(client: self, prefix: prefix)
    }

    /// One page of at most `maxKeys` (default `configuration.listPageSize`, kept within S3's 1...1000) objects.
    public func listObjectsPage(prefix: String, continuationToken: String? = nil, maxKeys: Int? = nil)
        async throws(ConvoyError) -> S3ListPage
    {
        // encoding-type=url: keys come back percent-encoded, so that any key survives the XML round trip.
        var query: [(String, String?)] = [
            ("list-type", "2"), ("prefix", prefix), ("encoding-type", "url"),
            ("max-keys", String(min(max(maxKeys ?? configuration.listPageSize, 1), 1000))),
        ]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let call = S3Call(operation: "ListObjectsV2", key: prefix, method: "GET", url: try addressing.url(query: query))
        let response = try check(try await send(call), call)

        guard let document = XMLTree.parse(response.body), document.name == "ListBucketResult" else {
            throw ConvoyError(.driverFailure, "\(describe(call)): the answer is not a ListBucketResult "
                + "(request id \(response.header("x-amz-request-id") ?? "none"))")
        }
        let urlEncoded = document.value("EncodingType") == "url"
        var objects: [S3Object] = []
        for entry in document.children("Contents") {
            guard let rawKey = entry.value("Key"), let size = entry.value("Size").flatMap({ Int($0) }) else {
                throw ConvoyError(.driverFailure, "\(describe(call)): a listing entry lacks Key or Size")
            }
            let key = urlEncoded ? AWSPercentEncoding.decode(rawKey, plusAsSpace: true) : rawKey
            objects.append(S3Object(key: key, size: size))
        }
        let truncated = document.value("IsTruncated") == "true"
        let next = document.value("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        if truncated && next == nil {
            throw ConvoyError(.driverFailure, "\(describe(call)): the page is truncated but has no continuation token")
        }
        return S3ListPage(objects: objects, nextContinuationToken: truncated ? next : nil)
    }
}

/// The pages of one listing, fetched lazily: `for try await page in client.listObjectPages(prefix: "vol1/")`.
public struct S3ListPages: AsyncSequence, Sendable {
    public typealias Element = [S3Object]
    public typealias Failure = ConvoyError
    let client: S3Client
    let prefix: String

    public struct AsyncIterator: AsyncIteratorProtocol {
        let client: S3Client
        let prefix: String
        var token: String?
        var finished = false

        public mutating func next() async throws(ConvoyError) -> [S3Object]? {
            guard !finished else { return nil }
            let page = try await client.listObjectsPage(prefix: prefix, continuationToken: token)
            token = page.nextContinuationToken
            finished = token == nil
            return page.objects
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(client: client, prefix: prefix)
    }
}
