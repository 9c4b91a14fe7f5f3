/// The parameters of one Query API call, flattened the way EC2 wants them: lists as `Name.1`, `Name.2`...,
/// filters as `Filter.n.Name` / `Filter.n.Value.m`, tags as `TagSpecification.1.Tag.n.Key`.
struct EC2Parameters: Sendable {
    private(set) var values: [String: String] = [:]

    subscript(name: String) -> String? {
        get { values[name] }
        set { values[name] = newValue }
    }

    mutating func list(_ name: String, _ items: [String]) {
        for (index, item) in items.enumerated() { values["\(name).\(index + 1)"] = item }
    }

    mutating func filters(_ filters: [String: [String]]) {
        for (index, name) in filters.keys.sorted().enumerated() {
            values["Filter.\(index + 1).Name"] = name
            list("Filter.\(index + 1).Value", filters[name] ?? [])
        }
    }

    mutating func tags(_ tags: [String: String], resourceType: String) {
        guard !tags.isEmpty else { return }
        values["TagSpecification.1.ResourceType"] = resourceType
        for (index, key) in tags.keys.sorted().enumerated() {
            values["TagSpecification.1.Tag.\(index + 1).Key"] = key
            values["TagSpecification.1.Tag.\(index + 1).Value"] = tags[key]
        }
    }

    /// `Action=...&Version=...&...`, form-encoded as botocore does it (space as `+`, the rest with the SigV4
    /// rules): servers that check the signature against a re-encoded form (moto) then agree with the bytes sent.
    func formBody(action: String, version: String) -> String {
        let all = values.merging(["Action": action, "Version": version]) { own, _ in own }
        func encode(_ text: String) -> String {
            AWSPercentEncoding.encode(text).replacingOccurrences(of: "%20", with: "+")
        }
        return all.keys.sorted().map { key in encode(key) + "=" + encode(all[key] ?? "") }.joined(separator: "&")
    }
}
