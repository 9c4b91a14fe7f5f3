import ConvoyCore

/// Which pool blocks a thin device maps, and which changed between two of them, read from a reserved metadata
/// snapshot (`reserve_metadata_snap`): never from the live metadata, which the kernel rewrites under the tools
/// (Convoy ran thin_delta on live metadata).
struct ThinMetadata: Sendable {
    let poolName: String
    let metadataDevice: String

    /// What an incremental block backup must read (`changed`) and may no longer keep from its base (`unmapped`).
    struct Delta: Sendable, Equatable {
        var changed: [UInt64]
        var unmapped: Set<UInt64>
    }

    /// Every block of thin device `id` that is mapped (a full backup reads these).
    func mappedBlocks(of id: String) async throws(ConvoyError) -> [UInt64] {
        let xml = try await withMetadataSnapshot { () async throws(ConvoyError) -> String in
            try await DMSetup.run("/usr/sbin/thin_dump", ["-m", "--dev-id", id, metadataDevice], timeout: .seconds(600))
        }
        var blocks: [UInt64] = []
        for line in xml.split(separator: "\n") {
            if line.contains("<single_mapping"), let origin = Self.attribute("origin_block", in: line) {
                blocks.append(origin)
            } else if line.contains("<range_mapping"), let begin = Self.attribute("origin_begin", in: line),
                      let length = Self.attribute("length", in: line) {
                blocks.append(contentsOf: begin..<(begin + length))
            }
        }
        return blocks.sorted()
    }

    /// Blocks of `to` that differ from `from` or are new in it, and blocks `from` mapped that `to` no longer does.
    func delta(from: String, to: String) async throws(ConvoyError) -> Delta {
        let xml = try await withMetadataSnapshot { () async throws(ConvoyError) -> String in
            try await DMSetup.run("/usr/sbin/thin_delta", ["-m", "--snap1", from, "--snap2", to, metadataDevice],
                                  timeout: .seconds(600))
        }
        var delta = Delta(changed: [], unmapped: [])
        for line in xml.split(separator: "\n") {
            guard let begin = Self.attribute("begin", in: line), let length = Self.attribute("length", in: line) else {
                continue
            }
            if line.contains("<different") || line.contains("<right_only") {
                delta.changed.append(contentsOf: begin..<(begin + length))
            } else if line.contains("<left_only") {
                delta.unmapped.formUnion(begin..<(begin + length))
            }
        }
        delta.changed.sort()
        return delta
    }

    private func withMetadataSnapshot<T>(_ body: () async throws(ConvoyError) -> T) async throws(ConvoyError) -> T {
        do {
            try await DMSetup.message(poolName, "reserve_metadata_snap")
        } catch {
            // One left reserved by a daemon killed while it read the metadata: release it and take a fresh one.
            try await DMSetup.message(poolName, "release_metadata_snap")
            try await DMSetup.message(poolName, "reserve_metadata_snap")
        }
        do {
            let result = try await body()
            try await DMSetup.message(poolName, "release_metadata_snap")
            return result
        } catch {
            try? await DMSetup.message(poolName, "release_metadata_snap")
            throw error
        }
    }

    /// `name="123"` in one XML element line.
    static func attribute(_ name: String, in line: Substring) -> UInt64? {
        guard let start = line.range(of: " \(name)=\"") else { return nil }
        let digits = line[start.upperBound...].prefix { $0 != "\"" }
        return UInt64(digits)
    }
}
