/// An EBS volume as DescribeVolumes and CreateVolume describe it.
public struct EC2Volume: Sendable, Equatable {
    public struct Attachment: Sendable, Equatable {
        public var instanceID: String
        public var device: String
        /// attaching, attached, detaching, detached.
        public var state: String
    }

    public var id: String
    public var sizeGiB: UInt64
    /// creating, available, in-use, deleting, deleted, error.
    public var state: String
    public var availabilityZone: String
    public var snapshotID: String?
    public var volumeType: String?
    public var encrypted: Bool
    public var attachments: [Attachment]
    public var tags: [String: String]

    init(_ item: XMLTree) {
        id = item.value("volumeId") ?? ""
        sizeGiB = item.value("size").flatMap { UInt64($0) } ?? 0
        state = item.value("status") ?? ""
        availabilityZone = item.value("availabilityZone") ?? ""
        snapshotID = item.value("snapshotId").flatMap { $0.isEmpty ? nil : $0 }
        volumeType = item.value("volumeType")
        encrypted = item.value("encrypted") == "true"
        attachments = (item.child("attachmentSet")?.children("item") ?? []).map { attachment in
            Attachment(instanceID: attachment.value("instanceId") ?? "", device: attachment.value("device") ?? "",
                       state: attachment.value("status") ?? "")
        }
        tags = EC2Tags.parse(item)
    }
}

/// An EBS snapshot as DescribeSnapshots and CreateSnapshot describe it.
public struct EC2Snapshot: Sendable, Equatable {
    public var id: String
    public var volumeID: String
    /// pending, completed, error.
    public var state: String
    public var progress: String
    public var startTime: String
    public var volumeSizeGiB: UInt64
    public var description: String
    public var tags: [String: String]

    init(_ item: XMLTree) {
        id = item.value("snapshotId") ?? ""
        volumeID = item.value("volumeId") ?? ""
        state = item.value("status") ?? ""
        progress = item.value("progress") ?? ""
        startTime = item.value("startTime") ?? ""
        volumeSizeGiB = item.value("volumeSize").flatMap { UInt64($0) } ?? 0
        description = item.value("description") ?? ""
        tags = EC2Tags.parse(item)
    }
}

enum EC2Tags {
    /// `<tagSet><item><key>..</key><value>..</value></item></tagSet>`.
    static func parse(_ item: XMLTree) -> [String: String] {
        var tags: [String: String] = [:]
        for tag in item.child("tagSet")?.children("item") ?? [] {
            if let key = tag.value("key") { tags[key] = tag.value("value") ?? "" }
        }
        return tags
    }
}
