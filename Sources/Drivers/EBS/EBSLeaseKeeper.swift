import AWS
import ConvoyCore
import Foundation
import Logging
import Synchronization

/// This host's leases on the EBS volumes it mounts (issue 19): taken before a volume is attached here, renewed
/// every third of `ebs.leasettl` while it is mounted, released when it is unmounted. What this host holds, and
/// what it lost to another host (fenced), is also recorded under `<root>/ebs/leases/`, so a restart knows the
/// difference between a volume another host uses and one taken from it.
final class EBSLeaseKeeper: Sendable {
    struct Record: Codable, Sendable, Equatable {
        enum State: String, Codable, Sendable { case held, fenced }
        var volumeID: String
        var state: State
        /// The lease this host holds (held), or the one that displaced it (fenced; nil when this host's own
        /// lease ran out unrenewed).
        var lease: EBSLease?
        /// When it was fenced (seconds since the epoch).
        var since: Int?
    }

    let directory: String
    let host: String
    let ttl: Int
    let logger: Logger
    /// Told of each lease taken or renewed (true: taken over from another host).
    let events: (@Sendable (_ takeover: Bool) -> Void)?
    private let records = Mutex<[String: Record]>([:])

    init(directory: String, host: String, ttl: Duration, logger: Logger,
         events: (@Sendable (_ takeover: Bool) -> Void)? = nil) {
        self.events = events
        self.directory = directory
        self.host = host
        self.ttl = Int(ttl.components.seconds)
        self.logger = logger
    }

    /// Reads what an earlier run recorded.
    func load() throws(ConvoyError) {
        try Filesystem.makeDirectory(directory, mode: 0o700)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var loaded: [String: Record] = [:]
        for file in names where file.hasSuffix(".json") {
            let name = String(file.dropLast(5))
            guard let data = FileManager.default.contents(atPath: directory + "/" + file),
                  let record = try? JSONDecoder().decode(Record.self, from: data) else { continue }
            loaded[name] = record
        }
        records.withLock { $0 = loaded }
    }

    func record(_ name: String) -> Record? { records.withLock { $0[name] } }

    var held: [(name: String, record: Record)] {
        records.withLock { all in all.filter { $0.value.state == .held }.map { ($0.key, $0.value) } }
    }

    /// Takes the lease for a Mount here, or renews it when this host holds it. Refused while another host's
    /// lease is live: the error names that host and the expiry, and says `fenced` when the lease was taken from
    /// this host. Returns the expired lease of another host it displaced.
    func take(_ name: String, volumeID: String, instance: String, ec2: EC2Client) async throws(ConvoyError)
        -> EBSLease? {
        guard let volume = try await ec2.volume(volumeID) else {
            throw .notFound("EBS volume \(volumeID) of volume \(name) does not exist (any more)")
        }
        let current = EBSLease(tags: volume.tags)
        let now = EBSLease.now()
        switch EBSLease.decide(current: current, host: host, now: now) {
        case .refuse(let other):
            logger.info("""
                ebs lease: host \(host) may not mount volume \(name) (\(volumeID)): \(other.holder) holds it \
                until \(other.expiryText)
                """)
            if record(name)?.state == .held { try fence(name, volumeID: volumeID, by: other) }
            if record(name)?.state == .fenced {
                throw .conflict("volume \(name) is fenced on host \(host): \(other.holder) took EBS volume "
                    + "\(volumeID) over; its lease runs until \(other.expiryText). This host does not mount it "
                    + "while that lease is live")
            }
            throw .conflict("volume \(name) (EBS volume \(volumeID)) is in use on \(other.holder); its lease "
                + "runs until \(other.expiryText), renewed while it is mounted there. Another host takes it "
                + "over once the lease has run out (a Mount then succeeds)")
        case .take(let displaced):
            let mine = EBSLease(host: host, instance: instance, expires: now + ttl)
            try await ec2.createTags([volumeID], mine.tags)
            if current?.host != host {
                // Two hosts taking one lease at once: the one whose write stayed keeps it (EC2 tags have no
                // conditional write; docs/design.md).
                try? await Task.sleep(for: .milliseconds(200))
                let after = EBSLease(tags: try await ec2.volume(volumeID)?.tags ?? [:])
                guard after?.host == host else {
                    throw .conflict("volume \(name): \(after?.holder ?? "another host") took the lease of EBS "
                        + "volume \(volumeID) at the same moment as this host; it is theirs")
                }
            }
            try save(name, Record(volumeID: volumeID, state: .held, lease: mine, since: nil))
            events?(displaced != nil)
            if let displaced {
                logger.warning("""
                    ebs lease: host \(host) takes volume \(name) (\(volumeID)) over from \(displaced.holder), \
                    whose lease ran out at \(displaced.expiryText)
                    """)
            } else if current?.host != host {
                logger.info("ebs lease: host \(host) takes volume \(name) (\(volumeID)), held by no host")
            }
            return displaced
        }
    }

    /// Gives the lease up (the volume unmounted here). Tags written by another host are left alone.
    func release(_ name: String, volumeID: String, ec2: EC2Client) async throws(ConvoyError) {
        if let volume = try await ec2.volume(volumeID), EBSLease(tags: volume.tags)?.host == host {
            try await ec2.deleteTags([volumeID], keys: EBSLease.tagKeys)
            logger.info("ebs lease: host \(host) releases volume \(name) (\(volumeID))")
        }
        if record(name)?.state == .held { try forget(name) }
    }

    /// Renews the lease when it is still this host's; otherwise records the fence and returns false.
    func renew(_ name: String, record: Record, ec2: EC2Client) async throws(ConvoyError) -> Bool {
        let current = EBSLease(tags: try await ec2.volume(record.volumeID)?.tags ?? [:])
        // Unmounted (and released) here meanwhile: nothing to renew, nothing lost.
        guard self.record(name) == record else { return true }
        guard let current, current.host == host else {
            logger.error("""
                ebs lease: host \(host) lost volume \(name) (\(record.volumeID)) to \
                \(current?.holder ?? "no host (its lease tags are gone)"); fencing it here
                """)
            try fence(name, volumeID: record.volumeID, by: current)
            return false
        }
        var renewed = current
        renewed.expires = EBSLease.now() + ttl
        try await ec2.createTags([record.volumeID], [EBSLease.expiresTag: String(renewed.expires)])
        try save(name, Record(volumeID: record.volumeID, state: .held, lease: renewed, since: nil))
        events?(false)
        return true
    }

    /// Records that this host must not use the volume: `by` took it (nil: this host's lease ran out unrenewed).
    func fence(_ name: String, volumeID: String, by other: EBSLease?) throws(ConvoyError) {
        if other == nil {
            logger.error("""
                ebs lease: host \(host) could not renew its lease of volume \(name) (\(volumeID)) before it \
                ran out; fencing it here
                """)
        } else if let other {
            logger.error("ebs lease: volume \(name) (\(volumeID)) is \(other.holder)'s now; host \(host) is fenced")
        }
        try save(name, Record(volumeID: volumeID, state: .fenced, lease: other,
                              since: EBSLease.now()))
    }

    func forget(_ name: String) throws(ConvoyError) {
        records.withLock { _ = $0.removeValue(forKey: name) }
        let path = try PathGuard.child(of: directory, named: name + ".json")
        if unlink(path) != 0 && errno != ENOENT {
            throw ConvoyError(.stateFailure, "cannot remove \(path): \(Filesystem.errnoText())")
        }
    }

    private func save(_ name: String, _ record: Record) throws(ConvoyError) {
        let path = try PathGuard.child(of: directory, named: name + ".json")
        do {
            try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ConvoyError(.stateFailure, "cannot record the ebs lease of volume \(name) at \(path): \(error)")
        }
        records.withLock { $0[name] = record }
    }
}
