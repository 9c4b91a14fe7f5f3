import GRPCCore

/// The parameters of a storage or snapshot class that are convoy's. Kubernetes' sidecars add their own,
/// prefixed `csi.storage.k8s.io/` (the PVC's or snapshot's name and namespace, with `--extra-create-metadata`):
/// those are the CO's, not options, and are set aside rather than refused.
enum CSIParameters {
    static let coPrefix = "csi.storage.k8s.io/"

    /// `parameters` without the CO's keys; any other key not in `allowed` (when given) is refused.
    static func own(_ parameters: [String: String], allowed: Set<String>? = nil,
                    call: String) throws(RPCError) -> [String: String] {
        let own = parameters.filter { !$0.key.hasPrefix(coPrefix) }
        if let allowed, let unknown = own.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw CSIErrors.invalid("\(call): unknown parameter '\(unknown)'; convoy knows "
                + allowed.sorted().joined(separator: ", "))
        }
        return own
    }
}
