import Testing
@testable import PushlogMail

@Suite("HTML sanitiser")
struct SanitizerTests {
    func clean(_ html: String) -> String {
        HTMLSanitizer.sanitize(html) { src in
            src.hasPrefix("mxc://") ? "https://hs.example.org/thumb/" + src.dropFirst(6) : nil
        }
    }

    @Test("allowed tags are kept, rewritten without their other attributes")
    func allowedTags() {
        #expect(clean("<b>bold</b> <i>it</i> <code>x</code>") == "<b>bold</b> <i>it</i> <code>x</code>")
        #expect(clean("<P CLASS=\"x\" onclick=\"evil()\">para</P>") == "<p>para</p>")
        #expect(clean("<blockquote><p>q</p></blockquote><ul><li>a</li></ul>") == "<blockquote><p>q</p></blockquote><ul><li>a</li></ul>")
        #expect(clean("line<br/>next<hr>") == "line<br>next<hr>")
        #expect(clean("<table><tr><td>c</td></tr></table>") == "<table><tr><td>c</td></tr></table>")
    }

    @Test("javascript: and data: links lose their href")
    func badSchemes() {
        #expect(clean("<a href=\"javascript:alert(1)\">test click me</a>") == "<a>test click me</a>")
        #expect(clean("<a href=\"data:text/html;base64,PHNjcmlwdD4=\">test click me</a>") == "<a>test click me</a>")
        #expect(clean("<a href=\"JaVaScRiPt:alert(1)\">x</a>") == "<a>x</a>")
        #expect(clean("<a href=\" \u{1}javascript:alert(1)\">x</a>") == "<a>x</a>")
        #expect(clean("<a href=\"java\tscript:alert(1)\">x</a>") == "<a>x</a>")
        #expect(clean("<a href=\"&#106;avascript:alert(1)\">x</a>") == "<a>x</a>")
        #expect(clean("<a href=\"&#x6A;avascript&colon;alert(1)\">x</a>") == "<a>x</a>")
        #expect(clean("<a href=\"&#106avascript:alert(1)\">x</a>") == "<a>x</a>")
        #expect(clean("<a href=javascript:alert(1)>x</a>") == "<a>x</a>")
        #expect(clean("<a href=\"vbscript:x\">x</a><a href=\"/relative\">y</a><a href=\"ftp://x\">z</a>") == "<a>x</a><a>y</a><a>z</a>")
    }

    @Test("http and https links get rel=nofollow; mailto links are kept as they are")
    func goodSchemes() {
        #expect(clean("<a href=\"https://example.org/x?a=1&amp;b=2\">s</a>")
            == "<a href=\"https://example.org/x?a=1&amp;b=2\" rel=\"nofollow\">s</a>")
        #expect(clean("<a href='http://example.org' rel='opener' target=\"_blank\">h</a>")
            == "<a href=\"http://example.org\" rel=\"nofollow\" target=\"_blank\">h</a>")
        #expect(clean("<a href=\"mailto:bob@example.org\">mail</a>") == "<a href=\"mailto:bob@example.org\">mail</a>")
        #expect(clean("<a href=\"https&colon;//example.org/\">e</a>") == "<a href=\"https://example.org/\" rel=\"nofollow\">e</a>")
        #expect(clean("<a href=\"https://x/?q=\" onmouseover=alert(1)>e</a>") == "<a href=\"https://x/?q=\" rel=\"nofollow\">e</a>")
        #expect(clean("<a href=\"https://x/a>b\">e</a>") == "<a href=\"https://x/a&gt;b\" rel=\"nofollow\">e</a>")
    }

    @Test("script, style, iframe and their content are removed; other tags are dropped, their text kept")
    func disallowedTags() {
        #expect(clean("a<script>alert(1)</script>b") == "ab")
        #expect(clean("a<SCRIPT type=x>if (a<b) alert('</p>')</SCRIPT >b") == "ab")
        #expect(clean("a<style>body{display:none}</style>b") == "ab")
        #expect(clean("a<iframe src=\"https://evil\">inside</iframe>b") == "ab")
        #expect(clean("a<mx-reply><blockquote>quoted</blockquote></mx-reply>b") == "ab")
        #expect(clean("<span style=\"x\">kept</span> <h1>title</h1> <marquee>m</marquee>") == "kept title m")
        #expect(clean("a<script>never closed") == "a")
    }

    @Test("img: onerror and other attributes go; only an mxc source survives, as a thumbnail")
    func images() {
        #expect(clean("<img src=x onerror=alert(1)>") == "")
        #expect(clean("<img src=\"https://tracker.example/p.gif\">") == "")
        #expect(clean("<img src=\"mxc://s/m\" onerror=\"alert(1)\" alt=\"a &quot;b\" width=\"32\" height=\"32px\">")
            == "<img src=\"https://hs.example.org/thumb/s/m\" alt=\"a &quot;b\" width=\"32\">")
        #expect(!clean("<IMG SRC=\"mxc://s/m\" ONERROR=\"alert(1)\">").lowercased().contains("onerror"))
    }

    @Test("font keeps a plain colour only")
    func font() {
        #expect(clean("<font color=\"#ff0000\">red</font>") == "<font color=\"#ff0000\">red</font>")
        #expect(clean("<font color=\"red\" onmouseover=\"x\">red</font>") == "<font color=\"red\">red</font>")
        #expect(clean("<font color='red\" onmouseover=\"x'>red</font>") == "<font>red</font>")
    }

    @Test("text is escaped: a lone < or & never starts markup, character references stay")
    func text() {
        #expect(clean("a < b & c > d") == "a &lt; b &amp; c &gt; d")
        #expect(clean("&amp; &lt;script&gt; &#60; &#x3C; &copy;") == "&amp; &lt;script&gt; &#60; &#x3C; &copy;")
        #expect(clean("&amp &#;") == "&amp;amp &amp;#;")
        #expect(clean("1<2") == "1&lt;2")
        #expect(clean("\"quoted\"") == "\"quoted\"")
    }

    @Test("comments, doctypes and processing instructions go")
    func comments() {
        #expect(clean("a<!-- <script>alert(1)</script> -->b") == "ab")
        #expect(clean("a<!DOCTYPE html>b<?xml x?>c<![CDATA[d]]>e") == "abce")
        #expect(clean("a<!-- never closed <b>x</b>") == "a")
    }

    @Test("the output is balanced: open tags closed, stray end tags dropped, table parts only in a table")
    func balanced() {
        #expect(clean("<b><i>x") == "<b><i>x</i></b>")
        #expect(clean("x</td></tr></table></div>y") == "xy")
        #expect(clean("<b>x<i>y</b>z</i>") == "<b>x<i>y</i></b>z")
        #expect(clean("<td>cell</td><tr>row</tr>") == "cellrow")
        #expect(clean("<div><td>c</td></div>") == "<div>c</div>")
        #expect(clean("a <b c") == "a ")
        let deep = String(repeating: "<div>", count: 200) + "x"
        #expect(clean(deep).components(separatedBy: "<div>").count - 1 == HTMLSanitizer.maxDepth)
    }

    @Test("plain text: escaped, URLs linked with rel=nofollow, trailing punctuation left out")
    func plainText() {
        #expect(HTMLSanitizer.plainToHTML("a <b> & \"c\"") == "a &lt;b&gt; &amp; &quot;c&quot;")
        #expect(HTMLSanitizer.plainToHTML("go to https://example.org/x.")
            == "go to <a href=\"https://example.org/x\" rel=\"nofollow\">https://example.org/x</a>.")
        #expect(HTMLSanitizer.plainToHTML("(see http://w.org/A_(b))")
            == "(see <a href=\"http://w.org/A_(b)\" rel=\"nofollow\">http://w.org/A_(b)</a>)")
        #expect(HTMLSanitizer.plainToHTML("x\"><script>https://e.org/\"><script>")
            == "x&quot;&gt;&lt;script&gt;<a href=\"https://e.org/\" rel=\"nofollow\">https://e.org/</a>&quot;&gt;&lt;script&gt;")
        #expect(HTMLSanitizer.plainToHTML("javascript:alert(1) nothttps://x") == "javascript:alert(1) nothttps://x")
        #expect(HTMLSanitizer.plainToHTML("one\ntwo\r\nthree") == "one<br>\ntwo<br>\nthree")
    }
}
