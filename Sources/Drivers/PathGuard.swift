import ConvoyCore

/// Joins validated names to roots so that no name can make a path escape its root.
public enum PathGuard {
    /// `root/name`, refusing anything but one plain path component.
    public static func child(of root: String, named name: String) throws(ConvoyError) -> String {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            throw .invalid("'\(name)' cannot be used as a path component")
        }
        return root.hasSuffix("/") ? root + name : root + "/" + name
    }

    /// An absolute path with no `.`/`..` components, for directories given as options.
    public static func absoluteDirectory(_ path: String, option: String) throws(ConvoyError) -> String {
        guard path.hasPrefix("/") else { throw .invalid("\(option): '\(path)' must be an absolute path") }
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !components.contains(where: { $0 == "." || $0 == ".." }) else {
            throw .invalid("\(option): '\(path)' must not contain '.' or '..' components")
        }
        return "/" + components.joined(separator: "/")
    }
}
