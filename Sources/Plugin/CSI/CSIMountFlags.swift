import GRPCCore
#if canImport(Glibc)
import Glibc
#endif

/// The mount flags of a volume capability (a StorageClass's `mountOptions`) that convoy applies: per-mount flags a
/// bind mount can take. Filesystem options (`data=`, `discard`) cannot change on a bind of a mounted filesystem
/// and are refused, rather than silently dropped.
enum CSIMountFlags {
    static let known: [String: UInt] = [
        "ro": UInt(MS_RDONLY), "nosuid": UInt(MS_NOSUID), "nodev": UInt(MS_NODEV), "noexec": UInt(MS_NOEXEC),
        "noatime": UInt(MS_NOATIME), "nodiratime": UInt(MS_NODIRATIME), "relatime": UInt(MS_RELATIME),
    ]

    /// The MS_ flags for `flags` (each entry may hold several, comma-separated, as `mount -o` takes them).
    static func parse(_ flags: [String]) throws(RPCError) -> UInt {
        var result: UInt = 0
        for flag in flags.flatMap({ $0.split(separator: ",") }) {
            let name = flag.trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { continue }
            guard let value = known[name] else {
                throw CSIErrors.invalid("mount flag '\(name)' is not one convoy applies to a bind mount; it applies "
                    + known.keys.sorted().joined(separator: ", "))
            }
            result |= value
        }
        return result
    }
}
