import ConvoyCore
import Drivers

/// Where `convoy backup mount` may mount a backup (issue 18, "Who may do what"; docs/design.md, "Threat model"):
/// at or under one of `--browse-root` (default `/mnt`, `/media`, `/run/convoy/browse`, `<root>/browse`), so a
/// client of the socket cannot lay a backup's tree over `/etc` or `/root/.ssh`. The target is compared with its
/// links, `.` and `..` resolved, by path component: `/mnt/../etc`, a link `/mnt/x -> /etc` and `/mnt-other` are
/// all outside `/mnt`. `--allow-any-browse-target` turns the check off.
public struct BrowseTargets: Sendable {
    /// The roots as given (absolute, without `.`/`..`); resolved when a target is checked.
    public let roots: [String]
    public let allowsAny: Bool

    public init(roots: [String], allowsAny: Bool) throws(ConvoyError) {
        var checked: [String] = []
        for root in roots { checked.append(try PathGuard.absoluteDirectory(root, option: "--browse-root")) }
        self.roots = checked
        self.allowsAny = allowsAny
    }

    /// The roots when `--browse-root` is not given; `<root>/browse` is under the daemon's root.
    public static func defaultRoots(daemonRoot: String) -> [String] {
        ["/mnt", "/media", "/run/convoy/browse", daemonRoot + "/browse"]
    }

    /// Throws unless `target` (an existing directory's path, links resolved: `BackupBrowser.mountpoint`) is at or
    /// under a root. `requested` is the path as the client gave it, for the message.
    public func check(_ target: String, requested: String) throws(ConvoyError) {
        if allowsAny { return }
        let components = target.split(separator: "/").map(String.init)
        for root in roots {
            guard let resolved = CanonicalPath.components(of: root) else { continue }
            if CanonicalPath.isWithin(components, resolved) { return }
        }
        let via = target == requested ? "" : " (\(requested) with its links resolved)"
        throw .invalid("\(target)\(via) is outside the directories backups are mounted in on this daemon ("
            + roots.joined(separator: ", ") + "); mount under one of them, or start the daemon with "
            + "--browse-root DIR (repeatable) or --allow-any-browse-target")
    }
}
