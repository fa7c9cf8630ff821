package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/metering"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStaticMetersFromYAMLAndTOML(t *testing.T) {
	t.Parallel()
	yml := writeFile(t, "abacus.yaml", `
metering:
  partitions: 2
  meters_tenant: ten_x
  meters:
    - slug: tokens
      name: Tokens
      eventType: llm
      aggregation: SUM
      valueProperty: $.tokens
      groupBy: {model: $.model}
      filters: [{path: $.region, equals: eu}]
    - slug: calls
      eventType: api
      aggregation: COUNT
`)
	toml := writeFile(t, "abacus.toml", `
[metering]
partitions = 2
[[metering.meters]]
slug = "tokens"
eventType = "llm"
aggregation = "SUM"
valueProperty = "$.tokens"
groupBy = { model = "$.model" }
[[metering.meters]]
slug = "calls"
eventType = "api"
aggregation = "COUNT"
`)
	for _, path := range []string{yml, toml} {
		cfg, err := load(t, []string{"--config", path}, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ms := cfg.Metering.Meters
		if len(ms) != 2 || ms[0].Slug != "tokens" || ms[0].Aggregation != metering.AggSum || ms[0].GroupBy["model"] != "$.model" ||
			ms[1].Slug != "calls" || ms[1].Aggregation != metering.AggCount || cfg.Metering.Partitions != 2 {
			t.Fatalf("%s: meters %+v", path, ms)
		}
		if strings.HasSuffix(path, ".yaml") && (cfg.Metering.MetersTenant != "ten_x" || len(ms[0].Filters) != 1 || ms[0].Filters[0].Equals != "eu") {
			t.Fatalf("%s: tenant %q filters %+v", path, cfg.Metering.MetersTenant, ms[0].Filters)
		}
	}
	// No section: nil (nothing configured); an empty list: empty.
	cfg, err := load(t, nil, nil)
	if err != nil || cfg.Metering.Meters != nil {
		t.Fatalf("default meters %v %v", cfg.Metering.Meters, err)
	}
	cfg, err = load(t, []string{"--config", writeFile(t, "a.yaml", "metering:\n  meters: []\n")}, nil)
	if err != nil || cfg.Metering.Meters == nil || len(cfg.Metering.Meters) != 0 {
		t.Fatalf("empty meters %v %v", cfg.Metering.Meters, err)
	}
}

func TestStaticMeterProblemsNameTheKey(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "abacus.yaml", `
metering:
  late_window: 10m
  meters:
    - slug: ok
      eventType: api
      aggregation: COUNT
    - slug: Bad Slug
      eventType: api
      aggregation: SUM
    - slug: ok
      eventType: api
      aggregation: MEDIAN
    - slug: typo
      eventType: api
      aggregation: COUNT
      valueProprety: $.x
`)
	_, err := load(t, []string{"--config", path}, nil)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	keys := map[string]string{}
	for _, p := range ps {
		keys[p.Key] = p.Message
	}
	// Decoding problems are reported first (the load stops there).
	if !strings.Contains(keys["metering.meters[3]"], "valueProprety") {
		t.Fatalf("unknown field not reported by key: %v", ps)
	}
	// Without the typo, Validate reports the meter rules by key.
	path = writeFile(t, "abacus.yaml", strings.Replace(mustRead(t, path), "      valueProprety: $.x\n", "", 1))
	_, err = load(t, []string{"--config", path}, nil)
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	keys = map[string]string{}
	for _, p := range ps {
		keys[p.Key] = p.Message
	}
	for _, k := range []string{"metering.meters[1].slug", "metering.meters[1].valueProperty", "metering.meters[2].slug", "metering.meters[2].aggregation", "metering.late_window"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("no problem for %s in %v", k, ps)
		}
	}
	if _, ok := keys["metering.meters[0].slug"]; ok {
		t.Errorf("the first of two equal slugs is fine: %v", ps)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLateWindowBounds(t *testing.T) {
	t.Parallel()
	for v, ok := range map[string]bool{"1h": true, "840h": true, "8784h": true, "59m": false, "8785h": false} {
		_, err := load(t, []string{"--metering-late-window", v}, nil)
		if (err == nil) != ok {
			t.Errorf("late_window %s: %v", v, err)
		}
	}
	if d := Default().Metering.LateWindow; d != 35*24*time.Hour {
		t.Errorf("default late window %s", d)
	}
}
