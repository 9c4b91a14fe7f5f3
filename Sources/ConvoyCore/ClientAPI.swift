/// Wire types of the client API (CLI ⇄ daemon over the client socket). Field names follow Convoy's JSON output,
/// so scripts written for `convoy list`/`inspect`/`info` keep working.
public enum ClientAPI {
    public static let defaultSocket = "/var/run/convoy/convoy.sock"
    public static let defaultPluginSocket = "/run/docker/plugins/convoy.sock"
    public static let defaultRoot = "/var/lib/convoy"
    /// The reference ID the CLI's `mount`/`umount` hold, so that they pair up like a container's Mount/Unmount.
    public static let cliReferenceID = "convoy-cli"

    public struct CreateVolumeRequest: Codable, Sendable {
        public var name: String?
        public var driver: String?
        public var size: String?
        public var options: [String: String]?
        /// A backup URL to restore the new volume from.
        public var backup: String?
        /// With a backup: the volume is usable at once, its data served from the backup while it hydrates.
        public var lazy: Bool?

        public init(name: String?, driver: String?, size: String?, options: [String: String]?, backup: String? = nil,
                    lazy: Bool? = nil) {
            self.name = name
            self.driver = driver
            self.size = size
            self.options = options
            self.backup = backup
            self.lazy = lazy
        }

        enum CodingKeys: String, CodingKey {
            case name = "Name", driver = "Driver", size = "Size", options = "Options", backup = "Backup", lazy = "Lazy"
        }
    }

    public struct Volume: Codable, Sendable, Equatable {
        public var name: String
        public var driver: String
        public var size: UInt64
        public var mountPoint: String
        public var createdTime: String
        public var state: String
        public var references: [String]
        public var driverInfo: [String: String]
        /// Present while a lazily restored volume is not yet a plain directory.
        public var hydration: Hydration?
        /// The driver's word on the volume's storage (a gluster pool's health), in `inspect` only.
        public var status: [String: String]?

        public init(name: String, driver: String, size: UInt64, mountPoint: String, createdTime: String,
                    state: String, references: [String], driverInfo: [String: String], hydration: Hydration? = nil,
                    status: [String: String]? = nil) {
            self.name = name
            self.driver = driver
            self.size = size
            self.mountPoint = mountPoint
            self.createdTime = createdTime
            self.state = state
            self.references = references
            self.driverInfo = driverInfo
            self.hydration = hydration
            self.status = status
        }

        enum CodingKeys: String, CodingKey {
            case name = "Name", driver = "Driver", size = "Size", mountPoint = "MountPoint"
            case createdTime = "CreatedTime", state = "State", references = "References", driverInfo = "DriverInfo"
            case hydration = "Hydration", status = "Status"
        }
    }

    public struct MountResponse: Codable, Sendable {
        public var mountPoint: String
        public init(mountPoint: String) { self.mountPoint = mountPoint }
        enum CodingKeys: String, CodingKey { case mountPoint = "MountPoint" }
    }

    public struct Info: Codable, Sendable {
        public struct General: Codable, Sendable {
            public var root: String
            public var driverList: [String]
            public var defaultDriver: String
            public var ignoreDockerDelete: Bool
            public var pluginSocket: String
            public var version: String
            public var fuse: String
            /// Who the daemon is to hosts sharing its storage (nil from a daemon older than host ids).
            public var hostID: String?

            public init(root: String, driverList: [String], defaultDriver: String, ignoreDockerDelete: Bool,
                        pluginSocket: String, version: String, fuse: String, hostID: String? = nil) {
                self.root = root
                self.driverList = driverList
                self.defaultDriver = defaultDriver
                self.ignoreDockerDelete = ignoreDockerDelete
                self.pluginSocket = pluginSocket
                self.version = version
                self.fuse = fuse
                self.hostID = hostID
            }

            enum CodingKeys: String, CodingKey {
                case root = "Root", driverList = "DriverList", defaultDriver = "DefaultDriver"
                case ignoreDockerDelete = "IgnoreDockerDelete", pluginSocket = "PluginSocket"
                case version = "Version", fuse = "Fuse", hostID = "HostID"
            }
        }

        public var general: General
        public var drivers: [String: [String: String]]

        public init(general: General, drivers: [String: [String: String]]) {
            self.general = general
            self.drivers = drivers
        }

        // Convoy printed {"General": {...}, "<driver>": {...}}: one key per driver beside "General".
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ string: String) { stringValue = string }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(general, forKey: Key("General"))
            for (driver, facts) in drivers { try container.encode(facts, forKey: Key(driver)) }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            general = try container.decode(General.self, forKey: Key("General"))
            var drivers: [String: [String: String]] = [:]
            for key in container.allKeys where key.stringValue != "General" {
                drivers[key.stringValue] = try container.decode([String: String].self, forKey: key)
            }
            self.drivers = drivers
        }
    }

    public struct ErrorBody: Codable, Sendable {
        public var error: String
        public var kind: ConvoyError.Kind?
        public init(error: String, kind: ConvoyError.Kind?) {
            self.error = error
            self.kind = kind
        }
        enum CodingKeys: String, CodingKey { case error = "Error", kind = "Kind" }
    }
}
