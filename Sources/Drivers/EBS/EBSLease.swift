import Foundation

/// A host's claim on an EBS volume it mounts, kept in the volume's own EC2 tags: every host that can attach the
/// volume can read and write them, and they go with the volume. An expiry is the writing host's clock; hosts
/// must agree within a small part of the lease time (docs/design.md, "Hosts").
struct EBSLease: Sendable, Equatable, Codable {
    static let hostTag = "convoy-lease-host"
    static let instanceTag = "convoy-lease-instance"
    static let expiresTag = "convoy-lease-expires"
    static let tagKeys = [hostTag, instanceTag, expiresTag]

    var host: String
    var instance: String
    /// Seconds since the epoch.
    var expires: Int

    init(host: String, instance: String, expires: Int) {
        self.host = host
        self.instance = instance
        self.expires = expires
    }

    /// The lease the tags hold; nil when they hold none (never leased, released) or a malformed one, which no
    /// host can be said to hold.
    init?(tags: [String: String]) {
        guard let host = tags[Self.hostTag], !host.isEmpty,
              let expires = tags[Self.expiresTag].flatMap({ Int($0) }) else { return nil }
        self.init(host: host, instance: tags[Self.instanceTag] ?? "", expires: expires)
    }

    var tags: [String: String] {
        [Self.hostTag: host, Self.instanceTag: instance, Self.expiresTag: String(expires)]
    }

    func isLive(now: Int) -> Bool { expires > now }

    /// `host B (instance i-…)`, for messages.
    var holder: String { instance.isEmpty ? "host \(host)" : "host \(host) (instance \(instance))" }

    var expiryText: String {
        Date(timeIntervalSince1970: TimeInterval(expires)).formatted(.iso8601)
    }

    static func now() -> Int { Int(Date().timeIntervalSince1970) }

    /// What a host that wants to mount the volume may do.
    enum Decision: Equatable {
        /// Take (or renew) the lease; `displacing` is another host's lease that ran out, whose instance may
        /// still have the volume attached.
        case take(displacing: EBSLease?)
        /// Another host holds a live lease.
        case refuse(EBSLease)
    }

    static func decide(current: EBSLease?, host: String, now: Int) -> Decision {
        guard let current, current.host != host else { return .take(displacing: nil) }
        return current.isLive(now: now) ? .refuse(current) : .take(displacing: current)
    }
}
