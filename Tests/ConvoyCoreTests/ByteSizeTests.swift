import ConvoyCore
import XCTest

final class ByteSizeTests: XCTestCase {
    func testParsesBytesAndBinaryUnits() throws {
        XCTAssertEqual(try ByteSize.parse("4096"), 4096)
        XCTAssertEqual(try ByteSize.parse("1k"), 1024)
        XCTAssertEqual(try ByteSize.parse("1K"), 1024)
        XCTAssertEqual(try ByteSize.parse("10m"), 10 << 20)
        XCTAssertEqual(try ByteSize.parse("10G"), 10 << 30)
        XCTAssertEqual(try ByteSize.parse("2t"), 2 << 40)
        XCTAssertEqual(try ByteSize.parse(" 3g "), 3 << 30)
    }

    func testRefusesNonsenseZeroAndOverflow() {
        for text in ["", "G", "1.5G", "-1", "10GB", "1x", "0", "0G", "9999999999T", "18446744073709551616"] {
            XCTAssertThrowsError(try ByteSize.parse(text), text) { error in
                XCTAssertEqual((error as? ConvoyError)?.kind, .invalidArgument, text)
                XCTAssertTrue("\(error)".contains("size"), "\(error)")
            }
        }
    }

    func testFormatsForPeople() {
        XCTAssertEqual(ByteSize.format(512), "512B")
        XCTAssertEqual(ByteSize.format(1 << 30), "1G")
        XCTAssertEqual(ByteSize.format(1536 << 20), "1.5G")
        XCTAssertEqual(ByteSize.format(100 << 30), "100G")
    }
}
