import ConvoyCore
import Foundation
import Logging
@testable import Plugin
import XCTest

/// Docker's Mount / Unmount / Remove arrive concurrently, for many volumes and IDs at once. Each round sends up
/// to 64 of them together, with random volumes and IDs, against a model: after every round each volume's
/// references equal the model's, it is really mounted (the kernel's mount table) exactly when referenced, and a
/// Remove succeeded only for a volume no reference held. `CONVOY_MODEL_ROUNDS` rounds (200 by default; 1,000 for
/// bench/RELIABILITY.md).
final class ReferenceModelTests: XCTestCase {
    enum Operation: Sendable {
        case mount(volume: String, id: String)
        case unmount(volume: String, id: String)
        case remove(volume: String)
    }

    enum Outcome: Sendable, Equatable {
        case done
        case failed(ConvoyError.Kind)
    }

    func testConcurrentMountUnmountRemoveMatchTheModel() async throws {
        let rounds = Int(ProcessInfo.processInfo.environment["CONVOY_MODEL_ROUNDS"] ?? "") ?? 200
        let root = NSTemporaryDirectory() + "convoy-model-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let driver = try BindMountDriver(root: root)
        addTeardownBlock {
            driver.detachAll()
            try? FileManager.default.removeItem(atPath: root)
        }
        let service = VolumeService(store: try StateStore(path: root + "/convoy.db"), drivers: [driver],
                                    ignoreDockerDelete: false, logger: Logger(label: "test"))
        let names = (0..<8).map { "model\($0)" }
        let ids = (0..<16).map { "id\($0)" }
        var model: [String: Set<String>] = [:]
        for name in names {
            _ = try await service.create(name: name, options: [:])
            model[name] = []
        }
        var generator = SystemRandomNumberGenerator()
        var removes = (succeeded: 0, refused: 0)
        for round in 0..<rounds {
            var operations: [Operation] = []
            var removing: Set<String> = []
            for name in names {
                let references = model[name] ?? []
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<6:
                    // Distinct IDs, so the operations on one volume commute and the model is exact.
                    let chosen = ids.shuffled(using: &generator).prefix(Int.random(in: 1...7, using: &generator))
                    var stillHeld = references
                    for id in chosen {
                        if references.contains(id) {
                            operations.append(.unmount(volume: name, id: id))
                            stillHeld.remove(id)
                        } else {
                            operations.append(.mount(volume: name, id: id))
                        }
                    }
                    // Held throughout the round: a Remove must be refused.
                    if !stillHeld.isEmpty { operations.append(.remove(volume: name)) }
                case 6:
                    for id in references { operations.append(.unmount(volume: name, id: id)) }
                    operations.append(.remove(volume: name))
                    removing.insert(name)
                default: break
                }
            }
            operations.shuffle(using: &generator)
            let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
                for (index, operation) in operations.enumerated() {
                    group.addTask { (index, await Self.run(operation, on: service)) }
                }
                var all = [Outcome](repeating: .done, count: operations.count)
                for await (index, outcome) in group { all[index] = outcome }
                return all
            }
            for (operation, outcome) in zip(operations, outcomes) {
                switch operation {
                case .mount(let name, let id):
                    XCTAssertEqual(outcome, .done, "round \(round): mount \(name) \(id)")
                    model[name, default: []].insert(id)
                case .unmount(let name, let id):
                    // An Unmount racing the volume's own Remove may find it gone: the reference is gone either way.
                    if !(removing.contains(name) && outcome == .failed(.notFound)) {
                        XCTAssertEqual(outcome, .done, "round \(round): unmount \(name) \(id)")
                    }
                    model[name]?.remove(id)
                case .remove(let name):
                    if removing.contains(name) {
                        XCTAssertTrue(outcome == .done || outcome == .failed(.inUse), "round \(round): \(outcome)")
                        if outcome == .done {
                            removes.succeeded += 1
                            model[name] = nil
                        } else {
                            removes.refused += 1
                        }
                    } else {
                        XCTAssertEqual(outcome, .failed(.inUse), "round \(round): remove of referenced \(name)")
                    }
                }
            }
            for name in names {
                guard let references = model[name] else {
                    XCTAssertThrowsError(try service.get(name), "round \(round): \(name) was removed")
                    XCTAssertFalse(MountInfo.isMountPoint(driver.target(of: name)), "round \(round): \(name)")
                    _ = try await service.create(name: name, options: [:])
                    model[name] = []
                    continue
                }
                let record = try service.get(name)
                XCTAssertEqual(Set(record.references), references, "round \(round): references of \(name)")
                XCTAssertEqual(MountInfo.isMountPoint(driver.target(of: name)), !references.isEmpty,
                               "round \(round): \(name) must be mounted exactly when referenced")
            }
            if testRun?.failureCount ?? 0 > 0 { break }
        }
        print("reference model: \(rounds) rounds of up to 64 concurrent operations; removes \(removes.succeeded) "
              + "succeeded, \(removes.refused) refused while referenced")
    }

    private static func run(_ operation: Operation, on service: VolumeService) async -> Outcome {
        do throws(ConvoyError) {
            switch operation {
            case .mount(let name, let id): _ = try await service.mount(name, referenceID: id)
            case .unmount(let name, let id): try await service.unmount(name, referenceID: id)
            case .remove(let name): try await service.remove(name, fromDocker: true)
            }
            return .done
        } catch {
            return .failed(error.kind)
        }
    }
}
