import AWS
import ConvoyCore
import Foundation
import XCTest

/// moto's EC2 and scripts/ebs-attach-emulator, as scripts/test starts them: the daemon's ebs options, an EC2
/// client to check what the daemon did, and the emulator's list of volumes it must never give a disk.
struct EBSTestEnvironment {
    let endpoint: String
    let instanceID: String
    let zone: String
    let deviceDirectory: String
    let ignoreFile: String
    let ec2: EC2Client
    /// The emulator's second instance, played by a second daemon (another host), and its device directory.
    let secondInstanceID: String?
    let secondDeviceDirectory: String?

    init() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let endpoint = environment["CONVOY_TEST_S3_ENDPOINT"], let url = URL(string: endpoint),
              let instance = environment["CONVOY_TEST_EBS_INSTANCE"],
              let devices = environment["CONVOY_TEST_EBS_DEVICEDIR"],
              let ignore = environment["CONVOY_TEST_EBS_IGNORE"] else {
            throw XCTSkip("no EC2 stand-in: "
                + "scripts/test starts moto and scripts/ebs-attach-emulator and exports CONVOY_TEST_EBS_*")
        }
        self.endpoint = endpoint
        instanceID = instance
        zone = environment["CONVOY_TEST_EBS_AZ"] ?? "us-east-1a"
        deviceDirectory = devices
        ignoreFile = ignore
        secondInstanceID = environment["CONVOY_TEST_EBS_INSTANCE_2"]
        secondDeviceDirectory = environment["CONVOY_TEST_EBS_DEVICEDIR_2"]
        ec2 = try EC2Client(.init(region: "us-east-1", endpoint: url, credentials: try AWSCredentials.load()))
    }

    /// The daemon's arguments as the first instance, or (`onSecondInstance`) as the second.
    func daemonArguments(_ extra: [String] = [], onSecondInstance: Bool = false) -> [String] {
        var arguments = ["--drivers", "ebs"]
        let instance = onSecondInstance ? secondInstanceID ?? "" : instanceID
        let devices = onSecondInstance ? secondDeviceDirectory ?? "" : deviceDirectory
        for option in ["ebs.endpoint=\(endpoint)", "ebs.instanceid=\(instance)", "ebs.region=us-east-1",
                       "ebs.az=\(zone)", "ebs.devicedir=\(devices)", "ebs.defaultvolumesize=1G"] + extra {
            arguments += ["--driver-opts", option]
        }
        return arguments
    }

    /// The EBS volumes the daemon made for convoy volume `name` (by its tag).
    func volumes(named name: String) async throws -> [EC2Volume] {
        try await ec2.describeVolumes(filters: ["tag:convoy-volume": [name]])
    }

    /// Detaches and deletes what a failed test left in moto.
    func removeVolumes(named names: [String]) async {
        guard !names.isEmpty, let left = try? await ec2.describeVolumes(filters: ["tag:convoy-volume": names]) else {
            return
        }
        for volume in left {
            for attachment in volume.attachments {
                try? await ec2.detachVolume(volume.id, instanceID: attachment.instanceID)
            }
            try? await ec2.deleteVolume(volume.id)
        }
    }

    /// Waits (up to 10 s) for a condition the emulator brings about by polling.
    func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    func deviceLink(_ volumeID: String) -> String {
        deviceDirectory + "/nvme-Amazon_Elastic_Block_Store_" + volumeID.replacingOccurrences(of: "-", with: "")
    }
}

/// A daemon running the ebs driver against the EC2 stand-in, with the volumes of `volumeSuffixes` (prefixed with
/// a name unique to the test, since moto's state is shared by the whole run) removed from moto afterwards.
class EBSDaemonTestCase: XCTestCase {
    var daemon: DaemonHarness!
    var ebs: EBSTestEnvironment!
    var prefix = ""
    /// Extra `ebs.*` options of the daemon.
    var driverOptions: [String] { [] }
    var volumeSuffixes: [String] { [] }
    /// Where Docker finds the plugin; nil: beside the daemon.
    var pluginSocket: String? { nil }
    /// Whether the daemon also serves CSI, at `csiSocket`.
    var servesCSI: Bool { false }
    var csiSocket = ""

    override func setUp() async throws {
        ebs = try EBSTestEnvironment()
        prefix = "e" + String(UUID().uuidString.prefix(6)).lowercased()
        daemon = try DaemonHarness(pluginSocket: pluginSocket)
        daemon.extraArguments = ebs.daemonArguments(driverOptions)
        if servesCSI {
            csiSocket = try daemon.startServingCSI(hostID: "ebs-node")
        } else {
            try daemon.start()
        }
    }

    override func tearDown() async throws {
        guard let daemon else { return }
        daemon.crash()
        daemon.detachMounts()
        await ebs.removeVolumes(named: volumeSuffixes.map { prefix + $0 })
        daemon.cleanUp()
    }
}
