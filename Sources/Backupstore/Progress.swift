/// Progress of long work (backup, restore, verify, copy), reported as it goes.
public struct WorkProgress: Sendable, Equatable, Codable {
    public var phase: String
    public var bytesDone: UInt64
    public var bytesTotal: UInt64
    public var itemsDone: Int
    public var itemsTotal: Int

    public init(phase: String, bytesDone: UInt64 = 0, bytesTotal: UInt64 = 0, itemsDone: Int = 0, itemsTotal: Int = 0) {
        self.phase = phase
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.itemsDone = itemsDone
        self.itemsTotal = itemsTotal
    }

    enum CodingKeys: String, CodingKey {
        case phase = "Phase", bytesDone = "BytesDone", bytesTotal = "BytesTotal"
        case itemsDone = "ItemsDone", itemsTotal = "ItemsTotal"
    }
}

public typealias ProgressSink = @Sendable (WorkProgress) -> Void
