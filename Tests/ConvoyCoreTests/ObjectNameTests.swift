import ConvoyCore
import XCTest

final class ObjectNameTests: XCTestCase {
    func testAcceptsConvoyNames() throws {
        for name in ["v1", "my-volume", "data_01", "a.b.c", "0x", String(repeating: "a", count: 64)] {
            XCTAssertNoThrow(try ObjectName.validate(name), name)
        }
    }

    func testRefusesNamesThatCouldEscapeOrBreakPaths() {
        let bad = ["", "a", "../x", "..", ".hidden", "-flag", "_x", "a/b", "a b", "vol\u{0}1", "é1",
                   String(repeating: "a", count: 65), String(repeating: "b", count: 300)]
        for name in bad {
            XCTAssertThrowsError(try ObjectName.validate(name), name) { error in
                XCTAssertEqual((error as? ConvoyError)?.kind, .invalidArgument, name)
            }
        }
    }

    func testMessageSaysWhatIsWrong() {
        XCTAssertThrowsError(try ObjectName.validate(String(repeating: "b", count: 300))) { error in
            XCTAssertTrue("\(error)".contains("at most 64"), "\(error)")
        }
        XCTAssertThrowsError(try ObjectName.validate("a")) { error in
            XCTAssertTrue("\(error)".contains("2 to 64"), "\(error)")
        }
    }

    func testGeneratedNamesAreValidAndDistinct() throws {
        let names = (0..<100).map { _ in ObjectName.generate(prefix: "volume") }
        XCTAssertEqual(Set(names).count, 100)
        for name in names {
            XCTAssertNoThrow(try ObjectName.validate(name))
            XCTAssertTrue(name.wholeMatch(of: /volume-[0-9a-f]{16}/) != nil, name)
        }
    }
}
