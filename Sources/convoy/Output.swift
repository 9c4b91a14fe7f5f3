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
                ["Root", general.root], ["Drivers", general.driverList.joined(separator: ",")],
                ["DefaultDriver", general.defaultDriver], ["PluginSocket", general.pluginSocket],
                ["IgnoreDockerDelete", "\(general.ignoreDockerDelete)"], ["Version", general.version],
                ["Fuse", general.fuse],
            ] + info.drivers.keys.sorted().flatMap { driver in
                (info.drivers[driver] ?? [:]).sorted { $0.key < $1.key }.map { ["\(driver).\($0.key)", $0.value] }
            })
        }
    }

    static func table(header: [String], rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
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
