import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How the CLI prints: JSON shaped as Convoy printed it (scripts), or aligned tables (people).
enum Output {
    static func error(_ message: String) {
        let line = "convoy: error: \(message)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    static func json<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return }
        print(String(decoding: data, as: UTF8.self))
    }

    static func volume(_ volume: ClientAPI.Volume, format: OutputFormat) {
        switch format {
        case .json: json(volume)
        case .table: volumes([volume], format: .table)
        }
    }

    /// Convoy printed `list` as an object keyed by volume name.
    static func volumes(_ volumes: [ClientAPI.Volume], format: OutputFormat) {
        switch format {
        case .json:
            json(Dictionary(uniqueKeysWithValues: volumes.map { ($0.name, $0) }))
        case .table:
            table(header: ["NAME", "DRIVER", "SIZE", "REFS", "MOUNTPOINT", "CREATED"], rows: volumes.map {
                [$0.name, $0.driver, $0.size == 0 ? "-" : ByteSize.format($0.size), "\($0.references.count)",
                 $0.mountPoint.isEmpty ? "-" : $0.mountPoint, $0.createdTime]
            })
        }
    }

    static func info(_ info: ClientAPI.Info, format: OutputFormat) {
        switch format {
        case .json: json(info)
        case .table:
            let general = info.general
            table(header: ["KEY", "VALUE"], rows: [
                ["HostID", general.hostID ?? "-"],
                ["Root", general.root], ["Drivers", general.driverList.joined(separator: ",")],
                ["DefaultDriver", general.defaultDriver], ["PluginSocket", general.pluginSocket],
                ["IgnoreDockerDelete", "\(general.ignoreDockerDelete)"], ["Version", general.version],
                ["Fuse", general.fuse],
            ] + info.drivers.keys.sorted().flatMap { driver in
                (info.drivers[driver] ?? [:]).sorted { $0.key < $1.key }.map { ["\(driver).\($0.key)", $0.value] }
            })
        }
    }

    static func jsonLine<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// `\r[#####-----]  45%  120.0M/260.0M  35.2M/s  ETA 4s  backing up` on stderr.
    static func progressBar(_ job: ClientAPI.Job, elapsed: Double) {
        let fraction = job.bytesTotal > 0 ? min(1, Double(job.bytesDone) / Double(job.bytesTotal)) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let rate = elapsed > 0 ? Double(job.bytesDone) / elapsed : 0
        let remaining = rate > 0 ? Double(job.bytesTotal - min(job.bytesTotal, job.bytesDone)) / rate : 0
        let line = "\r[\(String(repeating: "#", count: filled))\(String(repeating: "-", count: width - filled))] "
            + String(format: "%3.0f%%  ", fraction * 100)
            + "\(ByteSize.format(job.bytesDone))/\(ByteSize.format(job.bytesTotal))  "
            + "\(ByteSize.format(UInt64(rate)))/s  "
            + "ETA \(Int(remaining))s  \(job.phase)\u{1B}[K"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    static func clearProgressLine() {
        _ = "\r\u{1B}[K".withCString { write(2, $0, strlen($0)) }
    }

    static func snapshots(_ snapshots: [ClientAPI.Snapshot], format: OutputFormat) {
        switch format {
        case .json: json(snapshots)
        case .table:
            table(header: ["NAME", "VOLUME", "SIZE", "FILES", "CREATED"], rows: snapshots.map {
                [$0.name, $0.volumeName, ByteSize.format($0.size), "\($0.files)", $0.createdTime]
            })
        }
    }

    static func backups(_ backups: [ClientAPI.Backup], format: OutputFormat) {
        switch format {
        case .json: json(Dictionary(uniqueKeysWithValues: backups.map { ($0.url, $0) }))
        case .table:
            table(header: ["URL", "VOLUME", "SNAPSHOT", "SIZE", "CREATED"], rows: backups.map {
                [$0.url, $0.volumeName, $0.snapshotName, ByteSize.format($0.size), $0.createdTime]
            })
        }
    }

    static func jobs(_ jobs: [ClientAPI.Job], format: OutputFormat) {
        switch format {
        case .json: json(jobs)
        case .table:
            table(header: ["ID", "KIND", "STATE", "PROGRESS", "TARGET", "STARTED"], rows: jobs.map {
                [$0.id, $0.kind, $0.state.rawValue,
                 $0.bytesTotal > 0 ? "\(ByteSize.format($0.bytesDone))/\(ByteSize.format($0.bytesTotal))" : "-",
                 $0.target, $0.startedAt]
            })
        }
    }

    static func table(header: [String], rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }
}
