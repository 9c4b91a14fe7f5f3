import Foundation

extension ClientAPI {
    /// `POST /v1/backups/forget`: apply a retention policy to the backups at a destination, per volume.
    public struct ForgetRequest: Codable, Sendable {
        public var destination: String
        /// Only this volume's backups; nil: every volume's, each judged on its own.
        public var volumeName: String?
        public var policy: RetentionPolicy
        /// Say what would be forgotten, delete nothing.
        public var dryRun: Bool
        /// Rewrite every pack holding a forgotten block, so none of their data stays in the store (the collection
        /// otherwise leaves dead blocks in packs that are mostly live).
        public var repackAll: Bool?

        public init(destination: String, volumeName: String?, policy: RetentionPolicy, dryRun: Bool,
                    repackAll: Bool? = nil) {
            (self.destination, self.volumeName, self.policy, self.dryRun) = (destination, volumeName, policy, dryRun)
            self.repackAll = repackAll
        }

        enum CodingKeys: String, CodingKey {
            case destination = "Dest", volumeName = "VolumeName", policy = "Policy", dryRun = "DryRun"
            case repackAll = "RepackAll"
        }
    }

    public struct ForgetResult: Codable, Sendable {
        public struct Entry: Codable, Sendable, Equatable {
            public var url: String
            public var volumeName: String
            public var createdTime: String
            public var keep: Bool
            public var reasons: [String]

            public init(url: String, volumeName: String, createdTime: String, keep: Bool, reasons: [String]) {
                (self.url, self.volumeName, self.createdTime, self.keep, self.reasons) =
                    (url, volumeName, createdTime, keep, reasons)
            }

            enum CodingKeys: String, CodingKey {
                case url = "URL", volumeName = "VolumeName", createdTime = "CreatedTime", keep = "Keep"
                case reasons = "Reasons"
            }
        }

        /// Every backup judged, by volume and newest first.
        public var backups: [Entry]
        public var dryRun: Bool
        /// What the collection after the deletions freed (nil for a dry run, or when nothing was forgotten).
        public var collection: [String: String]?

        public init(backups: [Entry], dryRun: Bool, collection: [String: String]?) {
            (self.backups, self.dryRun, self.collection) = (backups, dryRun, collection)
        }

        enum CodingKeys: String, CodingKey {
            case backups = "Backups", dryRun = "DryRun", collection = "Collection"
        }
    }
}

extension ClientAPI {
    /// `POST /v1/backups/verify-store`: check a whole destination (every manifest's blocks exist) and read a
    /// subset of its blocks (`5%`, `1/10`, `all`; nil: none).
    public struct VerifyStoreRequest: Codable, Sendable {
        public var destination: String
        public var readDataSubset: String?

        public init(destination: String, readDataSubset: String?) {
            (self.destination, self.readDataSubset) = (destination, readDataSubset)
        }

        enum CodingKeys: String, CodingKey { case destination = "Dest", readDataSubset = "ReadDataSubset" }
    }
}
