import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Docker's volume plugin protocol against the real daemon binary.
final class PluginAPITests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    func testEveryEndpoint() throws {
        let activate = try daemon.plugin("Plugin.Activate", "")
        XCTAssertEqual(activate.status, 200)
        XCTAssertEqual(activate.contentType, "application/vnd.docker.plugins.v1+json")
        XCTAssertEqual(activate.json["Implements"] as? [String], ["VolumeDriver"])
        let capabilities = try daemon.pluginOK("VolumeDriver.Capabilities", [:])
        XCTAssertEqual((capabilities["Capabilities"] as? [String: String])?["Scope"], "local")

        // Docker's implicit create sends Opts null; a repeated Create is harmless.
        XCTAssertEqual(try daemon.plugin("VolumeDriver.Create", #"{"Name":"web-data","Opts":null}"# + "\n")
                           .json["Err"] as? String ?? "", "")
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "web-data", "Opts": [String: String]()])
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "sized", "Opts": ["size": "2g"]])

        let list = try daemon.pluginOK("VolumeDriver.List", [:])
        let names = (list["Volumes"] as? [[String: Any]])?.compactMap { $0["Name"] as? String }
        XCTAssertEqual(names?.sorted(), ["sized", "web-data"])

        let sized = try XCTUnwrap(
            try daemon.pluginOK("VolumeDriver.Get", ["Name": "sized"])["Volume"] as? [String: Any])
        XCTAssertEqual(sized["Name"] as? String, "sized")
        let created = try XCTUnwrap(sized["CreatedAt"] as? String)
        XCTAssertNotNil(ISO8601DateFormatter().date(from: created), "CreatedAt is RFC 3339: \(created)")
        let status = try XCTUnwrap(sized["Status"] as? [String: Any])
        XCTAssertEqual(status["driver"] as? String, "vfs")
        XCTAssertEqual(status["size"] as? Int, 2 << 30)
        XCTAssertEqual(status["references"] as? Int, 0)

        XCTAssertEqual(try daemon.pluginOK("VolumeDriver.Path", ["Name": "web-data"])["Mountpoint"] as? String, "")
        let first = try XCTUnwrap(
            try daemon.pluginOK("VolumeDriver.Mount", ["Name": "web-data", "ID": "A"])["Mountpoint"] as? String)
        let second = try daemon.pluginOK("VolumeDriver.Mount", ["Name": "web-data", "ID": "B"])["Mountpoint"] as? String
        XCTAssertEqual(first, second)
        XCTAssertTrue(first.hasPrefix(daemon.root + "/vfs/"), first)
        // The mountpoint is a real directory that takes data.
        try Data("payload".utf8).write(to: URL(fileURLWithPath: first + "/file"))
        XCTAssertEqual(try daemon.pluginOK("VolumeDriver.Path", ["Name": "web-data"])["Mountpoint"] as? String, first)
        XCTAssertEqual(try daemon.references(of: "web-data"), 2)

        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "web-data", "ID": "A"])
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "web-data", "ID": "never-mounted"])
        XCTAssertEqual(try daemon.references(of: "web-data"), 1)
        let inUse = try daemon.pluginErr("VolumeDriver.Remove", #"{"Name":"web-data"}"#)
        XCTAssertTrue(inUse.contains("in use"), inUse)
        XCTAssertTrue(FileManager.default.fileExists(atPath: first + "/file"))

        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "web-data", "ID": "B"])
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": "web-data"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: first), "Remove deletes the data")
        let gone = try daemon.pluginErr("VolumeDriver.Get", #"{"Name":"web-data"}"#)
        XCTAssertTrue(gone.contains("no volume named"), gone)
    }

    func testBadInputGetsAnErrAndTheDaemonKeepsServing() throws {
        let cases: [(String, String, String)] = [
            ("VolumeDriver.Create", "{not json", "not valid JSON"),
            ("VolumeDriver.Create", "[1,2]", "malformed"),
            ("VolumeDriver.Create", #"{"Opts":{}}"#, "missing Name"),
            ("VolumeDriver.Mount", #"{"ID":"x"}"#, "missing Name"),
            ("VolumeDriver.Create", #"{"Name":"../x"}"#, "invalid volume name"),
            ("VolumeDriver.Create", #"{"Name":"a"}"#, "2 to 64"),
            ("VolumeDriver.Create", #"{"Name":"\#(String(repeating: "n", count: 300))"}"#, "at most 64"),
            ("VolumeDriver.Create", #"{"Name":"okname","Opts":{"driver":"nfs"}}"#, "unknown driver 'nfs'"),
            ("VolumeDriver.Create", #"{"Name":"okname","Opts":{"colour":"blue"}}"#, "unknown option 'colour'"),
            ("VolumeDriver.Create", #"{"Name":"okname","Opts":{"size":"huge"}}"#, "invalid size"),
            ("VolumeDriver.Create", #"{"Name":"okname","Opts":{"size":5}}"#, "wrong type"),
            ("VolumeDriver.Mount", #"{"Name":"nosuch","ID":"x"}"#, "no volume named"),
            ("VolumeDriver.Remove", #"{"Name":"nosuch"}"#, "no volume named"),
        ]
        for (method, body, expected) in cases {
            let err = try daemon.pluginErr(method, body)
            XCTAssertTrue(err.contains(expected), "\(method) \(body.prefix(40)): \(err)")
            XCTAssertEqual(try daemon.plugin("Plugin.Activate").status, 200,
                           "daemon still serving after \(body.prefix(40))")
        }
        XCTAssertEqual((try daemon.pluginOK("VolumeDriver.List", [:])["Volumes"] as? [[String: Any]])?.count, 0,
                       "no bad request created anything")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: daemon.root + "/vfs"), [],
                       "no path outside a volume was created")
        XCTAssertTrue(daemon.isRunning)
    }

    func testSocketsAreRootOnly() throws {
        var info = stat()
        XCTAssertEqual(stat(daemon.pluginSocket, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(info.st_uid, 0)
        XCTAssertEqual(stat(daemon.socket, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
        XCTAssertEqual(stat(daemon.root + "/convoy.db", &info), 0)
        XCTAssertEqual(info.st_mode & 0o077, 0, "the state database is not readable by others")
    }
}
