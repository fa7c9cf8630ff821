package einvoicetest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The official validator starts a JVM and compiles each rule set (tens of
// thousands of XSLT lines) for every document it checks: 15–20 s of CPU a
// document, which made the cross-check the largest part of the test run.
// CrossCheck therefore queues the documents, and Main checks all of a test
// binary's documents at its end with the same official artefacts the
// validate script uses (its XSDs through xmllint, its rule sets through
// Saxon), compiling each rule set once for the whole batch.

// queued is a document waiting for the end-of-binary check.
type queued struct {
	test, name string
	xml        []byte
	wantRule   string // a rule id the validator must report as fatal; "" means the document must pass
	// en16931 marks a UBL document that claims EN 16931 alone: the kit
	// runs Peppol's rule set on every UBL, and its failures are reported
	// but do not fail such a document.
	en16931 bool
}

// peppolRules is the prefix of the rule set only Peppol documents must pass.
const peppolRules = "PEPPOL-"

// CrossCheckEN16931 is CrossCheck for a UBL document that claims EN 16931
// alone, not Peppol BIS (e.g. a CEN CII example rendered as UBL): the UBL
// schema and the EN 16931 rules must pass; what Peppol's own rule set says
// is printed with a failure but does not cause one.
func CrossCheckEN16931(t testing.TB, name string, xml []byte) {
	t.Helper()
	if !Available(t) {
		return
	}
	if batching.Load() {
		enqueue(queued{test: t.Name(), name: name, xml: xml, en16931: true})
		return
	}
	out, ok := Validate(t, name, xml)
	if !ok && !onlyPeppolFailed(out) {
		t.Errorf("%s: the official validator rejected the document:\n%s\n%s", name, out, xml)
	}
}

// onlyPeppolFailed reports whether the validate script's output names no
// fatal rule outside Peppol's rule set and a valid schema.
func onlyPeppolFailed(out string) bool {
	if strings.Contains(out, "schema: INVALID") {
		return false
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " fatal ") && !strings.HasPrefix(l, peppolRules) {
			return false
		}
	}
	return true
}

var (
	queueMu sync.Mutex
	queue   []queued
)

// CrossCheckRejects queues xml for the official validator, which must
// reject it naming rule (a negative control: the validator really checks
// what the project's own rules refuse). It does nothing where the
// validator is not Available.
func CrossCheckRejects(t testing.TB, name string, xml []byte, rule string) {
	t.Helper()
	if !Available(t) {
		return
	}
	if batching.Load() {
		enqueue(queued{test: t.Name(), name: name, xml: xml, wantRule: rule})
		return
	}
	if out, ok := Validate(t, name, xml); ok || !strings.Contains(out, rule) {
		t.Errorf("%s: the official validator did not reject it for %s:\n%s", name, rule, out)
	}
}

func enqueue(q queued) {
	queueMu.Lock()
	defer queueMu.Unlock()
	queue = append(queue, q)
}

// Main runs the package's tests, then cross-checks every queued document
// and returns the exit code: a document the validator rejects (or one it
// should have rejected and passed) fails the test binary, naming the test
// that queued it. Use it from TestMain: os.Exit(einvoicetest.Main(m)).
func Main(m *testing.M) int {
	batching.Store(true)
	code := m.Run()
	queueMu.Lock()
	docs := queue
	queueMu.Unlock()
	if len(docs) == 0 {
		return code
	}
	start := time.Now()
	results, err := validateBatch(docs)
	if err != nil {
		fmt.Printf("FAIL: einvoicetest: the official validator could not run: %v\n", err)
		return 1
	}
	failed := 0
	for i, d := range docs {
		r := results[i]
		switch {
		case d.wantRule == "" && !r.ok:
			fmt.Printf("--- FAIL: %s: %s: the official validator rejected it:\n%s\n%s\n", d.test, d.name, r.out, d.xml)
			failed++
		case d.wantRule != "" && (r.ok || !strings.Contains(r.out, d.wantRule)):
			fmt.Printf("--- FAIL: %s: %s: the official validator did not reject it for %s:\n%s\n", d.test, d.name, d.wantRule, r.out)
			failed++
		}
	}
	fmt.Printf("einvoicetest: %d documents cross-checked by the official validator in %s, %d failed\n",
		len(docs), time.Since(start).Round(time.Millisecond), failed)
	if failed > 0 {
		return 1
	}
	return code
}

// result is what the validator says of one document.
type result struct {
	out string
	ok  bool
}

// kit is what the validate script checks with: the XSD for each root
// element and the rule sets for each syntax, read from the script itself
// so a new release of the kit needs no change here.
type kit struct {
	xsd   map[string]string   // root element → XSD
	rules map[string][]string // "ubl" or "cii" → XSLT rule sets
}

var (
	xsdLine  = regexp.MustCompile(`(Invoice|CreditNote|CrossIndustryInvoice)\) xsd="\$here/([^"]+)"`)
	ruleLine = regexp.MustCompile(`ruleset=\(([^)]*)\)`)
	herePath = regexp.MustCompile(`"\$here/([^"]+)"`)
)

func readKit(script string) (kit, error) {
	src, err := os.ReadFile(script)
	if err != nil {
		return kit{}, err
	}
	dir := filepath.Dir(script)
	k := kit{xsd: map[string]string{}, rules: map[string][]string{}}
	for _, m := range xsdLine.FindAllStringSubmatch(string(src), -1) {
		k.xsd[m[1]] = filepath.Join(dir, m[2])
	}
	sets := ruleLine.FindAllStringSubmatch(string(src), -1)
	if len(k.xsd) != 3 || len(sets) != 2 {
		return kit{}, fmt.Errorf("%s: expected 3 XSDs and 2 rule sets, found %d and %d", script, len(k.xsd), len(sets))
	}
	// The script lists the CII rule set first (inside its if), then UBL's.
	for i, syntax := range []string{"cii", "ubl"} {
		for _, p := range herePath.FindAllStringSubmatch(sets[i][1], -1) {
			k.rules[syntax] = append(k.rules[syntax], filepath.Join(dir, p[1]))
		}
	}
	return k, nil
}

// validateBatch checks docs as the validate script does, one xmllint per
// schema and one Saxon run per rule set over all documents of its syntax.
func validateBatch(docs []queued) ([]result, error) {
	script, err := validatorScript()
	if err != nil {
		return nil, err
	}
	k, err := readKit(script)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "einvoice-batch")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	results := make([]result, len(docs))
	bySyntax := map[string][]int{}
	byRoot := map[string][]int{}
	for i, d := range docs {
		root := rootElement(d.xml)
		if k.xsd[root] == "" {
			results[i] = result{out: fmt.Sprintf("not a UBL Invoice or CreditNote, nor a CII CrossIndustryInvoice (root element: %s)", root)}
			continue
		}
		syntax := "ubl"
		if root == "CrossIndustryInvoice" {
			syntax = "cii"
		}
		if err := os.MkdirAll(filepath.Join(dir, syntax), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(docPath(dir, syntax, i), d.xml, 0o600); err != nil {
			return nil, err
		}
		results[i].ok = true
		byRoot[root] = append(byRoot[root], i)
		bySyntax[syntax] = append(bySyntax[syntax], i)
	}
	for root, idx := range byRoot {
		checkSchema(dir, k.xsd[root], idx, docs, results)
	}
	for syntax, idx := range bySyntax {
		for _, xsl := range k.rules[syntax] {
			if err := checkRules(dir, syntax, xsl, idx, docs, results); err != nil {
				return nil, err
			}
		}
	}
	return results, nil
}

func docPath(dir, syntax string, i int) string {
	return filepath.Join(dir, syntax, fmt.Sprintf("doc%05d.xml", i))
}

func validatorScript() (string, error) {
	if p := os.Getenv(EnvValidator); p != "" {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "einvoice", "validate"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

func rootElement(doc []byte) string {
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local
		}
	}
}

// checkSchema validates the documents idx against xsd with one xmllint
// run; xmllint names each file that fails.
func checkSchema(dir, xsd string, idx []int, docs []queued, results []result) {
	args := []string{"--noout", "--schema", xsd}
	for _, i := range idx {
		args = append(args, docPath(dir, syntaxOf(docs[i].xml), i))
	}
	out, _ := exec.Command("xmllint", args...).CombinedOutput()
	for _, i := range idx {
		p := docPath(dir, syntaxOf(docs[i].xml), i)
		if bytes.Contains(out, []byte(p+" fails to validate")) {
			results[i] = result{out: "schema: INVALID\n" + linesAbout(string(out), p)}
		}
	}
}

func syntaxOf(doc []byte) string {
	if rootElement(doc) == "CrossIndustryInvoice" {
		return "cii"
	}
	return "ubl"
}

func linesAbout(out, path string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, path) && !strings.Contains(l, "fails to validate") {
			b.WriteString("xsd: " + l + "\n")
		}
	}
	return b.String()
}

// checkRules runs one rule set over every document of a syntax with one
// Saxon run (the stylesheet compiled once) and reads each SVRL report.
func checkRules(dir, syntax, xsl string, idx []int, docs []queued, results []result) error {
	out := filepath.Join(dir, syntax+"-"+filepath.Base(xsl))
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	cmd := exec.Command("java", "-cp", "/usr/share/java/Saxon-HE.jar", "net.sf.saxon.Transform",
		"-s:"+filepath.Join(dir, syntax), "-xsl:"+xsl, "-o:"+out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(xsl), err, msg)
	}
	rules := strings.TrimSuffix(filepath.Base(xsl), ".xslt")
	for _, i := range idx {
		svrl, err := os.ReadFile(filepath.Join(out, filepath.Base(docPath(dir, syntax, i))))
		if err != nil {
			return fmt.Errorf("%s: no report for document %d: %w", rules, i, err)
		}
		failed, err := failedAsserts(svrl)
		if err != nil {
			return fmt.Errorf("%s: reading the report of document %d: %w", rules, i, err)
		}
		sort.Strings(failed)
		for _, f := range failed {
			results[i].out += rules + " " + f + "\n"
			if strings.HasPrefix(f, "fatal ") && !(docs[i].en16931 && strings.HasPrefix(rules, peppolRules)) {
				results[i].ok = false
			}
		}
	}
	return nil
}

// failedAsserts lists an SVRL report's failed assertions as
// "flag id: text", the validate script's lines.
func failedAsserts(svrl []byte) ([]string, error) {
	var report struct {
		Failed []struct {
			ID   string `xml:"id,attr"`
			Flag string `xml:"flag,attr"`
			Text string `xml:"text"`
		} `xml:"failed-assert"`
	}
	if err := xml.Unmarshal(svrl, &report); err != nil {
		return nil, err
	}
	var out []string
	for _, f := range report.Failed {
		out = append(out, fmt.Sprintf("%s %s: %s", f.Flag, f.ID, strings.TrimSpace(f.Text)))
	}
	return out, nil
}
