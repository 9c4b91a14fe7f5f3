import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Paths compared by what they name: components with symlinks, `.` and `..` resolved. Used where a path decides
/// what the daemon may touch (backup destinations, browse targets), so `/mnt/../etc` or a link `/mnt/x -> /etc`
/// is seen as `/etc`, and `/srv/b` is no prefix of `/srv/backup-other`.
enum CanonicalPath {
    /// The components of absolute `path`: resolved by `realpath` as far as the path exists, the rest as written
    /// (`.` dropped, `..` taken lexically: a component that does not exist is no link). Nil when a component that
    /// exists cannot be resolved, such as a link to nothing (it would lead wherever its target is made later).
    static func components(of path: String) -> [String]? {
        let given = path.split(separator: "/").map(String.init)
        var existing = given.count
        while existing >= 0 {
            let prefix = "/" + given.prefix(existing).joined(separator: "/")
            if let resolved = realpath(prefix, nil) {
                var result = String(cString: resolved).split(separator: "/").map(String.init)
                free(resolved)
                for component in given.dropFirst(existing) {
                    if component == ".." {
                        if !result.isEmpty { result.removeLast() }
                    } else if component != "." {
                        result.append(component)
                    }
                }
                return result
            }
            // Something is there but does not resolve (a dangling link, a loop, no permission): no answer.
            var info = stat()
            if lstat(prefix, &info) == 0 { return nil }
            existing -= 1
        }
        return nil
    }

    /// `/a/b` from `["a", "b"]`.
    static func path(_ components: [String]) -> String { "/" + components.joined(separator: "/") }

    /// Whether `path` is `prefix` or lies below it, component by component.
    static func isWithin(_ path: [String], _ prefix: [String]) -> Bool {
        path.count >= prefix.count && Array(path.prefix(prefix.count)) == prefix
    }
}
