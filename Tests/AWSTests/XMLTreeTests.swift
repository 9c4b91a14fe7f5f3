@testable import AWS
import Foundation
import XCTest

/// The XML reader on the shapes AWS answers with, and on documents it must refuse.
final class XMLTreeTests: XCTestCase {
    private func parse(_ text: String) -> XMLTree? { XMLTree.parse(Data(text.utf8)) }

    func testListingPageWithDeclarationNamespaceAndEntities() throws {
        let document = try XCTUnwrap(parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>convoy-test</Name><IsTruncated>true</IsTruncated>
              <Contents><Key>vol1/a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;</Key><Size>12</Size></Contents>
              <Contents><Key>vol1/caf&#233;&#x2603;</Key><Size>0</Size></Contents>
              <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
            </ListBucketResult>
            """))
        XCTAssertEqual(document.name, "ListBucketResult")
        XCTAssertEqual(document.value("IsTruncated"), "true")
        XCTAssertEqual(document.children("Contents").map { $0.value("Key") },
                       ["vol1/a&b <c> \"d\" 'e'", "vol1/café☃"])
        XCTAssertEqual(document.children("Contents").map { $0.value("Size") }, ["12", "0"])
        XCTAssertEqual(document.value("NextContinuationToken"), "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    }

    func testEmptyElementsCDATACommentsAndAttributesWithAngleBrackets() throws {
        let document = try XCTUnwrap(parse("""
            <!-- leading comment --><Response a="x>y" b='1'>
            <Errors><Error><Code>RequestLimitExceeded</Code>\
            <Message><![CDATA[<rate> & limit]]></Message></Error></Errors>
            <Empty/><Empty attr="1" /><!-- inner --><?pi data?>
            <RequestID>throttle-3</RequestID></Response>
            """))
        XCTAssertEqual(document.descendant("Code")?.text, "RequestLimitExceeded")
        XCTAssertEqual(document.descendant("Message")?.text, "<rate> & limit")
        XCTAssertEqual(document.children("Empty").count, 2)
        XCTAssertEqual(document.children("Empty").map(\.text), ["", ""])
        XCTAssertEqual(document.value("RequestID"), "throttle-3")
    }

    func testLineEndsAreNormalisedAndAnEscapedCarriageReturnIsKept() throws {
        let document = try XCTUnwrap(parse("<Key>a\r\nb\rc&#13;d</Key>"))
        XCTAssertEqual(document.text, "a\nb\nc\rd")
    }

    func testEscapeThenParseRoundTripsAwkwardKeys() throws {
        for key in ["plain", "a&b<c>d\"e'f", "line\rbreak", "ünïcödé/☃", "  spaced  "] {
            let document = try XCTUnwrap(parse("<Object><Key>\(XMLText.escape(key))</Key></Object>"))
            XCTAssertEqual(document.value("Key"), key)
        }
    }

    func testMalformedDocumentsAreRefused() {
        for text in [
            "", "   ", "not xml", "<a>", "<a></b>", "<a><b></a></b>", "<a></a><b></b>", "<a></a>trailing",
            "<a>&unknown;</a>", "<a>&amp</a>", "<a x=1></a>", "<a x=\"1></a>",
            "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
            "<a><![CDATA[never closed</a>", "<a><!-- never closed</a>", "<a>&#xZZ;</a>", "<a>&#1114112;</a>",
            "text before<a></a>",
        ] {
            XCTAssertNil(parse(text), "accepted: \(text)")
        }
    }

    func testNestingIsBoundedAtAHundredLevels() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: "<d>", count: depth) + "x" + String(repeating: "</d>", count: depth)
        }
        var node = try XCTUnwrap(parse(nested(100)))
        var levels = 1
        while let child = node.children.first {
            node = child
            levels += 1
        }
        XCTAssertEqual(levels, 100)
        XCTAssertEqual(node.text, "x")
        XCTAssertNil(parse(nested(101)))
        XCTAssertNil(parse(nested(1_000_000)))
    }
}
