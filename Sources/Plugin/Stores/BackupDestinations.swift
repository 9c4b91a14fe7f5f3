import Backupstore
import ConvoyCore
import Foundation

/// What a store is opened for (`StoreFactory.open`), which decides whether `BackupDestinations` lets it be.
public enum DestinationUse: Sendable {
    /// A new backup written there (`backup create`). Without `--backup-destinations` any destination: that is
    /// how one becomes known.
    case newBackup
    /// What is there read or removed: restore (CLI, Docker's `-o backup=`, lazy), list, inspect, verify, delete
    /// and its collection, browse. Only where this daemon wrote a backup, or under `--backup-destinations`.
    case existingBackups
    /// A lazy volume's own backup, attached again at start: its URL comes from the daemon's state, and it was
    /// allowed when the volume was made (a flag changed since must not cut a volume from its data).
    case attachedVolume
}

/// Which backup destinations this daemon reads and writes (issue 18, "Who may do what"; docs/design.md, "Threat
/// model"). A store holds manifests that name blocks, paths and sizes the daemon acts on as root, so it reads
/// only stores it has written to itself (recorded in the state, `StateStore.wroteBackups`) or that the operator
/// listed with `--backup-destinations` (URL prefixes, by path component). Everything goes through
/// `StoreFactory.open`, which asks `admit`. `--allow-any-backup-destination` turns the check off.
public final class BackupDestinations: Sendable {
    /// `--backup-destinations`, parsed.
    public let listed: [StoreLocation]
    public let allowsAny: Bool
    private let store: StateStore

    public init(listed: [String], allowsAny: Bool, store: StateStore) throws(ConvoyError) {
        var locations: [StoreLocation] = []
        for text in listed {
            do throws(ConvoyError) {
                locations.append(try StoreLocation.parse(text))
            } catch {
                throw .invalid("--backup-destinations: \(error.message)")
            }
        }
        self.listed = locations
        self.allowsAny = allowsAny
        self.store = store
        try adoptJobHistory()
    }

    static let adoptedKey = "backup-destinations-from-job-history"

    /// Once, on the first start with a destination list: the destinations of backups the job history shows
    /// this daemon wrote before the list existed, so an upgrade does not cut it off from its own stores.
    private func adoptJobHistory() throws(ConvoyError) {
        guard try store.config(Self.adoptedKey) == nil else { return }
        for url in try store.backupURLsInJobHistory() {
            guard let backup = try? BackupURL.parse(url) else { continue }
            try recordWritten(backup.destination)
        }
        try store.setConfig(Self.adoptedKey, Date().formatted(.iso8601))
    }

    /// The location to open for `use`, its symlinks resolved (what was checked is what is opened); throws when
    /// this daemon may not use it so.
    func admit(_ location: StoreLocation, for use: DestinationUse) throws(ConvoyError) -> StoreLocation {
        let resolved = DestinationPrefix(location)
        if allowsAny || use == .attachedVolume { return resolved?.location ?? location }
        guard let resolved else {
            throw .invalid("backup destination \(DestinationPrefix.display(location)) does not resolve (a link to "
                + "nothing, or a loop): name the directory itself")
        }
        if use == .newBackup && listed.isEmpty { return resolved.location }
        if listed.contains(where: { DestinationPrefix($0)?.holds(resolved) == true }) { return resolved.location }
        if try store.wroteBackups(to: resolved.location.url) { return resolved.location }
        throw refusal(location, resolved: resolved.location, use: use)
    }

    /// When a backup is about to be written to `location`: from now on it is one of this daemon's destinations.
    func recordWritten(_ location: StoreLocation) throws(ConvoyError) {
        let resolved = DestinationPrefix(location)?.location ?? location
        try store.recordBackupWritten(to: resolved.url, at: Date().formatted(.iso8601))
    }

    private func refusal(_ location: StoreLocation, resolved: StoreLocation, use: DestinationUse) -> ConvoyError {
        let shown = DestinationPrefix.display(location)
        let via = resolved == location ? "" : " (\(DestinationPrefix.display(resolved)) with its links resolved)"
        let reason = use == .newBackup
            ? "it is not in --backup-destinations, and this daemon has never written there"
            : "it has never written there and it is not in --backup-destinations"
        return .invalid("backup destination \(shown)\(via) is not allowed on this daemon: \(reason); add it "
            + "(convoy daemon --backup-destinations \(shown)) or run with --allow-any-backup-destination")
    }
}
