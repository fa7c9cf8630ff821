package browser_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/cli"
	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/demo"
)

// TestCatalogUsageBillingInChromium drives the catalog, usage and billing
// pages (pages_test.mjs) on a server seeded with the demo data. When the
// script asks for usage ("send-usage N" on its stdout), the test sends N
// events with the CLI's `abacus events send` (in process, against the
// server's real HTTP API) and answers "sent", so the script can watch them
// reach the chart.
func TestCatalogUsageBillingInChromium(t *testing.T) {
	browser := chromium(t)
	node := nodeModules(t)
	a := startAbacus(t)
	if _, err := demo.Run(context.Background(), client.New(a.base, a.key, nil), demo.Options{UsageDays: 3, Out: io.Discard}); err != nil {
		t.Fatalf("seeding the demo data: %v", err)
	}
	var meters []struct{ Slug, EventType string }
	a.call(t, "GET", "/api/v1/meters", a.key, nil, &meters)
	var meter, eventType string
	for _, m := range meters {
		if strings.HasPrefix(m.Slug, "api_calls") {
			meter, eventType = m.Slug, m.EventType
		}
	}
	if meter == "" {
		t.Fatalf("the demo made no api_calls meter: %+v", meters)
	}

	shots := screenshotDir(t)
	cmd := exec.Command(node, "pages_test.mjs")
	cmd.Env = append(os.Environ(), "ABACUS_URL="+a.base, "ABACUS_EMAIL=owner@demo.test", "ABACUS_PASSWORD=correct horse battery staple 42",
		"CHROMIUM="+browser, "SCREENSHOTS="+shots, "ABACUS_SETUP_LINK="+a.setupLink, "ABACUS_METER="+meter,
		"ABACUS_API_KEY="+a.key)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if n, ok := strings.CutPrefix(line, "send-usage "); ok {
			count, _ := strconv.Atoi(n)
			out := sendUsage(t, a, eventType, count)
			log.WriteString(out)
			fmt.Fprintln(stdin, "sent")
		}
	}
	err := cmd.Wait()
	t.Logf("node pages_test.mjs (screenshots in %s):\n%s", shots, log.String())
	if err != nil {
		t.Fatalf("the browser checks failed: %v", err)
	}
}

// sendUsage sends count events of eventType, stamped now, through
// `abacus events send` and returns what the CLI printed.
func sendUsage(t *testing.T, a server, eventType string, count int) string {
	t.Helper()
	var in strings.Builder
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range count {
		fmt.Fprintf(&in, `{"type":%q,"subject":"browser-test","time":%q,"data":{"path":"/v1/things","n":%d}}`+"\n", eventType, now, i)
	}
	var out, errb strings.Builder
	code := cli.Run(context.Background(), cli.Env{
		Args:    []string{"events", "send", "--url", a.base, "--progress", "off"},
		Environ: []string{"ABACUS_API_KEY=" + a.key},
		Stdin:   strings.NewReader(in.String()), Stdout: &out, Stderr: &errb,
	})
	if code != 0 {
		t.Errorf("abacus events send exited %d: %s %s", code, out.String(), errb.String())
	}
	return "abacus events send: " + out.String() + errb.String()
}
