import ConvoyCore

/// `ebs://<region>/<snap-id>`: a backup that is an EBS snapshot. Destinations are `ebs://` or `ebs://<region>`.
struct EBSBackupURL: Sendable, Equatable {
    var region: String
    var snapshotID: String

    var url: String { "ebs://\(region)/\(snapshotID)" }

    static func parse(_ text: String) throws(ConvoyError) -> EBSBackupURL {
        let parts = text.dropFirst("ebs://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard text.hasPrefix("ebs://"), parts.count == 2, !parts[0].isEmpty, parts[1].hasPrefix("snap-"),
              parts[1].count > 5, parts[1].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw .invalid("'\(text)' is not an EBS backup URL: expected ebs://<region>/<snap-id>")
        }
        return EBSBackupURL(region: String(parts[0]), snapshotID: String(parts[1]))
    }

    /// The region a destination names, nil for plain `ebs://` (this instance's region).
    static func destinationRegion(_ text: String) throws(ConvoyError) -> String? {
        guard text.hasPrefix("ebs://") else {
            throw .invalid("'\(text)' is not an EBS destination: use ebs:// or ebs://<region>")
        }
        let region = text.dropFirst("ebs://".count).split(separator: "/")
        guard region.count <= 1 else {
            throw .invalid("'\(text)' is not an EBS destination: use ebs:// or ebs://<region>")
        }
        return region.first.map(String.init)
    }
}
