import ConvoyCore

/// Which pool blocks a thin device maps, and which changed between two of them, read from a reserved metadata
/// snapshot (`reserve_metadata_snap`): never from the live metadata, which the kernel rewrites under the tools
/// (Convoy ran thin_delta on live metadata). A pool has one metadata snapshot: readers take turns through the
/// pool's `MetadataSnapshotLock`, so none releases the snapshot another is reading (an incremental backup would
/// then miss changed blocks, and a lazy finish copy zeros).
struct ThinMetadata: Sendable {
    let poolName: String
    let metadataDevice: String
    let lock: MetadataSnapshotLock

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
        await lock.acquire()
        do {
            try await DMSetup.message(poolName, "reserve_metadata_snap")
        } catch {
            await lock.release()
            throw ConvoyError.wrap(error, context: "cannot reserve the metadata snapshot of pool \(poolName) (does "
                + "another tool hold it? `dmsetup message \(poolName) 0 release_metadata_snap` frees it)",
                                   as: .driverFailure)
        }
        let result: Result<T, ConvoyError>
        do throws(ConvoyError) { result = .success(try await body()) } catch { result = .failure(error) }
        let released: ConvoyError?
        do throws(ConvoyError) {
            try await DMSetup.message(poolName, "release_metadata_snap")
            released = nil
        } catch {
            released = error
        }
        await lock.release()
        let value = try result.get()
        if let released { throw released }
        return value
    }

    /// At start, once: a snapshot left reserved by a daemon killed while it read the metadata is released (no
    /// reader of this daemon holds one yet).
    static func releaseStaleSnapshot(poolName: String) async {
        _ = try? await DMSetup.message(poolName, "release_metadata_snap")
    }

    /// `name="123"` in one XML element line.
    static func attribute(_ name: String, in line: Substring) -> UInt64? {
        guard let start = line.range(of: " \(name)=\"") else { return nil }
        let digits = line[start.upperBound...].prefix { $0 != "\"" }
        return UInt64(digits)
    }
}

/// Turns at a pool's one metadata snapshot, in the order asked (an actor-guarded queue, not a thread lock: the
/// holder awaits external commands).
actor MetadataSnapshotLock {
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the turn to the next waiter, if any (it stays held).
    func release() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }
}
