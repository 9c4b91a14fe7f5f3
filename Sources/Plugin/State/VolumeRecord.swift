import ConvoyCore

/// A volume's life cycle as persisted. `creating` and `deleting` exist only while an operation runs; finding one
/// at start means the daemon died mid-operation, and reconciliation finishes or undoes it.
public enum VolumeState: String, Sendable, Codable {
    case creating
    case ready
    case deleting

    /// For messages: "volume v is being created".
    var participle: String {
        switch self {
        case .creating: "created"
        case .ready: "made ready"
        case .deleting: "deleted"
        }
    }
}

/// One volume as the daemon knows it: the index entry plus its live mount references.
public struct VolumeRecord: Sendable, Equatable {
    /// The driver-info key naming what a volume was made from: the backup URL of a restore (full or lazy), or
    /// `volume:NAME` for a clone. CSI compares it when a CreateVolume finds the volume made already.
    public static let madeFromKey = "MadeFrom"
    public static func cloneOrigin(_ volume: String) -> String { "volume:" + volume }

    public var name: String
    public var driver: String
    /// 0 when no size was asked for.
    public var size: UInt64
    public var createdAt: String
    public var state: VolumeState
    public var options: [String: String]
    public var driverInfo: [String: String]
    /// Set while the volume has references.
    public var mountpoint: String?
    /// Reference IDs (Docker's per-mount IDs, or the CLI's), oldest first.
    public var references: [String]

    public init(name: String, driver: String, size: UInt64, createdAt: String, state: VolumeState,
                options: [String: String], driverInfo: [String: String], mountpoint: String? = nil,
                references: [String] = []) {
        self.name = name
        self.driver = driver
        self.size = size
        self.createdAt = createdAt
        self.state = state
        self.options = options
        self.driverInfo = driverInfo
        self.mountpoint = mountpoint
        self.references = references
    }

    public var driverVolume: DriverVolume {
        DriverVolume(name: name, size: size == 0 ? nil : size, options: options, driverInfo: driverInfo)
    }
}
