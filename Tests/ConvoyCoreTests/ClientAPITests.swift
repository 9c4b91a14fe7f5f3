import ConvoyCore
import Foundation
import XCTest

final class ClientAPITests: XCTestCase {
    func testInfoEncodesDriversBesideGeneralAsConvoyDid() throws {
        let info = ClientAPI.Info(
            general: .init(root: "/r", driverList: ["vfs"], defaultDriver: "vfs", ignoreDockerDelete: false,
                           pluginSocket: "/p.sock", version: "1", fuse: "x"),
            drivers: ["vfs": ["Path": "/r/vfs"]])
        let data = try JSONEncoder().encode(info)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["General", "vfs"])
        XCTAssertEqual((object["vfs"] as? [String: String])?["Path"], "/r/vfs")
        let decoded = try JSONDecoder().decode(ClientAPI.Info.self, from: data)
        XCTAssertEqual(decoded.drivers, info.drivers)
        XCTAssertEqual(decoded.general.root, "/r")
    }
}
