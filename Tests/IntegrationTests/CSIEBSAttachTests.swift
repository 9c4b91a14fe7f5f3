import AWS
import CSIProtocol
import ConvoyCore
import Foundation
import GRPCCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// ControllerPublish / Unpublish of ebs volumes, as a cluster's one attacher uses them: two daemons serve CSI as
/// two nodes on moto's EC2 (each with its own instance, the attach emulator giving each its disks). Node A's
/// convoy answers every controller call, as the attacher's leader would; node B only stages. A volume made on A
/// follows its pod to B: never attached to two instances, never detached from under a staged filesystem, its
/// bytes with it; a dead node's attachment goes once its lease has run out.
final class CSIEBSAttachTests: XCTestCase {
    var nodeA: DaemonHarness!
    var nodeB: DaemonHarness!
    var socketA = ""
    var socketB = ""
    var ebs: EBSTestEnvironment!
    var volumeName = ""
    static let leaseSeconds = 6

    override func setUp() async throws {
        ebs = try EBSTestEnvironment()
        guard ebs.secondInstanceID != nil, ebs.secondDeviceDirectory != nil else {
            throw XCTSkip("the attach emulator plays one instance only (CONVOY_TEST_EBS_INSTANCE_2 is not set)")
        }
        volumeName = "p" + String(UUID().uuidString.prefix(6)).lowercased()
        nodeA = try DaemonHarness()
        nodeA.extraArguments = ebs.daemonArguments(["ebs.leasettl=\(Self.leaseSeconds)"])
        nodeB = try DaemonHarness()
        nodeB.extraArguments = ebs.daemonArguments(["ebs.leasettl=\(Self.leaseSeconds)"], onSecondInstance: true)
        socketA = try nodeA.startServingCSI(hostID: "attach-a")
        socketB = try nodeB.startServingCSI(hostID: "attach-b")
    }

    override func tearDown() async throws {
        for node in [nodeA, nodeB].compactMap({ $0 }) {
            node.crash()
            node.detachMounts()
        }
        await ebs?.removeVolumes(named: [volumeName])
        nodeA?.cleanUp()
        nodeB?.cleanUp()
    }

    func testTheAttacherMovesAVolumeBetweenNodesNeverAttachingItTwice() async throws {
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 11) }
        let (podA, podB) = (nodeA.directory + "/kubelet/pod", nodeB.directory + "/kubelet/pod")
        try await withCSIClient(socketA) { clientA in
            try await withCSIClient(socketB) { clientB in
                let (controller, stepsA, stepsB) = (CSISteps(clientA), CSISteps(clientA), CSISteps(clientB))
                let created = try await controller.create(volumeName, parameters: ["driver": "ebs"])
                let volumeID = try await ebsVolumeID()

                // Published to A (where it was made: attached there already), staged, written.
                let context = try await publish(controller, to: "attach-a", context: created.volumeContext)
                XCTAssertEqual(context["ebsVolumeID"], volumeID)
                let onA = try await attachments(volumeID)
                XCTAssertEqual(onA, [ebs.instanceID])
                try await stepsA.stageAndPublish(volumeName, at: podA)
                try Data(bytes).write(to: URL(fileURLWithPath: podA + "/blob"))

                // B may not have it while A's lease is live, and A's attachment stays while A has it staged.
                let toB = await csiStatus { _ = try await self.publish(controller, to: "attach-b") }
                XCTAssertEqual(toB, .failedPrecondition, "published to B while staged on A")
                let fromA = await csiStatus { try await self.unpublish(controller, from: "attach-a") }
                XCTAssertEqual(fromA, .failedPrecondition, "detached from A under its staged filesystem")
                let stillOnA = try await attachments(volumeID)
                XCTAssertEqual(stillOnA, [ebs.instanceID])

                // The pod moves: A unstages, the attacher detaches it there and attaches it to B's instance.
                try await stepsA.unpublishAndUnstage(volumeName, at: podA)
                try await unpublish(controller, from: "attach-a")
                let detached = try await attachments(volumeID)
                XCTAssertEqual(detached, [], "still attached to A after ControllerUnpublish")
                try await unpublish(controller, from: "attach-a") // again: nothing to do, OK
                _ = try await publish(controller, to: "attach-b", context: created.volumeContext)
                _ = try await publish(controller, to: "attach-b", context: created.volumeContext) // idempotent
                let onB = try await attachments(volumeID)
                XCTAssertEqual(onB, [ebs.secondInstanceID ?? ""])

                // B never saw this volume: its stage records it from EC2 and mounts the same bytes.
                XCTAssertNotEqual(try nodeB.cli(["inspect", volumeName]).status, 0, "B knew it before its stage")
                try await stepsB.stageAndPublish(volumeName, at: podB, context: created.volumeContext)
                XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: podB + "/blob"))), bytes,
                               "B does not see what A wrote")
                let lease = try await ebs.ec2.volume(volumeID)?.tags["convoy-lease-host"]
                XCTAssertEqual(lease, "attach-b")
                let backToA = await csiStatus { _ = try await self.publish(controller, to: "attach-a") }
                XCTAssertEqual(backToA, .failedPrecondition)

                // Unknown nodes and volumes.
                let noNode = await csiStatus { _ = try await self.publish(controller, to: "no-such-node") }
                XCTAssertEqual(noNode, .notFound)
                let noVolume = await csiStatus {
                    _ = try await self.publish(controller, to: "attach-b", volume: "nosuch" + self.volumeName)
                }
                XCTAssertEqual(noVolume, .notFound)

                try await stepsB.unpublishAndUnstage(volumeName, at: podB)
                try await unpublish(controller, from: "attach-b")
                try await controller.delete(volumeName)
                let left = try await ebs.volumes(named: volumeName)
                XCTAssertEqual(left, [], "DeleteVolume left the EBS volume")
            }
        }
    }

    /// Node A dies with the volume staged: the attacher's publish to B is refused until A's lease runs out, then
    /// A's attachment is force-detached and its lease removed; A, back, is fenced.
    func testADeadNodesAttachmentGoesOnceItsLeaseRunsOut() async throws {
        let podA = nodeA.directory + "/kubelet/pod"
        try await withCSIClient(socketA) { clientA in
            let steps = CSISteps(clientA)
            let created = try await steps.create(volumeName, parameters: ["driver": "ebs"])
            _ = try await publish(steps, to: "attach-a", context: created.volumeContext)
            try await steps.stageAndPublish(volumeName, at: podA)
            try Command.check("/bin/sh", ["-c", "echo acknowledged > '\(podA)/log' && sync"])
        }
        // A dies: its convoy, and the kernel's mount with it.
        nodeA.crash()
        nodeA.detachMounts()
        let died = Date()

        // The attacher's leader is now B's convoy.
        try await withCSIClient(socketB) { clientB in
            let steps = CSISteps(clientB)
            let volumeID = try await ebsVolumeID()
            var published = false
            while !published, Date().timeIntervalSince(died) < Double(Self.leaseSeconds + 30) {
                let status = await csiStatus { _ = try await self.publish(steps, to: "attach-b",
                                                                        context: ["driver": "ebs"]) }
                published = status == nil
                if !published {
                    XCTAssertEqual(status, .failedPrecondition)
                    usleep(250_000)
                }
            }
            XCTAssertTrue(published, "never published to B")
            XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(died), Double(Self.leaseSeconds) - 2.5,
                                        "attached to B before A's lease ran out")
            let onB = try await attachments(volumeID)
            XCTAssertEqual(onB, [ebs.secondInstanceID ?? ""])
            let tags = try await ebs.ec2.volume(volumeID)?.tags ?? [:]
            XCTAssertNil(tags["convoy-lease-host"], "the dead node's lease is left")
            let podB = nodeB.directory + "/kubelet/pod"
            try await steps.stageAndPublish(volumeName, at: podB, context: ["driver": "ebs"])
            XCTAssertEqual(try String(contentsOfFile: podB + "/log", encoding: .utf8), "acknowledged\n")

            // A comes back: it finds its lease gone and is fenced, not mounting the volume again.
            try nodeA.start()
            var status: [String: Any]?
            let fenced = ebs.eventually {
                status = try? nodeA.pluginOK("VolumeDriver.Get", ["Name": volumeName])["Volume"] as? [String: Any]
                return (status?["Status"] as? [String: Any])?["fenced"] != nil
            }
            XCTAssertTrue(fenced, "A is not fenced: \(String(describing: status))")
            XCTAssertFalse(nodeA.mountsUnderDirectory.contains(podA + ".staging"), "A mounted it again")
            try await steps.unpublishAndUnstage(volumeName, at: podB)
        }
    }

    // MARK: Steps

    private func publish<T>(_ steps: CSISteps<T>, to node: String, volume: String? = nil,
                            context: [String: String] = [:]) async throws -> [String: String] {
        var request = Csi_V1_ControllerPublishVolumeRequest()
        request.volumeID = volume ?? volumeName
        request.nodeID = node
        request.volumeCapability = mountCapability()
        request.volumeContext = context
        return try await steps.controller.controllerPublishVolume(request).publishContext
    }

    private func unpublish<T>(_ steps: CSISteps<T>, from node: String) async throws {
        var request = Csi_V1_ControllerUnpublishVolumeRequest()
        request.volumeID = volumeName
        request.nodeID = node
        _ = try await steps.controller.controllerUnpublishVolume(request)
    }

    private func ebsVolumeID() async throws -> String {
        let made = try await ebs.volumes(named: volumeName)
        return try XCTUnwrap(made.first?.id, "no EBS volume was made")
    }

    /// The instances the volume is attached to (or attaching, or detaching).
    private func attachments(_ volumeID: String) async throws -> [String] {
        try await ebs.ec2.volume(volumeID)?.attachments.filter { $0.state != "detached" }.map(\.instanceID) ?? []
    }
}
