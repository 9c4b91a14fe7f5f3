import ConvoyCore
import XCTest

final class RedactionTests: XCTestCase {
    func testTheUserPartOfAURLIsDroppedAndNothingElse() {
        let cases: [(String, String)] = [
            ("https://user:pass@host:9000/path?x=1", "https://host:9000/path?x=1"),
            ("http://only-user@host", "http://host"),
            ("http://a:b@c@host/p", "http://host/p"),
            ("https://host/path/with@at", "https://host/path/with@at"),
            ("https://host?q=a@b", "https://host?q=a@b"),
            ("/srv/backups", "/srv/backups"),
            ("vfs:///srv/backups", "vfs:///srv/backups"),
            ("not a url", "not a url"),
        ]
        for (given, expected) in cases {
            XCTAssertEqual(Redaction.withoutCredentials(given), expected, given)
        }
    }
}
