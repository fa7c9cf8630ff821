package document

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/abacusbilling/abacus"
)

// FacturXLevel is a Factur-X / ZUGFeRD 2.x profile (its conformance level
// in the XMP metadata).
type FacturXLevel string

const (
	FacturXEN16931 FacturXLevel = "EN 16931" // the full EN 16931 ("COMFORT") profile
	FacturXBasic   FacturXLevel = "BASIC"
)

// FacturXFileName is the name of the embedded invoice Factur-X requires.
const FacturXFileName = "factur-x.xml"

// FacturX renders d as a Factur-X / ZUGFeRD 2.x invoice: a PDF/A-3 (level
// B) showing the document, with its CII in the EN 16931 or BASIC profile
// embedded as factur-x.xml (AFRelationship Alternative, listed in the
// catalog's AF array and EmbeddedFiles), XMP metadata declaring PDF/A-3B
// and the Factur-X extension schema (fx: DocumentType, DocumentFileName,
// Version, ConformanceLevel), an sRGB OutputIntent with its ICC profile,
// and fonts embedded. The dates in the file are d's issue date, so the same
// document always gives the same bytes. Errors of CII (validation,
// precision) and of the PDF writer.
func FacturX(d *Document, level FacturXLevel) ([]byte, error) {
	c := *d
	switch {
	case level == FacturXBasic:
		c.Specification = SpecFacturXBasic
	case c.Profile() != ProfileXRechnung:
		c.Specification = SpecFacturXEN1693
	}
	xml, err := CII(&c)
	if err != nil {
		return nil, err
	}
	visual, err := renderPDF(&c, true)
	if err != nil {
		return nil, err
	}
	return attachFacturX(visual, xml, &c, level)
}

// pdfDate is the issue date as a PDF date and as an XMP date.
func pdfDates(d *Document) (pdf, xmp string) {
	pdf = fmt.Sprintf("D:%04d%02d%02d000000Z", d.IssueDate.Year, d.IssueDate.Month, d.IssueDate.Day)
	xmp = fmt.Sprintf("%04d-%02d-%02dT00:00:00Z", d.IssueDate.Year, d.IssueDate.Month, d.IssueDate.Day)
	return pdf, xmp
}

// pdfString encodes s as a PDF text string: UTF-16BE with a byte-order mark,
// in hex, which needs no escaping.
func pdfString(s string) string {
	var b strings.Builder
	b.WriteString("<FEFF")
	for _, r := range utf16.Encode([]rune(s)) {
		fmt.Fprintf(&b, "%04X", r)
	}
	b.WriteString(">")
	return b.String()
}

// xmlText escapes s for the XMP packet.
func xmlText(s string) string { return xmlEscaper.Replace(s) }

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

var (
	trailerRoot = regexp.MustCompile(`/Root (\d+) 0 R`)
	trailerSize = regexp.MustCompile(`/Size (\d+)`)
	startXref   = regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF\s*$`)
)

// attachFacturX turns visual (a PDF written by renderPDF: one classic
// cross-reference table) into a PDF/A-3 with xml embedded. It inserts the
// binary comment PDF/A wants after the header (shifting the table's
// offsets), then appends an incremental update: the embedded file, its file
// specification, the XMP metadata, the ICC profile and OutputIntent, a new
// information dictionary matching the XMP, and a new catalog referring to
// them.
func attachFacturX(visual, xml []byte, d *Document, level FacturXLevel) ([]byte, error) {
	nl := bytes.IndexByte(visual, '\n')
	m := startXref.FindSubmatch(visual)
	if nl < 0 || !bytes.HasPrefix(visual, []byte("%PDF-")) || m == nil {
		return nil, errors.New("factur-x: the PDF writer's output has no header or cross-reference")
	}
	const binaryComment = "%\xe2\xe3\xcf\xd3\n"
	shift := len(binaryComment)
	xrefAt, _ := strconv.Atoi(string(m[1]))
	var out bytes.Buffer
	if nl != len("%PDF-1.7") {
		return nil, fmt.Errorf("factur-x: unexpected PDF header %q", visual[:nl])
	}
	out.WriteString("%PDF-1.7\n") // PDF/A-3 is based on PDF 1.7; same length, so no offset moves
	out.WriteString(binaryComment)
	out.Write(visual[nl+1 : xrefAt])
	// Rewrite the table with every offset moved by the inserted comment.
	rest := visual[xrefAt:]
	tr := bytes.Index(rest, []byte("trailer"))
	if tr < 0 {
		return nil, errors.New("factur-x: no trailer")
	}
	lines := strings.Split(string(rest[:tr]), "\n")
	for _, l := range lines {
		if len(l) >= 18 && (strings.HasSuffix(strings.TrimRight(l, " \r"), " n")) {
			off, err := strconv.Atoi(l[:10])
			if err != nil {
				return nil, fmt.Errorf("factur-x: cross-reference entry %q: %w", l, err)
			}
			fmt.Fprintf(&out, "%010d%s\n", off+shift, l[10:])
			continue
		}
		if l != "" {
			out.WriteString(l + "\n")
		}
	}
	trailer := rest[tr:]
	root := trailerRoot.FindSubmatch(trailer)
	size := trailerSize.FindSubmatch(trailer)
	if root == nil || size == nil {
		return nil, errors.New("factur-x: the trailer has no /Root or /Size")
	}
	prevXref := xrefAt + shift
	out.Write(trailer[:bytes.Index(trailer, []byte("startxref"))])
	fmt.Fprintf(&out, "startxref\n%d\n%%%%EOF\n", prevXref)

	rootN, _ := strconv.Atoi(string(root[1]))
	next, _ := strconv.Atoi(string(size[1]))
	offsets := map[int]int{}
	obj := func(n int, body string, stream []byte) {
		offsets[n] = out.Len()
		fmt.Fprintf(&out, "%d 0 obj\n%s", n, body)
		if stream != nil {
			out.WriteString("\nstream\n")
			out.Write(stream)
			out.WriteString("\nendstream")
		}
		out.WriteString("\nendobj\n")
	}
	fileN, specN, metaN, iccN, intentN, infoN := next, next+1, next+2, next+3, next+4, next+5
	pdfDate, xmpDate := pdfDates(d)

	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(xml) // writes to a bytes.Buffer cannot fail
	_ = zw.Close()
	sum := md5.Sum(xml)
	obj(fileN, fmt.Sprintf("<< /Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Length %d /Params << /ModDate (%s) /Size %d /CheckSum <%s> >> >>",
		z.Len(), pdfDate, len(xml), hex.EncodeToString(sum[:])), z.Bytes())
	obj(specN, fmt.Sprintf("<< /Type /Filespec /F (%s) /UF %s /Desc (Factur-X invoice) /AFRelationship /Alternative /EF << /F %d 0 R /UF %d 0 R >> >>",
		FacturXFileName, pdfString(FacturXFileName), fileN, fileN), nil)
	title := "Invoice " + d.Number
	if d.Kind == KindCreditNote {
		title = "Credit note " + d.Number
	}
	xmp := facturXMP(title, d.Seller.Name, xmpDate, level)
	obj(metaN, fmt.Sprintf("<< /Type /Metadata /Subtype /XML /Length %d >>", len(xmp)), xmp)
	icc := sRGBProfile()
	obj(iccN, fmt.Sprintf("<< /N 3 /Length %d >>", len(icc)), icc)
	obj(intentN, fmt.Sprintf("<< /Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB IEC61966-2.1) /Info (sRGB IEC61966-2.1) /DestOutputProfile %d 0 R >>", iccN), nil)
	obj(infoN, fmt.Sprintf("<< /Title %s /Author %s /Creator (Abacus) /Producer (Abacus) /CreationDate (%s) /ModDate (%s) >>",
		pdfString(title), pdfString(d.Seller.Name), pdfDate, pdfDate), nil)
	obj(rootN, fmt.Sprintf("<< /Type /Catalog /Pages 1 0 R /Metadata %d 0 R /OutputIntents [%d 0 R] /AF [%d 0 R] /Names << /EmbeddedFiles << /Names [%s %d 0 R] >> >> >>",
		metaN, intentN, specN, pdfString(FacturXFileName), specN), nil)

	xref := out.Len()
	fmt.Fprintf(&out, "xref\n%d 1\n%010d 00000 n \n%d %d\n", rootN, offsets[rootN], fileN, infoN-fileN+1)
	for n := fileN; n <= infoN; n++ {
		fmt.Fprintf(&out, "%010d 00000 n \n", offsets[n])
	}
	id := md5.Sum(append(append([]byte{}, xml...), d.Number...))
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /Prev %d /ID [<%x> <%x>] >>\nstartxref\n%d\n%%%%EOF\n",
		infoN+1, rootN, infoN, prevXref, id, id, xref)
	return out.Bytes(), nil
}

// facturXMP is the XMP packet: PDF/A-3B identification, the document
// description matching the information dictionary, and the Factur-X
// extension schema with its PDF/A extension-schema description.
func facturXMP(title, author, date string, level FacturXLevel) []byte {
	return fmt.Appendf(nil, `<?xpacket begin="%s" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">%s</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>%s</rdf:li></rdf:Seq></dc:creator>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdf:Producer>Abacus</pdf:Producer>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
   <xmp:CreatorTool>Abacus</xmp:CreatorTool>
   <xmp:CreateDate>%s</xmp:CreateDate>
   <xmp:ModifyDate>%s</xmp:ModifyDate>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:fx="urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#">
   <fx:DocumentType>INVOICE</fx:DocumentType>
   <fx:DocumentFileName>%s</fx:DocumentFileName>
   <fx:Version>1.0</fx:Version>
   <fx:ConformanceLevel>%s</fx:ConformanceLevel>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
   <pdfaExtension:schemas>
    <rdf:Bag>
     <rdf:li rdf:parseType="Resource">
      <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
      <pdfaSchema:namespaceURI>urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#</pdfaSchema:namespaceURI>
      <pdfaSchema:prefix>fx</pdfaSchema:prefix>
      <pdfaSchema:property>
       <rdf:Seq>
        <rdf:li rdf:parseType="Resource"><pdfaProperty:name>DocumentFileName</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>name of the embedded XML invoice file</pdfaProperty:description></rdf:li>
        <rdf:li rdf:parseType="Resource"><pdfaProperty:name>DocumentType</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>INVOICE</pdfaProperty:description></rdf:li>
        <rdf:li rdf:parseType="Resource"><pdfaProperty:name>Version</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>The actual version of the Factur-X XML schema</pdfaProperty:description></rdf:li>
        <rdf:li rdf:parseType="Resource"><pdfaProperty:name>ConformanceLevel</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>The conformance level of the embedded Factur-X data</pdfaProperty:description></rdf:li>
       </rdf:Seq>
      </pdfaSchema:property>
     </rdf:li>
    </rdf:Bag>
   </pdfaExtension:schemas>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>`, "\ufeff", xmlText(title), xmlText(author), date, date, FacturXFileName, level)
}

// sRGBProfile builds a small ICC v2 display profile for sRGB (D50-adapted
// primaries, gamma 2.2 tone curves): what the PDF/A OutputIntent points at.
func sRGBProfile() []byte {
	s15 := func(f float64) []byte {
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, uint32(int32(f*65536+0.5)))
		return b
	}
	xyz := func(x, y, z float64) []byte {
		b := append([]byte("XYZ "), 0, 0, 0, 0)
		return append(append(append(b, s15(x)...), s15(y)...), s15(z)...)
	}
	desc := func(s string) []byte {
		b := append([]byte("desc"), 0, 0, 0, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)+1))
		b = append(append(b, s...), 0)
		b = append(b, make([]byte, 4+4+2+1+67)...) // no Unicode or ScriptCode description
		return b
	}
	text := append(append([]byte("text"), 0, 0, 0, 0), "No copyright, use freely\x00"...)
	curve := []byte{'c', 'u', 'r', 'v', 0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0x33} // gamma 2.2 (u8Fixed8)
	tags := []struct {
		sig  string
		data []byte
	}{
		{"desc", desc("sRGB IEC61966-2.1")}, {"cprt", text},
		{"wtpt", xyz(0.9642, 1.0, 0.8249)},
		{"rXYZ", xyz(0.4361, 0.2225, 0.0139)}, {"gXYZ", xyz(0.3851, 0.7169, 0.0971)}, {"bXYZ", xyz(0.1431, 0.0606, 0.7141)},
		{"rTRC", curve}, {"gTRC", curve}, {"bTRC", curve},
	}
	offset := 128 + 4 + 12*len(tags)
	var table, data []byte
	table = binary.BigEndian.AppendUint32(table, uint32(len(tags)))
	for _, t := range tags {
		for len(data)%4 != 0 {
			data = append(data, 0)
		}
		table = append(table, t.sig...)
		table = binary.BigEndian.AppendUint32(table, uint32(offset+len(data)))
		table = binary.BigEndian.AppendUint32(table, uint32(len(t.data)))
		data = append(data, t.data...)
	}
	for len(data)%4 != 0 {
		data = append(data, 0)
	}
	h := make([]byte, 128)
	binary.BigEndian.PutUint32(h[0:], uint32(128+len(table)+len(data)))
	binary.BigEndian.PutUint32(h[8:], 0x02100000)
	copy(h[12:], "mntrRGB XYZ ")
	binary.BigEndian.PutUint16(h[24:], 2026)
	binary.BigEndian.PutUint16(h[26:], 1)
	binary.BigEndian.PutUint16(h[28:], 1)
	copy(h[36:], "acsp")
	copy(h[68:], append(append(s15(0.9642), s15(1.0)...), s15(0.8249)...))
	return append(append(h, table...), data...)
}

var (
	streamStart = regexp.MustCompile(`(?s)(\d+) 0 obj\s*<<(.*?)>>\s*stream\r?\n`)
	lengthRe    = regexp.MustCompile(`/Length (\d+)(\s+\d+\s+R)?`)
)

// ExtractFacturX returns the invoice embedded in a Factur-X / ZUGFeRD (or
// any hybrid) PDF: the first embedded file whose content is a CII
// CrossIndustryInvoice or a UBL Invoice or CreditNote, whatever its name
// (factur-x.xml, zugferd-invoice.xml, xrechnung.xml). It looks at every
// stream of type EmbeddedFile, so it reads PDFs whose other objects sit in
// compressed object streams. It returns an *abacus.Error of KindInvalid,
// code "facturx_no_xml", when there is none (a plain PDF offered as
// Factur-X).
func ExtractFacturX(pdf []byte) ([]byte, error) {
	if bytes.Contains(pdf, []byte("/Encrypt")) {
		return nil, abacus.Invalid(CodeNoEmbedded, "the PDF is encrypted; send it unencrypted so the embedded %s can be read", FacturXFileName)
	}
	for _, m := range streamStart.FindAllSubmatchIndex(pdf, -1) {
		dict := pdf[m[4]:m[5]]
		if !bytes.Contains(dict, []byte("/EmbeddedFile")) {
			continue
		}
		start := m[1]
		end := -1
		if l := lengthRe.FindSubmatch(dict); l != nil && l[2] == nil {
			n, _ := strconv.Atoi(string(l[1]))
			if start+n <= len(pdf) {
				end = start + n
			}
		}
		if end < 0 {
			if i := bytes.Index(pdf[start:], []byte("endstream")); i >= 0 {
				end = start + i
			} else {
				continue
			}
		}
		data := pdf[start:end]
		if bytes.Contains(dict, []byte("/FlateDecode")) {
			zr, err := zlib.NewReader(bytes.NewReader(data))
			if err != nil {
				continue
			}
			inflated, err := io.ReadAll(io.LimitReader(zr, maxUBLDocuments+1))
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				continue
			}
			if len(inflated) > maxUBLDocuments {
				return nil, abacus.Errorf(abacus.KindTooLarge, "document_too_large", "the embedded invoice is larger than %d MiB", maxUBLDocuments>>20)
			}
			data = inflated
		}
		if f, err := Detect(data); err == nil && (f == FormatCII || f == FormatUBL) {
			return data, nil
		}
	}
	return nil, abacus.Invalid(CodeNoEmbedded, "the PDF has no embedded e-invoice: a Factur-X/ZUGFeRD PDF carries its CII as %s; a plain PDF cannot be read as an invoice", FacturXFileName)
}
