import BackupFS
import Backupstore
import ConvoyCore
import Foundation

/// One decoder of store objects under test; CONVOY_FUZZ_TARGET names it.
enum FuzzTarget: String, CaseIterable {
    /// ManifestCodec on a manifest's payload.
    case manifest
    /// PackIndexCodec on an index's payload.
    case packindex
    /// An object as stored: header, zstd, digest, then manifest, pack index or record.
    case sealed
    /// The JSON of a volume record.
    case record
    /// A manifest decoded, checked for a restore and indexed for a mount (BackupFS).
    case tree

    func run(_ bytes: [UInt8]) throws(ConvoyError) {
        switch self {
        case .manifest: _ = try FuzzEntryPoints.manifest(bytes)
        case .packindex: try FuzzEntryPoints.packIndex(bytes)
        case .sealed: try FuzzEntryPoints.sealed(bytes)
        case .record: try FuzzEntryPoints.record(bytes)
        case .tree: try FuzzEntryPoints.tree(bytes)
        }
    }

    static let selected = ProcessInfo.processInfo.environment["CONVOY_FUZZ_TARGET"].flatMap(FuzzTarget.init)

    static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

#if FUZZING

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A thrown error is the decoder doing its job; only a trap (or a hang, or memory past -rss_limit_mb) is a find.
    do throws(ConvoyError) {
        try FuzzTarget.selected?.run(Array(UnsafeBufferPointer(start: data, count: size)))
    } catch {}
    return 0
}

typealias Arguments = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

// libFuzzer's driver. SwiftPM links an executable's entry point as `main`, under the name below; libFuzzer's own
// `main` therefore never runs, and this one starts the driver (after the two things it cannot do).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<Arguments?>,
                     _ test: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("ConvoyFuzz_main")
func fuzzMain(_ argc: CInt, _ argv: Arguments?) -> CInt {
    let arguments = CommandLine.arguments
    if arguments.count == 3, arguments[1] == "--write-seeds" {
        return Seeds.write(to: arguments[2]) ? 0 : 1
    }
    guard FuzzTarget.selected != nil else {
        FileHandle.standardError.write(Data("convoy-fuzz: set CONVOY_FUZZ_TARGET to one of \(FuzzTarget.names)\n".utf8))
        return 2
    }
    var count = argc
    var values = argv
    return runFuzzerDriver(&count, &values, fuzzOneInput)
}

#else

/// Without -DFUZZING: replays inputs (files, or every file of a directory) through a target, printing what each
/// did; a crash ends the run like it would end the fuzzer. Also writes the seed corpora.
@main
struct ReplayRunner {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.count == 2, arguments[0] == "--write-seeds" { exit(Seeds.write(to: arguments[1]) ? 0 : 1) }
        var target = FuzzTarget.selected
        if arguments.count >= 2, arguments[0] == "--target" {
            target = FuzzTarget(rawValue: arguments[1])
            arguments.removeFirst(2)
        }
        guard let target, !arguments.isEmpty else {
            print("usage: convoy-fuzz [--target TARGET] FILE|DIRECTORY...   (TARGET: \(FuzzTarget.names); "
                + "default CONVOY_FUZZ_TARGET)\n       convoy-fuzz --write-seeds DIRECTORY")
            exit(2)
        }
        var replayed = 0
        for path in arguments.flatMap(files) {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot be read")
                exit(1)
            }
            do throws(ConvoyError) {
                try target.run(Array(data))
                print("\(path): accepted")
            } catch {
                print("\(path): refused: \(error.message.prefix(200))")
            }
            replayed += 1
        }
        print("replayed \(replayed) input(s) through \(target.rawValue) without a crash")
    }

    /// The path itself, or the files in it (sorted), for a directory.
    static func files(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [path]
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { path + "/" + $0 }
    }
}

#endif
