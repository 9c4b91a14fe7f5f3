/// One entry of a listing.
public struct S3Object: Sendable, Equatable, Hashable {
    public let key: String
    public let size: Int

    public init(key: String, size: Int) {
        self.key = key
        self.size = size
    }
}
