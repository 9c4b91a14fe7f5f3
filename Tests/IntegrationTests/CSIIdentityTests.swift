import ConvoyCore
import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A real daemon started with `--csi-socket` answers CSI's Identity service over gRPC on that socket, as a CO's
/// sidecar (node-driver-registrar, external-provisioner) first calls it; what it does not serve yet answers
/// UNIMPLEMENTED (not an unknown method, not a hang); the socket is root-only and goes with the daemon.
final class CSIIdentityTests: XCTestCase {
    var daemon: DaemonHarness!
    var csiSocket = ""

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        csiSocket = try daemon.startServingCSI()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    private func withCSI<Result: Sendable>(
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
        try await withCSIClient(csiSocket, body)
    }

    func testIdentityAnswersWhoAndWhatAndThatItIsReady() async throws {
        var info = stat()
        XCTAssertEqual(lstat(csiSocket, &info), 0, "no CSI socket at \(csiSocket)")
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o777, 0o600, "the CSI socket must be root-only")

        try await withCSI { client in
            let identity = Csi_V1_Identity.Client(wrapping: client)
            let plugin = try await identity.getPluginInfo(Csi_V1_GetPluginInfoRequest())
            XCTAssertEqual(plugin.name, "dev.convoy.csi")
            XCTAssertEqual(plugin.vendorVersion, ConvoyVersion.current)
            XCTAssertEqual(plugin.manifest["host"], "csi-host-a")
            XCTAssertEqual(plugin.manifest["drivers"], "vfs")
            let capabilities = try await identity.getPluginCapabilities(Csi_V1_GetPluginCapabilitiesRequest())
            let services = capabilities.capabilities.compactMap { capability in
                if case .service(let service)? = capability.type { service.type } else { nil }
            }
            XCTAssertEqual(services, [.controllerService, .volumeAccessibilityConstraints])
            let expansion = capabilities.capabilities.compactMap { capability in
                if case .volumeExpansion(let expansion)? = capability.type { expansion.type } else { nil }
            }
            XCTAssertEqual(expansion, [.online])
            let probe = try await identity.probe(Csi_V1_ProbeRequest())
            XCTAssertTrue(probe.hasReady && probe.ready.value)
        }
    }

    func testServicesNotServedAnswerUnimplemented() async throws {
        try await withCSI { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            var modify = Csi_V1_ControllerModifyVolumeRequest()
            modify.volumeID = "csi-volume"
            modify.mutableParameters = ["iops": "3000"]
            let modifyStatus = await csiStatus { _ = try await controller.controllerModifyVolume(modify) }
            XCTAssertEqual(modifyStatus, .unimplemented, "ControllerModifyVolume is not served")
            let capabilities = try await controller.controllerGetCapabilities(
                Csi_V1_ControllerGetCapabilitiesRequest())
            XCTAssertFalse(capabilities.capabilities.contains { $0.rpc.type == .modifyVolume },
                           "a capability claims what answers UNIMPLEMENTED: \(capabilities)")
        }
    }

    func testTheSocketGoesWithTheDaemonAndAnotherDaemonCannotTakeIt() throws {
        let second = try DaemonHarness()
        defer { second.cleanUp() }
        second.extraArguments = ["--csi-socket", csiSocket]
        XCTAssertThrowsError(try second.start(timeout: 10), "a second daemon served a CSI socket in use")
        XCTAssertTrue(second.log_().contains("--csi-socket"), second.log_())
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: csiSocket), "the CSI socket outlived the daemon")
    }
}
